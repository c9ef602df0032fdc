// What the statement builders (cst-sparsity.ts, cst-storage.ts) share: the CST children view and
// the span bookkeeping of a statement read piece by piece.
import type { CstNode, IToken } from 'chevrotain';
import { error, type Span } from '../diagnostics.js';
import type { AstBuilder } from './cst-sparsity.js';
import { cover } from './holes.js';

export const ch = <C>(n: CstNode | undefined): C => (n?.children ?? {}) as C;
export const q = (code: string): string => `\`${code}\``;

/** A statement builder: it reads the statement's pieces in source order and reports on them. */
export abstract class PieceReader {
  /** The last real piece read: pieces are read in source order, so it ends what is built. */
  protected end: Span;

  constructor(
    protected readonly b: AstBuilder,
    start: Span,
  ) {
    this.end = start;
  }

  protected at(t: IToken | undefined): Span {
    const s = this.b.span(t);
    if (this.b.isReal(t)) this.end = s;
    return s;
  }

  /** From `start` to the end of the last real piece. */
  protected upTo(start: Span): Span {
    return cover(start, this.end);
  }

  protected err(message: string, span: Span, hint?: string): void {
    this.b.diags.push(error(message, span, hint));
  }
}
