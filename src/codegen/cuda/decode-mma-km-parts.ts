// Pieces every key-major decode kernel shares (decode-mma-km.ts says what the layout is): the
// movmatrix transpose and an indexed shuffle, the query columns' qinv, the online softmax on the
// lane's two query columns, and the warps' combine into shared memory.
import { scoreLines, type MmaElements } from './decode-mma-step.js';

/** Device helpers: movmatrix.trans and an indexed shuffle (the CPU emulator has butterflies only). */
export const kmHelpers: readonly string[] = [
  '// The 8×8 16-bit matrix whose row r0, columns 2t, 2t + 1 lane 4 r0 + t holds, transposed: the lane',
  '// gets row r0 of the transpose (elements (2t, r0), (2t + 1, r0) of the input).',
  '__device__ __forceinline__ unsigned dm_movt(unsigned x) {',
  '#ifdef __CUDA_ARCH__',
  '  unsigned y;',
  '  asm volatile("movmatrix.sync.aligned.m8n8.trans.b16 %0, %1;\\n" : "=r"(y) : "r"(x));',
  '  return y;',
  '#else',
  '  const int l = (int)(threadIdx.x & 31), g = l >> 2, t = l & 3, sh = 16 * (g & 1);',
  '  const unsigned lo = __shfl_xor_sync(0xffffffffu, x, l ^ (8 * t + g / 2));',
  '  const unsigned hi = __shfl_xor_sync(0xffffffffu, x, l ^ (8 * t + 4 + g / 2));',
  '  return ((lo >> sh) & 0xffffu) | ((hi >> sh) & 0xffffu) << 16;',
  '#endif',
  '}',
  '__device__ __forceinline__ float dm_shfl_from(float v, int src) {',
  '#ifdef __CUDA_ARCH__',
  '  return __shfl_sync(0xffffffffu, v, src);',
  '#else',
  '  return __shfl_xor_sync(0xffffffffu, v, (int)(threadIdx.x & 31) ^ src);',
  '#endif',
  '}',
];

/**
 * Q's B fragments qb (the cache kind's `row` lines fill them from row r0, as the query-major kernel
 * fills its A fragments, and set qinv[0]); then qinv of the lane's query columns 2t, 2t + 1.
 */
export const kmLoadQ = (row: readonly string[]): string[] => [
  '  unsigned qb[D / 16][2];',
  '  float qinv[2];',
  '  {',
  "    constexpr int h8 = 0; // row r0 of the block: the query of the lane's B column",
  ...row,
  '    const float qi = qinv[0];',
  '#pragma unroll',
  '    for (int c = 0; c < 2; ++c) qinv[c] = dm_shfl_from(qi, 4 * (2 * (lane & 3) + c)); // column 2t + c',
  '  }',
];

/**
 * The online softmax on the lane's query columns (2t, 2t + 1): masks and the score modifier
 * (decode-mma-step.ts's scoreLines, the query of element e being column e & 1; keys at or past t1
 * are -inf), the column max over the warp's keys (the eight lanes r0 hold one column's keys), the
 * rescale only when some column's max rose (decode-mma-lean.ts's vote), p = 2^(s - m); l sums the
 * lane's own p (the eight lanes' sums are added at the end). `rescale`: more lines under corr (c).
 */
export const kmSoftmax = (el: MmaElements, rescale: readonly string[]): string[] => [
  '      float mx[2] = {-INFINITY, -INFINITY};',
  '#pragma unroll',
  '      for (int j = 0; j < KMT; ++j)',
  '#pragma unroll',
  '        for (int e = 0; e < 4; ++e) {',
  '          const int kj = kw + 16 * j + kr0 + 8 * (e >> 1);',
  ...scoreLines(el, 'e & 1'),
  '          mx[e & 1] = fmaxf(mx[e & 1], s[j][e]);',
  '        }',
  '#pragma unroll',
  '      for (int c = 0; c < 2; ++c)',
  '#pragma unroll',
  '        for (int d = 4; d < 32; d <<= 1) mx[c] = fmaxf(mx[c], __shfl_xor_sync(0xffffffffu, mx[c], d));',
  '      if (dm_any(mx[0] > m[0] || mx[1] > m[1])) {',
  '#pragma unroll',
  '        for (int c = 0; c < 2; ++c) {',
  '          const bool up = mx[c] > -INFINITY;',
  '          const float mn = up ? fmaxf(m[c], mx[c]) : m[c], corr = up ? exp2f(m[c] - mn) : 1.f;',
  '          l[c] *= corr;',
  '#pragma unroll',
  '          for (int n = 0; n < DV / 16; ++n) o[n][c] *= corr, o[n][c + 2] *= corr;',
  ...rescale,
  '          m[c] = mn;',
  '        }',
  '      }',
  '      // -inf (masked) weighs 0; a NaN or +inf score gives p = NaN, which poisons the column.',
  '#pragma unroll',
  '      for (int j = 0; j < KMT; ++j)',
  '#pragma unroll',
  '        for (int e = 0; e < 4; ++e) {',
  '          s[j][e] = s[j][e] == -INFINITY ? 0.f : exp2f(s[j][e] - m[e & 1]);',
  '          l[e & 1] += s[j][e];',
  '        }',
];

/**
 * The warps' states into shared memory for combineRows: l summed over the eight lanes of a column,
 * o[n][e] at `channel` (its channel for m-tile n, row r0 + 8 v), m and l per query column.
 */
export const kmCombine = (channel: string): string[] => [
  '#pragma unroll',
  '  for (int c = 0; c < 2; ++c)',
  '#pragma unroll',
  '    for (int d = 4; d < 32; d <<= 1) l[c] += __shfl_xor_sync(0xffffffffu, l[c], d);',
  '  dec_wait<0>();',
  '  __syncthreads(); // the stream buffers are free: they hold the combine now',
  '  float* cm = reinterpret_cast<float*>(dm_smem); // [WARPS][ROWS] m, then l, then o [WARPS][ROWS][DV]',
  '  float* cl = cm + MMA_WARPS * MMA_ROWS;',
  '  float* co = cl + MMA_WARPS * MMA_ROWS;',
  '#pragma unroll',
  '  for (int c = 0; c < 2; ++c) {',
  '    const int r = 2 * (lane & 3) + c;',
  '    if (r0 == 0) {',
  '      cm[warp * MMA_ROWS + r] = l[c] != 0.f ? m[c] : -INFINITY; // l NaN: poisoned, kept',
  '      cl[warp * MMA_ROWS + r] = l[c];',
  '    }',
  '#pragma unroll',
  '    for (int n = 0; n < DV / 16; ++n)',
  '#pragma unroll',
  `      for (int v = 0; v < 2; ++v) co[((size_t)warp * MMA_ROWS + r) * DV + ${channel}] = o[n][c + 2 * v];`,
  '  }',
  '  __syncthreads();',
];
