// Geometry of the cooperative WGSL engine (coop.ts): how a workgroup's invocations split a query
// tile, and how much workgroup memory that takes. Kept apart from the renderer so the schedule
// pass (footprint) and the device check (limits.ts) agree with the code without rendering it.
import type { Schedule } from '../../ir/kernel.js';

/**
 * Invocations that share one query row. Four, so that the row max can be reduced with
 * subgroupShuffleXor(1) and (2): valid for every subgroup size WebGPU allows (4..128).
 */
export const COOP_LANES = 4;

export interface CoopGeometry {
  /** Query rows each invocation owns (its rows of S and of the output). */
  readonly rowsPerThread: number;
  /** Score columns of a K tile each invocation owns (keys lane, lane+4, …). */
  readonly scoreCols: number;
  /** vec4 columns of the output each invocation owns (vec4 columns lane, lane+4, …). */
  readonly outVec4s: number;
  /** Row strides of the staged tiles, in vec4 (Q, K/V) and f32 (P); padded against bank conflicts. */
  readonly qStride: number;
  readonly kvStride: number;
  readonly pStride: number;
  /** Whether the row max is reduced through subgroup shuffles (else through workgroup memory). */
  readonly subgroups: boolean;
}

export const isCoop = (s: Schedule): boolean => s.wgslEngine === 'coop';

export function coopGeometry(s: Schedule): CoopGeometry {
  const d4 = Math.ceil(s.headDim / 4);
  const dv4 = Math.ceil(s.valueDim / 4);
  const outVec4s = Math.ceil(dv4 / COOP_LANES);
  return {
    rowsPerThread: (s.blockQ * COOP_LANES) / s.threads,
    scoreCols: s.blockK / COOP_LANES,
    outVec4s,
    qStride: d4 + 1,
    // V rows are read up to vec4 column 4·outVec4s − 1 (lanes past Dv/4 read padding, never stored).
    kvStride: Math.max(d4, COOP_LANES * outVec4s) + 1,
    pStride: s.blockK + 1,
    subgroups: s.subgroups === true,
  };
}

/**
 * Workgroup memory of the coop attention entry point: the Q tile, one K-or-V tile (K and V take
 * turns in the same buffer), the probabilities P, the row-max scratch (no subgroups), the rows'
 * NaN flags and the tile class words.
 */
export function coopWorkgroupBytes(s: Schedule): number {
  const g = coopGeometry(s);
  const red = g.subgroups ? 0 : s.blockQ * COOP_LANES;
  const flags = s.blockQ + 2; // co_bad (a word per row) and co_cls (two words)
  return 16 * (s.blockQ * g.qStride + s.blockK * g.kvStride) + 4 * (s.blockQ * g.pStride + red + flags);
}

/** Why `s` cannot run on the coop engine (undefined when it can), device limits aside. */
export function coopScheduleProblem(s: Schedule): string | undefined {
  if (s.headDim % 4 !== 0 || s.valueDim % 4 !== 0) {
    return 'the coop engine loads vec4s: head dims must be multiples of 4';
  }
  if (s.blockK % COOP_LANES !== 0) return `the coop engine needs blockK to be a multiple of ${COOP_LANES}`;
  if (s.stages !== 1) return 'the coop engine stages one K/V tile at a time: stages must be 1';
  const rows = (s.blockQ * COOP_LANES) / s.threads;
  if (!Number.isInteger(rows) || rows < 1) {
    return `the coop engine gives each query row ${COOP_LANES} invocations: threads must divide ${COOP_LANES}·blockQ`;
  }
  return undefined;
}
