// The exact pieces of the storage formats (docs/LANGUAGE.md, "K/V storage formats"): fp8 codes
// and their special values, encoding (nearest, ties to even, saturating), rounding of scales,
// packing order, saturation, all-zero groups, round half to even, and the layout's shapes.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { dequantize } from '../../src/quant/dequantize.js';
import { bf16Bits, bf16Value, fp8Decode, fp8Encode, readFloat, roundUpTo } from '../../src/quant/floats.js';
import { validateFormat, type QuantFormat } from '../../src/quant/format.js';
import { cacheBytes, cacheLayout, cacheTensors } from '../../src/quant/layout.js';
import { quantize, roundHalfEven } from '../../src/quant/quantize.js';
import { referenceDequantize } from '../../src/runtime/reference-quant.js';

const runs = process.env['CI'] ? { seed: 11, numRuns: 500 } : { numRuns: 500 };
const one = { B: 1, Hkv: 1 };

/** Decodes one fp8 code through a one-element cache with the oracle's table. */
function oracleFp8(elem: 'e4m3' | 'e5m2', code: number): number {
  const f: QuantFormat = { kind: 'fp8', elem };
  return referenceDequantize(f, { codes: Uint32Array.of(code) }, { ...one, Nk: 1, D: 1 })[0]!;
}

describe('fp8', () => {
  it.each(['e4m3', 'e5m2'] as const)('%s: bit decoding equals the oracle table for all 256 codes', (elem) => {
    for (let code = 0; code < 256; code++)
      expect(Object.is(fp8Decode(elem, code), oracleFp8(elem, code))).toBe(true);
  });

  it('special values', () => {
    expect(fp8Decode('e4m3', 0x7e)).toBe(448);
    expect(fp8Decode('e4m3', 0x7f)).toBeNaN();
    expect(fp8Decode('e4m3', 0xff)).toBeNaN();
    expect(fp8Decode('e4m3', 0x78)).toBe(256); // e = 15 is an ordinary exponent in e4m3
    expect(fp8Decode('e4m3', 0x01)).toBe(2 ** -9);
    expect(Object.is(fp8Decode('e4m3', 0x80), -0)).toBe(true);
    expect(fp8Decode('e5m2', 0x7b)).toBe(57344);
    expect(fp8Decode('e5m2', 0x7c)).toBe(Infinity);
    expect(fp8Decode('e5m2', 0xfc)).toBe(-Infinity);
    expect(fp8Decode('e5m2', 0x7d)).toBeNaN();
    expect(fp8Decode('e5m2', 0x01)).toBe(2 ** -16);
  });

  it('encoding saturates, keeps the sign of zero and maps NaN to 0x7f', () => {
    expect(fp8Encode('e4m3', 1e6)).toBe(0x7e);
    expect(fp8Encode('e4m3', -Infinity)).toBe(0xfe);
    expect(fp8Encode('e4m3', 464)).toBe(0x7e); // would round to the NaN pattern: saturates
    expect(fp8Encode('e5m2', Infinity)).toBe(0x7b);
    expect(fp8Encode('e5m2', 61440)).toBe(0x7b);
    expect(fp8Encode('e4m3', -0)).toBe(0x80);
    expect(fp8Encode('e4m3', NaN)).toBe(0x7f);
    expect(fp8Encode('e5m2', NaN)).toBe(0x7f);
    expect(fp8Encode('e4m3', 2 ** -10)).toBe(0); // half the smallest subnormal: tie to even (0)
    expect(fp8Encode('e4m3', 3 * 2 ** -10)).toBe(2); // 1.5 subnormal steps: tie to even (2)
    expect(fp8Encode('e4m3', 1.0625)).toBe(0x38); // between 1 and 1.125: tie to even (1)
    expect(fp8Encode('e4m3', 1.1875)).toBe(0x3a); // between 1.125 and 1.25: tie to even (1.25)
  });

  it.each(['e4m3', 'e5m2'] as const)(
    '%s: encoding picks the nearest finite code, ties to an even code',
    (elem) => {
      const finite = [...Array(256).keys()].filter((c) => Number.isFinite(fp8Decode(elem, c)));
      fc.assert(
        fc.property(fc.float({ noNaN: true, min: Math.fround(-70000), max: Math.fround(70000) }), (x) => {
          const got = fp8Encode(elem, x);
          const dist = (c: number): number => Math.abs(fp8Decode(elem, c) - x);
          const best = Math.min(...finite.map(dist));
          expect(dist(got)).toBe(best);
          const tied = finite.filter(
            (c) => dist(c) === best && Math.sign(fp8Decode(elem, c)) !== -Math.sign(x),
          );
          if (tied.length > 1 && fp8Decode(elem, got) !== 0) expect(got & 1).toBe(0);
        }),
        runs,
      );
    },
  );
});

