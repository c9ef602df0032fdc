// `pv e4m3 [smooth v]` (docs/LANGUAGE.md, "FP8 P·V"): SageAttention2-style P·V — P quantized to
// e4m3 with the static scale 448 (P ∈ [0, 1] after the row max), V to e4m3 per (batch, kv head,
// channel) after it is smoothed by its channel mean, P·V on e4m3 codes. This file builds the
// statement from its CST, checks it and prints it; it reaches the kernel IR as
// AttentionKernel.pvE4m3 (ir/pv-e4m3.ts). Which compilations run it: ir/int8qk-support.ts.
import type { CstNode, IToken } from 'chevrotain';
import { error, type Span } from '../diagnostics.js';
import type { AttentionDecl } from './ast.js';
import type { SparsityCheckCtx } from './check-sparsity.js';
import type { AstBuilder } from './cst-sparsity.js';
import { cover } from './holes.js';
import { didYouMean } from './suggest.js';

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

type Tok = IToken[] | undefined;
interface PvCh {
  Pv?: Tok;
  elem?: Tok;
  Smooth?: Tok;
  smoothed?: Tok;
}

/** The element word: `e4m3`, else a diagnostic. */
function elemOf(b: AstBuilder, word: IToken): PvElem | undefined {
  const found = pvElems.find((e) => e === word.image);
  if (found) return found;
  const hint =
    didYouMean(word.image, pvElems) ??
    (['e5m2', 'int8', 'int4', 'fp8'].includes(word.image)
      ? 'only e4m3 P·V exists so far (SageAttention2): P ∈ [0, 1] wants the mantissa bits'
      : 'write `pv e4m3`');
  b.diags.push(error(`unknown P·V element type \`${word.image}\``, b.span(word), hint));
  return undefined;
}

/** Whether the `smooth` clause names `v` (reported when it names anything else). */
function smoothedIsV(b: AstBuilder, word: IToken): boolean {
  if (word.image === 'v') return true;
  const hint =
    word.image === 'p'
      ? "P's rows are probabilities in [0, 1]: it has no offset to remove; only V is smoothed"
      : 'V is the one tensor smoothed by `pv`: `smooth v` (K is smoothed by `qk int8 smooth k`)';
  b.diags.push(error(`cannot smooth \`${word.image}\` in \`pv\``, b.span(word), hint));
  return false;
}

/** Builds `pv ELEM [smooth v]`; undefined (reported) when a word is missing or unknown. */
export function buildPv(b: AstBuilder, n: CstNode): PvDecl | undefined {
  const c = (n.children ?? {}) as PvCh;
  const kw = c.Pv?.[0];
  const word = c.elem?.[0];
  if (!b.isReal(kw) || !b.isReal(word)) return undefined;
  const elem = elemOf(b, word);
  const smoothKw = c.Smooth?.[0];
  const smoothed = c.smoothed?.[0];
  if (b.isReal(smoothKw) && !b.isReal(smoothed)) return undefined; // the parser reported it
  const smooth = b.isReal(smoothed) && smoothedIsV(b, smoothed);
  if (elem === undefined || (b.isReal(smoothed) && !smooth)) return undefined;
  const keywordSpan = b.span(kw);
  const elemSpan = b.span(word);
  const last = b.isReal(smoothed) ? b.span(smoothed) : elemSpan;
  return {
    kind: 'pv',
    keywordSpan,
    elem,
    elemSpan,
    ...(smooth ? { smoothV: cover(b.span(smoothKw), last) } : {}),
    span: cover(keywordSpan, last),
  };
}

/**
 * One `pv` statement; V not also a quantized cache (`store v|kv`): its codes would be quantized
 * twice, and the K/V storage formats dequantize to f32 before P·V anyway.
 */
export function checkPv(decl: AttentionDecl, ctx: SparsityCheckCtx): void {
  const stmts = decl.pv ?? [];
  const first = stmts[0];
  for (const s of stmts.slice(1))
    ctx.err(
      'only one `pv` statement is allowed',
      s.keywordSpan,
      first && `the first is on line ${first.keywordSpan.line}`,
    );
  if (!first) return;
  const storedV = (decl.storage ?? []).find((s) => s.target === 'v' || s.target === 'kv');
  if (storedV)
    ctx.err(
      '`pv e4m3` needs V in 16 bits, but a `store` statement quantizes it',
      first.span,
      `the \`store ${storedV.target}\` on line ${storedV.keywordSpan.line} already stores V as codes; keep one of the two`,
    );
}

export function printPv(s: PvDecl): string {
  return `pv ${s.elem}${s.smoothV ? ' smooth v' : ''}`;
}
