// The small float formats of quantized caches, as kernels compute them: bit operations only.
// 8-bit floats take their field layout and special codes from their registry record
// (elem-registry.ts, through elem.ts's floatLayout): e4m3 and e5m2 follow the OCP 8-bit floating
// point spec (e4m3 "FN": no infinities, S.1111.111 is NaN; e5m2 IEEE-like). f16 is IEEE binary16,
// bf16 the top half of an f32.
import { f16BitsToF32, f32ToF16Bits } from '../runtime/f16.js';
import { floatLayout } from './elem.js';
import type { Fp8Elem } from './format.js';
import type { StoredFloats, TensorDType } from './layout.js';

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** The f32 value of an 8-bit float code (exact: every such value is an f32). */
export function fp8Decode(elem: Fp8Elem, code: number): number {
  const { mant, bias, top, mantMask, spec } = floatLayout(elem);
  const sign = code & 0x80 ? -1 : 1;
  const e = (code >>> mant) & top;
  const m = code & mantMask;
  if (e === top && spec.specials === 'ieee') return m === 0 ? sign * Infinity : NaN;
  if (e === top && m === mantMask) return NaN; // nan-only: S.1…1.1…1
  // Subnormals (e = 0) have no implicit 1 and the exponent of e = 1.
  const significand = e === 0 ? m : m + (1 << mant);
  return sign * significand * 2 ** (Math.max(e, 1) - bias - mant);
}

/**
 * The 8-bit float code nearest to `x` (rounded to f32 first), ties to even, saturating: anything
 * beyond the largest finite value (±Inf included) gives ±largest. NaN gives the NaN code (0x7f).
 * −0 keeps its sign.
 */
export function fp8Encode(elem: Fp8Elem, x: number): number {
  const { mant, bias, maxCode, nanCode } = floatLayout(elem);
  f32[0] = x;
  const bits = u32[0]!;
  const sign = (bits >>> 24) & 0x80;
  const exp = (bits >>> 23) & 0xff;
  const m23 = bits & 0x7fffff;
  if (exp === 0xff && m23 !== 0) return nanCode;
  if (exp === 0xff) return sign | maxCode;
  if (exp === 0) return sign; // f32 subnormals are far below the smallest fp8 subnormal
  const e = exp - 127 + bias; // the fp8 exponent field, if x is normal there
  // Normal: keep the top `mant` bits; subnormal (e <= 0): shift the implicit 1 in as well.
  const full = m23 | 0x800000;
  const shift = e >= 1 ? 23 - mant : 23 - mant + 1 - e;
  if (shift > 24) return sign; // below half the smallest subnormal
  let q = e >= 1 ? (e << mant) | (m23 >>> shift) : full >>> shift;
  const rem = (e >= 1 ? m23 : full) & ((1 << shift) - 1);
  const half = 1 << (shift - 1);
  // A carry out of the mantissa bumps the exponent field, which is the right rounding.
  if (rem > half || (rem === half && (q & 1) === 1)) q++;
  return sign | Math.min(q, maxCode);
}

/** bf16 bits of `x` (rounded to f32 first), ties to even; NaN gives a quiet NaN. */
export function bf16Bits(x: number): number {
  f32[0] = x;
  const b = u32[0]!;
  if ((b & 0x7fffffff) > 0x7f800000) return ((b >>> 16) & 0x8000) | 0x7fc0;
  return ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
}

export function bf16Value(bits: number): number {
  u32[0] = (bits & 0xffff) << 16;
  return f32[0]!;
}

export { f16BitsToF32 as f16Value, f32ToF16Bits as f16Bits } from '../runtime/f16.js';

/** A zeroed tensor of `dtype` (u32 is not a float dtype). */
export function allocFloats(dtype: Exclude<TensorDType, 'u32'>, n: number): StoredFloats {
  return dtype === 'f32' ? { dtype, data: new Float32Array(n) } : { dtype, data: new Uint16Array(n) };
}

/** Element `i` as an f32 value. */
export function readFloat(t: StoredFloats, i: number): number {
  const v = t.data[i]!;
  return t.dtype === 'f32' ? v : t.dtype === 'f16' ? f16BitsToF32(v) : bf16Value(v);
}

/** Stores `x` rounded to nearest (ties to even) in the tensor's dtype; returns the stored f32 value. */
export function writeFloat(t: StoredFloats, i: number, x: number): number {
  if (t.dtype === 'f32') t.data[i] = x;
  else t.data[i] = t.dtype === 'f16' ? f32ToF16Bits(x) : bf16Bits(x);
  return readFloat(t, i);
}

/**
 * The smallest value of `dtype` that is >= `x` (x > 0, finite), saturating at the largest
 * finite value: a scale rounded up keeps every code of its group inside the code range.
 */
export function roundUpTo(dtype: 'f16' | 'f32', x: number): number {
  const v = Math.fround(x);
  if (dtype === 'f32') {
    if (v < minScale.f32) return minScale.f32;
    if (v >= x) return v === Infinity ? 3.4028234663852886e38 : v;
    f32[0] = v;
    u32[0] = u32[0]! + 1;
    return f32[0]!;
  }
  if (v < minScale.f16) return minScale.f16;
  let h = f32ToF16Bits(v);
  if (f16BitsToF32(h) < v) h++;
  return h >= 0x7c00 ? 65504 : f16BitsToF32(h);
}

/**
 * The smallest scale of each dtype: its smallest positive value that is a normal f32 (the f16
 * subnormal 2^-24; for f32, 2^-126, as GPUs may flush f32 subnormals to zero).
 */
export const minScale = { f16: 2 ** -24, f32: 2 ** -126 } as const;

/** `x` as an f32, with f32 subnormals flushed to a zero of the same sign (as GPUs may). */
export function flushSubnormal(x: number): number {
  const v = Math.fround(x);
  return Math.abs(v) < 2 ** -126 ? (Object.is(v, -0) || v < 0 ? -0 : 0) : v;
}

/** `x` rounded to nearest in `dtype`, saturating at the largest finite value. */
export function roundNearestSat(dtype: 'f16' | 'f32', x: number): number {
  if (dtype === 'f32') return Math.fround(x);
  const v = f16BitsToF32(f32ToF16Bits(x));
  return Math.abs(v) === Infinity ? Math.sign(v) * 65504 : v;
}
