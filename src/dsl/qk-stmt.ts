// `qk int8 [smooth k]` (docs/LANGUAGE.md, "INT8 Q·Kᵀ"): SageAttention-style scores — Q and K
// quantized to int8 per block (Q per query tile, K per key tile, after K is smoothed by its
// channel mean), Q·Kᵀ on int8 codes, P·V unchanged. This file builds the statement from its
// CST, checks it and prints it; it reaches the kernel IR as AttentionKernel.qkInt8 (ir/int8qk.ts).
// Which targets, dtypes and engines run it is decided at compile time (ir/int8qk-support.ts).
import type { CstNode, IToken } from 'chevrotain';
import { error, type Span } from '../diagnostics.js';
import type { AttentionDecl } from './ast.js';
import type { SparsityCheckCtx } from './check-sparsity.js';
import type { AstBuilder } from './cst-sparsity.js';
import { cover } from './holes.js';
import { didYouMean } from './suggest.js';

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

type Tok = IToken[] | undefined;
interface QkCh {
  Qk?: Tok;
  elem?: Tok;
  Smooth?: Tok;
  smoothed?: Tok;
}

/** The element word: `int8`, else a diagnostic (fp8 scores are a different method). */
function elemOf(b: AstBuilder, word: IToken): QkElem | undefined {
  const found = qkElems.find((e) => e === word.image);
  if (found) return found;
  const hint =
    didYouMean(word.image, qkElems) ??
    (['e4m3', 'e5m2', 'fp8', 'int4'].includes(word.image)
      ? 'only int8 Q·Kᵀ exists so far (SageAttention v1)'
      : 'write `qk int8`');
  b.diags.push(error(`unknown Q·Kᵀ element type \`${word.image}\``, b.span(word), hint));
  return undefined;
}

/** Whether the `smooth` clause names `k` (reported when it names anything else). */
function smoothedIsK(b: AstBuilder, word: IToken): boolean {
  if (word.image === 'k') return true;
  const hint =
    word.image === 'q'
      ? "q's channel mean does not cancel in the softmax (it scales each key's score differently); only K is smoothed"
      : 'K is the one tensor smoothed: `smooth k`';
  b.diags.push(error(`cannot smooth \`${word.image}\``, b.span(word), hint));
  return false;
}

/** Builds `qk ELEM [smooth k]`; undefined (reported) when a word is missing or unknown. */
export function buildQk(b: AstBuilder, n: CstNode): QkDecl | undefined {
  const c = (n.children ?? {}) as QkCh;
  const kw = c.Qk?.[0];
  const word = c.elem?.[0];
  if (!b.isReal(kw) || !b.isReal(word)) return undefined;
  const elem = elemOf(b, word);
  const smoothKw = c.Smooth?.[0];
  const smoothed = c.smoothed?.[0];
  if (b.isReal(smoothKw) && !b.isReal(smoothed)) return undefined; // the parser reported it
  const smooth = b.isReal(smoothed) && smoothedIsK(b, smoothed);
  if (elem === undefined || (b.isReal(smoothed) && !smooth)) return undefined;
  const keywordSpan = b.span(kw);
  const elemSpan = b.span(word);
  const last = b.isReal(smoothed) ? b.span(smoothed) : elemSpan;
  return {
    kind: 'qk',
    keywordSpan,
    elem,
    elemSpan,
    ...(smooth ? { smoothK: cover(b.span(smoothKw), last) } : {}),
    span: cover(keywordSpan, last),
  };
}

/**
 * One `qk` statement; K not also a quantized cache (`store k|kv`): its int8 codes would be
 * quantized twice, and the K/V storage formats dequantize to f32 before Q·Kᵀ anyway.
 */
export function checkQk(decl: AttentionDecl, ctx: SparsityCheckCtx): void {
  const stmts = decl.qk ?? [];
  const first = stmts[0];
  for (const s of stmts.slice(1))
    ctx.err(
      'only one `qk` statement is allowed',
      s.keywordSpan,
      first && `the first is on line ${first.keywordSpan.line}`,
    );
  if (!first) return;
  const storedK = (decl.storage ?? []).find((s) => s.target === 'k' || s.target === 'kv');
  if (storedK)
    ctx.err(
      '`qk int8` needs K in 16 bits, but a `store` statement quantizes it',
      first.span,
      `the \`store ${storedK.target}\` on line ${storedK.keywordSpan.line} already stores K as codes; keep one of the two`,
    );
}

export function printQk(s: QkDecl): string {
  return `qk ${s.elem}${s.smoothK ? ' smooth k' : ''}`;
}
