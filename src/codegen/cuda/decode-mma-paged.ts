// Paged quantized caches in the tensor-core decode (decode-mma.ts, decode-mma-quant.ts): the code
// rows and the per-token scales of a cache in pools of pages (docs/LANGUAGE.md "Paged quantized
// caches", quant/paged-layout.ts), read through the block table. Code rows stream like float rows
// (kv-rows.ts pagedTileFetch over a CodePages handle: a thread looks its pages up once per run of
// rows; kv-pages-once.ts: K's, V's and the scales' page ids in one pass); the scales fill the same
// word windows as a packed cache's (decode-mma-quant.ts dm_fetch_scales: tokens from the even
// token at or before the tile's first), each word two tokens of one page (P ≥ 2: an even token and
// the next share a page, and their pool rows are adjacent).
import type { MmaQuant } from './decode-mma-quant.js';
import { codePages, codePagesStruct, pagedTileFetch } from './kv-rows.js';
import { pagesOnceFetch } from './kv-pages-once.js';

/** The tile's code rows and scale windows, page ids read once (kv-pages-once.ts). */
const pagedTileFetchOnce = pagesOnceFetch({
  name: 'dm_fetch_tile_pages',
  handle: 'CodePages',
  elem: 'unsigned char',
  chunks: (w) => `${w} / 16`,
  elems: '16',
  separate: [
    'dm_fetch_code_pages<KW, KP>(kg, kd, t0, t1);',
    'dm_fetch_code_pages<VW, VP>(vg, vd, t0, t1);',
    'if (ksc) dm_fetch_scale_pages(ksc, skd, kg.pages, page_elems, t0, t1);',
    'if (vsc) dm_fetch_scale_pages(vsc, svd, kg.pages, page_elems, t0, t1);',
  ],
  scales: true,
});

/** CodePages and dm_fetch_code_pages: a paged cache's code rows into a padded stage tile. */
export const pagedCodeFetch: readonly string[] = [
  ...codePagesStruct,
  '// Code rows t0..t1-1 of a paged cache into a padded tile (PITCH bytes a row), 16 bytes a copy.',
  'template <int ROWB, int PITCH>',
  '__device__ __forceinline__ void dm_fetch_code_pages(const CodePages& g, unsigned char* dst, int t0, int t1) {',
  '  constexpr int C = ROWB / 16, E = 16;',
  ...pagedTileFetch({
    handle: 'g',
    tile: 'MMA_TILE',
    threads: 'MMA_THREADS',
    chunks: 'C',
    elems: 'E',
    elem: 'unsigned char',
    copy: (j, src, ok) => `dec_cp<16>(dst + (${j}) * PITCH + c * 16, ${src}, ${ok});`,
  }),
  '}',
];

/** Device helpers (namespace dec, after decode-mma-quant.ts's scale helpers): the code and scale fetches. */
export const pagedQuantFetch: readonly string[] = [
  ...pagedCodeFetch,
  '// The f16 scales of tokens first..end-1 of one (batch, kv head), from the even token at or before',
  '// first (SCW words, as dm_fetch_scales). Token t is pool element page(t)·Hkv·PAGE + hk·PAGE + t mod',
  "// PAGE (kv_qrow's, without its 64-bit division: `pages` is the batch's block table row).",
  '__device__ __forceinline__ void dm_fetch_scale_pages(const unsigned short* s, unsigned* dst, const int* pages, long long page_elems, long long first, long long end) {',
  '  const long long e0 = first & ~1LL;',
  '  auto at = [&](long long t) { return (long long)__ldg(pages + (t >> LOG2_PAGE)) * page_elems + (t & (PAGE - 1)); };',
  '  for (int i = threadIdx.x; i < SCW; i += MMA_THREADS) {',
  '    const long long e = e0 + 2 * (long long)i;',
  '    const int n = e >= end ? 0 : e + 1 >= end ? 2 : 4; // bytes inside tokens e0..end-1',
  '    if constexpr (PAGE >= 2) { // a word is two tokens of one page, at adjacent pool elements',
  '      dm_scale_word(dst + i, s, n ? at(e) : 0, n);',
  '    } else { // pages of one token: a plain copy; the barrier before the tile is read publishes it',
  '      dst[i] = (n ? (unsigned)s[at(e)] : 0u) | (n == 4 ? (unsigned)s[at(e + 1)] << 16 : 0u);',
  '    }',
  '  }',
  '}',
  ...pagedTileFetchOnce,
];

