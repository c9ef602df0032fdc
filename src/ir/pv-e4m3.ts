// FP8 P·V (`pv e4m3 [smooth v]`, docs/LANGUAGE.md "FP8 P·V"): the per-kernel option a backend
// reads to compute P·V SageAttention2-style. The quantization is fixed by the definition, not by
// the schedule: P with the static scale E4M3_MAX (P ∈ [0, 1] after the row max), V with one scale
// per (batch, kv head, channel) over the call's keys.
import type { AttentionDecl } from '../dsl/ast.js';

export interface PvE4m3 {
  /**
   * V minus its mean over the call's keys, per (batch, kv head, channel), before V is quantized;
   * the mean is added back to the output (each softmax row sums to 1). It keeps a channel's
   * shared offset from eating the e4m3 range of the channel.
   */
  readonly smoothV: boolean;
}

/** The option of a declaration's `pv` statement, or undefined when it has none. */
export function pvE4m3Of(decl: AttentionDecl): PvE4m3 | undefined {
  const stmt = decl.pv?.[0];
  return stmt && { smoothV: stmt.smoothV !== undefined };
}

/** Largest finite e4m3 magnitude: P's static scale and V's per-channel max|v| / E4M3_MAX. */
export const E4M3_MAX = 448;
