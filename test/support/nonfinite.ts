// Shared by the non-finite tests (docs/LANGUAGE.md "Non-finite values") of every backend: inputs
// with NaN/Inf planted at chosen q/k/v elements, and the check of a kernel's out/lse against the
// reference under the contract (NaN exactly where the reference has it, except where the
// reference's outNaNAllowed accepts one; finite values within `tol`).
import { expect } from 'vitest';
import { compareArrays } from '../../src/runtime/compare.js';
import { rng } from '../../src/runtime/inputs.js';
import type { RefResult } from '../../src/runtime/reference.js';

export interface NfShape {
  readonly B: number;
  readonly H: number;
  readonly Hkv: number;
  readonly Nq: number;
  readonly Nk: number;
  readonly D: number;
  readonly Dv: number;
}

/** One planted value: tensor, batch, head (kv head for k and v), row, dim. */
export type Plant = readonly ['q' | 'k' | 'v', number, number, number, number, number];

export interface NfInputs {
  readonly q: Float32Array;
  readonly k: Float32Array;
  readonly v: Float32Array;
}

/** Multiples of 1/64 in [-1, 1] (exact in f16 and bf16), with `plants` written over them. */
export function plantedInputs(s: NfShape, seed: number, plants: readonly Plant[]): NfInputs {
  const r = rng(seed);
  const fill = (n: number): Float32Array =>
    Float32Array.from({ length: n }, () => (Math.floor(r() * 129) - 64) / 64);
  const t = {
    q: fill(s.B * s.H * s.Nq * s.D),
    k: fill(s.B * s.Hkv * s.Nk * s.D),
    v: fill(s.B * s.Hkv * s.Nk * s.Dv),
  };
  for (const [name, b, h, row, d, value] of plants) {
    const heads = name === 'q' ? s.H : s.Hkv;
    const rows = name === 'q' ? s.Nq : s.Nk;
    const width = name === 'v' ? s.Dv : s.D;
    if (b >= s.B || h >= heads || row >= rows || d >= width)
      throw new Error(`plant ${name}[${b},${h},${row},${d}] out of shape`);
    t[name][((b * heads + h) * rows + row) * width + d] = value;
  }
  return t;
}

/**
 * out and lse of a kernel against the reference under the contract; also asserts the case
 * exercises it (the reference has a NaN row or column somewhere) unless `nanOptional`.
 */
export function expectContract(
  res: { readonly out: ArrayLike<number>; readonly lse?: ArrayLike<number> | undefined },
  ref: RefResult,
  where: string,
  tol: number,
  opts: { readonly nanOptional?: boolean } = {},
): void {
  if (!opts.nanOptional)
    expect([...ref.out].some(Number.isNaN), `the case plants no NaN the reference sees${where}`).toBe(true);
  const out = compareArrays(res.out, ref.out, ref.outScale, ref.outNaNAllowed);
  expect(out.nanCount, `out: NaN positions differ from the reference${where}: ${nanDiff(res.out, ref)}`).toBe(
    0,
  );
  expect(out.relError, `out${where}`).toBeLessThanOrEqual(tol);
  if (res.lse) {
    const lse = compareArrays(res.lse, ref.lse, 1);
    expect(
      lse.nanCount,
      `lse: NaN rows differ from the reference${where}: got ${Array.from(res.lse)}, want ${Array.from(ref.lse)}`,
    ).toBe(0);
    expect(lse.relError, `lse${where}`).toBeLessThanOrEqual(tol);
  }
}

/** The first few positions where the kernel's NaN-ness disagrees, for the failure message. */
function nanDiff(out: ArrayLike<number>, ref: RefResult): string {
  const bad: string[] = [];
  for (let i = 0; i < out.length && bad.length < 6; i++) {
    const a = Number.isNaN(out[i]!);
    const e = Number.isNaN(ref.out[i]!);
    if (a !== e && !(a && ref.outNaNAllowed[i])) bad.push(`[${i}] got ${out[i]} want ${ref.out[i]}`);
  }
  return bad.join(', ');
}
