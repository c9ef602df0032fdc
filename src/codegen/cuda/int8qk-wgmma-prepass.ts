// The quantize pre-pass of `qk int8 [smooth k]` on the wgmma-ws engine (int8qk-wgmma.ts): wgmma
// reads its int8 operands from shared memory, so Q and K' must exist as int8 codes before the
// attention starts; computing them there would repeat K's quantization in every query tile's CTA
// (128 times per head at N = 16K). One or two launches before the attention, ordinary CUDA (the
// CPU emulator runs them: test/cuda/int8qk-prepass-emu.test.ts):
//
// - smooth k: `qk8_key_sums` writes per-chunk channel sums of K (QK8_CHUNK keys each), so the
//   mean over all Nk keys needs no atomics and is the same on every run;
// - `qk8_quantize`: one CTA per quantization block (docs/LANGUAGE.md "INT8 Q·Kᵀ": blockQ rows of
//   one head of Q, blockK rows of one kv head of K' = K − mean), the block's |max| / 127 as its f32
//   scale and round-half-to-even codes in [−127, 127], written packed ([B·H, Nq, D] and
//   [B·Hkv, Nk, D] bytes: the 128-byte rows the TMA unit swizzles for wgmma) with the scales.
//
// The scratch is the launcher's: one device buffer per artifact, grown on demand (qk8_prepass).
import { INT8_QK_MAX, type QkInt8 } from '../../ir/int8qk.js';

/** Keys per partial channel sum of `smooth k`, and the pre-pass kernels' block size. */
export const QK8_CHUNK = 256;
export const QK8_THREADS = 256;

/** What the pre-pass reads: the Args fields of q and k and their strides. */
export interface PrepassFields {
  readonly q: string;
  readonly k: string;
}

/** Device code: the scratch handle, the block quantizer and the two kernels (after BQ, BK, D, T). */
export function int8QkPrepassDevice(f: PrepassFields): string[] {
  return [
    '// qk int8 pre-pass (int8qk-wgmma-prepass.ts). The codes and scales the attention reads:',
    '// q8 [B·H][Nq][D], k8 [B·Hkv][Nk][D] (bytes), sq [B·H][ceil(Nq/BQ)], sk [B·Hkv][ceil(Nk/BK)],',
    '// and with smooth k the partial channel sums part [B·Hkv][ceil(Nk/QK8_CHUNK)][D].',
    `constexpr int QK8_CHUNK = ${QK8_CHUNK}, QK8_THREADS = ${QK8_THREADS};`,
    'struct Qk8Scratch {',
    '  signed char* q8;',
    '  signed char* k8;',
    '  float* sq;',
    '  float* sk;',
    '  float* part;',
    '};',
    '',
    ...blockQuantizer,
    '',
    ...keySumsKernel(f),
    '',
    ...quantizeKernel(f),
  ];
}

/** ROWS rows (`rows` valid) of D elements at src, rows sn apart, minus mean (or not), to codes. */
const blockQuantizer: readonly string[] = [
  '// Codes of one quantization block: 8-element chunks over the CTA, held in registers between',
  '// the block-wide |max| and the coding (one read of the input).',
  'template <int ROWS>',
  '__device__ __forceinline__ void qk8_quantize_block(const T* src, long long sn, int rows, const float* mean,',
  '                                                   signed char* codes, float* scale) {',
  '  constexpr int C8 = D / 8, PER = (ROWS * C8 + QK8_THREADS - 1) / QK8_THREADS;',
  '  __shared__ float red[QK8_THREADS];',
  '  const int tid = threadIdx.x;',
  '  float x[PER][8];',
  '  float mx = 0.f;',
  '#pragma unroll',
  '  for (int p = 0; p < PER; ++p) {',
  '    const int c = tid + p * QK8_THREADS, r = c / C8, c8 = c % C8;',
  '    const bool live = c < ROWS * C8 && r < rows;',
  '    float4 raw = make_float4(0.f, 0.f, 0.f, 0.f);',
  '    if (live) raw = *reinterpret_cast<const float4*>(src + r * sn + c8 * 8);',
  '    const T* e = reinterpret_cast<const T*>(&raw);',
  '#pragma unroll',
  '    for (int i = 0; i < 8; ++i) {',
  '      // Smoothed in f32, as the definition says; rows past `rows` stay 0 (out of the max).',
  '      x[p][i] = live ? to_f32(e[i]) - (mean != nullptr ? mean[c8 * 8 + i] : 0.f) : 0.f;',
  '      mx = fmaxf(mx, fabsf(x[p][i]));',
  '    }',
  '  }',
  '  red[tid] = mx;',
  '  __syncthreads();',
  '  for (int s = QK8_THREADS / 2; s > 0; s >>= 1) {',
  '    if (tid < s) red[tid] = fmaxf(red[tid], red[tid + s]);',
  '    __syncthreads();',
  '  }',
  `  const float sc = red[0] / ${INT8_QK_MAX}.f; // max|x| / 127, rounded to f32`,
  '  if (tid == 0) *scale = sc;',
  '#pragma unroll',
  '  for (int p = 0; p < PER; ++p) {',
  '    const int c = tid + p * QK8_THREADS, r = c / C8, c8 = c % C8;',
  '    if (c >= ROWS * C8 || r >= rows) continue;',
  '    unsigned w[2] = {0u, 0u};',
  '#pragma unroll',
  '    for (int i = 0; i < 8; ++i) {',
  '      // round_half_to_even(x / s) of the f32 quotient (rintf), 0 for an all-zero block.',
  `      const float q = sc == 0.f ? 0.f : fminf(${INT8_QK_MAX}.f, fmaxf(-${INT8_QK_MAX}.f, rintf(x[p][i] / sc)));`,
  '      w[i / 4] |= ((unsigned)(int)q & 0xffu) << (8 * (i % 4));',
  '    }',
  '    unsigned* dst = reinterpret_cast<unsigned*>(codes + (size_t)r * D + c8 * 8);',
  '    dst[0] = w[0];',
  '    dst[1] = w[1];',
  '  }',
  '  __syncthreads(); // red is reused by a later call',
  '}',
];

