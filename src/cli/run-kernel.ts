// `attnc run`: compile for this machine's WebGPU device, execute on random inputs, and compare
// with the dense float64 reference. Shared by the CLI and (later) the REPL's `:run`.
import { compile } from '../compile.js';
import { didYouMean } from '../dsl/checker.js';
import { UsageError } from './errors.js';
import { checkRunFits, type RunSizes } from './run-limits.js';
import type { ImportanceMode, StorageDType } from '../ir/kernel.js';
import { tileCounts } from '../ir/tile-stats.js';
import { routingFrom, unitBlockSize } from '../ir/routing.js';
import { declPredicates, declRouting } from '../runtime/ast-eval.js';
import { compareArrays, type Agreement } from '../runtime/compare.js';
import { referenceImportance } from '../runtime/importance-ref.js';
import { fromF16, toF16 } from '../runtime/f16.js';
import { declaredDefault, paramProblem } from '../runtime/params.js';
import { randomNormal, randomTensor, rng, tensorLength, tensorShape } from '../runtime/inputs.js';
import { referenceAttention, type RefInputs, type RefResult } from '../runtime/reference.js';
import { checkSelection, referenceRouting, type RoutingResult } from '../runtime/reference-routing.js';
import { storedRun } from '../runtime/stored-run.js';
import { randomPagedRun } from '../runtime/kv-rows.js';
import { createKernel, deviceLimits, getDevice } from '../runtime/webgpu.js';
import { pageStoredCaches } from '../runtime/kv-quant-pages.js';

export interface RunOptions extends RunSizes {
  readonly file: string;
  readonly entry?: string;
  readonly dtype: StorageDType;
  readonly params: Readonly<Record<string, number | boolean>>;
  readonly seed: number;
  readonly repeats: number;
  /** The WGSL engine; default: by adapter (coop on hardware, row on CPU adapters). */
  readonly wgslEngine?: 'row' | 'coop';
  /** Compile with the importance output and compare it with the reference's. */
  readonly importance?: ImportanceMode;
  /** Told as each phase starts (the CLI's progress spinner). */
  readonly onPhase?: (phase: RunPhase) => void;
}

/** The phases of a run, in order. */
export type RunPhase = 'device' | 'compile' | 'gpu' | 'reference' | 'compare';

/** Bytes of each buffer the run moved to and from the device. */
export interface RunBytes {
  readonly q: number;
  readonly k: number;
  readonly v: number;
  /** The program's own tensors (lookups, ids). */
  readonly tensors: number;
  readonly out: number;
  readonly lse: number;
  readonly indices: number;
  readonly total: number;
}

export interface RunReport {
  readonly name: string;
  readonly out: Agreement;
  readonly lse: Agreement | undefined;
  /** Present when run with `importance`. */
  readonly importance?: Agreement;
  readonly density: number;
  readonly tiles: { empty: number; full: number; partial: number };
  readonly compileMs: number;
  readonly pipelineMs: number;
  readonly gpuMs: number;
  /** The dense float64 reference on the CPU (and the routing oracle). */
  readonly referenceMs: number;
  readonly bytes: RunBytes;
  readonly tolerance: number;
  /** Routing kernels: the oracle's selection and how the kernel's indices compare with it. */
  readonly routing?: RoutingReport;
  /** Quantized caches: bytes per token (one row of one kv head, all its tensors). */
  readonly cacheBytesPerToken?: CacheBytesPerToken;
  /** Paged kernels (`cache paged N`): the cache layout the run used. */
  readonly cacheLayout?: string;
}

export interface CacheBytesPerToken {
  readonly k?: number;
  readonly v?: number;
  /** Both caches as the kernel reads them (a plain one at the kernel's dtype). */
  readonly total: number;
  /** Both caches unquantized, at the kernel's dtype. */
  readonly plain: number;
}

