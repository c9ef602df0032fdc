// Which tensors of a quantized cache page, and their shapes in a pool (docs/LANGUAGE.md, "Paged
// quantized caches"): rows of codes, wide codes and per-token scales are page-local rows of the
// block table's pages; a per-channel scale of g tokens is row (t mod P) / g of its page (g must
// divide P); the rest (per tensor, per channel without a group, norm, recent) is per sequence.
// The kernels' addressing (codegen/cuda/kv-rows.ts kv_qrow) and the runtime's pools
// (runtime/kv-quant-pages.ts) follow this one definition.
import { codesPerWord } from './elem.js';
import type { QuantFormat } from './format.js';
import { cacheLayout, scaleGroups, wordsPerRow, type CacheSizes, type QuantCache } from './layout.js';

/** A block table over a pool of `pages` pages of `pageSize` rows. */
export interface QuantPages {
  readonly pageSize: number;
  /** [B, maxPages] page ids, row-major; longer is fine (rows past B, as a table made for a larger batch, are unused). */
  readonly blockTable: Int32Array;
  readonly maxPages: number;
  /** Pages in the pool. */
  readonly pages: number;
}

/** A tensor of a quantized cache. */
export type CachePart = keyof QuantCache;

/**
 * How tensor `name` of a cache pages: rows of `rowLen` elements, P / tokensPerRow of them per
 * (page, kv head), row r of (b, h) covering tokens [r·tokensPerRow, (r + 1)·tokensPerRow);
 * undefined for a per-sequence tensor.
 */
export function pagedRows(
  f: QuantFormat,
  name: CachePart,
  D: number,
  P: number,
): { rowLen: number; tokensPerRow: number } | undefined {
  if (name === 'codes') return { rowLen: wordsPerRow(D, codesPerWord(f.elem)), tokensPerRow: 1 };
  if (name === 'codesHi' && f.kind === 'int' && f.salient)
    return { rowLen: wordsPerRow(D, codesPerWord(f.salient.elem)), tokensPerRow: 1 };
  if ((name === 'scale' || name === 'zero') && f.scale) {
    const per = f.scale.per;
    if (per.kind === 'token') return { rowLen: scaleGroups(per, 1, D).channels, tokensPerRow: 1 };
    if (per.kind === 'channel' && per.group) {
      if (P % per.group !== 0)
        throw new Error(
          `a paged cache of ${P}-row pages cannot hold scales per channel group ${per.group} (the page size must be a multiple of the group)`,
        );
      return { rowLen: D, tokensPerRow: per.group };
    }
  }
  return undefined;
}

/** The shape of tensor `name` of a paged cache (per-sequence tensors keep their unpaged shapes). */
export function pagedTensorShape(
  f: QuantFormat,
  name: CachePart,
  s: CacheSizes,
  pages: Pick<QuantPages, 'pageSize' | 'pages'>,
): number[] {
  const rows = pagedRows(f, name, s.D, pages.pageSize);
  const t = cacheLayout(f, s).find((x) => x.name === name);
  if (!t) throw new Error(`a cache of format ${f.elem} has no tensor '${name}'`);
  if (!rows) return [...t.shape];
  return [pages.pages, s.Hkv, pages.pageSize / rows.tokensPerRow, rows.rowLen];
}
