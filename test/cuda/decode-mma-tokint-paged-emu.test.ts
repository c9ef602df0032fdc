// Paged per-token int4 / int2 caches in the key-major tensor-core decode kernel
// (decode-mma-tokint.ts): code rows and per-token scale / zero pools in pages of a random order, read
// through the block table (dm_fetch_code_pages, dm_fetch_halves_pages), on the CPU emulator against
// the float64 reference of the contiguous caches: pages of one token (plain reads), two, 16 and
// 256, splits starting at odd tokens (a scale word across two pages), V scales per 32 channels,
// zero points, an unpaged recent window, GQA × Nq, causal.
import { describe, expect, it } from 'vitest';
import { emulate, seed0 } from './decode-mma-paged-quant-emu.js';

const TOKEN_INT = 'dm_fetch_halves_pages<';

describe(`paged per-token int4 / int2 K/V in the key-major decode kernel (CPU emulation, seed ${seed0})`, () => {
  it('symmetric int4: pages of 1, 2, 16 and 256; splits of 99 keys', async () => {
    const c = { B: 2, H: 8, Hkv: 2, Nq: 1, Nk: 300, splitKeys: 99 };
    for (const P of [1, 2, 16, 256])
      await emulate(`t4p${P}`, 'store kv int4 scale f16 per token', P, c, seed0 + P, '', 0, '', TOKEN_INT);
  }, 900_000);
  it('zero points, V scales per 32 channels, pages of 16 and 2: GQA 4 x Nq 2 causal, odd split starts', async () => {
    const store =
      'store k int4 scale f16 per token zero f16\n  store v int2 scale f16 per token group 32 zero f16';
    const c = { B: 1, H: 8, Hkv: 2, Nq: 2, Nk: 333, splitKeys: 77 };
    await emulate('tz16', store, 16, c, seed0 + 7, 'mask causal', 0, '', TOKEN_INT);
    await emulate('tz2', store, 2, c, seed0 + 8, 'mask causal', 0, '', TOKEN_INT);
  }, 900_000);
  it('K scales per run of 64 channels (HF QuantizedCache-style int4 with zero points), pages of 16 and 1', async () => {
    const store = 'store kv int4 scale f16 per token group 64 zero f16';
    const c = { B: 1, H: 8, Hkv: 2, Nq: 1, Nk: 300, splitKeys: 99 };
    await emulate('tg16', store, 16, c, seed0 + 11, '', 0, '', TOKEN_INT);
    await emulate('tg1', store, 1, c, seed0 + 12, 'mask causal', 0, '', TOKEN_INT);
  }, 900_000);
  it('int2 with zero points and a recent window of 32 (unpaged), pages of 32', async () => {
    const store =
      'store k int2 scale f16 per token zero f16 recent 32 f16\n  store v int2 scale f16 per token group 64 zero f16 recent 32 f16';
    const c = { B: 2, H: 4, Hkv: 2, Nq: 1, Nk: 290, splitKeys: 128 };
    await emulate('tr32', store, 32, c, seed0 + 9, '', 0, '', TOKEN_INT);
  }, 900_000);
  it('a mutation fails: every scale window read from the first page', async () => {
    const from = '(long long)__ldg(pages + (e >> LOG2_PAGE)) * page_elems';
    const firstPage = (d: string): string => {
      expect(d).toContain(from);
      return d.replaceAll(from, '(long long)__ldg(pages) * page_elems');
    };
    const c = { B: 1, H: 4, Hkv: 1, Nq: 1, Nk: 200, splitKeys: 100 };
    const store = 'store kv int4 scale f16 per token zero f16';
    await expect(emulate('tmut', store, 16, c, seed0 + 10, '', 0, '', TOKEN_INT, firstPage)).rejects.toThrow(
      /to be less than or equal/,
    );
  }, 900_000);
});
