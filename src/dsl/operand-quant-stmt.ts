// The shared shape of `qk int8 [smooth k]` (qk-stmt.ts) and `pv e4m3 [smooth v]` (pv-stmt.ts):
// a keyword, an element word and an optional `smooth OPERAND` clause that quantizes one input of
// a matmul (K for Q·Kᵀ, V for P·V). This file builds such a statement from its CST, checks it (one
// statement only; the operand not also a quantized cache) and prints it, from a spec that holds the
// words and message texts of each statement.
import type { CstNode, IToken } from 'chevrotain';
import { error, type Span } from '../diagnostics.js';
import type { AttentionDecl } from './ast.js';
import type { SparsityCheckCtx } from './check-sparsity.js';
import type { AstBuilder } from './cst-sparsity.js';
import { cover } from './holes.js';
import { didYouMean } from './suggest.js';

/** The words and message texts of one operand-quantizing statement. */
export interface OperandQuantSpec<K extends 'qk' | 'pv', E extends string, F extends string> {
  /** The keyword, the AST node's kind and the AttentionDecl field holding the statements. */
  readonly kind: K;
  /** The CST label of the keyword token (`Qk`). */
  readonly keywordToken: string;
  /** The element types accepted, the first one named in hints (`qk int8`). */
  readonly elems: readonly [E, ...E[]];
  /** The matmul, as `unknown NOUN element type` names it (`Q·Kᵀ`). */
  readonly matmul: string;
  /** Element words that exist elsewhere but not here, and the hint given for them. */
  readonly otherElems: readonly string[];
  readonly otherElemsHint: string;
  /** The smoothed operand (`k`), and its AST field (`smoothK`). */
  readonly operand: 'k' | 'v';
  readonly smoothField: F;
  /** The other input of the matmul (`q`), and the hint when `smooth` names it. */
  readonly partner: string;
  readonly partnerHint: string;
  /** The hint when `smooth` names any other word. */
  readonly otherSmoothHint: string;
  /** Appended to `cannot smooth \`WORD\`` (empty, or ` in \`pv\``). */
  readonly cannotSmoothSuffix: string;
}

/** `KIND ELEM [smooth OPERAND]`, with the smooth clause's span under the spec's field name. */
export type OperandQuantDecl<K extends string, E extends string, F extends string> = {
  readonly kind: K;
  readonly keywordSpan: Span;
  readonly elem: E;
  readonly elemSpan: Span;
} & { readonly [P in F]?: Span } & { readonly span: Span };

type Tok = IToken[] | undefined;
type Ch = Partial<Record<string, Tok>> & { elem?: Tok; Smooth?: Tok; smoothed?: Tok };

/** The element word, else a diagnostic. */
function elemOf<E extends string>(
  spec: OperandQuantSpec<'qk' | 'pv', E, string>,
  b: AstBuilder,
  word: IToken,
): E | undefined {
  const found = spec.elems.find((e) => e === word.image);
  if (found) return found;
  const hint =
    didYouMean(word.image, spec.elems) ??
    (spec.otherElems.includes(word.image) ? spec.otherElemsHint : `write \`${spec.kind} ${spec.elems[0]}\``);
  b.diags.push(error(`unknown ${spec.matmul} element type \`${word.image}\``, b.span(word), hint));
  return undefined;
}

/** Whether the `smooth` clause names the operand (reported when it names anything else). */
function smoothedIsOperand(
  spec: OperandQuantSpec<'qk' | 'pv', string, string>,
  b: AstBuilder,
  word: IToken,
): boolean {
  if (word.image === spec.operand) return true;
  const hint = word.image === spec.partner ? spec.partnerHint : spec.otherSmoothHint;
  b.diags.push(error(`cannot smooth \`${word.image}\`${spec.cannotSmoothSuffix}`, b.span(word), hint));
  return false;
}

/** Builds `KIND ELEM [smooth OPERAND]`; undefined (reported) when a word is missing or unknown. */
export function buildOperandQuant<K extends 'qk' | 'pv', E extends string, F extends string>(
  spec: OperandQuantSpec<K, E, F>,
  b: AstBuilder,
  n: CstNode,
): OperandQuantDecl<K, E, F> | undefined {
  const c = (n.children ?? {}) as Ch;
  const kw = c[spec.keywordToken]?.[0];
  const word = c.elem?.[0];
  if (!b.isReal(kw) || !b.isReal(word)) return undefined;
  const elem = elemOf(spec, b, word);
  const smoothKw = c.Smooth?.[0];
  const smoothed = c.smoothed?.[0];
  if (b.isReal(smoothKw) && !b.isReal(smoothed)) return undefined; // the parser reported it
  const smooth = b.isReal(smoothed) && smoothedIsOperand(spec, b, smoothed);
  if (elem === undefined || (b.isReal(smoothed) && !smooth)) return undefined;
  const keywordSpan = b.span(kw);
  const elemSpan = b.span(word);
  const last = b.isReal(smoothed) ? b.span(smoothed) : elemSpan;
  return {
    kind: spec.kind,
    keywordSpan,
    elem,
    elemSpan,
    ...(smooth ? { [spec.smoothField]: cover(b.span(smoothKw), last) } : {}),
    span: cover(keywordSpan, last),
  } as OperandQuantDecl<K, E, F>;
}

/**
 * One statement of the spec's kind; the operand not also a quantized cache (`store OPERAND|kv`):
 * its codes would be quantized twice, and the K/V storage formats dequantize to f32 before the
 * matmul anyway.
 */
export function checkOperandQuant(
  spec: OperandQuantSpec<'qk' | 'pv', string, string>,
  decl: AttentionDecl,
  ctx: SparsityCheckCtx,
): void {
  const stmts: readonly { readonly keywordSpan: Span; readonly span: Span }[] = decl[spec.kind] ?? [];
  const first = stmts[0];
  for (const s of stmts.slice(1))
    ctx.err(
      `only one \`${spec.kind}\` statement is allowed`,
      s.keywordSpan,
      first && `the first is on line ${first.keywordSpan.line}`,
    );
  if (!first) return;
  const stored = (decl.storage ?? []).find((s) => s.target === spec.operand || s.target === 'kv');
  const tensor = spec.operand.toUpperCase();
  if (stored)
    ctx.err(
      `\`${spec.kind} ${spec.elems[0]}\` needs ${tensor} in 16 bits, but a \`store\` statement quantizes it`,
      first.span,
      `the \`store ${stored.target}\` on line ${stored.keywordSpan.line} already stores ${tensor} as codes; keep one of the two`,
    );
}
