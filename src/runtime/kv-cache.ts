// K/V caches as kernels read them (docs/LANGUAGE.md "Paged and strided caches"): a strided
// cache (element strides per batch, kv head and row, e.g. a preallocated cache of capacity C > Nk
// or a BNHD view) or a paged one (a block table of page ids per batch; a page holds rows of every
// kv head at its own strides). The reference reads the logical [B, Hkv, Nk, W] K/V that
// `gatherKv` takes out of such a cache, after `checkKvCache` has refused what a kernel could not
// read: a page id outside the pool, a row stride below the row width, a cache smaller than its
// strides address (capacity < Nk), a block table too short for Nk or for [B, maxPages] (a longer
// one is an engine's table made for a larger batch: its rows past B are unused, as everywhere).

/** Element strides of K or V (the CUDA Args' k_stride_b / _h / _n). */
export interface KvStrides {
  /** Between batches; for a paged cache, between pages. */
  readonly batch: number;
  readonly head: number;
  readonly row: number;
}

/** How the rows of a K or V cache are laid out. */
export type KvCacheLayout =
  | { readonly kind: 'strided'; readonly strides: KvStrides }
  | {
      readonly kind: 'paged';
      readonly pageSize: number;
      readonly strides: KvStrides;
      /** [B, maxPages] page ids (row-major); longer is fine: rows past B are unused. */
      readonly blockTable: Int32Array;
      readonly maxPages: number;
    };

export interface KvSizes {
  readonly B: number;
  readonly Hkv: number;
  readonly Nk: number;
  /** Row width (D or Dv). */
  readonly W: number;
}

/** Packed strides of [B, Hkv, rows, W]: rows = Nk (or a capacity), or a page's rows. */
export const packedStrides = (Hkv: number, rows: number, W: number): KvStrides => ({
  batch: Hkv * rows * W,
  head: rows * W,
  row: W,
});

/** Element offset of key j of (b, hkv), column 0. */
export function kvRowOffset(l: KvCacheLayout, b: number, hkv: number, j: number): number {
  const s = l.strides;
  if (l.kind === 'strided') return b * s.batch + hkv * s.head + j * s.row;
  const page = l.blockTable[b * l.maxPages + Math.floor(j / l.pageSize)]!;
  return page * s.batch + hkv * s.head + (j % l.pageSize) * s.row;
}

/**
 * Why `l` cannot describe a cache of `length` elements holding K or V (`what`) of these sizes,
 * or undefined when it can.
 */
export function kvCacheProblem(
  what: string,
  l: KvCacheLayout,
  n: KvSizes,
  length: number,
): string | undefined {
  const s = l.strides;
  if (![s.batch, s.head, s.row].every((x) => Number.isSafeInteger(x) && x >= 0))
    return `${what}: strides must be non-negative integers (got batch ${s.batch}, head ${s.head}, row ${s.row})`;
  if (n.Nk > 1 && s.row < n.W)
    return `${what}: the row stride ${s.row} is smaller than a row (${n.W} elements): rows would overlap`;
  if (n.Nk === 0) return undefined;
  if (l.kind === 'paged') {
    const P = l.pageSize;
    if (l.maxPages * P < n.Nk)
      return `${what}: the block table's ${l.maxPages} pages of ${P} rows hold fewer than Nk = ${n.Nk} keys`;
    if (l.blockTable.length < n.B * l.maxPages)
      return `${what}: the block table has ${l.blockTable.length} entries, [B, max_pages] needs ${n.B * l.maxPages}`;
    const pages = Math.floor(length / Math.max(1, s.batch));
    const used = Math.ceil(n.Nk / P);
    for (let b = 0; b < n.B; b++)
      for (let p = 0; p < used; p++) {
        const id = l.blockTable[b * l.maxPages + p]!;
        const end = id * s.batch + (n.Hkv - 1) * s.head + (P - 1) * s.row + n.W;
        if (id < 0 || end > length)
          return `${what}: block_table[${b}][${p}] = ${id} is not a page of the cache (${pages} pages of ${s.batch} elements)`;
      }
    return undefined;
  }
  const end = (n.B - 1) * s.batch + (n.Hkv - 1) * s.head + (n.Nk - 1) * s.row + n.W;
  if (end > length) {
    const capacity =
      s.row > 0 ? Math.floor((length - (n.B - 1) * s.batch - (n.Hkv - 1) * s.head - n.W) / s.row) + 1 : 0;
    return `${what}: its strides address ${end} elements but the cache has ${length} (a capacity of ${Math.max(0, capacity)} rows < Nk = ${n.Nk})`;
  }
  return undefined;
}

/** Throws kvCacheProblem's message, if any. */
export function checkKvCache(what: string, l: KvCacheLayout, n: KvSizes, length: number): void {
  const p = kvCacheProblem(what, l, n, length);
  if (p !== undefined) throw new Error(p);
}

/** The logical [B, Hkv, Nk, W] K or V of a checked cache. */
export function gatherKv(cache: ArrayLike<number>, l: KvCacheLayout, n: KvSizes): Float32Array {
  checkKvCache('cache', l, n, cache.length);
  const out = new Float32Array(n.B * n.Hkv * n.Nk * n.W);
  for (let b = 0; b < n.B; b++)
    for (let h = 0; h < n.Hkv; h++)
      for (let j = 0; j < n.Nk; j++) {
        const from = kvRowOffset(l, b, h, j);
        const to = ((b * n.Hkv + h) * n.Nk + j) * n.W;
        for (let c = 0; c < n.W; c++) out[to + c] = cache[from + c]!;
      }
  return out;
}

/** Writes logical [B, Hkv, Nk, W] rows into `cache` at the layout's places (the inverse of gatherKv). */
export function scatterKv(
  logical: ArrayLike<number>,
  cache: Float32Array,
  l: KvCacheLayout,
  n: KvSizes,
): void {
  checkKvCache('cache', l, n, cache.length);
  for (let b = 0; b < n.B; b++)
    for (let h = 0; h < n.Hkv; h++)
      for (let j = 0; j < n.Nk; j++) {
        const to = kvRowOffset(l, b, h, j);
        const from = ((b * n.Hkv + h) * n.Nk + j) * n.W;
        for (let c = 0; c < n.W; c++) cache[to + c] = logical[from + c]!;
      }
}
