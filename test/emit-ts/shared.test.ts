// Modules emitted with the shared runtime (issue #12 item 6): each kernel module imports
// ./attnc-runtime.js instead of carrying the runtime. They type-check strictly (TS, and JS with
// .d.ts), run on lavapipe against the reference, refuse a runtime of another build, and the CLI
// writes the runtime beside them.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { compareArrays } from '../../src/runtime/compare.js';
import { getDevice } from '../../src/runtime/webgpu.js';
import {
  emitRuntime,
  emitStdlib,
  importFolder,
  inputsFor,
  referenceFor,
  typecheckGroups,
  type Case,
  type Emitted,
  type GeneratedModule,
} from './support.js';

const docs = (n: number) => Int32Array.from({ length: n }, (_, i) => Math.floor(i / 17));

/** Modules of document and softcap plus the runtime, in one folder's worth of files. */
async function engineFiles(
  lang: 'ts' | 'js',
): Promise<{ files: Record<string, string>; emitted: Emitted[] }> {
  const emitted = [
    await emitStdlib('document', lang, {}, { sharedRuntime: true }),
    await emitStdlib('softcap', lang, {}, { sharedRuntime: true }),
  ];
  const files = Object.assign({}, await emitRuntime(lang), ...emitted.map((e) => e.files)) as Record<
    string,
    string
  >;
  return { files, emitted };
}

const use = `import { createKernel as document, KernelInputError, type EncodeArgs, type LaunchUpdate } from './document.js';
import { createKernel as softcap, type Sizes } from './softcap.js';
export async function use(device: GPUDevice, encoder: GPUCommandEncoder, buf: GPUBuffer): Promise<void> {
  const sizes: Sizes = { B: 1, H: 2, Hkv: 1, Nq: 2, Nk: 2 };
  const args: EncodeArgs = { q: buf, k: { buffer: buf, offset: 256 }, v: { buffer: buf, offset: 0, size: 64 }, doc: buf, out: buf, lse: buf, sizes };
  const launch = (await document(device)).prepare(args);
  const change: LaunchUpdate = { sizes: { Nk: 4 }, qOffset: undefined };
  launch.update(change);
  launch.encode(encoder);
  (await softcap(device)).prepare({ q: buf, k: buf, v: buf, out: buf, lse: buf, sizes, params: { cap: 3 } }).update({ params: { cap: 2 } });
  void KernelInputError;
}
`;

describe('shared runtime: modules import ./attnc-runtime.js', () => {
  let ts: { files: Record<string, string>; emitted: Emitted[] };
  let js: { files: Record<string, string>; emitted: Emitted[] };
  beforeAll(async () => {
    [ts, js] = [await engineFiles('ts'), await engineFiles('js')];
  });

  it('carry no runtime of their own, and type-check strictly (TS; JS through the .d.ts)', () => {
    expect(Object.keys(ts.files).sort()).toEqual(['attnc-runtime.ts', 'document.ts', 'softcap.ts']);
    expect(Object.keys(js.files).sort()).toEqual([
      'attnc-runtime.d.ts',
      'attnc-runtime.js',
      'document.d.ts',
      'document.js',
      'softcap.d.ts',
      'softcap.js',
    ]);
    for (const name of ['document.ts', 'softcap.ts', 'document.js']) {
      expect(ts.files[name] ?? js.files[name]).toMatch(
        /^import \{[^}]*instantiate[^}]*\} from '\.\/attnc-runtime\.js';$/m,
      );
      expect(ts.files[name] ?? js.files[name]).not.toContain('function bindBuffers');
    }
    expect(js.files['attnc-runtime.js']).not.toMatch(/\binterface\b|«|»/);
    const dts = Object.fromEntries(Object.entries(js.files).filter(([n]) => n.endsWith('.d.ts')));
    const diagnostics = typecheckGroups({
      ts: { ...ts.files, 'use.ts': use },
      js: { ...dts, 'use.ts': use },
    });
    expect(diagnostics).toEqual({ ts: [], js: [] });
  });

  it('run and agree with the reference (TS transpiled, and JS)', async () => {
    const device = await getDevice();
    const c: Case = { B: 1, H: 4, Hkv: 2, Nq: 30, Nk: 50, tensors: { doc: docs(50) } };
    for (const set of [ts, js]) {
      const doc = set.emitted[0]!;
      const [mod, soft] = await importFolder<GeneratedModule>(set.files, ['document', 'softcap']);
      const qkv = inputsFor(doc.compiled, c);
      const sizes = { B: c.B, H: c.H, Hkv: c.Hkv, Nq: c.Nq, Nk: c.Nk };
      const kernel = await mod!.createKernel(device);
      const res = await kernel.dispatch({ ...qkv, doc: c.tensors!.doc, sizes });
      const ref = referenceFor(doc.compiled, c, qkv);
      expect(compareArrays(res.out, ref.out, ref.outScale).relError).toBeLessThanOrEqual(1e-5);
      const capped = await (await soft!.createKernel(device)).dispatch({ ...qkv, sizes, params: { cap: 2 } });
      const refCap = referenceFor(set.emitted[1]!.compiled, { ...c, tensors: {}, params: { cap: 2 } }, qkv);
      expect(compareArrays(capped.out, refCap.out, refCap.outScale).relError).toBeLessThanOrEqual(1e-5);
      // One runtime, one error class: a module's KernelInputError is the runtime's.
      await expect(kernel.dispatch({ ...qkv, sizes })).rejects.toBeInstanceOf(soft!.KernelInputError);
      kernel.destroy();
    }
  });

  it('a runtime of another attnc build is refused by name', async () => {
    const files = { ...js.files };
    files['attnc-runtime.js'] = files['attnc-runtime.js']!.replace(
      /const runtimeId = '([0-9a-f]+)'/,
      "const runtimeId = 'feedbeef'",
    );
    expect(files['attnc-runtime.js']).toContain("'feedbeef'");
    const [mod] = await importFolder<GeneratedModule>(files, ['document']);
    await expect(mod!.createKernel(await getDevice())).rejects.toThrow(
      /kernel "document": \.\/attnc-runtime\.js is runtime feedbeef, this module needs [0-9a-f]{8}; write both with the same attnc/,
    );
  });
});

describe('attnc compile --emit --shared-runtime', () => {
  const cli = 'dist/src/cli/main.js';
  const attnc = (...args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' });

  it('writes the module and the runtime; needs --emit and --out', () => {
    const dir = mkdtempSync(join(tmpdir(), 'attnc-shared-'));
    for (const name of ['document', 'softcap']) {
      const r = attnc('compile', `stdlib/${name}.attn`, '--emit', 'js', '--shared-runtime', '--out', dir);
      expect(r.status, r.stderr).toBe(0);
    }
    expect(readdirSync(dir).sort()).toEqual([
      'attnc-runtime.d.ts',
      'attnc-runtime.js',
      'document.d.ts',
      'document.js',
      'softcap.d.ts',
      'softcap.js',
    ]);
    expect(readFileSync(join(dir, 'document.js'), 'utf8')).toContain("from './attnc-runtime.js'");
    const bare = attnc('compile', 'stdlib/document.attn', '--emit', 'ts', '--shared-runtime');
    expect(bare.status).toBe(1);
    expect(bare.stderr).toContain('--shared-runtime needs --emit ts|js and --out DIR');
  });
});
