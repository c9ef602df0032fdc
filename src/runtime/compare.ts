// How kernels are compared with the reference: the norm-wise relative error
// max|a − b| / max|b| (a row of zeros in both is an exact match), plus a NaN check, since a NaN
// anywhere must fail rather than vanish inside a max.
export interface Agreement {
  readonly maxAbsError: number;
  readonly relError: number;
  readonly nanCount: number;
}

export function compareArrays(actual: ArrayLike<number>, expected: ArrayLike<number>): Agreement {
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
  const relError = maxAbs === 0 ? 0 : maxAbs / Math.max(maxRef, 1e-30);
  return { maxAbsError: maxAbs, relError, nanCount };
}
