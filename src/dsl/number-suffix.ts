// Numbers as other languages write them (`0x10`, `1_000`, `1.5f`, `1e`): the lexer reads the
// digits as a number and the letters after them as a name, which the parser then reported as
// "expected a statement …, found `x10`" at the letters. Here a number directly followed by
// letters becomes one error over the whole word, and the letters leave the token stream, so
// the statement parses on as if the number were plain.
import type { IToken } from 'chevrotain';
import type { LexError } from './lexer.js';

const startsLikeName = /^[A-Za-z_]/;
const isNumber = (t: IToken): boolean => t.tokenType.name === 'IntLit' || t.tokenType.name === 'FloatLit';
const adjacent = (a: IToken, b: IToken | undefined): b is IToken =>
  b !== undefined && b.startOffset === a.endOffset! + 1;

function hintFor(num: string, suffix: string): string {
  if (/^[xX]/.test(suffix) && num === '0')
    return 'hex literals are not supported: write the number in decimal';
  if (suffix.startsWith('_')) return 'write numbers without `_`';
  if (/^[eE]$/.test(suffix)) return 'an exponent needs digits, like `1e-3`';
  return 'numbers take no suffix: `1.5` is f32, `1` is int';
}

/** `tokens` without the letters glued to numbers, and one error for each such number. */
export function splitNumberSuffixes(tokens: readonly IToken[]): { tokens: IToken[]; errors: LexError[] } {
  const kept: IToken[] = [];
  const errors: LexError[] = [];
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]!;
    kept.push(t);
    const next = tokens[i + 1];
    if (!isNumber(t) || !adjacent(t, next) || !startsLikeName.test(next.image)) continue;
    let last = next;
    i++;
    // `1e-` and `2.5e+`: the sign belongs to the would-be exponent.
    const sign = tokens[i + 1];
    if (/^[eE]$/.test(next.image) && adjacent(next, sign) && (sign.image === '+' || sign.image === '-')) {
      last = sign;
      i++;
    }
    const word = t.image + next.image + (last === next ? '' : last.image);
    errors.push({
      offset: t.startOffset,
      line: t.startLine ?? 1,
      column: t.startColumn ?? 1,
      length: last.endOffset! + 1 - t.startOffset,
      message: `malformed number \`${word}\``,
      hint: hintFor(t.image, next.image),
    });
  }
  return { tokens: kept, errors };
}
