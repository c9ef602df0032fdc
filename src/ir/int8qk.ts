// INT8 Q·Kᵀ (`qk int8 [smooth k]`, docs/LANGUAGE.md "INT8 Q·Kᵀ"): the per-kernel option a backend
// reads to compute scores SageAttention-style. The quantization blocks are the schedule's tiles:
// one Q scale per query tile (blockQ rows of one head), one K scale per key tile (blockK rows of
// one kv head), so a tile's scores are one int32 matrix product and one multiply by sq·sk.
import type { AttentionDecl } from '../dsl/ast.js';

export interface QkInt8 {
  /**
   * K minus its mean over the call's keys, per (batch, kv head, channel), before K is quantized.
   * Exact in the softmax (q·mean is one constant per query row) and it keeps a channel's shared
   * offset from eating the int8 range of every key tile.
   */
  readonly smoothK: boolean;
}

/** The option of a declaration's `qk` statement, or undefined when it has none. */
export function qkInt8Of(decl: AttentionDecl): QkInt8 | undefined {
  const stmt = decl.qk?.[0];
  return stmt && { smoothK: stmt.smoothK !== undefined };
}

/** Largest code magnitude: symmetric codes in [-127, 127] (-128 unused, so negation is exact). */
export const INT8_QK_MAX = 127;

/**
 * Largest head dim the SIMT engine runs it at: it sums code products in f32, exact while
 * 127²·D < 2²⁴ (D ≤ 1040); 1024 keeps a margin.
 */
export const INT8_QK_SIMT_MAX_HEAD_DIM = 1024;
