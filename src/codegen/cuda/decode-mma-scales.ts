// The scale stream of the tensor-core decode kernel's quantized caches (decode-mma-quant.ts): the
// cp.async copy of n bytes, the word of two f16 scales, the per-token scale windows a stage holds
// (from the even row at or before the tile's first), and the lane's scale loads from them. KIVI
// and per-token int4 / int2 caches (decode-mma-kivi.ts, decode-mma-tokint.ts) take the copy and the
// word for their own windows.
import type { MmaQuant, MmaQuantCache } from './decode-mma-quant.js';

/** n bytes global → shared by cp.async (sm_80+; a plain copy elsewhere), the rest of N zero. */
export const copyHelpers: readonly string[] = [
  '// n (0..N) bytes global -> shared, the rest of the N zero (src read only when n > 0); N 4 or 16.',
  'template <int N>',
  '__device__ __forceinline__ void dm_cpn(unsigned* dst, const unsigned short* src, int n) {',
  '#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800',
  '  const unsigned d = (unsigned)__cvta_generic_to_shared(dst);',
  '  if constexpr (N == 16)',
  '    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\\n" ::"r"(d), "l"(src), "r"(n) : "memory");',
  '  else',
  '    asm volatile("cp.async.ca.shared.global [%0], [%1], %2, %3;\\n" ::"r"(d), "l"(src), "n"(N), "r"(n) : "memory");',
  '#else',
  '  memset(dst, 0, N);',
  '  if (n) memcpy(dst, src, (size_t)n);',
  '#endif',
  '}',
];

/** One word of two f16 scales: dm_scale_word. */
export const scaleWordHelper: readonly string[] = [
  '// The f16 scales of rows, two a word: word dst takes n bytes (0, 2 or 4) from element `at` of s,',
  '// by an async copy where s is 4-byte aligned (the same for the whole block), else a plain one',
  '// (the barrier before the tile is read publishes it).',
  '__device__ __forceinline__ void dm_scale_word(unsigned* dst, const unsigned short* s, long long at, int n) {',
  '  if (((size_t)s & 3u) == 0) {',
  '    dm_cpn<4>(dst, n ? s + at : s, n);',
  '  } else {',
  '    *dst = (n ? (unsigned)s[at] : 0u) | (n == 4 ? (unsigned)s[at + 1] << 16 : 0u);',
  '  }',
  '}',
];

/** Shared-memory helpers of the scale stream: cp.async of word windows (2 scales a word). */
export const scaleFetchHelpers: readonly string[] = [
  ...copyHelpers,
  ...scaleWordHelper,
  '// Rows first..end-1 from the even row at or before first (SCW words).',
  '__device__ __forceinline__ void dm_fetch_scales(const unsigned short* s, unsigned* dst, size_t first, size_t end) {',
  '  const size_t e0 = first & ~(size_t)1;',
  '  for (int i = threadIdx.x; i < SCW; i += MMA_THREADS) {',
  '    const size_t e = e0 + 2 * (size_t)i;',
  '    const int n = e >= end ? 0 : e + 1 >= end ? 2 : 4; // bytes inside rows e0..end-1',
  '    dm_scale_word(dst + i, s, (long long)e, n);',
  '  }',
  '}',
];

/** Tile `it`'s scale windows (in fetch(): t0, t1, kv0 in scope), per scaled cache. */
export function scaleFetchLines(q: MmaQuant, field: (key: string) => string): string[] {
  return (['k', 'v'] as const)
    .filter((w) => q[w].scaled)
    .map(
      (w) =>
        `      dm_fetch_scales(a.${field(`cache:${w}_scale`)}, sc${w} + (it % MMA_STAGES) * SCW, kv0 + t0, kv0 + t1);`,
    );
}

/** The per-token scales of the lane's keys from the stage (sk, sv [tiles][2], of key `key`; 1 where none). */
export function scaleLoads(q: MmaQuant, tiles = 'NT', key = 'kw + dmq_key(j, e)'): string[] {
  const load = (w: 'k' | 'v', c: MmaQuantCache): string =>
    c.scaled
      ? `ok ? dec_half_bits(reinterpret_cast<const unsigned short*>(sc${w} + (it % MMA_STAGES) * SCW)[o0 + kj - t0]) : 0.f`
      : '1.f';
  return [
    `      float sk[${tiles}][2], sv[${tiles}][2];`,
    '      [[maybe_unused]] const int o0 = (int)((kv0 + t0) & 1); // the window starts at an even row',
    '#pragma unroll',
    `      for (int j = 0; j < ${tiles}; ++j)`,
    '#pragma unroll',
    '        for (int e = 0; e < 2; ++e) {',
    `          const int kj = ${key}, ok = kj < t1;`,
    `          sk[j][e] = ${load('k', q.k)};`,
    `          sv[j][e] = ${load('v', q.v)};`,
    '        }',
  ];
}
