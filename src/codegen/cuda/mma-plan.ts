// What the tensor-core (mma.sync) core can run, and how it maps a Schedule onto warps. Kept apart
// from plan.ts (the SIMT mapping) so each engine states its own constraints; plan.ts dispatches.
import { describeSchedule } from '../common.js';
import { tensorCoreProblem, tileBytes16, type TensorCoreEngine } from './tc-plan.js';
import { sharedStorage, type TensorFormats } from '../../ir/formats.js';
import type { Schedule } from '../../ir/kernel.js';

/**
 * FlashAttention-2 layout: `warps` warps each own 16 query rows (one m16 row block of
 * mma.m16n8k16), all share the K/V tiles in shared memory. Q is staged once, K/V `stages` deep.
 */
export interface MmaPlan {
  readonly warps: number;
  readonly stages: number;
  /**
   * Whether a warp keeps its Q fragments in registers (D/4 per lane) for the whole K loop. At
   * D = 128 that would push the S, O and Q fragments past 255 registers, so Q is re-read from
   * shared memory each tile (as FlashAttention-2 does for wide heads).
   */
  readonly qInRegisters: boolean;
  /** Dynamic shared memory: the Q tile and `stages` K and V tiles, in the storage type. */
  readonly smemBytes: number;
}

/** Dynamic shared memory of the mma core (2-byte storage). */
export function mmaSharedBytes(s: Schedule): number {
  return tileBytes16(s);
}

const mmaEngine: TensorCoreEngine = {
  engine: 'mma',
  // 128-byte swizzle: a row must span at least 8 16-byte chunks; above 256 the accumulators spill.
  headDims: [64, 128, 192, 256],
  f32Note: " (use engine 'simt' for f32)",
};

/** Why the mma core cannot run `s` (undefined when it can). */
export function mmaScheduleProblem(
  s: Schedule,
  formats: TensorFormats,
  maxSharedBytes: number,
): string | undefined {
  const basic = tensorCoreProblem(s, formats, mmaEngine);
  if (basic) return basic;
  const name = describeSchedule(s, sharedStorage(formats));
  if (s.blockQ % 16 !== 0 || s.threads !== 2 * s.blockQ) {
    return `${name}: the mma engine needs blockQ a multiple of 16 and threads = 2·blockQ (a warp per 16 rows)`;
  }
  if (s.threads > 512) return `${name}: the mma engine runs at most 16 warps (blockQ ≤ 256)`;
  if (s.blockK % 16 !== 0 || s.blockK > 128)
    return `${name}: the mma engine needs blockK in {16, 32, …, 128}`;
  if (s.stages > 2) return `${name}: the mma engine pipelines at most 2 stages`;
  const bytes = mmaSharedBytes(s);
  if (bytes > maxSharedBytes) {
    return `${name}: needs ${bytes} bytes of shared memory (2·(blockQ·D + stages·blockK·(D+Dv))), the limit is ${maxSharedBytes}`;
  }
  return undefined;
}

export function mmaPlan(s: Schedule, formats: TensorFormats, maxSharedBytes: number): MmaPlan {
  const problem = mmaScheduleProblem(s, formats, maxSharedBytes);
  if (problem !== undefined) throw new Error(`CUDA backend: ${problem}`);
  return {
    warps: s.threads / 32,
    stages: s.stages,
    qInRegisters: s.headDim <= 64,
    smemBytes: mmaSharedBytes(s),
  };
}