export interface RoutingReport {
  /** What an id is: a block, a chunk or (`select`) a key. */
  readonly unit: 'block' | 'chunk' | 'key';
  /** Selected ids / ids present, over (batch, head, query row) (LANGUAGE.md, Density). */
  readonly blockDensity: number;
  /** Attended (query, key) pairs / all pairs. */
  readonly pairDensity: number;
  /** 'exact': the oracle's ids; 'near-tie': a valid top-k within f32 rounding; else what is wrong. */
  readonly indices: 'exact' | 'near-tie' | string;
}

export async function runKernel(source: string, o: RunOptions): Promise<RunReport> {
  const phase = o.onPhase ?? (() => {});
  phase('device');
  const device = await deviceForRun();
  phase('compile');
  const t0 = performance.now();
  const { artifact, kernel, decl } = compile(source, {
    target: 'wgsl',
    file: o.file,
    ...(o.entry ? { entry: o.entry } : {}),
    headDim: o.D,
    dtype: o.dtype,
    limits: deviceLimits(device),
    ...(o.wgslEngine ? { wgslEngine: o.wgslEngine } : {}),
    ...(o.importance ? { importance: o.importance } : {}),
  });
  const t1 = performance.now();

  const rand = rng(o.seed);
  const sizes = { B: o.B, H: o.H, Hkv: o.Hkv, Nq: o.Nq, Nk: o.Nk };
  const known = new Set(kernel.params.map((p) => p.name));
  for (const name of Object.keys(o.params))
    if (!known.has(name)) {
      const hint = didYouMean(name, [...known]);
      throw new UsageError(
        `--param ${name}: ${kernel.name} has no scalar param \`${name}\`` +
          (hint ? ` (${hint})` : ` (params: ${[...known].join(', ') || 'none'})`),
      );
    }
  const params: Record<string, number | boolean> = {};
  for (const p of kernel.params) {
    const problem = p.name in o.params ? paramProblem(p.name, p.dtype, o.params[p.name]) : undefined;
    if (problem) throw new UsageError(`--${problem}`);
    const v = o.params[p.name] ?? declaredDefault(p);
    // Said before any GPU work, with the flag to add (the runtime's message names no flag).
    if (v === undefined)
      throw new UsageError(
        `--param ${p.name}=VALUE is needed: ${kernel.name}'s \`${p.name}\` (${p.dtype}) has no default`,
      );
    params[p.name] = v;
  }
  // Before any allocation: a size the device or the reference cannot hold is a one-line error.
  checkRunFits(artifact, { ...sizes, D: o.D }, params, device.limits);
  const gpuKernel = await createKernel(device, artifact);
  const t2 = performance.now();
  const tensors: Record<string, Int32Array | Float32Array> = {};
  for (const t of kernel.tensors) tensors[t.name] = randomTensor(t, tensorLength(t, sizes, params), rand);
  // A reused selection (`… from idx`): ids of the call's keys (or blocks), some −1 padding.
  const from = kernel.routing && routingFrom(kernel.routing);
  if (from) {
    const ids = Math.ceil(o.Nk / unitBlockSize(kernel.routing!));
    tensors[from.tensor] = Int32Array.from(tensors[from.tensor]!, () => Math.floor(rand() * (ids + 1)) - 1);
  }
  const q = randomNormal(o.B * o.H * o.Nq * o.D, rand);
  const k = randomNormal(o.B * o.Hkv * o.Nk * o.D, rand);
  const v = randomNormal(o.B * o.Hkv * o.Nk * o.D, rand);

  // f16 kernels take f16 bits; the reference sees the same rounded values.
  const store = (x: Float32Array): Float32Array | Uint16Array => (o.dtype === 'f16' ? toF16(x) : x);
  if (o.dtype === 'f16') for (const x of [q, k, v]) x.set(fromF16(toF16(x)));
  // Quantized caches (`store`): the kernel binds them; the reference reads the values they hold.
  const stored = storedRun(kernel.formats, { ...sizes, D: o.D, Dv: o.D }, rand, tensors);
  if (stored.values.k) k.set(stored.values.k);
  if (stored.values.v) v.set(stored.values.v);
  // A paged kernel reads K/V from a pool of pages through a shuffled block table.
  const P = kernel.formats.paged?.pageSize;
  const paged =
    P === undefined ? undefined : randomPagedRun({ k, v }, { ...sizes, D: o.D, Dv: o.D }, P, rand);
  const inputs = {
    q: store(q),
    k: store(paged ? paged.k : k),
    v: store(paged ? paged.v : v),
    ...sizes,
    tensors,
    params,
    // A paged quantized cache: its pools through the same block table (kv-quant-pages.ts).
    caches: paged
      ? pageStoredCaches(kernel.formats, stored.caches, { ...sizes, D: o.D, Dv: o.D }, paged.pages)
      : stored.caches,
    ...(paged ? { kvCache: paged.kvCache } : {}),
  };
  phase('gpu');
  let result = await gpuKernel.run(inputs);
  let best = result.gpuMs ?? Infinity;
  for (let i = 1; i < o.repeats; i++) {
    const r = await gpuKernel.run(inputs);
    best = Math.min(best, r.gpuMs ?? Infinity);
    result = r;
  }
  gpuKernel.destroy();

  phase('reference');
  const t3 = performance.now();
  const envTensors = Object.fromEntries(
    kernel.tensors.map((t) => [t.name, { data: tensors[t.name]!, shape: tensorShape(t, sizes, params) }]),
  );
  const sizeVars = { ...sizes, D: o.D };
  const pred = declPredicates(decl.decl, { params, tensors: envTensors, sizes: sizeVars });
  const inp: RefInputs = { q, k, v, ...sizes, Hq: o.H, D: o.D, Dv: o.D };
  const spec = declRouting(decl.decl, { params, tensors: envTensors, sizes: sizeVars });
  let ref: RefResult;
  let routing: RoutingReport | undefined;
  if (spec === undefined) ref = referenceAttention(inp, pred);
  else {
    const oracle = referenceRouting(inp, spec, pred.mask);
    const verdict = judgeIndices(oracle, result.indices);
    // At an f32 near-tie the kernel may keep another valid top-k: compare attention on its own.
    const mask =
      verdict === 'near-tie' && result.indices
        ? referenceRouting(inp, { ...spec, source: fromIndices(result.indices, oracle) }, pred.mask).mask
        : oracle.mask;
    ref = referenceAttention(inp, { mask, score: pred.score });
    const unit = spec.unit.kind === 'blocks' ? 'block' : spec.unit.kind === 'chunks' ? 'chunk' : 'key';
    routing = { unit, blockDensity: oracle.density, pairDensity: oracle.pairDensity, indices: verdict };
  }
  const t4 = performance.now();
  phase('compare');
  let allowed = 0;
  for (const m of ref.mask) allowed += m;
  const tiles = tileCounts(kernel, {
    b: 0,
    h: 0,
    Nq: o.Nq,
    Nk: o.Nk,
    qOffset: o.Nk - o.Nq,
    kOffset: 0,
    env: { params, tensors: envTensors, vars: { ...sizeVars } },
  });
  return {
    name: kernel.name,
    out: compareArrays(result.out, ref.out, ref.outScale),
    lse: result.lse ? compareArrays(result.lse, ref.lse, 1) : undefined,
    ...(kernel.outputs.importance
      ? { importance: importanceAgreement(result.importance, ref, o, kernel.outputs.importance) }
      : {}),
    density: allowed / ref.mask.length,
    tiles,
    compileMs: t1 - t0,
    pipelineMs: t2 - t1,
    gpuMs: best,
    referenceMs: t4 - t3,
    bytes: runBytes(inputs, result, o.dtype === 'f16' ? 2 : 4, stored.bytes),
    tolerance: o.dtype === 'f32' ? 1e-5 : 5e-3,
    ...(routing ? { routing } : {}),
    ...(paged ? { cacheLayout: paged.description } : {}),
    ...(stored.bytes.k !== undefined || stored.bytes.v !== undefined
      ? {
          cacheBytesPerToken: bytesPerToken(
            stored.bytes,
            o.B * o.Hkv * o.Nk,
            o.D * (o.dtype === 'f16' ? 2 : 4),
          ),
        }
      : {}),
  };
}

