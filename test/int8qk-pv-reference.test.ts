// The reference of `pv e4m3 [smooth v]` (src/runtime/reference-int8qk-pv.ts) against the
// definition in docs/LANGUAGE.md "FP8 P·V": e4m3 rounding and codes by hand (checked against
// src/quant's independent encoder too), per-channel scales, the mean that smoothing adds back,
// and the accuracy of the definition against dense float64 attention (the ≥ 0.999 cosine issue
// 13 asks of the kernels holds for the definition itself, at 16-bit-like inputs).
import { describe, expect, it } from 'vitest';
import { fp8Encode } from '../src/quant/floats.js';
import { rng, randomNormal } from '../src/runtime/inputs.js';
import { referenceInt8Qk } from '../src/runtime/reference-int8qk.js';
import {
  e4m3Code,
  e4m3Round,
  quantizeE4m3Channels,
  referenceInt8QkPv,
} from '../src/runtime/reference-int8qk-pv.js';
import { referenceAttention, type RefInputs } from '../src/runtime/reference.js';

const causal = { mask: (_b: number, _h: number, q: number, k: number) => k <= q };

function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let [ab, aa, bb] = [0, 0, 0];
  for (let i = 0; i < a.length; i++) {
    const [x, y] = [a[i] as number, b[i] as number];
    ab += x * y;
    aa += x * x;
    bb += y * y;
  }
  return ab / Math.sqrt(aa * bb);
}

/** Random q/k/v; `vOffset` adds a shared per-channel offset to V (what `smooth v` removes). */
function randomInputs(seed: number, vOffset = 0): RefInputs {
  const [B, Hq, Hkv, Nq, Nk, D, Dv] = [1, 4, 2, 40, 72, 32, 16];
  const rand = rng(seed);
  const v = randomNormal(B * Hkv * Nk * Dv, rand);
  const offsets = randomNormal(Dv, rand, vOffset);
  for (let i = 0; i < v.length; i++) v[i] = (v[i] as number) + (offsets[i % Dv] as number);
  return {
    q: randomNormal(B * Hq * Nq * D, rand),
    k: randomNormal(B * Hkv * Nk * D, rand),
    v,
    ...{ B, Hq, Hkv, Nq, Nk, D, Dv },
  };
}

describe('e4m3 rounding', () => {
  it('rounds to nearest, ties to even, saturating, with subnormals', () => {
    // 1 + 1/16 is halfway between 1 and 1.125: even mantissa (1); 1 + 3/16: to 1.25.
    expect(
      [1.0625, 1.1875, 1.06, 448, 460, 1e9, -500, 2 ** -9, 2 ** -10, 1.5 * 2 ** -10, 0].map(e4m3Round),
    ).toEqual([1, 1.25, 1, 448, 448, 448, -448, 2 ** -9, 0, 2 ** -9, 0]);
    expect(e4m3Round(240 + 8)).toBe(256); // spacing 16 above 128: 248 is a tie, to even 256
    expect(e4m3Round(3 * 2 ** -9)).toBe(3 * 2 ** -9);
  });

  it('codes agree with src/quant/floats.ts (an independent encoder) on every value', () => {
    const r = rng(3);
    for (let i = 0; i < 4000; i++) {
      const x = Math.fround((r() - 0.5) * 2 ** (r() * 24 - 12));
      expect(e4m3Code(e4m3Round(x))).toBe(fp8Encode('e4m3', x));
    }
    expect(e4m3Code(448)).toBe(0x7e);
    expect(e4m3Code(-(2 ** -9))).toBe(0x81);
    expect(e4m3Code(1)).toBe(0x38);
  });
});

