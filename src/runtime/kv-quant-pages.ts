// Paged quantized caches (docs/LANGUAGE.md, "Paged quantized caches"): a `cache paged P` kernel
// with a `store` statement reads its codes and its row-indexed side tensors from pools of pages
// through the block table that float pages use. A page holds P rows of every kv head, HND:
//   codes, codesHi                     [pages, Hkv, P, words]
//   scale, zero  per token (any group) [pages, Hkv, P, channel groups]
//   scale, zero  per channel group g   [pages, Hkv, P / g, D]   (g divides P: the checker)
// and the per-sequence tensors keep their unpaged shapes: a per-tensor or per-channel (no group)
// scale, `norm` [B, Hkv, D], the `recent` window [B, Hkv, r, D]. Salient flags are the caller's
// logical [B, Hkv, Nk] tensor. Here: the pool shapes, the scatter of a contiguous cache into a
// pool (pages in any order, the rest poisoned) and the gather back, which the reference reads.
import type { TensorFormats } from '../ir/formats.js';
import type { QuantFormat } from '../quant/format.js';
import {
  cacheLayout,
  type CacheSizes,
  type CacheTensor,
  type QuantCache,
  type StoredFloats,
} from '../quant/layout.js';
import { pagedRows, pagedTensorShape, type CachePart, type QuantPages } from '../quant/paged-layout.js';

export { pagedTensorShape, type QuantPages } from '../quant/paged-layout.js';

/** Why `pages` cannot address a cache of these sizes, or undefined. */
export function quantPagesProblem(s: CacheSizes, pages: QuantPages): string | undefined {
  const P = pages.pageSize;
  if (!(Number.isInteger(P) && P >= 1 && (P & (P - 1)) === 0)) return `page size ${P} is not a power of two`;
  if (s.Nk === 0) return undefined;
  if (pages.maxPages * P < s.Nk)
    return `the block table's ${pages.maxPages} pages of ${P} rows hold fewer than Nk = ${s.Nk} keys`;
  if (pages.blockTable.length < s.B * pages.maxPages)
    return `the block table has ${pages.blockTable.length} entries, [B, max_pages] needs ${s.B * pages.maxPages}`;
  for (let b = 0; b < s.B; b++)
    for (let p = 0; p < Math.ceil(s.Nk / P); p++) {
      const id = pages.blockTable[b * pages.maxPages + p]!;
      if (!(id >= 0 && id < pages.pages))
        return `block_table[${b}][${p}] = ${id} is not a page of the pool (${pages.pages} pages)`;
    }
  return undefined;
}

/** Calls `each(contiguousRow, poolRow)` for every row of a paged tensor that tokens 0..Nk-1 use. */
function forEachRow(
  s: CacheSizes,
  pages: QuantPages,
  tokensPerRow: number,
  each: (from: number, to: number) => void,
): void {
  const problem = quantPagesProblem(s, pages);
  if (problem) throw new Error(`paged quantized cache: ${problem}`);
  const P = pages.pageSize;
  const perHead = Math.ceil(s.Nk / tokensPerRow);
  const perPage = P / tokensPerRow;
  for (let b = 0; b < s.B; b++)
    for (let h = 0; h < s.Hkv; h++)
      for (let r = 0; r < perHead; r++) {
        const t = r * tokensPerRow;
        const page = pages.blockTable[b * pages.maxPages + Math.floor(t / P)]!;
        each((b * s.Hkv + h) * perHead + r, (page * s.Hkv + h) * perPage + (t % P) / tokensPerRow);
      }
}

type Data = Uint32Array | Uint16Array | Float32Array;

const dataOf = (x: Uint32Array | StoredFloats): Data => (x instanceof Uint32Array ? x : x.data);
const rewrap = <T extends Uint32Array | StoredFloats>(x: T, data: Data): T =>
  (x instanceof Uint32Array ? data : { dtype: x.dtype, data }) as T;

/** A NaN of the tensor's type (u32 codes: all ones, a NaN for fp8 codes). */
function poisonOf(x: Uint32Array | StoredFloats): number {
  if (x instanceof Uint32Array) return 0xffffffff;
  return { f32: Number.NaN, f16: 0x7e00, bf16: 0x7fc0 }[x.dtype];
}

