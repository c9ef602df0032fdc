// Physical K/V caches for the strided and paged tests (docs/LANGUAGE.md "Paged and strided
// caches"): a preallocated cache of capacity > Nk, a BNHD view, and paged pools in HND and NHD page
// layouts with the pages in a random order and spare pages. Every element the layout does not
// address is NaN, so a kernel that reads outside the addressed rows poisons its output.
import { scatterKv, type KvCacheLayout, type KvSizes } from '../../src/runtime/kv-cache.js';

export type LayoutKind = 'packed' | 'capacity' | 'bnhd' | 'hnd-pages' | 'nhd-pages';
export const stridedKinds = ['capacity', 'bnhd'] as const;
export const pagedKinds = ['hnd-pages', 'nhd-pages'] as const;

/** Rounds n up to a multiple of `align` (the coop engines' vec4 strides). */
const up = (n: number, align: number): number => Math.ceil(n / align) * align;

/** A strided layout of `kind` for K or V of sizes `n`, and the cache length it needs. */
export function stridedLayout(
  kind: LayoutKind,
  n: KvSizes,
  r: () => number,
  align = 1,
): { layout: KvCacheLayout; length: number } {
  const C = n.Nk + 1 + Math.floor(r() * 9);
  const W = up(n.W + (r() < 0.5 ? 0 : Math.floor(r() * 5)), align); // rows may be padded
  const strides =
    kind === 'bnhd'
      ? { batch: C * n.Hkv * W, head: W, row: n.Hkv * W }
      : kind === 'packed'
        ? { batch: n.Hkv * n.Nk * n.W, head: n.Nk * n.W, row: n.W }
        : { batch: n.Hkv * C * W, head: C * W, row: W };
  const length = kind === 'packed' ? n.B * n.Hkv * n.Nk * n.W : n.B * C * n.Hkv * W;
  return { layout: { kind: 'strided', strides }, length: Math.max(length, 1) };
}

/** A paged pool of page size P (HND or NHD pages, shuffled, spare pages) shared by K and V. */
export function pagedTable(
  n: { B: number; Nk: number },
  P: number,
  r: () => number,
): { blockTable: Int32Array; maxPages: number; pool: number } {
  const maxPages = Math.max(1, Math.ceil(n.Nk / P) + (r() < 0.5 ? 1 : 0));
  const pool = n.B * maxPages + 2;
  const ids = Array.from({ length: pool }, (_, i) => i).sort(() => r() - 0.5);
  const blockTable = Int32Array.from({ length: n.B * maxPages }, (_, i) => ids[i]!);
  return { blockTable, maxPages, pool };
}

/** A paged layout of `kind` over the table, and the pool's length in elements. */
export function pagedLayout(
  kind: 'hnd-pages' | 'nhd-pages',
  n: KvSizes,
  P: number,
  t: { blockTable: Int32Array; maxPages: number; pool: number },
): { layout: KvCacheLayout; length: number } {
  const page = n.Hkv * P * n.W;
  const strides =
    kind === 'hnd-pages'
      ? { batch: page, head: P * n.W, row: n.W }
      : { batch: page, head: n.W, row: n.Hkv * n.W };
  return {
    layout: { kind: 'paged', pageSize: P, strides, blockTable: t.blockTable, maxPages: t.maxPages },
    length: t.pool * page,
  };
}

/** The physical cache (NaN where nothing is addressed) holding `logical` at `layout`. */
export function physicalCache(
  logical: Float32Array,
  n: KvSizes,
  l: { layout: KvCacheLayout; length: number },
): Float32Array {
  const cache = new Float32Array(l.length).fill(Number.NaN);
  scatterKv(logical, cache, l.layout, n);
  return cache;
}