describe('per-channel V quantization', () => {
  it('one scale per (group, channel) = f32(max|v| / 448); the max codes to ±448', () => {
    const v = [1, -8, 0, 2, 0, 0, 3, 4]; // [1 group, 4 keys, 2 channels]
    const q = quantizeE4m3Channels(v, 1, 4, 2, false);
    expect(Array.from(q.scales)).toEqual([Math.fround(3 / 448), Math.fround(8 / 448)]);
    expect(q.codes[2 * 3]).toBe(0x7e); // v = 3, the channel's max
    expect(q.codes[1]).toBe(0xfe); // v = -8
    expect(Array.from(q.means)).toEqual([0, 0]);
    const zero = quantizeE4m3Channels([0, 0, 0, 0], 1, 2, 2, false);
    expect(Array.from(zero.scales)).toEqual([0, 0]);
    expect(Array.from(zero.codes)).toEqual([0, 0, 0, 0]);
  });

  it('smooth v: codes of V minus its channel mean, the mean kept', () => {
    const v = [10, 1, 12, 1, 14, 1]; // channel 0 mean 12, channel 1 constant
    const q = quantizeE4m3Channels(v, 1, 3, 2, true);
    expect(Array.from(q.means)).toEqual([12, 1]);
    expect(q.scales[1]).toBe(0);
    // ±2 are the channel's max: codes ∓448 (0xfe, 0x7e), values ±448 · f32(2 / 448) (not exactly 2).
    expect(Array.from(q.codes)).toEqual([0xfe, 0, 0, 0, 0x7e, 0]);
    const s0 = Math.fround(2 / 448);
    expect(Array.from(q.dequantized)).toEqual([-448 * s0, 0, 0, 0, 448 * s0, 0]);
  });
});

describe('referenceInt8QkPv', () => {
  const blocks = { blockQ: 16, blockK: 32, smoothK: true };

  it('is the definition: P8 · V8 by hand for one row of one key', () => {
    // One key: u = 1, P8 = 448, o = 448 · e4m3(v / sv) · sv / 448 / 1 = the quantized v.
    const inp: RefInputs = {
      q: [1, 0],
      k: [0.5, 1],
      v: [3, -0.7],
      B: 1,
      Hq: 1,
      Hkv: 1,
      Nq: 1,
      Nk: 1,
      D: 2,
      Dv: 2,
    };
    const r = referenceInt8QkPv(inp, {}, { ...blocks, smoothV: false });
    expect(Array.from(r.out)).toEqual(
      [3, -0.7 * 1].map(
        (x) => e4m3Round(Math.fround(x / Math.fround(Math.abs(x) / 448))) * Math.fround(Math.abs(x) / 448),
      ),
    );
    // Smoothed, one key is its own mean: V' = 0, scale 0, o = the mean exactly.
    const s = referenceInt8QkPv(inp, {}, { ...blocks, smoothV: true });
    expect(Array.from(s.out)).toEqual([3, -0.7]);
  });

  it('keeps the dense reference masks, lse and fully masked rows', () => {
    const inp = randomInputs(5);
    const none = { mask: (_b: number, _h: number, q: number, k: number) => q >= 60 && k <= q };
    const r = referenceInt8QkPv(inp, none, { ...blocks, smoothV: true });
    const q8 = referenceInt8Qk(inp, none, blocks);
    expect(Array.from(r.lse)).toEqual(Array.from(q8.lse));
    // Rows 0..27 (positions 32..59) see no key: 0, as in the dense reference.
    expect(Array.from(r.out.subarray(0, inp.Dv))).toEqual(Array.from(q8.out.subarray(0, inp.Dv)));
  });

  for (const smoothV of [false, true])
    it(`is close to float64 attention, and to qk int8 alone (smooth v: ${smoothV})`, () => {
      const inp = randomInputs(11, 4);
      const exact = referenceAttention(inp, causal).out;
      const q8 = referenceInt8Qk(inp, causal, blocks).out;
      const r = referenceInt8QkPv(inp, causal, { ...blocks, smoothV }).out;
      expect(cosine(r, exact)).toBeGreaterThan(0.999);
      expect(cosine(r, q8)).toBeGreaterThan(0.999);
      // The error is P·V's own: not the int8 scores' (compare with q8 rather than exact).
      expect(cosine(r, q8)).toBeLessThan(1 - 1e-9);
    });

  it('smooth v matters when V has a channel offset (the offset eats the e4m3 range)', () => {
    const inp = randomInputs(17, 20);
    const q8 = referenceInt8Qk(inp, causal, blocks).out;
    const err = (smoothV: boolean) => {
      const r = referenceInt8QkPv(inp, causal, { ...blocks, smoothV }).out;
      let e = 0;
      for (let i = 0; i < r.length; i++) e += ((r[i] as number) - (q8[i] as number)) ** 2;
      return e;
    };
    expect(err(true)).toBeLessThan(err(false) / 4);
  });
});
