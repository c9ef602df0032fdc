// How kernels are compared with the reference: the norm-wise relative error
// max|a − b| / max|b| (a row of zeros in both is an exact match), plus a NaN check, since a NaN
// anywhere must fail rather than vanish inside a max. `out` is compared with the reference's
// outScale as the floor (max Σ p·|v|, the size of the terms an output sums), lse with floor 1.
export interface Agreement {
  readonly maxAbsError: number;
  readonly relError: number;
  readonly nanCount: number;
}

/**
 * `floor` bounds the denominator from below: for log quantities (lse) an error is absolute in
 * log space (relative in the softmax normaliser), so lse is compared with floor 1 — otherwise a
 * batch whose lse values all sit near 0 would turn a 1e-6 error into a large "relative" one.
 */
export function compareArrays(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  floor = 1e-30,
): Agreement {
  if (actual.length !== expected.length)
    throw new Error(`compare: length ${actual.length} does not match reference length ${expected.length}`);
  let maxAbs = 0;
  let maxRef = 0;
  let nanCount = 0;
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    if (Number.isNaN(a) !== Number.isNaN(e)) nanCount++;
    // lse of an empty row is −inf on both sides: equal, not an infinite error.
    if (a === e) continue;
    const d = Math.abs(a - e);
    if (Number.isFinite(e)) maxRef = Math.max(maxRef, Math.abs(e));
    maxAbs = Math.max(maxAbs, Number.isNaN(d) ? Infinity : d);
  }
  const relError = maxAbs === 0 ? 0 : maxAbs / Math.max(maxRef, floor);
  return { maxAbsError: maxAbs, relError, nanCount };
}
