// Geometry of the cooperative WGSL engine (coop.ts): how a workgroup's invocations split a query
// tile, and how much workgroup memory that takes. Kept apart from the renderer so the schedule
// pass (footprint) and the device check (limits.ts) agree with the code without rendering it.
import type { TensorFormats } from '../../ir/formats.js';
import type { Schedule } from '../../ir/kernel.js';

/**
 * Invocations that share one query row unless the schedule says otherwise (coopLanes). Four, so
 * that the row max can be reduced with subgroupShuffleXor(1) and (2): valid for every subgroup
 * size WebGPU allows (4..128). More lanes check the subgroup size at run time.
 */
export const COOP_LANES = 4;
/** The lane counts the coop engine renders (powers of two up to NVIDIA's subgroup size). */
export const COOP_LANE_CHOICES: readonly number[] = [4, 8, 16, 32];

/**
 * The coop engine's on/off tuning knobs (Schedule fields) and the tags benchmarks spell them with
 * (bench/wgsl/run.mjs's engine specs and its schedule column, in this order). A knob set here
 * pins the schedule: the schedule pass then keeps the portable list (schedule-rules.ts).
 */
export const COOP_FLAG_KNOBS = {
  coopSplitKv: 'kv2',
  coopPrefetch: 'pf',
  coopQGlobal: 'qg',
  coopDoubleKv: 'db',
  coopQDescending: 'qd',
  coopFma: 'fma',
  coopUnroll: 'ur',
  coopChunkSpan: 'sp',
  coopPShuffle: 'ps',
  coopHeadsInner: 'hi',
  coopSgHoist: 'sh',
} as const satisfies Partial<Record<keyof Schedule, string>>;

export interface CoopGeometry {
  /** Invocations per query row (a power of two). */
  readonly lanes: number;
  /** Query rows each invocation owns (its rows of S and of the output, consecutive). */
  readonly rowsPerThread: number;
  /** Score columns of a K tile each invocation owns (keys lane, lane + lanes, …). */
  readonly scoreCols: number;
  /** vec4 columns of the output each invocation owns (vec4 columns lane, lane + lanes, …). */
  readonly outVec4s: number;
  /** Row strides of the staged tiles, in vec4 (Q, K/V) and f32 (P); padded against bank conflicts. */
  readonly qStride: number;
  readonly kvStride: number;
  readonly pStride: number;
  /** Whether the row max is reduced through subgroup shuffles (else through workgroup memory). */
  readonly subgroups: boolean;
  /** Whether K and V have a buffer each (staged in one phase) instead of taking turns in one. */
  readonly splitKv: boolean;
  /** Whether the S loop reads Q from storage (no Q tile in workgroup memory). */
  readonly qGlobal: boolean;
  /** Whether the next tile's K and V are loaded into registers while this one is computed. */
  readonly prefetch: boolean;
  /** Whether the K/V tile buffers are doubled and taken in turn (schedule.coopDoubleKv). */
  readonly doubleKv: boolean;
  /** Whether workgroup x takes the query tiles last first (schedule.coopQDescending). */
  readonly qDescending: boolean;
  /** Whether S and P·V are written as explicit fma() chains (schedule.coopFma). */
  readonly fma: boolean;
  /** Whether the S and (float K/V) P·V loops have constant trip counts (schedule.coopUnroll). */
  readonly unroll: boolean;
  /** Whether a chunk's tile loop spans its tiles with work only (schedule.coopChunkSpan). */
  readonly chunkSpan: boolean;
  /** Whether P stays in registers and P·V shuffles it between a row's lanes (schedule.coopPShuffle). */
  readonly pShuffle: boolean;
  /** Whether launch order takes every head of a query tile first (schedule.coopHeadsInner). */
  readonly headsInner: boolean;
  /** Whether the subgroup check branches once around the tile loop (schedule.coopSgHoist). */
  readonly sgHoist: boolean;
  /** vec4 registers per invocation that hold a prefetched K (V) tile. */
  readonly kRegs: number;
  readonly vRegs: number;
}

export const isCoop = (s: Schedule): boolean => s.wgslEngine === 'coop';

export function coopGeometry(s: Schedule): CoopGeometry {
  const lanes = s.coopLanes ?? COOP_LANES;
  const d4 = Math.ceil(s.headDim / 4);
  const dv4 = Math.ceil(s.valueDim / 4);
  const outVec4s = Math.ceil(dv4 / lanes);
  return {
    lanes,
    rowsPerThread: (s.blockQ * lanes) / s.threads,
    scoreCols: s.blockK / lanes,
    outVec4s,
    // From 8 lanes up, the 8 invocations of a quarter warp (one 128-bit load phase) read one Q
    // row: a broadcast, so the padding is not needed.
    qStride: lanes >= 8 ? d4 : d4 + 1,
    // V rows are read up to vec4 column lanes·outVec4s − 1 (lanes past Dv/4 read padding, never stored).
    kvStride: Math.max(d4, lanes * outVec4s) + 1,
    pStride: s.blockK + 1,
    subgroups: s.subgroups === true,
    splitKv: s.coopSplitKv === true,
    qGlobal: s.coopQGlobal === true,
    prefetch: s.coopPrefetch === true,
    doubleKv: s.coopDoubleKv === true,
    qDescending: s.coopQDescending === true,
    fma: s.coopFma === true,
    unroll: s.coopUnroll === true,
    chunkSpan: s.coopChunkSpan === true,
    pShuffle: s.coopPShuffle === true,
    headsInner: s.coopHeadsInner === true,
    sgHoist: s.coopSgHoist === true,
    kRegs: Math.ceil((s.blockK * d4) / s.threads),
    vRegs: Math.ceil((s.blockK * dv4) / s.threads),
  };
}

