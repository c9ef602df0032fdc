// Each gradient's relative error against the float64 reference, as the backward checks record it:
// the floor is the largest reference magnitude (at least 1e-3 and the given scale); a NaN fails.
import { expect } from 'vitest';
import { compareArrays } from '../../src/runtime/compare.js';

export type GradCompare = (
  name: string,
  got: ArrayLike<number>,
  want: ArrayLike<number>,
  scale?: number,
) => void;

/** `cmp` records one gradient's error in `errors` under its name. */
export function gradientErrors(): { errors: Record<string, number>; cmp: GradCompare } {
  const errors: Record<string, number> = {};
  const cmp: GradCompare = (name, got, want, scale = 0) => {
    let floor = Math.max(1e-3, scale);
    for (let i = 0; i < want.length; i++) floor = Math.max(floor, Math.abs(want[i]!));
    const agreement = compareArrays(got, want, floor);
    expect(agreement.nanCount, `NaN in ${name}`).toBe(0);
    errors[name] = agreement.relError;
  };
  return { errors, cmp };
}
