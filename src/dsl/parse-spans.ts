// Where the front end points for a parse error: the offending token, or just after the last good
// one when something is missing at the end of a line, and a hint for a member access.
import { EOF, type IRecognitionException, type IToken } from 'chevrotain';
import type { Span } from '../diagnostics.js';
import { Dot, Identifier } from './lexer.js';

export const isReal = (t: IToken | undefined): t is IToken =>
  t !== undefined && t.tokenType !== EOF && t.startOffset >= 0 && Number.isFinite(t.startOffset);

export function tokenSpan(t: IToken, file: string): Span {
  return {
    file,
    line: t.startLine ?? 1,
    column: t.startColumn ?? 1,
    offset: t.startOffset,
    length: t.image.length,
  };
}

/** The position just after `t` (where a missing `)` belongs). */
export function afterToken(t: IToken, file: string): Span {
  const line = t.endLine ?? t.startLine ?? 1;
  const column = (t.endColumn ?? t.startColumn ?? 0) + 1;
  return { file, line, column, offset: (t.endOffset ?? t.startOffset) + 1, length: 1 };
}

export function endOfSource(source: string, file: string): Span {
  const lastBreak = source.lastIndexOf('\n');
  const line = source.split('\n').length;
  return { file, line, column: source.length - lastBreak, offset: source.length, length: 1 };
}

/** Tokens that, found on a later line, mean something is *missing* before them. */
const closers = new Set([
  'RBrace',
  'RParen',
  'RBracket',
  'Attention',
  'Mask',
  'Score',
  'Let',
  'Route',
  'Select',
  'Emit',
  'Store',
  'Importance',
  'Cache',
  'Qk',
  'Pv',
]);

/**
 * Where to point for a parse error: at the offending token, unless something is missing at the
 * end of a line (the next token is the end of file, or a closer or statement keyword on a later
 * line); then just after the last good token, where the missing piece belongs.
 */
export function errorSpan(e: IRecognitionException, source: string, file: string): Span {
  const prev = (e as { previousToken?: IToken }).previousToken;
  const tok = e.token;
  if (isReal(prev)) {
    const missing =
      !isReal(tok) || (closers.has(tok.tokenType.name) && (tok.startLine ?? 0) > (prev.endLine ?? 0));
    if (missing) return afterToken(prev, file);
  }
  return isReal(tok) ? tokenSpan(tok, file) : endOfSource(source, file);
}

/**
 * `torch.tanh(x)`: a `.` right after a name is a member access, which the language has none of;
 * chevrotain's `previous` token is not always the one before the error, so look it up.
 */
export function memberHint(token: IToken, tokens: readonly IToken[]): string | undefined {
  if (!isReal(token) || token.tokenType !== Dot) return undefined;
  const before = tokens[tokens.indexOf(token) - 1];
  if (before?.tokenType !== Identifier || (before.endOffset ?? -2) + 1 !== token.startOffset)
    return undefined;
  return 'names have no `.` members: call a function by its name, like `tanh(x)`';
}
