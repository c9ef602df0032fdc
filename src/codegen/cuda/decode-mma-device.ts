// Device helpers of the tensor-core decode kernel (decode-mma.ts), in namespace dec: the PTX
// wrappers (ldmatrix .x4 / .trans, mma.sync m16n8k16, f32 pairs → 16-bit pairs), which the CPU
// emulator swaps for warp-level C++ (test/cuda/decode-mma-emu.ts), and the tile fetch into padded rows.
import { kvAt, pagedRunIds, pagedTileFetch } from './kv-rows.js';

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
  const head = (params: string) => [
    'template <int W, int PITCH>',
    `__device__ __forceinline__ void dm_fetch(const KvRows& g, T* dst, int t0, int t1${params}) {`,
    '  constexpr int C = W * (int)sizeof(T) / 16, E = 16 / (int)sizeof(T);',
  ];
  const rows = { handle: 'g', tile: 'MMA_TILE', threads: 'MMA_THREADS', chunks: 'C', elems: 'E' };
  if (paged)
    return [
      '// The page ids of a tile, looked up a tile ahead of its fetch (decode-mma.ts).',
      ...pagedRunIds('dm_page_ids', rows),
      ...head(', const KvRows::Ids& ids'),
      ...pagedTileFetch({
        ...rows,
        ids: 'ids',
        copy: (j, src, ok) => `dec_cp<16>(dst + (${j}) * PITCH + c * E, ${src}, ${ok});`,
      }),
      '}',
    ];
  return [
    ...head(''),
    '#pragma unroll',
    '  for (int n = 0; n < (MMA_TILE * C + MMA_THREADS - 1) / MMA_THREADS; ++n) {',
    '    const int i = threadIdx.x + n * MMA_THREADS, j = i / C, c = i % C, kj = t0 + j;',
    '    const bool ok = kj < t1;',
    `    if (i < MMA_TILE * C) dec_cp<16>(dst + j * PITCH + c * E, ${kvAt('g', '(ok ? kj : t0)', 'c * E')}, ok);`,
    '  }',
    '}',
  ];
}

/**
 * The paged float fetch of tile `it` in the tensor-core decode's fetch(): its page ids were looked
 * up when tile it − 1 was fetched (a whole tile of math earlier), so no copy waits on a dependent
 * block-table load; after a tile the block skipped (the sequence broke) it looks them up itself.
 * K and V get their own ids: a thread's rows follow its chunks a row, which differ when D ≠ DV.
 */
export const pagedFloatFetchLines: readonly string[] = [
  '      const KvRows::Ids kc = ids_tile == it ? kid : dm_page_ids<D>(kg, t0, t1);',
  '      const KvRows::Ids vc = ids_tile == it ? vid : dm_page_ids<DV>(vg, t0, t1);',
  '      if (it + 1 < n_tiles) {',
  '        const int n0 = t0 + MMA_TILE, n1 = min(n0 + MMA_TILE, k_end);',
  '        kid = dm_page_ids<D>(kg, n0, n1);',
  '        vid = dm_page_ids<DV>(vg, n0, n1);',
  '        ids_tile = it + 1;',
  '      }',
  '      dm_fetch<D, KP>(kg, ks + (it % MMA_STAGES) * MMA_TILE * KP, t0, t1, kc);',
  '      dm_fetch<DV, VP>(vg, vs + (it % MMA_STAGES) * MMA_TILE * VP, t0, t1, vc);',
];

/** The look-ahead page ids' state, declared before fetch() (pagedFloatFetchLines). */
export const pagedFloatIdsDecl =
  '  KvRows::Ids kid{0, 0}, vid{0, 0}; // page ids of tile ids_tile\n  int ids_tile = -1;';
