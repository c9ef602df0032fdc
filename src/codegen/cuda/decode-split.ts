// The fixed pieces of CUDA decode's kernels (decode.ts assembles them around the tile loop):
// a partial's slot, the split kernel's query rows and softmax state, the combine of its lane
// groups into one partial per row, and the merge kernel over a row's partials.
import type { AttentionKernel } from '../../ir/kernel.js';
import { cudaMergeBody } from './merge.js';

/** `part_slot`: where the partial of packed row r of a block lives in the scratch. */
export const partSlotFn = (): string[] => [
  '// Partial (acc[DV], m, l) of packed row r of a block (its lane groups combined).',
  '__device__ __forceinline__ size_t part_slot(const Args& a, int b, int hk, int rt, int row_tiles, int split, int n_splits, int r) {',
  '  return ((((size_t)b * a.Hkv + hk) * row_tiles + rt) * n_splits + split) * MT * (DV + 2) + (size_t)r * (DV + 2);',
  '}',
];

/** The split kernel's head: its block's packed rows (q rows kept in registers), m, l, acc, keys. */
export const splitKernelHead = (): string[] => [
  '__global__ void __launch_bounds__(THREADS, ATTNC_DEC_MIN_BLOCKS) split_kernel(const Args a, float* __restrict__ part, int split_keys, int n_splits, int row_tiles) {',
  '  const int group = a.H / a.Hkv, packed = group * a.Nq;',
  '  const int split = blockIdx.x / row_tiles, rt = blockIdx.x % row_tiles;',
  '  const int hk = blockIdx.y, b = blockIdx.z;',
  '  const int lane = threadIdx.x & 7, g = threadIdx.x >> 3;',
  '  [[maybe_unused]] int hr[MT], qp[MT];',
  '  bool rok[MT];',
  '  VecT<VW> qx[MT][CD]; // kept in storage type: half the registers of f32 at 16 bits',
  '#pragma unroll',
  '  for (int r = 0; r < MT; ++r) {',
  '    const int p = rt * MT + r;',
  '    rok[r] = p < packed;',
  '    const int pp = rok[r] ? p : 0;',
  '    const int row = pp % a.Nq;',
  '    hr[r] = hk * group + pp / a.Nq;',
  '    qp[r] = row + a.q_offset;',
  '    const T* qrow = q_row(a, b, hr[r], row);',
  '#pragma unroll',
  '    for (int c = 0; c < CD; ++c) {',
  '      qx[r][c] = *reinterpret_cast<const VecT<VW>*>(qrow + (lane + 8 * c) * VW);',
  '    }',
  '  }',
  '  float m[MT], l[MT], acc[MT][CV][VW];',
  '#pragma unroll',
  '  for (int r = 0; r < MT; ++r) {',
  '    m[r] = -INFINITY;',
  '    l[r] = 0.f;',
  '#pragma unroll',
  '    for (int c = 0; c < CV; ++c)',
  '#pragma unroll',
  '      for (int e = 0; e < VW; ++e) acc[r][c][e] = 0.f;',
  '  }',
  '  const int k_begin = split * split_keys, k_end = min(a.Nk, k_begin + split_keys);',
];

/** A quantized cache's row bases (it addresses its codes by global row). */
export const quantRowBases = (k: AttentionKernel): string[] => [
  '  // A quantized cache addresses its codes by global row (packed layout: decode-quant.ts).',
  // Paged: rows come through the block table (decode-pipe.ts), kv0 goes unused.
  `  ${k.formats.paged ? '[[maybe_unused]] ' : ''}const size_t kv0 = ((size_t)b * a.Hkv + hk) * a.Nk;`,
  '  [[maybe_unused]] const size_t bh = (size_t)b * a.Hkv + hk; // a cache head',
];

/** The split kernel's tail: its 16 lane groups combined in shared memory, one partial per row. */
export const splitCombine = (): string[] => [
  '  // Combine the 16 groups in shared memory: one partial per row and block.',
  '  __shared__ float sm_m[GROUPS][MT], sm_max[MT], sm_l[MT], sm_acc[MT][DV];',
  '  for (int i = threadIdx.x; i < MT * DV; i += THREADS) sm_acc[i / DV][i % DV] = 0.f;',
  '  if (threadIdx.x < MT) sm_l[threadIdx.x] = 0.f;',
  '  if (lane == 0)',
  '#pragma unroll',
  '    for (int r = 0; r < MT; ++r) sm_m[g][r] = l[r] != 0.f ? m[r] : -INFINITY; // l NaN: poisoned, kept',
  '  __syncthreads();',
  '#pragma unroll',
  '  for (int r = 0; r < MT; ++r) {',
  '    float M = -INFINITY;',
  '#pragma unroll',
  '    for (int j = 0; j < GROUPS; ++j) M = fmaxf(M, sm_m[j][r]);',
  '    if (l[r] != 0.f) { // a NaN l carries into sm_l',
  '      const float f = exp2f(m[r] - M);',
  '#pragma unroll',
  '      for (int c = 0; c < CV; ++c)',
  '#pragma unroll',
  '        for (int e = 0; e < VW; ++e) atomicAdd(&sm_acc[r][(lane + 8 * c) * VW + e], acc[r][c][e] * f);',
  '      if (lane == 0) atomicAdd(&sm_l[r], l[r] * f);',
  '    }',
  '    if (threadIdx.x == 0) sm_max[r] = M;',
  '  }',
  '  __syncthreads();',
  '  for (int i = threadIdx.x; i < MT * (DV + 2); i += THREADS) {',
  '    const int r = i / (DV + 2), c = i % (DV + 2);',
  '    if (!rok[r]) continue;',
  '    float* dst = part + part_slot(a, b, hk, rt, row_tiles, split, n_splits, r);',
  '    dst[c] = c < DV ? sm_acc[r][c] : c == DV ? sm_max[r] : sm_l[r];',
  '  }',
  '}',
];

/** The merge kernel: one block per (query row, head, batch) over the row's partials (merge.ts). */
export function mergeKernel(lse: string | undefined): string[] {
  return [
    '// One block per (query row, head, batch): M = max m_i over partials with l_i != 0,',
    '// L = sum l_i 2^(m_i - M), out = sum acc_i 2^(m_i - M) / L, lse = (M + log2 L) ln 2. L == 0:',
    '// an empty row (out 0, lse -inf); a partial with l NaN (a NaN or +inf score) makes L NaN.',
    'constexpr int MERGE_THREADS = 128;',
    '__global__ void __launch_bounds__(MERGE_THREADS) merge_kernel(const Args a, const float* __restrict__ part, int n_splits, int row_tiles) {',
    '  const int row = blockIdx.x, h = blockIdx.y, b = blockIdx.z;',
    '  const int group = a.H / a.Hkv, hk = h / group, p = (h % group) * a.Nq + row;',
    '  const int rt = p / MT, r = p % MT, n = n_splits;',
    '  const float* base = part + part_slot(a, b, hk, rt, row_tiles, 0, n_splits, r);',
    '  const size_t stride = (size_t)MT * (DV + 2); // between consecutive splits',
    ...cudaMergeBody({
      strategy: 'block',
      base: 'log2',
      threads: 'MERGE_THREADS',
      records: { first: 'base', stride: 'stride', count: 'n', countLabel: 'n_splits' },
      sink: {
        decl: 'T* og = out_row(a, b, h, row);',
        at: (d) => `og[${d}]`,
        lse: lse ? { ptr: lse, index: '((size_t)b * a.H + h) * a.Nq + row' } : undefined,
      },
    }),
    '}',
  ];
}
