// The reference of `pv e4m3 [smooth v]` after `qk int8 [smooth k]` (docs/LANGUAGE.md, "FP8 P·V"),
// written from that definition alone in float64, sharing no code with src/ir, src/quant or
// codegen. Per query row, with the scores of `qk int8` (reference-int8qk.ts) and their row max m:
//
//   u_j  = exp(s_j − m) ∈ [0, 1]                  l = Σ_j u_j (unquantized)
//   P8_j = e4m3(448 · u_j)                        V' = V − mean_j V (with smooth v; else V)
//   sv_c = f32(max_j |V'_jc| / 448)                V8_jc = e4m3(f32(V'_jc / sv_c))
//   o_c  = (Σ_j P8_j · V8_jc) · sv_c / 448 / l  (+ mean_c with smooth v)
//
// per (batch, kv head, channel c) for V. e4m3 rounds to nearest, ties to even, saturating at
// ±448; subnormals down to 2⁻⁹. A kernel that quantizes P against a running max (online softmax)
// differs from this only by where each u_j's e4m3 rounding falls (relative 2⁻⁴ either way).
import { quantizeInt8Blocks, smoothKeys, type Int8Blocks, type Int8QkBlocks } from './reference-int8qk.js';
import { referenceAttention, type RefInputs, type RefPredicates, type RefResult } from './reference.js';

/** P's static scale and V's range: the largest finite e4m3 value. */
export const E4M3_LARGEST = 448;

/** The e4m3 value nearest to x (ties to even), saturating at ±448; NaN stays NaN. */
export function e4m3Round(x: number): number {
  if (Number.isNaN(x)) return NaN;
  const a = Math.abs(x);
  if (a >= E4M3_LARGEST) return Math.sign(x) * E4M3_LARGEST;
  // Spacing: 2^(e − 3) for a normal a in [2^e, 2^(e+1)), e ≥ −6; 2^−9 among the subnormals.
  const e = a < 2 ** -6 ? -6 : Math.floor(Math.log2(a));
  const step = 2 ** (e - 3);
  const r = roundHalfEvenValue(a / step) * step;
  return x < 0 || Object.is(x, -0) ? -r : r;
}

function roundHalfEvenValue(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (d !== 0.5) return d < 0.5 ? f : f + 1;
  return f % 2 === 0 ? f : f + 1;
}

/** The e4m3 bit pattern (sign, 4 exponent bits of bias 7, 3 mantissa bits) of an e4m3 value. */
export function e4m3Code(value: number): number {
  const sign = value < 0 || Object.is(value, -0) ? 0x80 : 0;
  const a = Math.abs(value);
  if (a < 2 ** -6) return sign | Math.round(a / 2 ** -9); // subnormal: exponent field 0
  const e = Math.floor(Math.log2(a));
  return sign | ((e + 7) << 3) | Math.round((a / 2 ** e - 1) * 8);
}

/** V quantized per (group, channel): codes [groups, Nk, Dv] in V's layout, scales and means [groups, Dv]. */
export interface E4m3Channels {
  readonly codes: Uint8Array;
  readonly scales: Float64Array;
  /** The subtracted channel means (0 without smoothing). */
  readonly means: Float64Array;
  /** code values · scale (without the mean). */
  readonly dequantized: Float64Array;
}

/** Quantizes V ([groups, Nk, Dv]) to e4m3 per channel, after subtracting its mean if `smooth`. */
export function quantizeE4m3Channels(
  v: ArrayLike<number>,
  groups: number,
  Nk: number,
  Dv: number,
  smooth: boolean,
): E4m3Channels {
  const centred = smooth ? smoothKeys(v, groups, Nk, Dv) : v;
  const codes = new Uint8Array(groups * Nk * Dv);
  const scales = new Float64Array(groups * Dv);
  const means = new Float64Array(groups * Dv);
  const dequantized = new Float64Array(groups * Nk * Dv);
  for (let g = 0; g < groups; g++)
    for (let c = 0; c < Dv; c++) {
      let max = 0;
      for (let j = 0; j < Nk; j++) max = Math.max(max, Math.abs(centred[(g * Nk + j) * Dv + c] as number));
      const s = Math.fround(max / E4M3_LARGEST);
      scales[g * Dv + c] = s;
      if (smooth && Nk > 0)
        means[g * Dv + c] = (v[g * Nk * Dv + c] as number) - (centred[g * Nk * Dv + c] as number);
      for (let j = 0; j < Nk; j++) {
        const i = (g * Nk + j) * Dv + c;
        // An all-zero channel has scale 0 and codes 0 (as `qk int8`'s all-zero block).
        const value = s === 0 ? 0 : e4m3Round(Math.fround((centred[i] as number) / s));
        codes[i] = e4m3Code(value);
        dequantized[i] = value * s;
      }
    }
  return { codes, scales, means, dequantized };
}

