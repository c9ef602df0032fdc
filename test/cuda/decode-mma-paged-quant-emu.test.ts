// Paged quantized caches in the tensor-core decode kernel (decode-mma-paged.ts): int8 and fp8 code
// rows and per-token f16 scales in pools of pages in a random order (runtime/kv-quant-pages.ts:
// every element no token addresses poisoned, NaN scales and all-ones codes), read through the
// block table, on the CPU emulator (decode-mma-emu.ts's f16 mma stand-in) and merged by decode.ts's
// merge kernel, against the float64 reference of the contiguous caches: pages smaller than a
// thread's run of rows (the per-row lookup), between a run and a tile, and larger than a tile;
// partly filled last pages, GQA × Nq, splits ending inside a tile and inside a run, a causal mask;
// KIVI caches (decode-mma-kivi.ts: K groups of 32 tokens in page rows, V per-token groups) on both
// kernels.
import { describe, expect, it } from 'vitest';
import { rng } from '../../src/runtime/inputs.js';
import { emulate, seed0 } from './decode-mma-paged-quant-emu.js';

describe(`paged quantized K/V in the tensor-core decode kernel (CPU emulation, seed ${seed0})`, () => {
  // D = 128: a thread copies runs of 4 code rows (128 bytes: 8 chunks) of a 128-key tile.
  it('int8 per token: pages of 2 (smaller than a run), 16 and 256; splits ending inside runs', async () => {
    const r = rng(seed0);
    const c = { B: 2, H: 8, Hkv: 2, Nq: 1, Nk: 280 + Math.floor(r() * 40), splitKeys: 99 };
    for (const P of [2, 16, 256])
      await emulate(`i8p${P}`, 'store kv int8 scale f16 per token', P, c, seed0 + P);
  }, 900_000);
  it('e4m3 per token with an unscaled e5m2 K, pages of 32: GQA 4 x Nq 2, causal, long splits', async () => {
    const c = { B: 1, H: 8, Hkv: 2, Nq: 2, Nk: 300, splitKeys: 260 };
    await emulate(
      'e4p32',
      'store k e5m2\n  store v e4m3 scale f16 per token',
      32,
      c,
      seed0 + 1,
      'mask causal',
    );
  }, 900_000);
  it('lean per-step code (ATTNC_DEC_MMA_LEAN 3): int8 pages of 16 at GQA 4; e4m3 GQA 8 x Nq 3 (both row halves)', async () => {
    const c = { B: 2, H: 8, Hkv: 2, Nq: 1, Nk: 300, splitKeys: 99 };
    await emulate('l8p16', 'store kv int8 scale f16 per token', 16, c, seed0 + 2, '', 3);
    const g8 = { B: 1, H: 8, Hkv: 1, Nq: 3, Nk: 260, splitKeys: 130 };
    await emulate('le4p32', 'store kv e4m3 scale f16 per token', 32, g8, seed0 + 3, 'mask causal', 3);
  }, 900_000);
  // kv-pages-once.ts: every row through row() instead of a run's one base (ATTNC_KV_PAGE_BASE 0;
  // the default, base 1, runs in the cases above, where splits of 99 keys start runs off page
  // boundaries, so some runs cross a page), and each fetch looking its own pages up
  // (ATTNC_KV_PAGE_ONCE 0); splits ending inside tiles, an unscaled K beside a scaled V, and a
  // skipped tile (sinks and a window of 30 over one split).
  it('rows through row() (ATTNC_KV_PAGE_BASE 0) and separate lookups (ATTNC_KV_PAGE_ONCE 0): int8 pages of 16, e4m3 V with an e5m2 K in pages of 32, a skipped tile', async () => {
    const rows = '#define ATTNC_KV_PAGE_BASE 0';
    const c = { B: 2, H: 8, Hkv: 2, Nq: 1, Nk: 300, splitKeys: 99 };
    await emulate('r8p16', 'store kv int8 scale f16 per token', 16, c, seed0 + 4, '', 0, rows);
    const g = { B: 1, H: 8, Hkv: 2, Nq: 2, Nk: 300, splitKeys: 260 };
    const store = 'store k e5m2\n  store v e4m3 scale f16 per token';
    await emulate('re4p32', store, 32, g, seed0 + 5, 'mask causal', 0, '#define ATTNC_KV_PAGE_ONCE 0');
    const s = { B: 1, H: 4, Hkv: 1, Nq: 1, Nk: 700, splitKeys: 700 }; // tiles of up to 256 keys
    const sinks = 'mask causal && (q - k < 30 || k < 4)';
    await emulate('rs8p16', 'store kv int8 scale f16 per token', 16, s, seed0 + 6, sinks, 0, rows);
  }, 900_000);
  // KIVI (decode-mma-kivi.ts): K's per-channel groups of 32 tokens in rows of pages (a group never
  // straddles pages: pages of 32 and more), V's per-token groups of 32 channels; both kernels.
  it('KIVI int4 / int2: pages of 32, 64 and 256, an unpaged recent window; the query-major kernel at GQA 4 x Nq 3 causal; a group read from the first page fails', async () => {
    const kivi = (bits: number, recent: number): string => {
      const r = recent > 0 ? ` recent ${recent} f16` : '';
      return `store k int${bits} scale f16 per channel group 32 zero f16${r}\n  store v int${bits} scale f16 per token group 32 zero f16${r}`;
    };
    const KIVI = 'dk_fetch_groups_pages(';
    const c = { B: 2, H: 8, Hkv: 2, Nq: 1, Nk: 300, splitKeys: 99 };
    for (const P of [32, 64, 256])
      await emulate(`kv${P}`, kivi(4, 40), P, c, seed0 + 20 + P, '', 3, '', KIVI);
    const km0 = '#define ATTNC_DEC_MMA_KM 0';
    await emulate('kvq', kivi(2, 0), 32, { ...c, Nq: 3 }, seed0 + 21, 'mask causal', 3, km0, KIVI);
    const from = '(long long)__ldg(pages + (t >> LOG2_PAGE)) * page_elems + ((t & (PAGE - 1)) >> 5) * D';
    const firstPage = (d: string): string => {
      expect(d).toContain(from);
      return d.replaceAll(from, '(long long)__ldg(pages) * page_elems + ((t & (PAGE - 1)) >> 5) * D');
    };
    await expect(emulate('kvm', kivi(4, 0), 32, c, seed0 + 22, '', 3, '', KIVI, firstPage)).rejects.toThrow(
      /to be less than or equal/,
    );
  }, 900_000);
});
