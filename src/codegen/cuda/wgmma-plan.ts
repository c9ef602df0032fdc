// What the Hopper warpgroup-MMA core can run. A warpgroup (4 warps) owns 64 query rows; blockQ
// rows take blockQ/64 warpgroups, which share the K/V tiles in shared memory.
import { describeSchedule } from '../common.js';
import { tensorCoreProblem, tileBytes16 } from './tc-plan.js';
import { sharedStorage, type TensorFormats } from '../../ir/formats.js';
import type { Schedule } from '../../ir/kernel.js';

export interface WgmmaPlan {
  readonly warpgroups: number;
  readonly stages: number;
  /** Dynamic shared memory: Q, `stages` K and V tiles, plus 1 KiB to align them to 1024 bytes. */
  readonly smemBytes: number;
}

/** Dynamic shared memory of the wgmma core (2-byte storage, 1 KiB alignment slack). */
export function wgmmaSharedBytes(s: Schedule): number {
  return tileBytes16(s) + 1024;
}

/** Why the wgmma core cannot run `s` (undefined when it can). */
export function wgmmaScheduleProblem(
  s: Schedule,
  formats: TensorFormats,
  maxSharedBytes: number,
): string | undefined {
  const basic = tensorCoreProblem(s, formats, { engine: 'wgmma', headDims: [64, 128] });
  if (basic) return basic;
  const name = describeSchedule(s, sharedStorage(formats));
  if (s.blockQ % 64 !== 0 || s.blockQ > 128 || s.threads !== 2 * s.blockQ) {
    return `${name}: the wgmma engine needs blockQ in {64, 128} and threads = 2·blockQ (a warpgroup per 64 rows)`;
  }
  // wgmma n ≤ 256, and the S accumulators (blockK/2 registers) must leave room for O.
  if (s.blockK % 16 !== 0 || s.blockK > 128)
    return `${name}: the wgmma engine needs blockK in {16, 32, …, 128}`;
  if (s.stages > 2) return `${name}: the wgmma engine pipelines at most 2 stages`;
  const bytes = wgmmaSharedBytes(s);
  if (bytes > maxSharedBytes) {
    return `${name}: needs ${bytes} bytes of shared memory, the limit is ${maxSharedBytes}`;
  }
  return undefined;
}

export function wgmmaPlan(s: Schedule, formats: TensorFormats, maxSharedBytes: number): WgmmaPlan {
  const problem = wgmmaScheduleProblem(s, formats, maxSharedBytes);
  if (problem !== undefined) throw new Error(`CUDA backend: ${problem}`);
  return { warpgroups: s.blockQ / 64, stages: s.stages, smemBytes: wgmmaSharedBytes(s) };
}
