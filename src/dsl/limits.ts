// Size limits of the language (docs/LANGUAGE.md, "Limits"), enforced on the token stream before
// any recursive phase runs. Every later phase — parser, AST builder, checker, printer, lowering,
// the IR passes, code generation and the reference interpreter — recurses over expressions, so
// what it may meet must be bounded up front: a source it cannot handle gets a positioned
// diagnostic here instead of a RangeError (or minutes of work) later.
//
// Why these bound the recursion:
// - The parser descends one rule chain per open `(` / `[` (≤ `nesting`), and one rule per prefix
//   operator or `?` (each counted in `operators`); binary operator chains are loops.
// - An AST node other than a leaf comes from at least one operator token of its expression, so
//   an expression's AST depth is at most its operator count (≤ `operators`).
// - `let`s are written out by lowering, so the checker bounds the *inlined* depth (`depth`), and
//   the masks of a declaration become a chain of `&&` (≤ `masks`).
// This reasoning holds for a source that parses cleanly (its expressions are the ones the token
// scan saw). Error recovery can join broken pieces into one expression; the front end catches
// running out of stack on such a source (index.ts), and only clean declarations are lowered.
import type { IToken, TokenType } from 'chevrotain';
import { error, type Diagnostic, type Span } from '../diagnostics.js';
import type { Expr } from './ast.js';
import * as T from './lexer.js';

export const limits = {
  /** Characters in one source (256 Ki): far beyond any kernel, and checked within a second or two. */
  sourceChars: 1 << 18,
  /** Open `(` and `[` at any point. */
  nesting: 32,
  /** Operators in one expression: binary and prefix operators, `?`, and each `(` or `[`. */
  operators: 256,
  /** Depth of an expression with the `let`s it uses written out (an operator adds one level). */
  depth: 256,
  /** `mask` statements in one declaration. */
  masks: 64,
} as const;

const openers: readonly TokenType[] = [T.LParen, T.LBracket];
const closers: readonly TokenType[] = [T.RParen, T.RBracket];
/** Tokens that cannot occur inside an expression: an expression surely ends before them. */
const hardEnds: readonly TokenType[] = [T.Attention, T.Mask, T.Let, T.LBrace, T.RBrace];
/** Tokens after which an expression is complete (an operand ends there). */
const operandEnds: readonly TokenType[] = [
  T.Identifier,
  T.IntLit,
  T.FloatLit,
  T.True,
  T.False,
  T.Score,
  T.RParen,
  T.RBracket,
];
const operatorCategories: readonly TokenType[] = [T.AddOp, T.MulOp, T.RelOp, T.EqOp, T.AndOp, T.OrOp];

function is(t: IToken | undefined, types: readonly TokenType[]): boolean {
  if (t === undefined) return false;
  const type = t.tokenType;
  return types.includes(type) || (type.CATEGORIES ?? []).some((c) => types.includes(c));
}

function isOperator(t: IToken): boolean {
  return is(t, operatorCategories) || is(t, [T.Bang, T.Question, T.LParen, T.LBracket]);
}

/**
 * True where a new expression starts: after a token no expression contains, at `score` right
 * after a complete operand (the `score` statement; inside an expression `score` follows an
 * operator), and at a routing statement's verb followed by its unit or source (as the parser
 * decides it). Missing one would only merge two expressions' counts, never split one.
 */
function startsExpression(tokens: readonly IToken[], i: number, nesting: number): boolean {
  const t = tokens[i];
  const prev = tokens[i - 1];
  if (t === undefined) return false;
  if (is(prev, hardEnds)) return true;
  if (nesting > 0 || !is(prev, operandEnds)) return false;
  if (t.tokenType === T.Score) return true;
  const next = tokens[i + 1]?.tokenType;
  return (
    T.sparsityKeywords.includes(t.tokenType) &&
    next !== undefined &&
    [T.Blocks, T.Chunks, T.Topk, T.From].includes(next)
  );
}

function tokenSpan(t: IToken, file: string): Span {
  const line = t.startLine ?? 1;
  const column = t.startColumn ?? 1;
  return { file, line, column, offset: t.startOffset, length: t.image.length };
}

/** A source over `limits.sourceChars`: reported before lexing, so huge inputs cost nothing. */
export function checkSourceSize(source: string, file: string): Diagnostic | undefined {
  if (source.length <= limits.sourceChars) return undefined;
  const at: Span = { file, line: 1, column: 1, offset: 0, length: 1 };
  const size = `${source.length} characters`;
  return error(
    `the source is too large: ${size}, the limit is ${limits.sourceChars}`,
    at,
    'split it into several files',
  );
}

/**
 * Nesting and operator counts of the token stream; one diagnostic per expression that goes over
 * a limit, at the token where it does. Linear in the number of tokens.
 */
export function checkTokenLimits(tokens: readonly IToken[], file: string): Diagnostic[] {
  const out: Diagnostic[] = [];
  let nesting = 0;
  let operators = 0;
  let reported = false;
  tokens.forEach((t, i) => {
    if (startsExpression(tokens, i, nesting)) {
      operators = 0;
      reported = false;
    }
    if (is(t, openers)) nesting++;
    if (is(t, closers)) nesting = Math.max(0, nesting - 1);
    if (isOperator(t)) operators++;
    if (reported) return;
    if (nesting > limits.nesting) {
      reported = true;
      const hint = 'name parts of it with `let`';
      out.push(
        error(`nesting too deep: more than ${limits.nesting} open brackets`, tokenSpan(t, file), hint),
      );
    } else if (operators > limits.operators) {
      reported = true;
      const hint = 'split it into `let`s, or into several `mask` statements';
      const msg = `expression too long: more than ${limits.operators} operators`;
      out.push(error(msg, tokenSpan(t, file), hint));
    }
  });
  return out;
}

/**
 * AST depth of `e` (an operator adds one level) with the `let`s it names written out, as lowering
 * writes them; `letDepths` holds each earlier let's own inlined depth. Recursive: call it only on
 * expressions within the token limits, whose depth is at most `limits.operators`.
 */
export function inlinedDepth(e: Expr, letDepths: ReadonlyMap<string, number>): number {
  const deepest = (xs: readonly Expr[]): number => Math.max(0, ...xs.map((x) => inlinedDepth(x, letDepths)));
  switch (e.kind) {
    case 'num':
    case 'bool':
      return 0;
    case 'name':
      return letDepths.get(e.name) ?? 0;
    case 'unary':
      return 1 + deepest([e.operand]);
    case 'binary':
      return 1 + deepest([e.left, e.right]);
    case 'ternary':
      return 1 + deepest([e.cond, e.then, e.otherwise]);
    case 'call':
      return 1 + deepest(e.args);
    case 'index':
      return 1 + deepest(e.indices);
  }
}
