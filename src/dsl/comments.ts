// Doc comments and file headers: which comment lines document which `attention`, recovered
// from the lexer's comment group after lexing (lexer.ts keeps comments out of the parser's input).
import type { IToken } from 'chevrotain';
import { Attention } from './lexer.js';

/** The text of one comment: `//` and one space stripped; a block comment's lines without `*`. */
function commentLines(t: IToken): string[] {
  if (t.image.startsWith('//')) return [t.image.replace(/^\/\/+ ?/, '').trimEnd()];
  const body = t.image.slice(2, -2).split('\n');
  const lines = body.map((l) => l.replace(/^\s*\*? ?/, '').trimEnd());
  while (lines.length > 0 && lines[0] === '') lines.shift();
  while (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  return lines;
}

interface CommentBlock {
  /** How many non-comment tokens precede the block. */
  readonly before: number;
  readonly endLine: number;
  readonly lines: string[];
}

/**
 * Groups comments that sit on their own lines (not trailing code) into blocks of consecutive
 * lines with no code in between. A blank line or a line of code ends a block.
 */
function commentBlocks(tokens: readonly IToken[], comments: readonly IToken[]): CommentBlock[] {
  const blocks: CommentBlock[] = [];
  let ti = 0;
  let current: { before: number; endLine: number; lines: string[] } | undefined;
  for (const c of comments) {
    while (ti < tokens.length && (tokens[ti]?.startOffset ?? Infinity) < c.startOffset) ti++;
    const prevEnd = ti > 0 ? (tokens[ti - 1]?.endLine ?? 0) : 0;
    const start = c.startLine ?? 1;
    const end = c.endLine ?? start;
    if (prevEnd >= start) {
      current = undefined; // a trailing comment like `mask causal // …` is nobody's doc
      continue;
    }
    if (current && current.before === ti && start <= current.endLine + 1) {
      current.lines.push(...commentLines(c));
      current.endLine = end;
    } else {
      current = { before: ti, endLine: end, lines: commentLines(c) };
      blocks.push(current);
    }
  }
  return blocks;
}

export interface AttachedComments {
  /** Comment lines at the top of the file (blocks separated by one empty line). */
  readonly header: string;
  /** Doc text per `attention` keyword, keyed by that token's start offset. */
  readonly docs: ReadonlyMap<number, string>;
}

/**
 * Doc of a declaration = the comment block ending on the line right above its `attention`.
 * Header = the comment blocks before the first token. When the only top-of-file block is also
 * the first declaration's doc (the usual single-pattern stdlib file), it is both; otherwise the
 * first declaration's doc block is not repeated in the header.
 */
export function attachComments(tokens: readonly IToken[], comments: readonly IToken[]): AttachedComments {
  const blocks = commentBlocks(tokens, comments);
  const docs = new Map<number, string>();
  const docBlocks = new Set<CommentBlock>();
  tokens.forEach((t, i) => {
    if (t.tokenType !== Attention) return;
    const last = blocks.findLast((b) => b.before === i);
    if (last && last.endLine >= (t.startLine ?? 1) - 1) {
      docs.set(t.startOffset, last.lines.join('\n'));
      docBlocks.add(last);
    }
  });
  let top = blocks.filter((b) => b.before === 0);
  if (top.length > 1) top = top.filter((b) => !docBlocks.has(b));
  const header = top.map((b) => b.lines.join('\n')).join('\n\n');
  return { header, docs };
}
