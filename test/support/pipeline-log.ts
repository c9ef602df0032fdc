// vitest setup file, inert unless ATTNC_PIPELINE_LOG names a file: then every compute pipeline the
// process dispatches for the first time appends one JSON line there: the test file and test, a hash
// of its WGSL and the entry point, the WGSL's length, and the ms (wall, and CPU of the whole
// process) from the submit that first dispatches it until that work is done; lavapipe JIT-compiles
// a shader at its first dispatch, so on a cold Mesa cache that is the compile. Pipelines first
// dispatched by one submit share its times (`together`). `seen`: the same WGSL and entry point was
// dispatched before in this process, under another pipeline object. The WGSL goes to
// `<log>.wgsl/<hash>.wgsl`. Dawn's prototypes are patched, so every device and caller (the runtime,
// the emitted TS modules, bare devices in tests) is seen. docs/TESTING-TIME.md, round 25.
import { createHash } from 'node:crypto';
import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { expect } from 'vitest';

const log = process.env.ATTNC_PIPELINE_LOG;
const PATCHED = Symbol.for('attnc.pipelineLog');
const g = globalThis as { [PATCHED]?: true };

if (log && !g[PATCHED]) {
  g[PATCHED] = true;
  const name = 'webgpu';
  const mod = (await import(/* @vite-ignore */ name)) as { globals: Record<string, { prototype: unknown }> };
  type Methods = Record<string, (...a: unknown[]) => unknown>;
  const proto = (cls: string) => mod.globals[cls]!.prototype as Methods;
  const codeOf = new WeakMap<object, string>();
  const keyOf = new WeakMap<object, { hash: string; entry: string; len: number }>();
  const dispatched = new WeakSet<object>();
  const seenKeys = new Set<string>();
  let pending: object[] = [];
  mkdirSync(`${log}.wgsl`, { recursive: true });

  const dev = proto('GPUDevice');
  const patch = (o: Methods, m: string, after: (r: unknown, a: unknown[]) => void) => {
    const orig = o[m]!;
    o[m] = function (this: unknown, ...a: unknown[]) {
      const r = orig.apply(this, a);
      after(r, a);
      return r;
    };
  };
  patch(dev, 'createShaderModule', (mod, [d]) =>
    codeOf.set(mod as object, (d as GPUShaderModuleDescriptor).code),
  );
  const remember = (p: unknown, d: GPUComputePipelineDescriptor) => {
    const code = codeOf.get(d.compute.module) ?? '';
    const hash = createHash('sha256').update(code).digest('hex').slice(0, 12);
    writeFileSync(`${log}.wgsl/${hash}.wgsl`, code);
    keyOf.set(p as object, { hash, entry: d.compute.entryPoint ?? '', len: code.length });
  };
  patch(dev, 'createComputePipeline', (p, [d]) => remember(p, d as GPUComputePipelineDescriptor));
  const async = dev.createComputePipelineAsync!;
  dev.createComputePipelineAsync = function (this: unknown, ...a: unknown[]) {
    return (async.apply(this, a) as Promise<object>).then(
      (p) => (remember(p, a[0] as GPUComputePipelineDescriptor), p),
    );
  };
  const pass = proto('GPUComputePassEncoder');
  patch(pass, 'setPipeline', (_r, [p]) => {
    if (!dispatched.has(p as object)) pending.push(p as object);
  });
  const queue = proto('GPUQueue');
  const submit = queue.submit!;
  queue.submit = function (this: GPUQueue, ...a: unknown[]) {
    const fresh = [...new Set(pending)].filter((p) => !dispatched.has(p));
    pending = [];
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    const r = submit.apply(this, a);
    if (fresh.length === 0) return r;
    for (const p of fresh) dispatched.add(p);
    const { testPath, currentTestName } = expect.getState();
    void this.onSubmittedWorkDone().then(() => {
      const ms = Math.round(performance.now() - t0);
      const c = process.cpuUsage(c0);
      const cpuMs = Math.round((c.user + c.system) / 1000);
      for (const p of fresh) {
        const k = keyOf.get(p) ?? { hash: '?', entry: '?', len: 0 };
        const id = `${k.hash}:${k.entry}`;
        const seen = seenKeys.has(id);
        seenKeys.add(id);
        const line = { file: testPath, test: currentTestName, ...k, ms, cpuMs, together: fresh.length, seen };
        appendFileSync(log, JSON.stringify(line) + '\n');
      }
    });
    return r;
  };
}