/** Bytes per cached token row of the quantized caches, and what plain rows of `plainRow` bytes take. */
function bytesPerToken(
  cache: { k?: number; v?: number },
  rows: number,
  plainRow: number,
): CacheBytesPerToken {
  const per = (b: number | undefined) => (b === undefined ? undefined : rows > 0 ? b / rows : 0);
  const k = per(cache.k);
  const v = per(cache.v);
  return {
    ...(k !== undefined ? { k } : {}),
    ...(v !== undefined ? { v } : {}),
    total: (k ?? plainRow) + (v ?? plainRow),
    plain: 2 * plainRow,
  };
}

function runBytes(
  i: { q: ArrayBufferView; k: ArrayBufferView; v: ArrayBufferView; tensors: Record<string, ArrayBufferView> },
  r: { out: Float32Array; lse?: ArrayBufferView | undefined; indices?: ArrayBufferView | undefined },
  outElementBytes: number,
  /** Quantized caches: their bytes replace k's / v's. */
  cache: { k?: number; v?: number },
): RunBytes {
  const tensors = Object.values(i.tensors).reduce((n, t) => n + t.byteLength, 0);
  const b = {
    q: i.q.byteLength,
    k: cache.k ?? i.k.byteLength,
    v: cache.v ?? i.v.byteLength,
    tensors,
    out: r.out.length * outElementBytes, // read back as f32, stored in the kernel's dtype
    lse: r.lse?.byteLength ?? 0,
    indices: r.indices?.byteLength ?? 0,
  };
  return { ...b, total: Object.values(b).reduce((n, x) => n + x, 0) };
}