describe('scalars', () => {
  it('bf16 rounds to nearest even', () => {
    expect(bf16Value(bf16Bits(1 + 2 ** -8))).toBe(1); // tie: even
    expect(bf16Value(bf16Bits(1 + 3 * 2 ** -8))).toBe(1 + 2 ** -6);
    expect(bf16Value(bf16Bits(NaN))).toBeNaN();
  });

  it('scales round up, at least the smallest scale, saturating', () => {
    expect(roundUpTo('f16', 1 + 2 ** -12)).toBe(1 + 2 ** -10);
    expect(roundUpTo('f16', 0)).toBe(2 ** -24);
    expect(roundUpTo('f16', 1e6)).toBe(65504);
    expect(roundUpTo('f32', 1 / 3)).toBeGreaterThanOrEqual(1 / 3);
    expect(roundUpTo('f32', 1e-40)).toBe(2 ** -126);
  });

  it('round half to even', () => {
    expect([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 2.4999998].map(roundHalfEven)).toEqual([0, 2, 2, 0, -2, -2, 2]);
  });
});

describe('quantize', () => {
  const s = { ...one, Nk: 1, D: 8 };
  const int8: QuantFormat = { kind: 'int', elem: 'int8', scale: { dtype: 'f32', per: { kind: 'tensor' } } };

  it('rounds codes half to even', () => {
    // absmax 127 gives scale 1, so the codes are the values rounded.
    const x = Float32Array.of(127, 0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 3.5);
    const q = quantize(int8, x, s);
    expect([...dequantize(int8, q, s)]).toEqual([127, 0, 2, 2, 0, -2, -2, 4]);
  });

  it('saturates when a scale cannot grow: codes clamp, they never wrap', () => {
    const f: QuantFormat = { kind: 'int', elem: 'int8', scale: { dtype: 'f16', per: { kind: 'tensor' } } };
    const x = Float32Array.of(1e8, -1e8, 0, 0, 0, 0, 0, 0);
    const q = quantize(f, x, s);
    expect(readFloat(q.scale!, 0)).toBe(65504);
    expect([...dequantize(f, q, s)].slice(0, 2)).toEqual([127 * 65504, -127 * 65504]);
  });

  it('an all-zero group has scale 1, zero point 0 and codes 0', () => {
    const f: QuantFormat = {
      ...int8,
      elem: 'int4',
      scale: { dtype: 'f16', per: { kind: 'token' } },
      zero: 'f16',
    };
    const q = quantize(f, new Float32Array(8), s);
    expect(readFloat(q.scale!, 0)).toBe(1);
    expect(readFloat(q.zero!, 0)).toBe(0);
    expect([...q.codes]).toEqual([0]);
    expect([...dequantize(f, q, s)]).toEqual(new Array(8).fill(0));
  });

  it('packs codes lowest bits first: channel c in bits (c mod n)·b of word c / n', () => {
    const f: QuantFormat = { kind: 'int', elem: 'int4', scale: { dtype: 'f32', per: { kind: 'tensor' } } };
    const x = Float32Array.of(1, 2, 3, 4, 5, 6, 7, -7, 1);
    const q = quantize(f, x, { ...one, Nk: 1, D: 9 });
    expect(q.codes[0]).toBe(0x97654321); // −7 is 0b1001 in 4-bit two's complement
    expect(q.codes[1]).toBe(0x1); // the second word holds channel 8; its unused bits are 0
  });

  it('refuses non-finite input and formats the checker would refuse, naming them', () => {
    expect(() => quantize(int8, Float32Array.of(1, NaN, 0, 0, 0, 0, 0, 0), s)).toThrow(/input\[1\] is NaN/);
    const bad: QuantFormat = {
      kind: 'int',
      elem: 'int4',
      scale: { dtype: 'f16', per: { kind: 'token', group: 4 } },
    };
    expect(() => validateFormat(bad)).toThrow(/group 4 splits the 32-bit words of int4/);
  });
});

