// A quoted string (`"a b"`, `'c'`, or `"open` to the end of the line): the language has none.
// Lexed as one token (lexer.ts StringLit) so that it is one error over the whole string, not an
// "unexpected character" per quote plus a parse error per word inside; in the parser's stream a
// number takes its place, so the statement around it parses on without follow-on errors (the
// checker's are dropped in a statement with a syntax error).
import type { IToken, TokenType } from 'chevrotain';
import type { LexError } from './lexer.js';

/** `tokens` with a `placeholder` token where each string was, and one error per string. */
export function replaceStrings(
  tokens: readonly IToken[],
  strings: readonly IToken[],
  placeholder: TokenType,
): { tokens: IToken[]; errors: LexError[] } {
  if (strings.length === 0) return { tokens: [...tokens], errors: [] };
  const errors: LexError[] = strings.map((s) => ({
    offset: s.startOffset,
    line: s.startLine ?? 1,
    column: s.startColumn ?? 1,
    length: s.image.length,
    message: `unexpected string \`${s.image}\``,
    hint: 'the language has no strings',
  }));
  const stand = strings.map((s): IToken => ({
    ...s,
    image: '0',
    tokenType: placeholder,
    tokenTypeIdx: placeholder.tokenTypeIdx!,
  }));
  const merged = [...tokens, ...stand].sort((a, b) => a.startOffset - b.startOffset);
  return { tokens: merged, errors };
}
