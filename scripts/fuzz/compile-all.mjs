// The compile step of a campaign case: every target × engine the case's program may run on, each
// classified as compiled, refused (a CompileError whose diagnostics all name a source position:
// "not offered" is a fine answer) or a bug (any other exception, or an unpositioned error).
import { parseWgsl, validate } from 'naga-wasm';
import { compile } from '../../dist/src/compile.js';
import {
  compileBackward,
  compileCudaBackward,
  compileCudaBackwardMma,
  compileCudaBackwardWgmma,
} from '../../dist/src/backward.js';

const twos = (n) => n & -n;

/** The SIMT schedule random-programs-emu draws: tpr a power of two dividing both head dims. */
export function simtTile(t, D, Dv) {
  const tpr = Math.min(2 ** t.tprLog, twos(D), twos(Dv));
  return { engine: 'simt', blockQ: t.blockQ, blockK: t.blockK, threads: (t.blockQ * tpr) / t.rows };
}

/** property.test.ts's coop schedules by variant (subgroups off: naga and lavapipe lack them). */
function coopSchedule(v) {
  return {
    blockQ: 16,
    threads: 32,
    blockK: 16,
    coopLanes: v >= 3 ? 8 : 4,
    coopPrefetch: v % 3 === 1,
    coopSplitKv: v % 3 === 2,
    coopQGlobal: v === 2 || v === 5,
  };
}

/** The compile jobs of a case: [label, thunk returning { wgsl: string[], cuda: {arch, code, files}[] , compiled? }]. */
export function jobs(c, targets) {
  // One name per job: nvcc compiles a batch's CUDA in one translation unit, where two jobs of a
  // draw under the same name would redefine each other's namespace.
  const named = (label) =>
    c.source.replace(`attention ${c.name}(`, `attention ${c.name}_${label.replace(/-/g, '_')}(`);
  const base = {
    file: `${c.name}.attn`,
    headDim: c.D,
    valueDim: c.Dv,
    ...(c.importance ? { importance: c.importance } : {}),
  };
  const wgslOut = (x) => ({ wgsl: wgslModules(x.artifact), compiled: x });
  const cudaOut = (arch) => (x) => ({
    cuda: [{ arch, code: x.artifact.code, files: x.artifact.files ?? {} }],
    compiled: x,
  });
  const list = [];
  if (targets.has('wgsl')) {
    list.push(['wgsl-row', (src) => wgslOut(compile(src, { ...base, target: 'wgsl', wgslEngine: 'row' }))]);
    list.push([
      'wgsl-coop',
      (src) =>
        wgslOut(
          compile(src, {
            ...base,
            target: 'wgsl',
            wgslEngine: 'coop',
            schedule: coopSchedule(c.coopVariant),
          }),
        ),
    ]);
  }
  if (targets.has('cuda') || targets.has('emu')) {
    const cu = { ...base, target: 'cuda', dtype: c.dtype };
    list.push(['cuda-default', (src) => cudaOut('sm_90a')(compile(src, cu))]);
    list.push([
      'cuda-simt',
      (src) => cudaOut('sm_90a')(compile(src, { ...cu, schedule: simtTile(c.tile, c.D, c.Dv) })),
    ]);
    // The mma engine at the draw's arch (sm_80/86/89) and token order (key-major: routing only).
    const arch = c.mmaArch ?? 'sm_80';
    const mma = { engine: 'mma', ...(c.tokenOrder ? { tokenOrder: c.tokenOrder } : {}) };
    list.push([`cuda-mma-${arch}`, (src) => cudaOut(arch)(compile(src, { ...cu, arch, schedule: mma }))]);
    list.push([
      'cuda-wgmma',
      (src) => cudaOut('sm_90a')(compile(src, { ...cu, schedule: { engine: 'wgmma' } })),
    ]);
  }
  // bwd-emu executes the mma.sync backward the `backward` jobs compile.
  if ((targets.has('backward') || targets.has('bwd-emu')) && !c.importance) {
    const bw = { file: base.file, headDim: c.D, valueDim: c.Dv };
    list.push(['bwd-wgsl', (src) => ({ wgsl: [compileBackward(src, bw).backward.code] })]);
    list.push([
      'bwd-cuda-simt',
      (src) => ({
        cuda: [{ arch: 'sm_90a', code: compileCudaBackward(src, bw).backward.code, files: {} }],
      }),
    ]);
    const half = c.dtype === 'f32' ? 'bf16' : c.dtype;
    // Both modes of the mma.sync backward: the deterministic one has its own dK/dV and dq kernels.
    for (const [label, deterministic] of [
      ['bwd-cuda-mma', false],
      ['bwd-cuda-mma-det', true],
    ]) {
      const arch = c.mmaArch ?? 'sm_80';
      const opts = { ...bw, dtype: half, arch, deterministic };
      list.push([
        label,
        (src) => ({ cuda: [{ arch, code: compileCudaBackwardMma(src, opts).backward.code, files: {} }] }),
      ]);
    }
    list.push([
      'bwd-cuda-wgmma',
      (src) => ({
        cuda: [
          {
            arch: 'sm_90a',
            code: compileCudaBackwardWgmma(src, { ...bw, dtype: half }).backward.code,
            files: {},
          },
        ],
      }),
    ]);
  }
  return list.map(([label, thunk]) => [label, () => thunk(named(label))]);
}

/** Every WGSL module of a forward artifact: main, decode variant, quantize modules. */
function wgslModules(a) {
  const mods = [a.code];
  if (a.decode) mods.push(a.decode.artifact.code);
  for (const q of Object.values(a.quantize ?? {})) mods.push(q.code);
  return mods;
}

/** A refusal is fine when it is a CompileError whose every diagnostic has a real position. */
function positioned(e) {
  // By name, not instanceof: callers may hold another copy of the class (src/ under vitest).
  const diags = e?.name === 'CompileError' ? e.diagnostics : undefined;
  return (
    Array.isArray(diags) &&
    diags.length > 0 &&
    diags.every((d) => d.span && d.span.file !== '<internal>' && d.span.line >= 1)
  );
}

/** Runs one job: { status: 'ok', out } | { status: 'refused', message } | { status: 'bug', message }. */
export function runJob(thunk) {
  try {
    return { status: 'ok', out: thunk() };
  } catch (e) {
    if (positioned(e)) return { status: 'refused', message: e.message.split('\n')[0] };
    return { status: 'bug', message: `internal: ${e instanceof Error ? e.stack : String(e)}`.slice(0, 3000) };
  }
}

/** naga's verdict on a module: undefined when it parses and validates, else the error text. */
export function nagaError(code) {
  let module;
  try {
    module = parseWgsl(code);
    validate(module).free();
    return undefined;
  } catch (e) {
    return String(e instanceof Error ? e.message : e).slice(0, 2000);
  } finally {
    module?.free();
  }
}
