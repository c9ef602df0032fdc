// Bit-exact f32 helpers for the WGSL `quantize` kernel (quantize.ts). WGSL's f32 division and
// sqrt are not correctly rounded and its f16 conversions may round either way, so everything the
// model (src/quant/quantize.ts) rounds is done here on the bits: division by long division of the
// significands, sqrt by checking the midpoints of the candidates exactly in 64-bit integers, f16,
// bf16 and fp8 encodings with ties to even. Results below the smallest normal f32 are flushed to
// a zero of the same sign (the latitude docs/LANGUAGE.md gives WGSL quantize kernels).
import { floatLayout } from '../../quant/elem.js';
import type { Fp8Elem } from '../../quant/format.js';

// MIN_NORMAL (2^-126) and F16_MIN_SCALE (2^-24) are hex float literals, exact like the bits they
// stand for: naga (the WGSL validator of the tests and scripts/fuzz-campaign.mjs) cannot evaluate
// `bitcast` in a const declaration, so it rejected every quantize module.
/** WGSL functions: flush, js_min/js_max, div_rn, sqrt_rn, f16/bf16 conversions, up/rn_sat. */
export const quantizeMath = String.raw`
const MIN_NORMAL: f32 = 0x1p-126f;
const F16_MIN_SCALE: f32 = 0x1p-24f;
fn flush(v: f32) -> f32 {
  let b = bitcast<u32>(v);
  if ((b & 0x7f800000u) == 0u) { return bitcast<f32>(b & 0x80000000u); }
  return v;
}
fn is_neg(v: f32) -> bool { return (bitcast<u32>(v) & 0x80000000u) != 0u; }
// Math.min / Math.max of the model: -0 orders below +0.
fn js_min(a: f32, b: f32) -> f32 { if (a < b || (a == b && is_neg(a))) { return a; } return b; }
fn js_max(a: f32, b: f32) -> f32 { if (a > b || (a == b && !is_neg(a))) { return a; } return b; }
// a / b correctly rounded (ties to even); a, b normal or zero, b > 0; underflow flushes.
fn div_rn(a: f32, b: f32) -> f32 {
  let ua = bitcast<u32>(a);
  let ub = bitcast<u32>(b);
  let sign = (ua ^ ub) & 0x80000000u;
  if ((ua & 0x7fffffffu) == 0u) { return bitcast<f32>(sign); }
  var ma = (ua & 0x7fffffu) | 0x800000u;
  let mb = (ub & 0x7fffffu) | 0x800000u;
  var e = i32((ua >> 23u) & 0xffu) - i32((ub >> 23u) & 0xffu) + 127;
  if (ma < mb) { ma = ma << 1u; e = e - 1; }
  // 25 quotient bits (24 significant and a guard bit) and a sticky remainder.
  var r = ma;
  var q = 0u;
  for (var i = 0; i < 25; i = i + 1) {
    q = q << 1u;
    if (r >= mb) { r = r - mb; q = q | 1u; }
    r = r << 1u;
  }
  let sticky = r != 0u;
  if (e >= 255) { return bitcast<f32>(sign | 0x7f800000u); }
  if (e <= 0) { return bitcast<f32>(sign); }
  var m = q >> 1u;
  if ((q & 1u) == 1u && (sticky || (m & 1u) == 1u)) { m = m + 1u; }
  if (m == 0x1000000u) { m = 0x800000u; e = e + 1; }
  if (e >= 255) { return bitcast<f32>(sign | 0x7f800000u); }
  return bitcast<f32>(sign | (u32(e) << 23u) | (m & 0x7fffffu));
}
// The 64-bit product of two u32 values, as (hi, lo).
fn mul_wide(a: u32, b: u32) -> vec2<u32> {
  let a0 = a & 0xffffu; let a1 = a >> 16u; let b0 = b & 0xffffu; let b1 = b >> 16u;
  let p00 = a0 * b0; let p01 = a0 * b1; let p10 = a1 * b0; let p11 = a1 * b1;
  let mid = (p00 >> 16u) + (p01 & 0xffffu) + (p10 & 0xffffu);
  let lo = (p00 & 0xffffu) | (mid << 16u);
  let hi = p11 + (p01 >> 16u) + (p10 >> 16u) + (mid >> 16u);
  return vec2<u32>(hi, lo);
}
fn shl_wide(x: u32, k: u32) -> vec2<u32> {
  if (k == 0u) { return vec2<u32>(0u, x); }
  if (k >= 32u) { return vec2<u32>(x << (k - 32u), 0u); }
  return vec2<u32>(x >> (32u - k), x << k);
}
fn gt_wide(a: vec2<u32>, b: vec2<u32>) -> bool { return a.x > b.x || (a.x == b.x && a.y > b.y); }
// Whether m > (c + ulp(c) / 2)^2, exactly (c > 0 normal, m > 0 normal).
fn above_mid(c: f32, m: f32) -> bool {
  let uc = bitcast<u32>(c);
  let um = bitcast<u32>(m);
  let C = (uc & 0x7fffffu) | 0x800000u;
  let M = (um & 0x7fffffu) | 0x800000u;
  // mid^2 = (2C+1)^2 * 2^(2ec-302), m = M * 2^(em-150): compare (2C+1)^2 with M * 2^k.
  let k = i32((um >> 23u) & 0xffu) + 152 - 2 * i32((uc >> 23u) & 0xffu);
  if (k < 0) { return false; }
  if (k > 40) { return true; }
  return gt_wide(shl_wide(M, u32(k)), mul_wide(2u * C + 1u, 2u * C + 1u));
}
// sqrt(m) correctly rounded, m >= 0 normal or zero (no midpoint is ever a square root's value).
fn sqrt_rn(m: f32) -> f32 {
  if (m == 0.0) { return m; }
  var c = sqrt(m);
  let up = bitcast<f32>(bitcast<u32>(c) + 1u);
  let down = bitcast<f32>(bitcast<u32>(c) - 1u);
  if (above_mid(c, m)) { c = up; } else if (!above_mid(down, m)) { c = down; }
  return c;
}
// f32 -> f16 bits, ties to even, overflow to inf (src/runtime/f16.ts f32ToF16Bits).
fn f16_bits(x: f32) -> u32 {
  let b = bitcast<u32>(x);
  let sign = (b >> 16u) & 0x8000u;
  let exp = i32((b >> 23u) & 0xffu);
  var mant = b & 0x7fffffu;
  if (exp == 255) { return sign | 0x7c00u | select(0u, 0x200u, mant != 0u); }
  let e = exp - 127 + 15;
  if (e >= 31) { return sign | 0x7c00u; }
  if (e <= 0) {
    if (e < -10) { return sign; }
    mant = mant | 0x800000u;
    let shift = u32(14 - e);
    var h = mant >> shift;
    let rem = mant & ((1u << shift) - 1u);
    let mid = 1u << (shift - 1u);
    if (rem > mid || (rem == mid && (h & 1u) == 1u)) { h = h + 1u; }
    return sign | h;
  }
  var h = (u32(e) << 10u) | (mant >> 13u);
  let rem = mant & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1u) == 1u)) { h = h + 1u; }
  return sign | h;
}
fn f16_value(h: u32) -> f32 {
  let sign = (h & 0x8000u) << 16u;
  let e = (h >> 10u) & 0x1fu;
  let m = h & 0x3ffu;
  if (e == 0u) {
    let v = f32(m) * F16_MIN_SCALE;
    return bitcast<f32>(bitcast<u32>(v) | sign);
  }
  if (e == 31u) { return bitcast<f32>(sign | 0x7f800000u | (m << 13u)); }
  return bitcast<f32>(sign | ((e + 112u) << 23u) | (m << 13u));
}
// f32 -> bf16 bits, ties to even; NaN gives a quiet NaN (src/quant/floats.ts bf16Bits).
fn bf16_bits(x: f32) -> u32 {
  let b = bitcast<u32>(x);
  if ((b & 0x7fffffffu) > 0x7f800000u) { return ((b >> 16u) & 0x8000u) | 0x7fc0u; }
  return ((b + 0x7fffu + ((b >> 16u) & 1u)) >> 16u) & 0xffffu;
}
fn bf16_value(h: u32) -> f32 { return bitcast<f32>(h << 16u); }
// Rounded to nearest f16, saturating at 65504 (roundNearestSat): its bits.
fn rn_sat_f16(v: f32) -> u32 {
  let h = f16_bits(v);
  if ((h & 0x7fffu) == 0x7c00u) { return (h & 0x8000u) | 0x7bffu; }
  return h;
}
// The smallest f16 >= v (v >= 0), at least 2^-24, saturating at 65504 (roundUpTo): its bits.
fn up_f16(v: f32) -> u32 {
  if (v < F16_MIN_SCALE) { return f16_bits(F16_MIN_SCALE); }
  var h = f16_bits(v);
  if (f16_value(h) < v) { h = h + 1u; }
  if (h >= 0x7c00u) { return 0x7bffu; }
  return h;
}
fn up_f32(v: f32) -> f32 { if (v < MIN_NORMAL) { return MIN_NORMAL; } return v; }
`;

