// Device helpers of the tensor-core decode kernel (decode-mma.ts), in namespace dec: the PTX
// wrappers (ldmatrix .x4 / .trans, mma.sync m16n8k16, f32 pairs → 16-bit pairs), which the CPU
// emulator swaps for warp-level C++ (test/cuda/decode-mma-emu.ts), and the tile fetch into padded rows.
import { pagesOnceFetch } from './kv-pages-once.js';
import { kvAt, pagedTileFetch } from './kv-rows.js';

/** PTX wrappers (namespace dec): ldmatrix, mma.sync, f32 pairs → 16-bit pairs. */
export function mmaPtx(dtype: 'f16' | 'bf16'): string[] {
  const pack =
    dtype === 'bf16'
      ? '__nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);'
      : '__half2 v = __floats2half2_rn(lo, hi);';
  return [
    '__device__ __forceinline__ void dm_ldsm(unsigned (&r)[4], const T* p) {',
    '  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\\n"',
    '               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])',
    '               : "r"((unsigned)__cvta_generic_to_shared(p)));',
    '}',
    '__device__ __forceinline__ void dm_ldsm_t(unsigned (&r)[4], const T* p) {',
    '  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\\n"',
    '               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])',
    '               : "r"((unsigned)__cvta_generic_to_shared(p)));',
    '}',
    '// c += a·b: a row-major 16×16 (4 regs), b column-major 16×8 (2 regs), f32 accumulators.',
    '__device__ __forceinline__ void dm_mma(float (&c)[4], const unsigned (&a)[4], unsigned b0, unsigned b1) {',
    `  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.${dtype}.${dtype}.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\\n"`,
    '      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])',
    '      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));',
    '}',
    '__device__ __forceinline__ unsigned dm_pack(float lo, float hi) {',
    `  ${pack}`,
    '  return *reinterpret_cast<unsigned*>(&v);',
    '}',
  ];
}

/** Rows t0..t1-1 of K or V into a padded tile (PITCH elements a row), 16 bytes a copy. */
export function mmaFetch(paged = false): string[] {
  const head = [
    'template <int W, int PITCH>',
    '__device__ __forceinline__ void dm_fetch(const KvRows& g, T* dst, int t0, int t1) {',
    '  constexpr int C = W * (int)sizeof(T) / 16, E = 16 / (int)sizeof(T);',
  ];
  if (paged)
    return [
      ...head,
      ...pagedTileFetch({
        handle: 'g',
        tile: 'MMA_TILE',
        threads: 'MMA_THREADS',
        chunks: 'C',
        elems: 'E',
        copy: (j, src, ok) => `dec_cp<16>(dst + (${j}) * PITCH + c * E, ${src}, ${ok});`,
      }),
      '}',
      ...pagesOnceFetch({
        name: 'dm_fetch_kv_pages',
        handle: 'KvRows',
        elem: 'T',
        chunks: (w) => `${w} * (int)sizeof(T) / 16`,
        elems: '16 / (int)sizeof(T)',
        separate: ['dm_fetch<KW, KP>(kg, kd, t0, t1);', 'dm_fetch<VW, VP>(vg, vd, t0, t1);'],
        scales: false,
      }),
    ];
  return [
    ...head,
    '#pragma unroll',
    '  for (int n = 0; n < (MMA_TILE * C + MMA_THREADS - 1) / MMA_THREADS; ++n) {',
    '    const int i = threadIdx.x + n * MMA_THREADS, j = i / C, c = i % C, kj = t0 + j;',
    '    const bool ok = kj < t1;',
    `    if (i < MMA_TILE * C) dec_cp<16>(dst + j * PITCH + c * E, ${kvAt('g', '(ok ? kj : t0)', 'c * E')}, ok);`,
    '  }',
    '}',
  ];
}