function mapParts(
  f: QuantFormat,
  q: QuantCache,
  s: CacheSizes,
  P: number,
  move: (x: Uint32Array | StoredFloats, rows: { rowLen: number; tokensPerRow: number }) => Data,
): QuantCache {
  const out: Record<string, Uint32Array | StoredFloats> = {};
  for (const [name, held] of Object.entries(q) as [CachePart, Uint32Array | StoredFloats | undefined][]) {
    if (held === undefined) continue;
    const rows = pagedRows(f, name, s.D, P);
    out[name] = rows ? rewrap(held, move(held, rows)) : held;
  }
  return out as unknown as QuantCache;
}

/**
 * Cache `q` (contiguous, of sizes `s`) as a paged pool: the rows tokens 0..Nk-1 use at their
 * pages; every other element of the pool poisoned (a NaN of its type), so a kernel that reads
 * outside the block table's rows shows it.
 */
export function pageQuantCache(f: QuantFormat, q: QuantCache, s: CacheSizes, pages: QuantPages): QuantCache {
  return mapParts(f, q, s, pages.pageSize, (held, rows) => {
    const src = dataOf(held);
    const perPage = pages.pageSize / rows.tokensPerRow;
    const dst = new (src.constructor as new (n: number) => Data)(
      pages.pages * s.Hkv * perPage * rows.rowLen,
    ).fill(poisonOf(held));
    const n = rows.rowLen;
    forEachRow(s, pages, rows.tokensPerRow, (from, to) =>
      dst.set(src.subarray(from * n, from * n + n), to * n),
    );
    return dst;
  });
}

/** The contiguous cache of sizes `s` that a paged pool holds (the inverse of pageQuantCache). */
export function gatherQuantPages(
  f: QuantFormat,
  pool: QuantCache,
  s: CacheSizes,
  pages: QuantPages,
): QuantCache {
  return mapParts(f, pool, s, pages.pageSize, (held, rows) => {
    const src = dataOf(held);
    const perHead = Math.ceil(s.Nk / rows.tokensPerRow);
    const dst = new (src.constructor as new (n: number) => Data)(s.B * s.Hkv * perHead * rows.rowLen);
    const n = rows.rowLen;
    forEachRow(s, pages, rows.tokensPerRow, (from, to) =>
      dst.set(src.subarray(to * n, to * n + n), from * n),
    );
    return dst;
  });
}

/** The quantized caches of `formats` (contiguous) as pools over `pages` (float caches: none). */
export function pageStoredCaches(
  formats: TensorFormats,
  caches: { k?: QuantCache; v?: QuantCache },
  s: { B: number; Hkv: number; Nk: number; D: number; Dv: number },
  pages: QuantPages,
): { k?: QuantCache; v?: QuantCache } {
  const out: { k?: QuantCache; v?: QuantCache } = {};
  for (const w of ['k', 'v'] as const) {
    const f = formats[w];
    const c = caches[w];
    if (f.kind !== 'quant' || !c) continue;
    out[w] = pageQuantCache(f.format, c, { B: s.B, Hkv: s.Hkv, Nk: s.Nk, D: w === 'k' ? s.D : s.Dv }, pages);
  }
  return out;
}

/**
 * The tensors of a paged cache's pools (cacheTensors for pools: each tensor's shape from
 * pagedTensorShape); throws naming the argument when `pages` cannot address Nk tokens (a page id
 * outside the pool, a capacity max_pages·P below Nk) or a tensor has the wrong type or length.
 */
export function pagedCacheTensors(
  f: QuantFormat,
  pool: QuantCache,
  s: CacheSizes,
  pages: QuantPages,
): CacheTensor[] {
  if (!(Number.isInteger(pages.pages) && pages.pages >= 0))
    throw new Error(`paged quantized cache: pages = ${pages.pages} is not a page count`);
  const problem = quantPagesProblem(s, pages);
  if (problem) throw new Error(`paged quantized cache: ${problem}`);
  return cacheLayout(f, s).map((t) => {
    const held = pool[t.name];
    if (held === undefined) throw new Error(`paged cache of format ${f.elem}: tensor '${t.name}' is missing`);
    const data = held instanceof Uint32Array ? held : held.data;
    const dtype = held instanceof Uint32Array ? 'u32' : held.dtype;
    const shape = pagedTensorShape(f, t.name, s, pages);
    const n = shape.reduce((a, b) => a * b, 1);
    if (dtype !== t.dtype || data.length !== n)
      throw new Error(
        `paged cache of format ${f.elem}: tensor '${t.name}' is ${dtype} × ${data.length}, expected ${t.dtype} [${shape.join(', ')}] (${n})`,
      );
    return { ...t, shape, data };
  });
}
