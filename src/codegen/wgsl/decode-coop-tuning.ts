// Knobs of the coop decode module (decode-coop.ts). Every knob reaches the WGSL only through the
// constant block `tuningConstants` renders and through the launch manifest (`coopDecodeManifest`),
// so a module can be re-tuned after rendering (retuneCoopDecode): the benchmark sweeps them on a
// real GPU without a compile option per knob.
import type { Schedule } from '../../ir/kernel.js';

export interface CoopDecodeTuning {
  /** Invocations per split workgroup (a multiple of `lanes`). */
  readonly threads: number;
  /** Invocations that share one key row, each owning the vec4 columns lane, lane + lanes, … (a power of 2). */
  readonly lanes: number;
  /** Keys each lane group loads per step (K and V of all of them are in flight together). */
  readonly chunk: number;
  /** Packed rows (query heads of the GQA group × query rows) per workgroup, at most 16. */
  readonly rows: number;
  /** Keys per KV split (a multiple of threads / lanes · chunk). */
  readonly splitKeys: number;
  /**
   * 1: each lane loads the next step's K and V into registers before computing this step (two
   * steps of loads in flight, twice the K/V registers); 0: load, then compute. Absent = 0.
   */
  readonly prefetch?: number;
  /**
   * vec4 output columns per merge workgroup: the wide one-pass merge (decode-coop-merge-wide.ts),
   * a row's columns spread over Dv / 4 / mergeCols workgroups. Absent = the default merge.
   */
  readonly mergeCols?: number;
  /** Invocations per wide-merge workgroup (a multiple of mergeCols, up to 1024); absent = 256. */
  readonly mergeThreads?: number;
}

/** Knobs with the wide merge: what a compile renders (defaultCoopDecodeTuning). */
export type WideMergeTuning = CoopDecodeTuning & { readonly mergeCols: number };

export const hasWideMerge = (t: CoopDecodeTuning): t is WideMergeTuning => t.mergeCols !== undefined;

/** Schedule.coopDecodeCodes: how a quantized cache's codes are loaded (absent = 'wide16'). */
export type CoopDecodeCodes = NonNullable<Schedule['coopDecodeCodes']>;

/**
 * What a coop decode module was rendered with, recorded on it (DecodeVariant.coop) so that callers
 * re-tune from the module itself instead of re-deriving its knobs: the default lanes depend on the
 * cache formats under 'wide16' (decode-coop.ts, requestTuning), which a Schedule alone does not tell.
 */
export interface CoopDecodeRendering {
  /** The knobs of the module as it stands (retuneCoopDecode records the new ones). */
  readonly tuning: CoopDecodeTuning;
  /** Schedule.coopDecodeCodes in effect. */
  readonly codes: CoopDecodeCodes;
  /**
   * The lanes the wide code loads' runs were made for (each lane's run length is compiled into
   * the module, dequant-run.ts), so the only lanes a re-tune may take; absent where every cache
   * loads a word per vec4 of channels (any lanes).
   */
  readonly codeLanes?: number;
}

/** Invocations of a wide-merge workgroup when tuning.mergeThreads is absent. */
export const WIDE_MERGE_THREADS = 256;

/** Packed rows per workgroup are capped here: their tile classes are packed 2 bits each in a u32. */
export const MAX_DECODE_ROWS = 16;
/** Lanes per key row are capped at 32, the subgroup size of NVIDIA and the common AMD/Apple one. */
const MAX_LANES = 32;
/** The default lanes per key row (see defaultCoopDecodeTuning). */
const DEFAULT_LANES = 8;

const nextPow2 = (n: number): number => 2 ** Math.ceil(Math.log2(Math.max(n, 1)));

/**
 * The default knobs for a coop schedule before the code loads are chosen: a module over a quantized
 * cache may take fewer lanes ('wide16'), so a rendered module's knobs are read from the module
 * (`DecodeVariant.coop.tuning`, decode-coop.ts renderedCoopDecodeTuning), not from here. From the H200 sweeps (Dawn/Vulkan, D = 128, Nk = 128K,
 * H 32 / Hkv 8, bench/results/wgsl-decode-*h200-2026-12-03.*): 8 lanes per key row (each lane 4
 * vec4 columns at D = 128: fewer shuffles, more loads in flight per lane) at 315 GB/s beat 16
 * lanes (260) and 32 (213); 2 keys per lane group per step; 128 invocations; 4 packed rows (one
 * query row of a 4:1 GQA group) and splits of 256 keys (Nk = 128K over 8 kv heads: 4096
 * workgroups). Round 7 (2026-12-04, bench/wgsl/round7.sh): 64 invocations a workgroup and the wide
 * one-pass merge (8 vec4 columns an invocation) read 2,150 GB/s at 128K and 1,783 at 32K against
 * 1,813 / 1,552 for 128 invocations and the narrow merge (1.19x / 1.15x); 1024-key splits were as
 * fast at these lengths (2,130 / 1,826) but leave short caches few workgroups, so splits stay 256.
 */
