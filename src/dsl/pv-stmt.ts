// `pv e4m3 [smooth v]` (docs/LANGUAGE.md, "FP8 P·V"): SageAttention2-style P·V — P quantized to
// e4m3 with the static scale 448 (P ∈ [0, 1] after the row max), V to e4m3 per (batch, kv head,
// channel) after it is smoothed by its channel mean, P·V on e4m3 codes. This file holds the
// statement's words and messages; operand-quant-stmt.ts builds it from its CST, checks it and
// prints it. It reaches the kernel IR as AttentionKernel.pvE4m3 (ir/pv-e4m3.ts). Which
// compilations run it: ir/int8qk-support.ts.
import type { CstNode } from 'chevrotain';
import type { Span } from '../diagnostics.js';
import type { AttentionDecl } from './ast.js';
import type { SparsityCheckCtx } from './check-sparsity.js';
import type { AstBuilder } from './cst-sparsity.js';
import { buildOperandQuant, checkOperandQuant, type OperandQuantSpec } from './operand-quant-stmt.js';

/** Element types of the quantized P·V: e4m3 (SageAttention2). */
export const pvElems = ['e4m3'] as const;
export type PvElem = (typeof pvElems)[number];

/** `pv e4m3 [smooth v]`. */
export interface PvDecl {
  readonly kind: 'pv';
  readonly keywordSpan: Span;
  readonly elem: PvElem;
  readonly elemSpan: Span;
  /** `smooth v`: V minus its mean over keys, per channel and kv head, before quantizing. */
  readonly smoothV?: Span;
  readonly span: Span;
}

const pvSpec: OperandQuantSpec<'pv', PvElem, 'smoothV'> = {
  kind: 'pv',
  keywordToken: 'Pv',
  elems: pvElems,
  matmul: 'P·V',
  otherElems: ['e5m2', 'int8', 'int4', 'fp8'],
  otherElemsHint: 'only e4m3 P·V exists so far (SageAttention2): P ∈ [0, 1] wants the mantissa bits',
  operand: 'v',
  smoothField: 'smoothV',
  partner: 'p',
  partnerHint: "P's rows are probabilities in [0, 1]: it has no offset to remove; only V is smoothed",
  otherSmoothHint: 'V is the one tensor smoothed by `pv`: `smooth v` (K is smoothed by `qk int8 smooth k`)',
  cannotSmoothSuffix: ' in `pv`',
};

/** Builds `pv ELEM [smooth v]`; undefined (reported) when a word is missing or unknown. */
export function buildPv(b: AstBuilder, n: CstNode): PvDecl | undefined {
  return buildOperandQuant(pvSpec, b, n);
}

/**
 * One `pv` statement; V not also a quantized cache (`store v|kv`): its codes would be quantized
 * twice, and the K/V storage formats dequantize to f32 before P·V anyway. The e4m3 P·V is a stage
 * of `qk int8`'s kernel (SageAttention2), so it needs a `qk` statement on every target: a rule of
 * the source, given by `attnc check` rather than left to compile.
 */
export function checkPv(decl: AttentionDecl, ctx: SparsityCheckCtx): void {
  checkOperandQuant(pvSpec, decl, ctx);
  const first = decl.pv?.[0];
  // A `qk` that did not build has its own error: `add qk int8` would repeat it.
  if (first && !decl.qk?.[0] && !decl.qkUnbuilt)
    ctx.err(
      '`pv e4m3` runs after `qk int8` (SageAttention2): add `qk int8 smooth k`; alone: not yet',
      first.span,
    );
}