/** [B, Hq, Nq, Nk]: the softmax probabilities of the dense reference (rows of 0 or NaN where it has no answer). */
function probabilities(inp: RefInputs, pred: RefPredicates): Float64Array {
  const { B, Hkv, Nk } = inp;
  // V = one identity matrix per kv head: out row i is then P's row i.
  const eye = new Float64Array(B * Hkv * Nk * Nk);
  for (let g = 0; g < B * Hkv; g++) for (let j = 0; j < Nk; j++) eye[(g * Nk + j) * Nk + j] = 1;
  return referenceAttention({ ...inp, v: eye, Dv: Nk }, pred).out;
}

export interface Int8QkPvOptions extends Int8QkBlocks {
  /** `smooth v`. */
  readonly smoothV: boolean;
}

export interface Int8QkPvResult extends RefResult {
  readonly q8: Int8Blocks;
  readonly k8: Int8Blocks;
  readonly v8: E4m3Channels;
}

/** Attention with `qk int8 [smooth k]` and `pv e4m3 [smooth v]` (small shapes: it builds [Nk, Nk] per kv head). */
export function referenceInt8QkPv(inp: RefInputs, pred: RefPredicates, o: Int8QkPvOptions): Int8QkPvResult {
  const { B, Hq, Hkv, Nq, Nk, D, Dv } = inp;
  const keys = o.smoothK ? smoothKeys(inp.k, B * Hkv, Nk, D) : inp.k;
  const q8 = quantizeInt8Blocks(inp.q, B * Hq, Nq, D, o.blockQ);
  const k8 = quantizeInt8Blocks(keys, B * Hkv, Nk, D, o.blockK);
  const v8 = quantizeE4m3Channels(inp.v, B * Hkv, Nk, Dv, o.smoothV);
  const scored = { ...inp, q: q8.dequantized, k: k8.dequantized };
  // Masks, lse, NaN rules and the error floor are the dense reference's; only `out` is redefined.
  const base = referenceAttention(scored, pred);
  const p = probabilities(scored, pred);
  const out = new Float64Array(base.out.length);
  const group = Hq / Hkv;
  for (let row = 0; row < B * Hq * Nq; row++) {
    const bh = Math.floor(row / Nq);
    const g = Math.floor(bh / Hq) * Hkv + Math.floor((bh % Hq) / group);
    let pmax = 0;
    for (let j = 0; j < Nk; j++) pmax = Math.max(pmax, p[row * Nk + j] as number);
    const lse = base.lse[row] as number;
    if (Number.isNaN(lse) || lse === -Infinity) {
      out.set(base.out.subarray(row * Dv, (row + 1) * Dv), row * Dv); // NaN, or the 0 row
      continue;
    }
    // u_j = exp(s_j − m) = p_j / max p, and l = Σ u_j = 1 / max p.
    for (let c = 0; c < Dv; c++) {
      let acc = 0;
      for (let j = 0; j < Nk; j++) {
        const p8 = e4m3Round(E4M3_LARGEST * ((p[row * Nk + j] as number) / pmax));
        acc += p8 * (v8.dequantized[(g * Nk + j) * Dv + c] as number);
      }
      out[row * Dv + c] = (acc / E4M3_LARGEST) * pmax + (v8.means[g * Dv + c] as number);
    }
  }
  return { ...base, out, q8, k8, v8 };
}
