// How kernels are compared with the reference: the norm-wise relative error
// max|a − b| / max|b| over the positions where both are finite (a row of zeros in both is an
// exact match), plus a count of positions whose non-finite class disagrees, since a NaN must
// neither vanish inside a max nor match a finite value. `out` is compared with the reference's
// outScale as the floor (max Σ p·|v|, the size of the terms an output sums), lse with floor 1.
export interface Agreement {
  readonly maxAbsError: number;
  readonly relError: number;
  /**
   * Positions where exactly one side is NaN (and `nanAllowed` does not excuse it). Such a
   * position also makes maxAbsError and relError infinite, so a caller that reads only those
   * still fails.
   */
  readonly nanCount: number;
}

/**
 * `floor` bounds the denominator from below: for log quantities (lse) an error is absolute in
 * log space (relative in the softmax normaliser), so lse is compared with floor 1 — otherwise a
 * batch whose lse values all sit near 0 would turn a 1e-6 error into a large "relative" one.
 *
 * Non-finite values (docs/LANGUAGE.md "Non-finite values"): NaN matches NaN and ±Infinity
 * matches itself exactly; NaN against a number, or ±Infinity against anything else, is a
 * mismatch. `nanAllowed` (the reference's outNaNAllowed) marks positions where a NaN from the
 * kernel is accepted whatever the reference holds there.
 */
export function compareArrays(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  floor = 1e-30,
  nanAllowed?: ArrayLike<number>,
): Agreement {
  if (actual.length !== expected.length)
    throw new Error(`compare: length ${actual.length} does not match reference length ${expected.length}`);
  if (nanAllowed && nanAllowed.length !== expected.length)
    throw new Error(`compare: nanAllowed length ${nanAllowed.length} does not match ${expected.length}`);
  let maxAbs = 0;
  let maxRef = 0;
  let nanCount = 0;
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    const aNaN = Number.isNaN(a);
    const eNaN = Number.isNaN(e);
    // Equal values (−inf lse of an empty row on both sides, ±inf out) and NaN on both sides match.
    if (a === e || (aNaN && eNaN)) continue;
    if (aNaN && nanAllowed?.[i]) continue;
    if (aNaN || eNaN) {
      nanCount++;
      maxAbs = Infinity;
      continue;
    }
    if (Number.isFinite(e)) maxRef = Math.max(maxRef, Math.abs(e));
    maxAbs = Math.max(maxAbs, Math.abs(a - e));
  }
  const relError = maxAbs === 0 ? 0 : maxAbs / Math.max(maxRef, floor);
  return { maxAbsError: maxAbs, relError, nanCount };
}
