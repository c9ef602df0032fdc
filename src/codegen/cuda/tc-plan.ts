// What the tensor-core engines' plans (mma-plan.ts, wgmma-plan.ts, wgmma-ws-plan.ts) check and
// size alike: the schedule's shape, 16-bit storage, head dims from the engine's set, and the
// 16-bit Q tile and `stages` K and V tiles they keep in shared memory.
import { describeSchedule, scheduleShapeProblem } from '../common.js';
import { sharedStorage, type TensorFormats } from '../../ir/formats.js';
import type { Schedule } from '../../ir/kernel.js';

/** Bytes of the Q tile and `stages` K and V tiles in 2-byte storage. */
export const tileBytes16 = (s: Schedule): number =>
  2 * (s.blockQ * s.headDim + s.stages * s.blockK * (s.headDim + s.valueDim));

/** A tensor-core engine as its plan's first checks name it. */
export interface TensorCoreEngine {
  /** The engine's name in messages ('mma', 'wgmma', 'wgmma-ws'). */
  readonly engine: string;
  /** The head dims (headDim and valueDim) it runs. */
  readonly headDims: readonly number[];
  /** Appended to the f32 refusal (a hint where to go instead). */
  readonly f32Note?: string;
}

/**
 * The first checks of every tensor-core plan: the schedule's shape, f16/bf16 storage, head dims in
 * the engine's set (undefined when all pass).
 */
export function tensorCoreProblem(
  s: Schedule,
  formats: TensorFormats,
  { engine, headDims, f32Note = '' }: TensorCoreEngine,
): string | undefined {
  const storage = sharedStorage(formats);
  const name = describeSchedule(s, storage);
  const shape = scheduleShapeProblem(s, storage);
  if (shape) return shape;
  if (storage === 'f32') return `${name}: the ${engine} engine needs f16 or bf16 storage${f32Note}`;
  for (const [key, d] of [
    ['headDim', s.headDim],
    ['valueDim', s.valueDim],
  ] as const) {
    if (!headDims.includes(d))
      return `${name}: the ${engine} engine needs ${key} in {${headDims.join(', ')}}`;
  }
  return undefined;
}