describe('layout', () => {
  const s = { B: 2, Hkv: 3, Nk: 37, D: 20 };
  it('shapes per granularity, ragged groups rounded up', () => {
    const kivi: QuantFormat = {
      kind: 'int',
      elem: 'int2',
      scale: { dtype: 'f16', per: { kind: 'channel', group: 32 } },
      zero: 'f16',
      recent: { tokens: 16, dtype: 'f16' },
    };
    expect(cacheLayout(kivi, s)).toEqual([
      { name: 'codes', dtype: 'u32', shape: [2, 3, 37, 2] },
      { name: 'scale', dtype: 'f16', shape: [2, 3, 2, 20] },
      { name: 'zero', dtype: 'f16', shape: [2, 3, 2, 20] },
      { name: 'recent', dtype: 'f16', shape: [2, 3, 16, 20] },
    ]);
    const zip: QuantFormat = {
      kind: 'int',
      elem: 'int2',
      scale: { dtype: 'f32', per: { kind: 'token', group: 16 } },
      norm: 'f16',
      salient: { elem: 'int4', by: 'flags' },
    };
    expect(cacheLayout(zip, s).map((t) => [t.name, t.shape])).toEqual([
      ['codes', [2, 3, 37, 2]],
      ['codesHi', [2, 3, 37, 3]],
      ['scale', [2, 3, 37, 2]],
      ['norm', [2, 3, 20]],
    ]);
    const fp8: QuantFormat = { kind: 'fp8', elem: 'e5m2' };
    expect(cacheBytes(fp8, s)).toBe(2 * 3 * 37 * 5 * 4);
  });

  it('cacheTensors hands out the tensors in layout order and names a misshapen one', () => {
    const f: QuantFormat = {
      kind: 'int',
      elem: 'int4',
      scale: { dtype: 'f16', per: { kind: 'channel', group: 8 } },
      zero: 'f32',
      recent: { tokens: 3, dtype: 'bf16' },
    };
    const sizes = { B: 1, Hkv: 2, Nk: 11, D: 9 };
    const q = quantize(
      f,
      new Float32Array(2 * 11 * 9).map((_, i) => Math.sin(i)),
      sizes,
    );
    expect(cacheTensors(f, q, sizes).map((t) => [t.name, t.dtype, t.data.length])).toEqual([
      ['codes', 'u32', 2 * 11 * 2],
      ['scale', 'f16', 2 * 2 * 9],
      ['zero', 'f32', 2 * 2 * 9],
      ['recent', 'bf16', 2 * 3 * 9],
    ]);
    expect(() => cacheTensors(f, { ...q, zero: undefined }, sizes)).toThrow(/tensor 'zero' is missing/);
    expect(() => cacheTensors(f, q, { ...sizes, Nk: 12 })).toThrow(
      /tensor 'codes' is u32 × 44, expected u32 \[1, 2, 12, 2\]/,
    );
  });
});
