// Follow-on syntax errors: after a mistake inside a statement, chevrotain's recovery re-syncs on
// the next word it knows, often in the middle of what the user meant as the same statement
// (`scroe cap * tanh(score / cap)` re-syncs at the second `score`, `store k scale f16` reads
// `scale` as the element type and then stops at `f16`). What it reports after that on the same
// line is noise about its own guess, not the user's next mistake, so it is dropped.
// Parameter lists are exempt: recovery there re-syncs at the `,`, and two misspelt types on one
// header line are two real mistakes.
import type { IToken } from 'chevrotain';
import type { Diagnostic } from '../diagnostics.js';
import { Attention, LBrace } from './lexer.js';

/** `[start, end]` offsets of each declaration header: from `attention` to its `{`. */
export function headerRanges(tokens: readonly IToken[]): [number, number][] {
  const out: [number, number][] = [];
  let start: number | undefined;
  for (const t of tokens) {
    if (t.tokenType === Attention) start = t.startOffset;
    else if (t.tokenType === LBrace && start !== undefined) {
      out.push([start, t.startOffset]);
      start = undefined;
    }
  }
  if (start !== undefined) out.push([start, Number.POSITIVE_INFINITY]); // no `{`: all header
  return out;
}

/**
 * Drops each error that follows an earlier one on the same line of a declaration body, where
 * either of the two is the parser's: the AST builder's own errors (`avg(q) . mean(q) vote head`,
 * `&` for `&&`) read words the parse accepted, so each is a mistake of its own. A lexer error
 * (`q ≥ k`) is the parser's kind of earlier error: the parser never saw the character and reads
 * `q k`. The lexer's own errors are the caller's to keep; they are not returned.
 */
export function withoutFollowOns(
  parse: readonly Diagnostic[],
  built: readonly Diagnostic[],
  headers: readonly [number, number][],
  lexed: readonly Diagnostic[] = [],
): Diagnostic[] {
  const fromParser = new Set(parse);
  const fromLexer = new Set(lexed);
  const inHeader = (o: number): boolean => headers.some(([a, b]) => o >= a && o <= b);
  const lineHasParseError = new Set<number>();
  const lineHasError = new Set<number>();
  return sortByOffset([...lexed, ...parse, ...built]).filter((d) => {
    if (fromLexer.has(d)) {
      if (!inHeader(d.span.offset)) lineHasError.add(d.span.line);
      return false;
    }
    if (d.severity !== 'error' || inHeader(d.span.offset)) return true;
    const line = d.span.line;
    const follows = fromParser.has(d) ? lineHasError.has(line) : lineHasParseError.has(line);
    if (follows) return false;
    lineHasError.add(line);
    if (fromParser.has(d)) lineHasParseError.add(line);
    return true;
  });
}

/** Stable: diagnostics at one offset keep their order. */
function sortByOffset(ds: Diagnostic[]): Diagnostic[] {
  return ds
    .map((d, i) => ({ d, i }))
    .sort((a, b) => a.d.span.offset - b.d.span.offset || a.i - b.i)
    .map((x) => x.d);
}
