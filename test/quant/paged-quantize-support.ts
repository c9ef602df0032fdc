// Shared by the paged quantize tests (CUDA emulator and WGSL): a decoder's appends to a paged
// quantized cache. The source grows to `Nfinal` tokens; each step quantizes the rows a growth
// from N0 to N1 tokens changes (docs/LANGUAGE.md, "Quantizing into a paged cache"), and after
// each step the pools must equal src/quant's `quantize` of the first N1 tokens, paged.
import fc from 'fast-check';
import type { Granularity, QuantFormat } from '../../src/quant/format.js';
import type { CacheSizes, QuantCache } from '../../src/quant/layout.js';
import type { SalientMarks } from '../../src/quant/marks.js';
import { quantize } from '../../src/quant/quantize.js';
import { pageQuantCache, type QuantPages } from '../../src/runtime/kv-quant-pages.js';
import { formatArb } from './arbitrary.js';

/**
 * Formats for paged quantize tests: formatArb, or half the time (formatArb draws them rarely)
 * its format with scales per channel in groups of tokens (KIVI's keys), whose groups live in pages.
 */
export const pagedFormatArb: fc.Arbitrary<QuantFormat> = fc.oneof(
  formatArb,
  fc
    .tuple(formatArb, fc.integer({ min: 1, max: 16 }))
    .map(([f, group]) =>
      f.scale && !f.norm && !(f.kind === 'int' && f.salient)
        ? ({ ...f, scale: { ...f.scale, per: { kind: 'channel', group } } } as QuantFormat)
        : f,
    ),
);

/** `f` with a per-channel token group that divides a page of P rows (a power of two ≤ P). */
export function pageable(f: QuantFormat, P: number): QuantFormat {
  const per = f.scale?.per;
  if (!f.scale || per?.kind !== 'channel' || !per.group) return f;
  const group = Math.min(P, 2 ** Math.floor(Math.log2(per.group)));
  return { ...f, scale: { ...f.scale, per: { kind: 'channel', group } as Granularity } } as QuantFormat;
}

/** A block table of capacity ≥ Nk over a shuffled pool with spare pages (ids ≥ B·maxPages unused). */
export function randomPages(B: number, Nk: number, P: number, r: () => number): QuantPages {
  const maxPages = Math.max(1, Math.ceil(Nk / P) + (r() < 0.5 ? 1 : 0));
  const pages = B * maxPages + 2;
  const ids = Array.from({ length: pages }, (_, i) => i).sort(() => r() - 0.5);
  return {
    pageSize: P,
    maxPages,
    pages,
    blockTable: Int32Array.from({ length: B * maxPages }, (_, i) => ids[i]!),
  };
}

/** The first N tokens of every (b, h) of rows [B, Hkv, Nfinal, D]: the source of a call at Nk = N. */
export function firstTokens<T extends Float32Array | Uint16Array>(x: T, s: CacheSizes, N: number): T {
  const out = new (x.constructor as new (n: number) => T)(s.B * s.Hkv * N * s.D);
  for (let bh = 0; bh < s.B * s.Hkv; bh++)
    out.set(x.subarray(bh * s.Nk * s.D, (bh * s.Nk + N) * s.D), bh * N * s.D);
  return out;
}

/** Salient marks of a cache of Nfinal tokens as they read at Nk = N (flags: the first N). */
export function marksAt(m: SalientMarks | undefined, s: CacheSizes, N: number): SalientMarks | undefined {
  if (!m || m.by === 'index') return m;
  const data = new Int32Array(s.B * s.Hkv * N);
  for (let bh = 0; bh < s.B * s.Hkv; bh++) data.set(m.data.subarray(bh * s.Nk, bh * s.Nk + N), bh * N);
  return { by: 'flags', data, n: N };
}

/**
 * The rows a growth from N0 to N1 tokens changes: the new rows and those that left the recent
 * window ([N0 − min(r, N0), N1)); a call over them makes the cache `quantize` of N1 tokens.
 */
export function appendRange(f: QuantFormat, N0: number, N1: number): { start: number; n: number } {
  const start = N0 - Math.min(f.recent?.tokens ?? 0, N0);
  return { start, n: N1 - start };
}

/** A pool no token addresses yet: every paged element poisoned (as pageQuantCache poisons). */
export function emptyPool(
  f: QuantFormat,
  s: CacheSizes,
  pages: QuantPages,
  marks: SalientMarks | undefined,
): QuantCache {
  const none = { ...s, Nk: 0 };
  return pageQuantCache(f, quantize(f, new Float32Array(0), none, marksAt(marks, s, 0)), none, pages);
}

/** src/quant's `quantize` of the first N tokens, as pools over `pages`. */
export function expectedPool(
  f: QuantFormat,
  exact: Float32Array,
  s: CacheSizes,
  N: number,
  pages: QuantPages,
  marks: SalientMarks | undefined,
): QuantCache {
  const sN = { ...s, Nk: N };
  return pageQuantCache(f, quantize(f, firstTokens(exact, s, N), sN, marksAt(marks, s, N)), sN, pages);
}
