// The reference side of paged and strided caches (src/runtime/kv-cache.ts): gather ∘ scatter is
// the identity over random layouts, and each malformed cache is refused with a message naming
// what is wrong (a page id outside the pool, a row stride below a row, a capacity below Nk, a
// block table too short); a block table longer than [B, max_pages] is an engine's table made for
// a larger batch, read row by row, here and in the paged quantized pools (kv-quant-pages.ts).
import { describe, expect, it } from 'vitest';
import { rng } from '../../src/runtime/inputs.js';
import {
  checkKvCache,
  gatherKv,
  packedStrides,
  scatterKv,
  type KvCacheLayout,
  type KvSizes,
} from '../../src/runtime/kv-cache.js';
import { quantPagesProblem } from '../../src/runtime/kv-quant-pages.js';

const n: KvSizes = { B: 2, Hkv: 3, Nk: 21, W: 4 };
const logical = Float32Array.from({ length: n.B * n.Hkv * n.Nk * n.W }, (_, i) => i + 1);

function paged(P: number, table: number[], maxPages: number): KvCacheLayout {
  return {
    kind: 'paged',
    pageSize: P,
    strides: packedStrides(n.Hkv, P, n.W),
    blockTable: Int32Array.from(table),
    maxPages,
  };
}

describe('paged and strided caches in the reference', () => {
  it('gather undoes scatter: packed, capacity, BNHD and shuffled pages', () => {
    const r = rng(7);
    const pages = Array.from({ length: 12 }, (_, i) => i).sort(() => r() - 0.5);
    const layouts: [KvCacheLayout, number][] = [
      [{ kind: 'strided', strides: packedStrides(n.Hkv, n.Nk, n.W) }, logical.length],
      [{ kind: 'strided', strides: packedStrides(n.Hkv, 30, n.W) }, n.B * n.Hkv * 30 * n.W],
      [
        { kind: 'strided', strides: { batch: 30 * n.Hkv * n.W, head: n.W, row: n.Hkv * n.W } },
        n.B * 30 * n.Hkv * n.W,
      ],
      [paged(8, pages.slice(0, 6), 3), 12 * n.Hkv * 8 * n.W],
    ];
    for (const [l, length] of layouts) {
      const cache = new Float32Array(length).fill(Number.NaN);
      scatterKv(logical, cache, l, n);
      expect(gatherKv(cache, l, n)).toEqual(logical);
    }
  });

  it('refuses malformed caches with a message naming the problem', () => {
    const len = 12 * n.Hkv * 8 * n.W;
    expect(() => checkKvCache('k', paged(8, [0, 1, 2, 3, 4, 12], 3), n, len)).toThrow(
      'k: block_table[1][2] = 12 is not a page of the cache (12 pages of 96 elements)',
    );
    expect(() => checkKvCache('k', paged(8, [0, -1, 2, 3, 4, 5], 3), n, len)).toThrow(
      'k: block_table[0][1] = -1 is not a page of the cache',
    );
    expect(() => checkKvCache('v', paged(8, [0, 1, 2, 3], 2), n, len)).toThrow(
      "v: the block table's 2 pages of 8 rows hold fewer than Nk = 21 keys",
    );
    const overlap: KvCacheLayout = { kind: 'strided', strides: { batch: 252, head: 84, row: 2 } };
    expect(() => checkKvCache('k', overlap, n, logical.length)).toThrow(
      'k: the row stride 2 is smaller than a row (4 elements): rows would overlap',
    );
    const small: KvCacheLayout = { kind: 'strided', strides: packedStrides(n.Hkv, 16, n.W) };
    expect(() => checkKvCache('k', small, n, n.B * n.Hkv * 16 * n.W)).toThrow(
      'k: its strides address 404 elements but the cache has 384 (a capacity of 16 rows < Nk = 21)',
    );
  });

  it('a block table longer than [B, max_pages] is read row by row; a shorter one is refused', () => {
    // Two batches of 3 pages, then a third row of -1s (a larger batch's slot) that is never read.
    const table = [5, 0, 9, 2, 7, 1];
    const longer = paged(8, [...table, -1, -1, -1], 3);
    const len = 12 * n.Hkv * 8 * n.W;
    const cache = new Float32Array(len).fill(Number.NaN);
    scatterKv(logical, cache, paged(8, table, 3), n);
    expect(gatherKv(cache, longer, n)).toEqual(logical);
    expect(() => checkKvCache('k', paged(8, table.slice(0, 5), 3), n, len)).toThrow(
      'k: the block table has 5 entries, [B, max_pages] needs 6',
    );
    const sizes = { B: n.B, Hkv: n.Hkv, Nk: n.Nk, D: n.W };
    const pool = { pageSize: 8, maxPages: 3, pages: 12 };
    expect(quantPagesProblem(sizes, { ...pool, blockTable: Int32Array.from([...table, -1, -1, -1]) })).toBe(
      undefined,
    );
    expect(quantPagesProblem(sizes, { ...pool, blockTable: Int32Array.from(table.slice(0, 5)) })).toBe(
      'the block table has 5 entries, [B, max_pages] needs 6',
    );
  });
});
