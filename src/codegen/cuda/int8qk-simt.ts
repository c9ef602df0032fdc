// `qk int8 [smooth k]` on the SIMT engine (docs/LANGUAGE.md, "INT8 Q·Kᵀ"; ir/int8qk.ts): the
// definition executed with exact integer arithmetic in f32 registers, for every GPU and for the
// CPU emulator, not for speed (the tensor-core path is wgmma's `.s32.s8.s8`). Codes are stored as
// floats: a product of two codes is at most 127² and a row's sum at most 127²·D, exact in f32 for
// D ≤ 1024, so `Σ qi8·ki8` is the int32 sum the definition names.
//
// - Q: each block quantizes its own query tile once, after loading it (one block-wide |max|).
// - K: each staged key tile is smoothed and quantized in shared memory before the scores; every
//   block computes the same codes for a tile (same data, same reduction order).
// - smooth k: each block first sums its kv head's keys per channel (one extra read of K per
//   block: the price of needing no pre-pass and no workspace on this engine).
import { INT8_QK_MAX, type QkInt8 } from '../../ir/int8qk.js';

/** Device helpers: the block-wide |max| and the code of x at scale s (after the SIMT prelude). */
export function int8QkHelpers(): string[] {
  return [
    '// qk int8 (int8qk-simt.ts): block-wide max of v (every thread gets it), and int8 codes',
    '// round-half-to-even(x / s) in [-127, 127] (0 for an all-zero block, s = 0).',
    '__host__ __device__ constexpr int qk_pow2(int n) { int p = 1; while (p < n) p <<= 1; return p; }',
    '__device__ __forceinline__ float qk_block_max(float v, float* red, int tid) {',
    '  red[tid] = v;',
    '  __syncthreads();',
    '#pragma unroll 1',
    '  for (int s = qk_pow2(THREADS) / 2; s > 0; s >>= 1) {',
    '    if (tid < s && tid + s < THREADS) red[tid] = fmaxf(red[tid], red[tid + s]);',
    '    __syncthreads();',
    '  }',
    '  const float m = red[0];',
    '  __syncthreads(); // red is reused by the next call',
    '  return m;',
    '}',
    '__device__ __forceinline__ float qk_code(float x, float s) {',
    `  return s == 0.f ? 0.f : fminf(${INT8_QK_MAX}.f, fmaxf(-${INT8_QK_MAX}.f, rintf(x / s)));`,
    '}',
  ];
}

/** Kernel-scope state: the reduction scratch and, with `smooth k`, the channel means of K. */
export function int8QkSetup(qk: QkInt8): string[] {
  return [
    '__shared__ float qk_red[THREADS];',
    'float qk_tile_scale = 0.f; // sq · qscale · sk of the tile in flight',
    ...(qk.smoothK
      ? [
          "// smooth k: the mean over the call's keys of each channel of this kv head.",
          '__shared__ float qk_kmean[D];',
          'for (int d = tid; d < D; d += THREADS) {',
          '  float sum = 0.f;',
          '#pragma unroll 1',
          '  for (int j = 0; j < a.Nk; ++j) sum += to_f32(kg.row(j)[d]);',
          '  qk_kmean[d] = a.Nk > 0 ? sum / (float)a.Nk : 0.f;',
          '}',
          '__syncthreads();',
        ]
      : []),
  ];
}

/**
 * After the Q tile is loaded into qr unscaled: its block scale, qr replaced by codes, and
 * qk_q_factor = sq · qscale (rows past Nq were loaded as 0 and do not move the max).
 */
export function int8QkQuantizeQ(): string[] {
  return [
    "// qk int8: quantize this block's query tile (one scale for its rows of this head).",
    'float qk_local = 0.f;',
    '#pragma unroll',
    'for (int r = 0; r < ROWS; ++r)',
    '#pragma unroll',
    '  for (int d = 0; d < D / TPR; ++d) qk_local = fmaxf(qk_local, fabsf(qr[r][d]));',
    `const float qk_sq = qk_block_max(qk_local, qk_red, tid) / ${INT8_QK_MAX}.f;`,
    '#pragma unroll',
    'for (int r = 0; r < ROWS; ++r)',
    '#pragma unroll',
    '  for (int d = 0; d < D / TPR; ++d) qr[r][d] = qk_code(qr[r][d], qk_sq);',
    'const float qk_q_factor = qk_sq * qscale;',
  ];
}

/**
 * After K tile `kt` is staged in Ks (rows past Nk are 0): smoothed (valid rows only, so padding
 * stays 0 and out of the max), quantized in place, and qk_tile_scale set for its scores.
 */
export function int8QkQuantizeKTile(qk: QkInt8): string[] {
  return [
    '{ // qk int8: smooth and quantize the staged key tile in place (one scale per tile)',
    '  float qk_mx = 0.f;',
    '  for (int i = tid; i < BK * D; i += THREADS) {',
    ...(qk.smoothK
      ? ['    const float x = kt * BK + i / D < a.Nk ? Ks[i] - qk_kmean[i % D] : 0.f;', '    Ks[i] = x;']
      : ['    const float x = Ks[i];']),
    '    qk_mx = fmaxf(qk_mx, fabsf(x));',
    '  }',
    `  const float qk_sk = qk_block_max(qk_mx, qk_red, tid) / ${INT8_QK_MAX}.f;`,
    '  for (int i = tid; i < BK * D; i += THREADS) Ks[i] = qk_code(Ks[i], qk_sk);',
    '  qk_tile_scale = qk_q_factor * qk_sk;',
    '  __syncthreads();',
    '}',
  ];
}

/** In the tile lambda, after the dot products: codes' sums to scaled scores. */
export const int8QkScaleScores: readonly string[] = [
  '// qk int8: the sums of code products times sq · qscale · sk.',
  '#pragma unroll',
  'for (int r = 0; r < ROWS; ++r)',
  '#pragma unroll',
  '  for (int jj = 0; jj < KC; ++jj) s[r][jj] *= qk_tile_scale;',
];