/** smooth k: channel sums of K over chunk blockIdx.x of kv head blockIdx.y (b·Hkv + hkv). */
function keySumsKernel(f: PrepassFields): string[] {
  return [
    '__global__ void __launch_bounds__(QK8_THREADS) qk8_key_sums(const Args a, float* __restrict__ part) {',
    '  constexpr int C8 = D / 8, LANES = QK8_THREADS / C8;',
    '  __shared__ float red[LANES][D];',
    '  const int tid = threadIdx.x, c8 = tid % C8, lane = tid / C8;',
    '  const int bh = blockIdx.y, b = bh / a.Hkv, hk = bh % a.Hkv;',
    `  const T* base = static_cast<const T*>(a.${f.k}) + b * a.${f.k}_stride_b + hk * a.${f.k}_stride_h + c8 * 8;`,
    '  const int j1 = min(a.Nk, ((int)blockIdx.x + 1) * QK8_CHUNK);',
    '  float acc[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};',
    '  for (int j = blockIdx.x * QK8_CHUNK + lane; j < j1; j += LANES) {',
    `    const float4 raw = *reinterpret_cast<const float4*>(base + j * a.${f.k}_stride_n);`,
    '    const T* e = reinterpret_cast<const T*>(&raw);',
    '#pragma unroll',
    '    for (int i = 0; i < 8; ++i) acc[i] += to_f32(e[i]);',
    '  }',
    '#pragma unroll',
    '  for (int i = 0; i < 8; ++i) red[lane][c8 * 8 + i] = acc[i];',
    '  __syncthreads();',
    '  for (int d = tid; d < D; d += QK8_THREADS) {',
    '    float s = 0.f;',
    '    for (int l = 0; l < LANES; ++l) s += red[l][d];',
    '    part[((size_t)bh * gridDim.x + blockIdx.x) * D + d] = s;',
    '  }',
    '}',
  ];
}

