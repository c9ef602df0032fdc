// The reference of `qk int8 [smooth k]` (docs/LANGUAGE.md, "INT8 Q·Kᵀ"), written from that
// definition alone in float64, sharing no code with src/ir or codegen: K smoothed by its channel
// mean, Q and K quantized to int8 per block with scale max|x| / 127 (rounded to f32) and codes
// rounded half to even, then the dense reference over the dequantized codes. The dot product of
// dequantized rows is (Σ qi8·ki8) · sq · sk exactly in float64 (codes are small integers), so
// this is the definition's s = (qi8·ki8) · sq · sk, then scaled, masked and softmaxed as usual.
import { referenceAttention, type RefInputs, type RefPredicates, type RefResult } from './reference.js';

/** The quantization blocks: rows of one query tile of one head, rows of one key tile of one kv head. */
export interface Int8QkBlocks {
  readonly blockQ: number;
  readonly blockK: number;
  /** `smooth k`: subtract each channel's mean over the keys (per batch and kv head) first. */
  readonly smoothK: boolean;
}

/** int8 codes of a [groups, rows, D] tensor, blocks of `rowsPerBlock` rows inside each group. */
export interface Int8Blocks {
  /** Same layout as the input. */
  readonly codes: Int8Array;
  /** [groups, ceil(rows / rowsPerBlock)]: each block's scale (an f32 value). */
  readonly scales: Float64Array;
  /** codes · scale, the values the scores are computed from. */
  readonly dequantized: Float64Array;
}

/** Round half to even (the rounding of cvt.rni and of IEEE division's default mode). */
export function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (d < 0.5) return f;
  if (d > 0.5) return f + 1;
  return f % 2 === 0 ? f : f + 1;
}

/** Quantizes blocks of `rowsPerBlock` rows (of D values) within each of `groups` groups of `rows` rows. */
export function quantizeInt8Blocks(
  x: ArrayLike<number>,
  groups: number,
  rows: number,
  D: number,
  rowsPerBlock: number,
): Int8Blocks {
  if (!Number.isInteger(rowsPerBlock) || rowsPerBlock < 1)
    throw new Error(`quantizeInt8Blocks: rowsPerBlock must be a positive integer, got ${rowsPerBlock}`);
  const perGroup = Math.ceil(rows / rowsPerBlock);
  const codes = new Int8Array(groups * rows * D);
  const scales = new Float64Array(groups * perGroup);
  const dequantized = new Float64Array(groups * rows * D);
  for (let g = 0; g < groups; g++) {
    for (let blk = 0; blk < perGroup; blk++) {
      const lo = (g * rows + blk * rowsPerBlock) * D;
      const hi = (g * rows + Math.min(rows, (blk + 1) * rowsPerBlock)) * D;
      let max = 0;
      for (let i = lo; i < hi; i++) max = Math.max(max, Math.abs(x[i] as number));
      const s = Math.fround(max / 127);
      scales[g * perGroup + blk] = s;
      for (let i = lo; i < hi; i++) {
        // The quotient is rounded to f32 before it is rounded to a code (the definition's order, so
        // that f32 hardware division agrees at ties). An all-zero block has scale 0 and codes 0; a
        // non-finite element makes its block's scores unspecified (the language leaves them so), NaN here.
        const c =
          s === 0 ? 0 : Math.max(-127, Math.min(127, roundHalfEven(Math.fround((x[i] as number) / s))));
        codes[i] = Number.isNaN(c) ? 0 : c;
        dequantized[i] = Number.isFinite(s) ? c * s : NaN;
      }
    }
  }
  return { codes, scales, dequantized };
}

/** K minus its mean over the Nk keys, per (batch, kv head, channel): [B, Hkv, Nk, D]. */
export function smoothKeys(k: ArrayLike<number>, groups: number, Nk: number, D: number): Float64Array {
  const out = new Float64Array(groups * Nk * D);
  for (let g = 0; g < groups; g++) {
    for (let d = 0; d < D; d++) {
      let sum = 0;
      for (let j = 0; j < Nk; j++) sum += k[(g * Nk + j) * D + d] as number;
      const mean = Nk === 0 ? 0 : sum / Nk;
      for (let j = 0; j < Nk; j++) out[(g * Nk + j) * D + d] = (k[(g * Nk + j) * D + d] as number) - mean;
    }
  }
  return out;
}

export interface Int8QkResult extends RefResult {
  readonly q8: Int8Blocks;
  readonly k8: Int8Blocks;
}

/** Attention with `qk int8 [smooth k]`: the dense reference over int8-quantized Q and K. */
export function referenceInt8Qk(inp: RefInputs, pred: RefPredicates, blocks: Int8QkBlocks): Int8QkResult {
  const { B, Hq, Hkv, Nq, Nk, D } = inp;
  const k = blocks.smoothK ? smoothKeys(inp.k, B * Hkv, Nk, D) : inp.k;
  const q8 = quantizeInt8Blocks(inp.q, B * Hq, Nq, D, blocks.blockQ);
  const k8 = quantizeInt8Blocks(k, B * Hkv, Nk, D, blocks.blockK);
  const result = referenceAttention({ ...inp, q: q8.dequantized, k: k8.dequantized }, pred);
  return { ...result, q8, k8 };
}