/**
 * f32 words of co_p per query row: a row of P (padded), or under coopPShuffle only the lanes'
 * row maxima and one score column of P at a time (both where subgroups fail the run-time check).
 */
export const pWords = (g: CoopGeometry): number => (g.pShuffle ? g.lanes : g.pStride);

/**
 * Whether shuffles need a run-time check that each row's lanes lie in one subgroup: xor shuffles
 * over more than four lanes, and every shuffle of P (its source lane is computed from sg_id).
 */
export const sgCheck = (g: CoopGeometry): boolean => g.subgroups && (g.lanes > COOP_LANES || g.pShuffle);

/** Words of a chunk's tile classes packed 16 to a word (coopDoubleKv). */
export const classWords = (s: Schedule): number => Math.ceil(s.threads / 16);

/**
 * Workgroup memory of the coop attention entry point: the Q tile (unless read from storage), one K-or-V tile (or one of
 * each), the probabilities P (also the lanes' row maxima when they go through memory), the rows'
 * NaN flags, the tile classes of a chunk (a word per invocation) and the subgroup check word.
 */
export function coopWorkgroupBytes(s: Schedule): number {
  const g = coopGeometry(s);
  const kvTiles = (g.splitKv ? 2 : 1) * (g.doubleKv ? 2 : 1);
  // Words: row flags, tile classes, the subgroup check, packed classes, the chunk span (2 + 2).
  const words = s.blockQ + s.threads + 1 + (g.doubleKv ? classWords(s) : 0) + (g.chunkSpan ? 4 : 0);
  const qTile = g.qGlobal ? 0 : s.blockQ * g.qStride;
  return 16 * (qTile + kvTiles * s.blockK * g.kvStride) + 4 * (s.blockQ * pWords(g) + words);
}

/** Why `s` cannot run on the coop engine (undefined when it can), device limits aside. */
export function coopScheduleProblem(s: Schedule): string | undefined {
  if (s.headDim % 4 !== 0 || s.valueDim % 4 !== 0) {
    return 'the coop engine loads vec4s: head dims must be multiples of 4';
  }
  const lanes = s.coopLanes ?? COOP_LANES;
  if (!COOP_LANE_CHOICES.includes(lanes)) {
    return `coopLanes must be one of ${COOP_LANE_CHOICES.join(', ')}, got ${String(lanes)}`;
  }
  if (s.blockK % lanes !== 0) return `the coop engine needs blockK to be a multiple of ${lanes} (coopLanes)`;
  if (s.coopPShuffle === true && s.subgroups !== true) {
    return 'coopPShuffle passes P between lanes by subgroupShuffle: it needs subgroups';
  }
  if (s.stages !== 1) return 'the coop engine stages one K/V tile at a time: stages must be 1';
  const rows = (s.blockQ * lanes) / s.threads;
  if (!Number.isInteger(rows) || rows < 1) {
    return `the coop engine gives each query row ${lanes} invocations: threads must divide ${lanes}·blockQ`;
  }
  return undefined;
}

/**
 * f16 arithmetic (q, k and v stored as f16; the module then enables shader-f16): the staged Q, K
 * and V tiles and their prefetch registers hold vec4<f16> (half the workgroup memory and its
 * traffic). O += P·V takes f16 products of P (in [0, 1]) and V — bounded by |V|, so they cannot
 * overflow — summed in f32. S = Q·Kᵀ widens to f32 before multiplying: an f16 product of two f16
 * values overflows past 65504 (|q|, |k| ≈ 256) where the f32 score is finite, and a +inf score
 * would turn the row into NaN. Row maxima, exp, the row sums l and the rescale stay f32.
 */
export const coopF16 = (f: TensorFormats): boolean =>
  (['q', 'k', 'v'] as const).every((w) => f[w].kind === 'float' && f[w].dtype === 'f16');

/** `lines` with their vec4<f32> tile values as vec4<f16> under f16 arithmetic. */
export const halfTiles = (lines: readonly string[], f16: boolean): string[] =>
  f16
    ? lines.map((l) => l.replace(/vec4<f32>/g, 'vec4<f16>').replace(/vec4<f16>\(0\.0f\)/g, 'vec4<f16>(0.0h)'))
    : [...lines];