/** Kernel-scope handles of a paged cache's code rows (b, hk in scope); kv0 0: scales go by token. */
export const pagedCodeHandles: readonly string[] = [
  '  // Code rows and per-token scales through the block table (kv-rows.ts CodePages); the scale',
  '  // windows are in token order (kv0 0).',
  '  [[maybe_unused]] const size_t kv0 = 0;',
  `  const CodePages kcp = ${codePages('k', 'b', 'hk', 'D')};`,
  `  const CodePages vcp = ${codePages('v', 'b', 'hk', 'DV')};`,
];

/** Tile `it`'s code copies and scale windows (in fetch(): t0, t1, hk, kcp in scope). */
export function pagedQuantFetchLines(q: MmaQuant, field: (key: string) => string): string[] {
  const scales = (w: 'k' | 'v'): string =>
    q[w].scaled ? `a.${field(`cache:${w}_scale`)} + (long long)hk * PAGE` : 'nullptr';
  return [
    '      dm_fetch_tile_pages<D, KPB, DV, VPB>(kcp, vcp, ks + (it % MMA_STAGES) * MMA_TILE * KPB,',
    '          vs + (it % MMA_STAGES) * MMA_TILE * VPB,',
    `          ${scales('k')}, ${scales('v')},`,
    '          sck + (it % MMA_STAGES) * SCW, scv + (it % MMA_STAGES) * SCW, (long long)a.Hkv * PAGE, t0, t1);',
  ];
}

/**
 * The halves of a paged per-token scale (or zero) pool's window (per-token int4 / int2 caches, KIVI's
 * V): page ids looked up per word, a word's two halves one 4-byte copy where they are adjacent in
 * the pool (dm_scale_word, decode-mma-scales.ts).
 */
export const pagedHalvesFetch: readonly string[] = [
  '// Halves of tokens t0..t0+n-1 (C a token) of a paged per-token pool s (the kv head in page 0; a page',
  '// page_elems on) into W words of dst, zero past n. Word i holds window halves 2i, 2i + 1: one token',
  '// (C even) or tokens e, e + 1 of one page (C 1, e even, PAGE >= 2), adjacent and 4-byte aligned in',
  '// the pool: one 4-byte copy (dm_scale_word); else two plain reads (the barrier before the tile publishes them).',
  'template <int C>',
  '__device__ __forceinline__ void dm_fetch_halves_pages(const unsigned short* s, unsigned* dst, const int* pages, long long page_elems, int t0, int n, int W) {',
  '  auto at = [&](long long e, int g) { return (long long)__ldg(pages + (e >> LOG2_PAGE)) * page_elems + (e & (PAGE - 1)) * C + g; };',
  '  for (int i = threadIdx.x; i < W; i += MMA_THREADS) {',
  '    const int h = 2 * i, t = h / C, g = h % C;',
  '    const long long e = (long long)t0 + t;',
  '    const int nb = t >= n ? 0 : (C == 1 && t + 1 >= n) ? 2 : 4; // bytes inside the window',
  '    if (C % 2 == 0 || (PAGE >= 2 && (e & 1) == 0))',
  '      dm_scale_word(dst + i, s, nb ? at(e, g) : 0, nb);',
  '    else',
  '      dst[i] = (nb ? (unsigned)s[at(e, 0)] : 0u) | (nb == 4 ? (unsigned)s[at(e + 1, 0)] << 16 : 0u);',
  '  }',
  '}',
];

/**
 * KIVI's K group windows from a paged per-channel-group pool ([pages, Hkv, PAGE / 32, D], a group of
 * 32 tokens never straddling pages): groups t0 / 32 .. (t1 - 1) / 32 in order, D / 2 words each.
 */
export const pagedGroupsFetch: readonly string[] = [
  '// K groups of 32 tokens t0 / 32 .. (t1 - 1) / 32 of a paged pool s (the kv head in page 0; a page',
  '// page_elems on: PAGE / 32 rows of D halves) into W words of dst, D / 2 words a group, zero past them.',
  '__device__ __forceinline__ void dk_fetch_groups_pages(const unsigned short* s, unsigned* dst, const int* pages, long long page_elems, int t0, int t1, int W) {',
  '  const int g_lo = t0 / 32, g_n = (t1 - 1) / 32 - g_lo + 1;',
  '  for (int i = threadIdx.x; i < W; i += MMA_THREADS) {',
  '    const int j = i / (D / 2), w = i % (D / 2), nb = j < g_n ? 4 : 0;',
  "    const long long t = 32LL * (g_lo + j); // the group's first token",
  '    const long long at = nb ? (long long)__ldg(pages + (t >> LOG2_PAGE)) * page_elems + ((t & (PAGE - 1)) >> 5) * D + 2 * w : 0;',
  '    dm_scale_word(dst + i, s, at, nb);',
  '  }',
  '}',
];