export function defaultCoopDecodeTuning(s: Schedule): WideMergeTuning {
  const lanes = Math.min(DEFAULT_LANES, nextPow2(Math.ceil(Math.max(s.headDim, s.valueDim) / 4)));
  return { threads: 64, lanes, chunk: 2, rows: 4, splitKeys: 256, mergeCols: 8 };
}

/** Why `t` cannot be rendered (undefined when it can); names the offending knob. */
export function coopDecodeTuningProblem(t: CoopDecodeTuning): string | undefined {
  const positive = (['threads', 'lanes', 'chunk', 'rows', 'splitKeys'] as const).find(
    (k) => !Number.isSafeInteger(t[k]) || t[k] < 1,
  );
  if (positive) return `decode ${positive}: expected a positive integer, got ${String(t[positive])}`;
  if (t.lanes !== nextPow2(t.lanes) || t.lanes > MAX_LANES) {
    return `decode lanes: expected a power of 2 up to ${MAX_LANES}, got ${t.lanes}`;
  }
  if (t.threads % t.lanes !== 0 || t.threads > 1024) {
    return `decode threads: expected a multiple of lanes (${t.lanes}) up to 1024, got ${t.threads}`;
  }
  if (t.prefetch !== undefined && t.prefetch !== 0 && t.prefetch !== 1) {
    return `decode prefetch: expected 0 or 1, got ${String(t.prefetch)}`;
  }
  const merge = wideMergeProblem(t);
  if (merge) return merge;
  if (t.rows > MAX_DECODE_ROWS) return `decode rows: expected at most ${MAX_DECODE_ROWS}, got ${t.rows}`;
  const step = (t.threads / t.lanes) * t.chunk;
  if (t.splitKeys % step !== 0) {
    return `decode splitKeys: expected a multiple of threads / lanes · chunk = ${step}, got ${t.splitKeys}`;
  }
  return undefined;
}

function wideMergeProblem(t: CoopDecodeTuning): string | undefined {
  const { mergeCols: cols, mergeThreads: threads } = t;
  if (cols === undefined) {
    return threads === undefined ? undefined : 'decode mergeThreads: only with mergeCols (the wide merge)';
  }
  if (!Number.isSafeInteger(cols) || cols < 1 || cols > 256) {
    return `decode mergeCols: expected an integer from 1 to 256, got ${String(cols)}`;
  }
  const n = threads ?? WIDE_MERGE_THREADS;
  if (!Number.isSafeInteger(n) || n < cols || n % cols !== 0 || n > 1024) {
    return `decode mergeThreads: expected a multiple of mergeCols (${cols}) up to 1024, got ${String(n)}`;
  }
  return undefined;
}

export function checkCoopDecodeTuning(t: CoopDecodeTuning): void {
  const problem = coopDecodeTuningProblem(t);
  if (problem) throw new Error(problem);
}

export const TUNING_BEGIN = '// decode tuning (retuneCoopDecode replaces this block):';
const TUNING_END = '// end of decode tuning';

/** The knobs as WGSL constants, between markers that retuneCoopDecode finds. */
export function tuningConstants(t: CoopDecodeTuning): string {
  return [
    TUNING_BEGIN,
    `const DC_THREADS: u32 = ${t.threads}u; // invocations per split workgroup`,
    `const DC_LANES: u32 = ${t.lanes}u; // invocations per key row`,
    `const DC_CHUNK: u32 = ${t.chunk}u; // keys per lane group per step`,
    `const DC_ROWS: u32 = ${t.rows}u; // packed rows per workgroup`,
    `const DC_SPLIT_KEYS: u32 = ${t.splitKeys}u; // keys per split`,
    `const DC_PREFETCH: bool = ${t.prefetch === 1}; // next step's K/V loaded before this step computes`,
    TUNING_END,
  ].join('\n');
}

/** The tuning block of rendered code (throws when it has none). */
export function tuningBlock(code: string): string {
  const begin = code.indexOf(TUNING_BEGIN);
  const end = code.indexOf(TUNING_END, begin);
  if (begin < 0 || end < 0) throw new Error('retuneCoopDecode: the module has no decode tuning block');
  return code.slice(begin, end + TUNING_END.length);
}
