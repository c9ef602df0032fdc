// e3m4, the element type added by one record in src/quant/elem-registry.ts (3 exponent bits, 4
// mantissa bits, bias 3, no infinities, S.111.1111 NaN, saturating): its derived layout, all 256
// codes through src/quant's decoder against the oracle's table, quantize → dequantize round trips,
// round half to even and saturation against a brute-force nearest-value model, and the CUDA
// quantize kernel (CPU emulation) writing the same codes. The attention kernels over e3m4 caches
// are tested beside the other element types: cuda-dequant.test.ts (SIMT engine, nvcc),
// test/cuda/decode-quant-emu.test.ts (decode), wgsl-dequant.test.ts and wgsl-quantize.test.ts.
import { describe, expect, it } from 'vitest';
import { elemRegistry, storageElems } from '../../src/quant/elem-registry.js';
import { floatLayout, specialByteMask } from '../../src/quant/elem.js';
import { fp8Decode, fp8Encode } from '../../src/quant/floats.js';
import type { QuantFormat } from '../../src/quant/format.js';
import { dequantize } from '../../src/quant/dequantize.js';
import { quantize } from '../../src/quant/quantize.js';
import { referenceDequantize } from '../../src/runtime/reference-quant.js';
import { scratchDir } from '../cuda/support.js';
import { buildQuantizeEmulation, callBuffers, runQuantize } from './quantize-emu.js';

const e3m4: QuantFormat = { kind: 'fp8', elem: 'e3m4' };

/** A cache of one row holding every code 0..255 once (D = 256, 4 codes a word, lowest first). */
function allCodes(): Uint32Array {
  const words = new Uint32Array(64);
  for (let c = 0; c < 256; c++) words[c >> 2]! |= c << ((c & 3) * 8);
  return words;
}

const one = (D: number) => ({ B: 1, Hkv: 1, Nk: 1, D });

/** The oracle's value of every e3m4 code. */
const oracle = referenceDequantize(e3m4, { codes: allCodes() }, one(256));

/**
 * The code nearest to f32 `x` by brute force over the oracle's values: ties to the even code,
 * magnitudes at or past the largest finite value saturate, the sign (−0 included) is kept.
 */
function nearestCode(x: number): number {
  const sign = x < 0 || Object.is(x, -0) ? 0x80 : 0;
  const a = Math.abs(x);
  const maxCode = 0x7e;
  if (a >= oracle[maxCode]!) return sign | maxCode;
  let lo = 0;
  while (oracle[lo + 1]! <= a) lo++;
  const dLo = a - oracle[lo]!;
  const dHi = oracle[lo + 1]! - a;
  const code = dLo < dHi ? lo : dHi < dLo ? lo + 1 : lo % 2 === 0 ? lo : lo + 1;
  return sign | code;
}

/** Codes of a one-row cache, unpacked. */
function unpack(words: Uint32Array, D: number): number[] {
  return Array.from({ length: D }, (_, c) => (words[c >> 2]! >>> ((c & 3) * 8)) & 0xff);
}

/** Probe values: every finite code's value, midpoints (ties), near-midpoints and beyond the range. */
function probes(): Float32Array {
  const v: number[] = [];
  for (let c = 0; c < 0x7e; c++) {
    const a = oracle[c]!;
    const b = oracle[c + 1]!;
    const mid = Math.fround((a + b) / 2);
    v.push(a, mid, Math.fround(mid * (1 + 2 ** -20)), Math.fround(mid * (1 - 2 ** -20)));
  }
  v.push(30, 30.5, 31, 31.999, 32, 1e6, 3e38, 2 ** -7, 2 ** -8, 3 * 2 ** -8, 2 ** -30, 0, -0);
  return Float32Array.from([...v, ...v.map((x) => -x)]);
}

