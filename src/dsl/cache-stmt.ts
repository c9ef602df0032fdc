// `cache paged N` (docs/LANGUAGE.md, "Paged and strided caches"): the kernel reads K and V rows
// through a block table of pages of N rows instead of one contiguous run of rows per (batch,
// kv head). This file builds the statement from its CST, checks it and prints it; the layout
// reaches the kernel as TensorFormats.paged (ir/formats.ts). Strides need no statement: every
// kernel takes them at run time, packed by default.
import type { CstNode, IToken } from 'chevrotain';
import { error } from '../diagnostics.js';
import type { CacheDecl, StorageDecl } from './ast-storage.js';
import type { AttentionDecl } from './ast.js';
import type { SparsityCheckCtx } from './check-sparsity.js';
import type { AstBuilder } from './cst-sparsity.js';
import { cover } from './holes.js';
import { didYouMean } from './suggest.js';

/** Largest page size: a page's rows are addressed with 32-bit ints inside it. */
export const MAX_PAGE_SIZE = 65536;

type Tok = IToken[] | undefined;
interface CacheCh {
  Cache?: Tok;
  Identifier?: Tok;
  IntLit?: Tok;
}

const layouts = ['paged'] as const;

/** Builds `cache paged N`; undefined (reported) when the layout word or the size is unreadable. */
export function buildCache(b: AstBuilder, n: CstNode): CacheDecl | undefined {
  const c = (n.children ?? {}) as CacheCh;
  const kw = c.Cache?.[0];
  const word = c.Identifier?.[0];
  const size = c.IntLit?.[0];
  if (!b.isReal(kw) || !b.isReal(word)) return undefined;
  const keywordSpan = b.span(kw);
  const wordSpan = b.span(word);
  if (!layouts.some((l) => l === word.image)) {
    const hint = didYouMean(word.image, layouts) ?? 'the one cache layout is `paged`, like `cache paged 64`';
    b.diags.push(error(`unknown cache layout \`${word.image}\``, wordSpan, hint));
    return undefined;
  }
  if (!b.isReal(size)) return undefined;
  const pageSizeSpan = b.span(size);
  const pageSize = Number(size.image);
  return {
    kind: 'cache',
    keywordSpan,
    layout: 'paged',
    pageSize,
    pageSizeSpan,
    span: cover(keywordSpan, pageSizeSpan),
  };
}

const isPowerOfTwo = (n: number): boolean => Number.isInteger(n) && n >= 1 && (n & (n - 1)) === 0;

/**
 * A paged quantized cache keeps a per-channel scale of g tokens in the page of those tokens
 * (docs/LANGUAGE.md, "Paged quantized caches"), so a group must not straddle two pages: the page
 * size must be a multiple of g. (Per-token scales page with their rows; the rest is per sequence.)
 */
function checkPagedGroups(store: StorageDecl, pageSize: number, ctx: SparsityCheckCtx): void {
  const per = store.scale?.per;
  if (!per || per.kind !== 'channel' || !per.group) return;
  const g = ctx.fold(per.group);
  if (typeof g !== 'number' || !Number.isInteger(g) || g < 1) return; // checkStorage reports it
  if (pageSize % g !== 0)
    ctx.err(
      `a page of ${pageSize} rows splits the groups of ${g} tokens of \`per channel group ${g}\``,
      per.span,
      `a group's scale lives in its tokens' page, so the page size must be a multiple of ${g}`,
    );
}

/** One `cache` statement, a power-of-two page size, groups of tokens that pages do not split. */
export function checkCache(decl: AttentionDecl, ctx: SparsityCheckCtx): void {
  const stmts = decl.cache ?? [];
  const first = stmts[0];
  for (const s of stmts.slice(1))
    ctx.err(
      'only one `cache` statement is allowed',
      s.keywordSpan,
      first && `the first is on line ${first.keywordSpan.line}`,
    );
  if (!first) return;
  const n = first.pageSize;
  if (!isPowerOfTwo(n) || n > MAX_PAGE_SIZE) {
    const below = 2 ** Math.max(0, Math.floor(Math.log2(Math.max(1, Math.min(n, MAX_PAGE_SIZE)))));
    ctx.err(
      `a page size must be a power of two from 1 to ${MAX_PAGE_SIZE}, found ${first.pageSize}`,
      first.pageSizeSpan,
      `pages are addressed with shifts and masks; try ${below}`,
    );
  }
  for (const store of decl.storage ?? []) checkPagedGroups(store, n, ctx);
  // Routing, selection and the importance pass over a paged cache: per target, at compile time
  // (ir/storage-support.ts; CUDA runs selection and importance through the block table).
}
