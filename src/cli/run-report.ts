// What `attnc run` reports (runKernel builds it; run-command.ts prints it): agreement with the
// reference, timings, tiles, routing and the bytes the run moved.
import type { Agreement } from '../runtime/compare.js';

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

/** Bytes per cached token row of the quantized caches, and what plain rows of `plainRow` bytes take. */
export function bytesPerToken(
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

export function runBytes(
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