describe('e3m4: one registry record', () => {
  it('is a DSL element word and derives its layout from the record', () => {
    expect(storageElems).toContain('e3m4');
    expect(elemRegistry.e3m4).toEqual({
      kind: 'float',
      bits: 8,
      exponentBits: 3,
      mantissaBits: 4,
      bias: 3,
      specials: 'nan-only',
    });
    const f = floatLayout('e3m4');
    expect({ maxCode: f.maxCode, nanCode: f.nanCode, maxFinite: f.maxFinite }).toEqual({
      maxCode: 0x7e,
      nanCode: 0x7f,
      maxFinite: 30,
    });
    expect(specialByteMask(f)).toBe('0x7f7f7f7fu');
    // The other float elements derive the OCP values.
    expect([floatLayout('e4m3').maxFinite, floatLayout('e5m2').maxFinite]).toEqual([448, 57344]);
    expect([floatLayout('e4m3').maxCode, floatLayout('e5m2').maxCode]).toEqual([0x7e, 0x7b]);
    expect(specialByteMask(floatLayout('e5m2'))).toBe('0x7c7c7c7cu');
  });

  it('decodes all 256 codes as the oracle does: subnormals, ±0, two NaNs, no infinities', () => {
    const decoded = Float32Array.from({ length: 256 }, (_, c) => fp8Decode('e3m4', c));
    expect(Array.from(decoded)).toEqual(Array.from(oracle)); // toEqual: NaN equals NaN, −0 ≠ +0
    expect(Array.from(dequantize(e3m4, { codes: allCodes() }, one(256)))).toEqual(Array.from(oracle));
    expect([oracle[1], oracle[0x10], oracle[0x7e], oracle[0x80]]).toEqual([2 ** -6, 0.25, 30, -0]);
    expect([0x7f, 0xff].every((c) => Number.isNaN(oracle[c]!))).toBe(true);
    expect(oracle.filter((x) => !Number.isFinite(x))).toHaveLength(2);
  });

  it('quantize → dequantize returns every finite code and its value bit for bit', () => {
    const codes = [...Array(256).keys()].filter((c) => c !== 0x7f && c !== 0xff);
    const x = Float32Array.from(codes, (c) => oracle[c]!);
    const q = quantize(e3m4, x, one(x.length));
    expect(unpack(q.codes, x.length)).toEqual(codes);
    expect(Array.from(dequantize(e3m4, q, one(x.length)))).toEqual(Array.from(x));
    expect(Array.from(referenceDequantize(e3m4, q, one(x.length)))).toEqual(Array.from(x));
  });

  it('rounds half to even and saturates, as the brute-force model does', () => {
    const x = probes();
    const want = Array.from(x, nearestCode);
    expect(Array.from(x, (v) => fp8Encode('e3m4', v))).toEqual(want);
    expect(unpack(quantize(e3m4, x, one(x.length)).codes, x.length)).toEqual(want);
    // Spot checks: 29.5 lies between 29 (0x7d) and 30 (0x7e): ties to the even code 30; 31 and
    // beyond saturate; 2^-7 is half the smallest subnormal: ties to +0; 1.5 · 2^-6 ties to code 2.
    expect([29.5, 31, 1e6, -1e6, 2 ** -7, 3 * 2 ** -7].map((v) => fp8Encode('e3m4', v))).toEqual([
      0x7e, 0x7e, 0x7e, 0xfe, 0x00, 0x02,
    ]);
    expect([Infinity, -Infinity, NaN].map((v) => fp8Encode('e3m4', v))).toEqual([0x7e, 0xfe, 0x7f]);
  });

  it('a scaled cache: scale = max |x| / 30 rounded up, so the largest value lands on ±30·scale', () => {
    const f: QuantFormat = { kind: 'fp8', elem: 'e3m4', scale: { dtype: 'f32', per: { kind: 'token' } } };
    const x = Float32Array.from([600, -300, 17, 0.01, -600]);
    const q = quantize(f, x, one(x.length));
    const scale = q.scale!.data[0]!;
    expect(scale).toBe(20);
    expect(unpack(q.codes, x.length)).toEqual([0x7e, 0xee, 0x2b, 0x00, 0xfe]);
    expect(Array.from(dequantize(f, q, one(x.length)))).toEqual(
      Array.from(referenceDequantize(f, q, one(x.length))),
    );
  });

  it('the CUDA quantize kernel (CPU emulation) writes the model codes, ±0, ties and saturation included', async () => {
    const x = probes();
    const s = one(x.length);
    const exe = await buildQuantizeEmulation(`${scratchDir('quantize')}/e3m4`, {
      kernel: 'q',
      cache: 'k',
      format: e3m4,
      dim: x.length,
      input: 'f32',
    });
    const before = { codes: new Uint32Array(Math.ceil(x.length / 4)).fill(0xa5a5a5a5) };
    const got = await runQuantize(exe, `${scratchDir('quantize')}/e3m4/run`, callBuffers(x, before), {
      B: 1,
      Hkv: 1,
      Nk: 1,
      start: 0,
      n: 1,
    });
    const words = new Uint32Array(got.codes!.slice().buffer);
    expect(unpack(words, x.length)).toEqual(Array.from(x, nearestCode));
    expect(Array.from(words)).toEqual(Array.from(quantize(e3m4, x, s).codes));
  });
});
