// Where recovery resumes in a declaration body after a bad statement. chevrotain skips tokens
// until one can start a statement, so after `msak causal` it swallows a misspelt `scroe` on the
// next line and re-syncs at the `score` inside it, reporting `*` ("expected an expression")
// instead of the misspelling. People read a body line by line: a line that starts at (or left
// of) the broken line's indentation is the next statement, whatever its first word, so recovery
// stops there too and the parser reports that word on its own (with its did-you-mean).
// Deeper-indented lines are continuations of the broken statement and are skipped as before.
import { EOF, type IToken } from 'chevrotain';
import { Attention } from './lexer.js';

/** chevrotain's in-repetition recovery (traits/recoverable.js): a method its typings omit. */
export interface RepetitionRecovery {
  tryInRepetitionRecovery(
    rule: (...args: unknown[]) => unknown,
    args: unknown[],
    lookAhead: () => boolean,
    expected: unknown,
  ): void;
}

/**
 * The lookahead recovery tests at each skipped token: the body's own (a statement word), or a
 * line start at or left of the broken line's indentation. `la(k)` is the parser's LA; `la(1)`
 * is the token that failed when this is called.
 */
export function lineStartLookahead(la: (k: number) => IToken, startsStatement: () => boolean): () => boolean {
  const failed = la(1);
  const indent = lineIndent(la, failed);
  return () => {
    const tok = la(1);
    if (tok === failed || endsBody(tok)) return startsStatement();
    const startsLine = (tok.startLine ?? 0) > (la(0).endLine ?? Number.POSITIVE_INFINITY);
    return (startsLine && (tok.startColumn ?? 0) <= indent) || startsStatement();
  };
}

/** A missing `}` is reported by the declaration (`is a \`}\` missing above?`), not here. */
const endsBody = (t: IToken): boolean => t.tokenType === Attention || t.tokenType === EOF;

/** Column of the first token on `failed`'s line (the tokens before it are `la(0)`, `la(-1)`, …). */
function lineIndent(la: (k: number) => IToken, failed: IToken): number {
  let column = failed.startColumn ?? 1;
  for (let k = 0; ; k--) {
    const t = la(k);
    if (t.tokenType === EOF || t.startLine !== failed.startLine) return column;
    column = t.startColumn ?? column;
  }
}