/** The fp8 encoder of src/quant/floats.ts (fp8Encode), on the bits of an f32. */
export function fp8EncodeWgsl(elem: Fp8Elem): string {
  const { mant, bias, maxCode } = floatLayout(elem);
  return String.raw`
fn fp8_encode(x: f32) -> u32 {
  let bits = bitcast<u32>(x);
  let sign = (bits >> 24u) & 0x80u;
  let exp = (bits >> 23u) & 0xffu;
  let m23 = bits & 0x7fffffu;
  if (exp == 0xffu) { return select(sign | ${maxCode}u, 0x7fu, m23 != 0u); }
  if (exp == 0u) { return sign; }
  let e = i32(exp) - 127 + ${bias};
  let full = m23 | 0x800000u;
  let shift = select(${23 - mant + 1} - e, ${23 - mant}, e >= 1);
  if (shift > 24) { return sign; }
  var q = select(full >> u32(shift), (u32(e) << ${mant}u) | (m23 >> u32(shift)), e >= 1);
  let rem = select(full, m23, e >= 1) & ((1u << u32(shift)) - 1u);
  let half = 1u << u32(shift - 1);
  if (rem > half || (rem == half && (q & 1u) == 1u)) { q = q + 1u; }
  return sign | min(q, ${maxCode}u);
}`;
}
