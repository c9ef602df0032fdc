// Facts every backend shares, so the renderers differ only in syntax.
import { sharedStorage } from '../ir/formats.js';
import type { AttentionKernel, ParamSlot, Schedule, StorageDType, TensorSlot } from '../ir/kernel.js';
import type { ArtifactSchedule } from './artifact.js';

/**
 * RANGE_MIN/RANGE_MAX over more summary blocks than this return the full value range: sound (the
 * tile becomes partial) and a bounded amount of work per tile classification.
 */
export const rangeMaxBlocks = 64;

export const I32_MIN = -2147483648;

export const positiveInt = (x: number): boolean => Number.isInteger(x) && x >= 1;

/** A one-line description of a schedule and the storage it runs on, for error messages. */
export const describeSchedule = (s: Schedule, storage: StorageDType): string =>
  `schedule (blockQ=${s.blockQ}, blockK=${s.blockK}, threads=${s.threads}, D=${s.headDim}, Dv=${s.valueDim}, ${storage})`;

/** What is wrong with a schedule on any backend: every size a positive integer. */
export function scheduleShapeProblem(s: Schedule, storage: StorageDType): string | undefined {
  const keys = ['blockQ', 'blockK', 'threads', 'stages', 'headDim', 'valueDim', 'summaryBlock'] as const;
  for (const key of keys)
    if (!positiveInt(s[key]))
      return `${describeSchedule(s, storage)}: ${key} must be a positive integer, got ${s[key]}`;
  return undefined;
}

/**
 * The artifact's schedule record: the schedule with the one storage dtype of q, k, v and out
 * after the head dims, in the key order (and so the JSON and hash) it had when the dtype was a
 * schedule field — the runtime, emitted modules and manifests read it.
 */
export function artifactSchedule(k: AttentionKernel): ArtifactSchedule {
  const { headDim, valueDim, ...rest } = k.schedule;
  return Object.freeze({ headDim, valueDim, dtype: sharedStorage(k.formats), ...rest });
}

/**
 * The shortest decimal text of an f32 (0.1, not 0.10000000149…) that still names the same f32,
 * always with a '.' or exponent so C and WGSL read it as floating point. `v` must be finite.
 */
export function f32DecimalText(v: number): string {
  const x = Math.fround(v);
  let s = Math.fround(Number(String(v))) === x ? String(v) : String(x);
  if (!/[.eE]/.test(s)) s += '.0';
  return s;
}

/**
 * What a renderer context (CUDA's and WGSL's) takes from the kernel: its params and tensors by
 * name, and the positions per block of the summaries RANGE_MIN / RANGE_MAX read.
 */
export const kernelSlots = (
  k: AttentionKernel,
): {
  params: ReadonlyMap<string, ParamSlot>;
  tensors: ReadonlyMap<string, TensorSlot>;
  summaryBlock: number;
} => ({
  params: new Map(k.params.map((p) => [p.name, p])),
  tensors: new Map(k.tensors.map((t) => [t.name, t])),
  summaryBlock: k.schedule.summaryBlock,
});
