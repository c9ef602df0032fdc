// quantize → dequantize over random formats × granularities × shapes (ragged groups: Nk and D
// not multiples of the group). The kernel-facing dequantizer (src/quant, bit operations) and the
// oracle's (src/runtime/reference-quant.ts, tables and arithmetic) must agree bit for bit, and
// the values must be within the format's error bound (docs/LANGUAGE.md, "K/V storage formats").
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { dequantize } from '../../src/quant/dequantize.js';
import { elemBits, floatLayout, floatMax, intCodeRange } from '../../src/quant/elem.js';
import { readFloat } from '../../src/quant/floats.js';
import type { QuantFormat } from '../../src/quant/format.js';
import { recentCount, scaleIndex, type CacheSizes, type QuantCache } from '../../src/quant/layout.js';
import { salientFlags, type SalientMarks } from '../../src/quant/marks.js';
import { quantize } from '../../src/quant/quantize.js';
import { randomSalientMarks, rng } from '../../src/runtime/inputs.js';
import { referenceDequantize } from '../../src/runtime/reference-quant.js';
import { formatArb, sizesArb, valueArb } from './arbitrary.js';

const runs = process.env['CI'] ? { seed: 10, numRuns: 300 } : { numRuns: 300 };

const caseArb = fc
  .record({ f: formatArb, s: sizesArb, seed: fc.integer({ min: 0, max: 1e6 }) })
  .chain(({ f, s, seed }) =>
    fc
      .array(valueArb, { minLength: s.B * s.Hkv * s.Nk * s.D, maxLength: s.B * s.Hkv * s.Nk * s.D })
      .map((xs) => ({ f, s, seed, x: Float32Array.from(xs) })),
  );

function marksFor(f: QuantFormat, s: CacheSizes, seed: number): SalientMarks | undefined {
  if (f.kind !== 'int' || !f.salient) return undefined;
  return randomSalientMarks(f.salient.by, s, rng(seed), Math.max(1, Math.ceil(s.Nk / 3)), 0.3);
}

const bitsOf = (a: Float32Array): Uint32Array => new Uint32Array(a.buffer, a.byteOffset, a.length);

/** The most |x − dq| may be for element i (docs: "Error bounds"). */
function bound(f: QuantFormat, q: QuantCache, s: CacheSizes, i: number, x: number, wide: boolean): number {
  const c = i % s.D;
  const row = (i - c) / s.D;
  const t = row % s.Nk;
  const bh = (row - t) / s.Nk;
  const norm = q.norm ? readFloat(q.norm, bh * s.D + c) : 1;
  // Relative f32 rounding, and f32 subnormal inputs flushed to zero.
  const slack = Math.abs(x) * 2 ** -20 + 2 ** -126;
  if (t >= s.Nk - recentCount(f, s.Nk)) {
    const half = f.recent?.dtype === 'bf16' ? 2 ** -8 : 2 ** -11;
    return Math.abs(x) * half + 2 ** -25;
  }
  const scale =
    f.scale && q.scale
      ? readFloat(q.scale, scaleIndex(f.scale.per, s, Math.floor(bh / s.Hkv), bh % s.Hkv, t, c))
      : 1;
  if (f.kind === 'fp8') {
    const { mant, bias } = floatLayout(f.elem);
    const minSub = 2 ** (1 - bias - mant); // the smallest subnormal
    const y = Math.abs(x) / norm / scale;
    // Without a scale, values beyond the largest fp8 saturate to it.
    const saturated = f.scale ? 0 : Math.abs(x) - floatMax(f.elem);
    const rounding = norm * scale * Math.max(y * 2 ** -(mant + 1), minSub / 2) * (1 + 2 ** -20) + slack;
    return Math.max(rounding, saturated);
  }
  const elem = wide && f.salient ? f.salient.elem : f.elem;
  const qmax = intCodeRange(elemBits(elem), f.zero !== undefined).hi;
  // A zero point rounded to f16 moves the grid by up to half its ulp (≤ 2^-11 · qmax).
  const zeroSlack = f.zero === 'f16' ? 2 ** -11 * qmax : f.zero === 'f32' ? 2 ** -23 * qmax : 0;
  return norm * scale * (0.5 + zeroSlack) * (1 + 2 ** -18) + slack;
}

describe('quantize → dequantize', () => {
  it('the two dequantizers agree bit for bit, within the error bound', () => {
    fc.assert(
      fc.property(caseArb, ({ f, s, seed, x }) => {
        const marks = marksFor(f, s, seed);
        const q = quantize(f, x, s, marks);
        const flags = marks ? salientFlags(marks, s) : undefined;
        const kernel = dequantize(f, q, s, flags);
        const oracle = referenceDequantize(f, q, s, marks);
        expect(bitsOf(kernel)).toEqual(bitsOf(oracle));
        for (let i = 0; i < x.length; i++) {
          const row = Math.floor(i / s.D);
          const b = bound(f, q, s, i, x[i]!, flags?.[row] === 1);
          const err = Math.abs(x[i]! - kernel[i]!);
          if (!(err <= b)) throw new Error(`element ${i}: x ${x[i]} dq ${kernel[i]} err ${err} > ${b}`);
        }
      }),
      runs,
    );
  });

  it('fp8 scales keep every code finite (no saturation inside a group)', () => {
    fc.assert(
      fc.property(caseArb, ({ f, s, x }) => {
        if (f.kind !== 'fp8' || !f.scale) return;
        const q = quantize(f, x, s);
        const dq = dequantize(f, q, s);
        for (let i = 0; i < dq.length; i++) expect(Number.isFinite(dq[i]!)).toBe(true);
        expect(floatMax(f.elem)).toBeGreaterThan(0);
      }),
      { ...runs, numRuns: 100 },
    );
  });
});
