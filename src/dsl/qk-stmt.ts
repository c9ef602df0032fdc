// `qk int8 [smooth k]` (docs/LANGUAGE.md, "INT8 Q·Kᵀ"): SageAttention-style scores — Q and K
// quantized to int8 per block (Q per query tile, K per key tile, after K is smoothed by its
// channel mean), Q·Kᵀ on int8 codes, P·V unchanged. This file holds the statement's words and
// messages; operand-quant-stmt.ts builds it from its CST, checks it and prints it. It reaches the
// kernel IR as AttentionKernel.qkInt8 (ir/int8qk.ts).
// Which targets, dtypes and engines run it is decided at compile time (ir/int8qk-support.ts).
import type { CstNode } from 'chevrotain';
import type { Span } from '../diagnostics.js';
import type { AttentionDecl } from './ast.js';
import type { SparsityCheckCtx } from './check-sparsity.js';
import type { AstBuilder } from './cst-sparsity.js';
import { buildOperandQuant, checkOperandQuant, type OperandQuantSpec } from './operand-quant-stmt.js';

/** Element types of the quantized Q·Kᵀ: int8 (SageAttention v1). */
export const qkElems = ['int8'] as const;
export type QkElem = (typeof qkElems)[number];

/** `qk int8 [smooth k]`. */
export interface QkDecl {
  readonly kind: 'qk';
  readonly keywordSpan: Span;
  readonly elem: QkElem;
  readonly elemSpan: Span;
  /** `smooth k`: K minus its mean over keys, per channel and kv head, before quantizing. */
  readonly smoothK?: Span;
  readonly span: Span;
}

const qkSpec: OperandQuantSpec<'qk', QkElem, 'smoothK'> = {
  kind: 'qk',
  keywordToken: 'Qk',
  elems: qkElems,
  matmul: 'Q·Kᵀ',
  // fp8 scores are a different method
  otherElems: ['e4m3', 'e5m2', 'fp8', 'int4'],
  otherElemsHint: 'only int8 Q·Kᵀ exists so far (SageAttention v1)',
  operand: 'k',
  smoothField: 'smoothK',
  partner: 'q',
  partnerHint:
    "q's channel mean does not cancel in the softmax (it scales each key's score differently); only K is smoothed",
  otherSmoothHint: 'K is the one tensor smoothed: `smooth k`',
  cannotSmoothSuffix: '',
};

/** Builds `qk ELEM [smooth k]`; undefined (reported) when a word is missing or unknown. */
export function buildQk(b: AstBuilder, n: CstNode): QkDecl | undefined {
  return buildOperandQuant(qkSpec, b, n);
}

/**
 * One `qk` statement; K not also a quantized cache (`store k|kv`): its int8 codes would be
 * quantized twice, and the K/V storage formats dequantize to f32 before Q·Kᵀ anyway.
 */
export function checkQk(decl: AttentionDecl, ctx: SparsityCheckCtx): void {
  checkOperandQuant(qkSpec, decl, ctx);
}