const fromIndices = (indices: Int32Array, r: RoutingResult) =>
  ({ kind: 'from', indices, groups: r.G, capacity: r.K }) as const;

/** The kernel's index output against the oracle's (DESIGN §2: near-ties may differ validly). */
function judgeIndices(r: RoutingResult, got: Int32Array | undefined): RoutingReport['indices'] {
  if (!got) return 'the kernel wrote no indices';
  if (got.length !== r.indices.length) return `${got.length} indices, expected ${r.indices.length}`;
  if (got.every((x, i) => x === r.indices[i])) return 'exact';
  for (let b = 0; b < r.B; b++)
    for (let g = 0; g < r.G; g++)
      for (let i = 0; i < r.Nq; i++) {
        const at = ((b * r.G + g) * r.Nq + i) * r.K;
        const why = checkSelection(r, b, g, i, got.subarray(at, at + r.K), 1e-4);
        if (why) return `row (b ${b}, group ${g}, query ${i}): ${why}`;
      }
  return 'near-tie';
}

/** The WebGPU device; no adapter is the machine's state, not a bug: a one-line UsageError. */
async function deviceForRun(): Promise<GPUDevice> {
  try {
    return await getDevice();
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

/** The kernel's importance output against the reference's (a missing output never agrees). */
function importanceAgreement(
  got: Float32Array | undefined,
  ref: RefResult,
  o: RunOptions,
  mode: ImportanceMode,
): Agreement {
  if (!got) return { maxAbsError: Infinity, relError: Infinity, nanCount: 0 };
  return compareArrays(got, referenceImportance(ref, { B: o.B, Hq: o.H, Nq: o.Nq, Nk: o.Nk }, mode));
}
