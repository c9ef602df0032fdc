// Facts every backend shares, so the renderers differ only in syntax.
import type { Schedule } from '../ir/kernel.js';

/**
 * RANGE_MIN/RANGE_MAX over more summary blocks than this return the full value range: sound (the
 * tile becomes partial) and a bounded amount of work per tile classification.
 */
export const rangeMaxBlocks = 64;

export const I32_MIN = -2147483648;

export const positiveInt = (x: number): boolean => Number.isInteger(x) && x >= 1;

/** A one-line description of a schedule for error messages. */
export const describeSchedule = (s: Schedule): string =>
  `schedule (blockQ=${s.blockQ}, blockK=${s.blockK}, threads=${s.threads}, D=${s.headDim}, Dv=${s.valueDim}, ${s.dtype})`;

/** What is wrong with a schedule on any backend: every size a positive integer. */
export function scheduleShapeProblem(s: Schedule): string | undefined {
  const keys = ['blockQ', 'blockK', 'threads', 'stages', 'headDim', 'valueDim', 'summaryBlock'] as const;
  for (const key of keys)
    if (!positiveInt(s[key]))
      return `${describeSchedule(s)}: ${key} must be a positive integer, got ${s[key]}`;
  return undefined;
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