/** One CTA per quantization block: Q's blocks first, then K's (smoothed when part != nullptr). */
function quantizeKernel(f: PrepassFields): string[] {
  const { q, k } = f;
  return [
    '__global__ void __launch_bounds__(QK8_THREADS) qk8_quantize(const Args a, const Qk8Scratch w) {',
    '  const int nqb = (a.Nq + BQ - 1) / BQ, nkb = (a.Nk + BK - 1) / BK;',
    '  const int blk = blockIdx.x;',
    '  if (blk < a.B * a.H * nqb) {',
    '    const int bh = blk / nqb, t = blk % nqb, b = bh / a.H, h = bh % a.H;',
    `    const T* src = static_cast<const T*>(a.${q}) + b * a.${q}_stride_b + h * a.${q}_stride_h + (long long)t * BQ * a.${q}_stride_n;`,
    `    qk8_quantize_block<BQ>(src, a.${q}_stride_n, min(BQ, a.Nq - t * BQ), nullptr,`,
    '                           w.q8 + ((size_t)bh * a.Nq + (size_t)t * BQ) * D, w.sq + (size_t)bh * nqb + t);',
    '    return;',
    '  }',
    '  const int kb = blk - a.B * a.H * nqb;',
    '  const int bh = kb / nkb, t = kb % nkb, b = bh / a.Hkv, hk = bh % a.Hkv;',
    '  __shared__ float mean[D];',
    '  if (w.part != nullptr) {',
    "    // smooth k: the mean of each channel over the call's keys, from the chunk sums in order.",
    '    const int nch = (a.Nk + QK8_CHUNK - 1) / QK8_CHUNK;',
    '    for (int d = threadIdx.x; d < D; d += QK8_THREADS) {',
    '      float s = 0.f;',
    '      for (int c = 0; c < nch; ++c) s += w.part[((size_t)bh * nch + c) * D + d];',
    '      mean[d] = s / (float)a.Nk;',
    '    }',
    '    __syncthreads();',
    '  }',
    `  const T* src = static_cast<const T*>(a.${k}) + b * a.${k}_stride_b + hk * a.${k}_stride_h + (long long)t * BK * a.${k}_stride_n;`,
    `  qk8_quantize_block<BK>(src, a.${k}_stride_n, min(BK, a.Nk - t * BK), w.part != nullptr ? mean : nullptr,`,
    '                        w.k8 + ((size_t)bh * a.Nk + (size_t)t * BK) * D, w.sk + (size_t)bh * nkb + t);',
    '}',
  ];
}

/**
 * Host (in the namespace): `qk8_prepass(a, stream, &w)` points w into the artifact's scratch
 * (grown when a call needs more; cudaFree/cudaMalloc synchronize, so a growing call is slow and
 * launches of one artifact on several streams at once would share it: the lead's next step is a
 * caller-provided workspace) and launches the pre-pass; null, or why it failed.
 */
export function int8QkPrepassHost(qk: QkInt8): string[] {
  return [
    'static const char* qk8_prepass(const Args& a, cudaStream_t stream, Qk8Scratch* w) {',
    '  const size_t nqb = (a.Nq + BQ - 1) / BQ, nkb = (a.Nk + BK - 1) / BK;',
    '  const size_t nch = (a.Nk + QK8_CHUNK - 1) / QK8_CHUNK;',
    '  auto up = [](size_t n) { return (n + 255) / 256 * 256; }; // TMA bases: 16-byte aligned',
    '  const size_t qb = up((size_t)a.B * a.H * a.Nq * D), kb = up((size_t)a.B * a.Hkv * a.Nk * D);',
    '  const size_t sqb = up(4 * (size_t)a.B * a.H * nqb), skb = up(4 * (size_t)a.B * a.Hkv * nkb);',
    `  const size_t pb = ${qk.smoothK ? '4 * (size_t)a.B * a.Hkv * nch * D' : '0'};`,
    '  static unsigned char* buf = nullptr;',
    '  static size_t cap = 0;',
    '  if (cap < qb + kb + sqb + skb + pb) {',
    '    if (buf != nullptr) cudaFree(buf);',
    '    buf = nullptr;',
    '    cap = 0;',
    '    const cudaError_t e = cudaMalloc(&buf, qb + kb + sqb + skb + pb);',
    '    if (e != cudaSuccess) return "qk int8: cannot allocate the scratch of the quantized Q and K";',
    '    cap = qb + kb + sqb + skb + pb;',
    '  }',
    '  w->q8 = reinterpret_cast<signed char*>(buf);',
    '  w->k8 = reinterpret_cast<signed char*>(buf + qb);',
    '  w->sq = reinterpret_cast<float*>(buf + qb + kb);',
    '  w->sk = reinterpret_cast<float*>(buf + qb + kb + sqb);',
    '  w->part = pb ? reinterpret_cast<float*>(buf + qb + kb + sqb + skb) : nullptr;',
    '  if (w->part != nullptr && a.Nk > 0) {',
    '    qk8_key_sums<<<dim3((unsigned)nch, a.B * a.Hkv), QK8_THREADS, 0, stream>>>(a, w->part);',
    '    if (cudaGetLastError() != cudaSuccess) return "qk int8: the key sums did not launch";',
    '  }',
    '  const size_t blocks = (size_t)a.B * a.H * nqb + (size_t)a.B * a.Hkv * nkb;',
    '  qk8_quantize<<<(unsigned)blocks, QK8_THREADS, 0, stream>>>(a, *w);',
    '  if (cudaGetLastError() != cudaSuccess) return "qk int8: the quantize pass did not launch";',
    '  return nullptr;',
    '}',
  ];
}
