// The V pre-pass of `pv e4m3 [smooth v]` (docs/LANGUAGE.md "FP8 P·V"; the definition is
// runtime/reference-int8qk-pv.ts): fp8 wgmma reads both operands K-major, so V must exist before
// the attention as e4m3 codes transposed to [DV][keys]; computing them there would repeat V's
// quantization in every query tile's CTA. Two launches, ordinary CUDA (the CPU emulator runs
// them: test/cuda/int8qk-pv-prepass-emu.test.ts):
//
// - `pv8_value_stats`: per chunk of PV8_CHUNK keys of one kv head, each channel's sum, min and
//   max (so the mean and the range over all Nk keys need no atomics and are the same every run);
// - `pv8_quantize`: per chunk, mean_c = Σ sums / Nk (smooth v; else 0), the channel's scale
//   sv_c = max|v − mean| / 448 from the chunks' min and max (f32 subtraction is monotone, so
//   max_j fl(v_j − m) = fl(max_j v_j − m): the same value the definition's max over the
//   smoothed keys gives), the codes e4m3(fl(fl(v − mean) / sv)), written through shared memory as
//   rows of keys per channel: vt [B·Hkv][DV][NkPad] bytes, NkPad = Nk rounded up to
//   PV8_KEY_PAD (pad keys code 0, never NaN: a tensor-core product reads them as 0 · 0).
//
// Within each 32 keys the row is permuted (pv8_position) so that a consumer thread's S
// accumulators of wgmma m64nNk16 (keys 8j + 2t, 8j + 2t + 1 of its rows, t = lane % 4) are, in
// register order, its A fragment of wgmma m64nDVk32 .e4m3 (k = 4t..4t+3 and 16 + 4t..16 + 4t+3):
// P packs with cvt.rn.satfinite.e4m3x2.f32 and no shuffles. Key κ = 16h + 8a + 2t + b sits at
// k-position 16h + 4t + 2a + b.
import { E4M3_MAX } from '../../ir/pv-e4m3.js';

/** Keys per partial statistic and per quantize CTA, and the pre-pass kernels' block size. */
export const PV8_CHUNK = 256;
export const PV8_THREADS = 256;
/** A code row's keys are padded to this: the fp8 kernel's key tiles (multiples of 32, ≤ 128) never read past it. */
export const PV8_KEY_PAD = 128;

/** k-position of key `key` inside its group of 32 (the permutation above), as JavaScript. */
export function pv8Position(key: number): number {
  return (key & ~31) | (key & 16) | (((key >> 1) & 3) << 2) | (((key >> 3) & 1) << 1) | (key & 1);
}

/** What the pre-pass reads: the Args field of v (with its strides). */
export interface PvPrepassFields {
  readonly v: string;
}

/** Device code: the scratch, the e4m3 encoder, the position map and the two kernels (after T, DV, to_f32). */
export function pvE4m3PrepassDevice(f: PvPrepassFields): string[] {
  return [
    '// pv e4m3 pre-pass (int8qk-pv-prepass.ts). What the attention reads: vt [B·Hkv][DV][NkPad]',
    '// e4m3 codes (keys permuted within 32), sv and mean [B·Hkv][DV]; stats [B·Hkv][chunks][3][DV]',
    '// is the pre-pass own (sum, min, max per chunk).',
    `constexpr int PV8_CHUNK = ${PV8_CHUNK}, PV8_THREADS = ${PV8_THREADS}, PV8_KEY_PAD = ${PV8_KEY_PAD};`,
    'struct Pv8Scratch {',
    '  unsigned char* vt;',
    '  float* sv;',
    '  float* mean;',
    '  float* stats;',
    '};',
    '',
    ...e4m3Encoder,
    '',
    '// k-position of a key in its code row: within each 32, key 16h + 8a + 2t + b at 16h + 4t + 2a + b.',
    '__device__ __forceinline__ int pv8_position(int key) {',
    '  return (key & ~31) | (key & 16) | (((key >> 1) & 3) << 2) | (((key >> 3) & 1) << 1) | (key & 1);',
    '}',
    '',
    ...statsKernel(f),
    '',
    ...quantizeKernel(f),
  ];
}

/** e4m3 of an f32, ties to even, saturating at ±448 (cvt.rn.satfinite; src/quant/floats.ts's rule). */
const e4m3Encoder: readonly string[] = [
  '__device__ __forceinline__ unsigned pv8_e4m3(float x) {',
  '#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 890',
  '  unsigned short pair;',
  '  asm("cvt.rn.satfinite.e4m3x2.f32 %0, %1, %2;" : "=h"(pair) : "f"(0.f), "f"(x));',
  '  return pair & 0xffu;',
  '#else',
  '  // The same rounding in integer arithmetic (the emulator, and targets without the instruction).',
  '  unsigned bits;',
  '  memcpy(&bits, &x, 4);',
  '  const unsigned sign = (bits >> 24) & 0x80u, exp = (bits >> 23) & 0xffu, m23 = bits & 0x7fffffu;',
  '  if (exp == 0xffu) return m23 ? 0x7fu : sign | 0x7eu;',
  '  if (exp == 0u) return sign;',
  '  const int e = (int)exp - 127 + 7;',
  '  const unsigned full = m23 | 0x800000u;',
  '  const int shift = e >= 1 ? 20 : 21 - e;',
  '  if (shift > 24) return sign;',
  '  unsigned q = e >= 1 ? ((unsigned)e << 3) | (m23 >> shift) : full >> shift;',
  '  const unsigned rem = (e >= 1 ? m23 : full) & ((1u << shift) - 1u), half = 1u << (shift - 1);',
  '  if (rem > half || (rem == half && (q & 1u))) ++q;',
  '  return sign | (q < 0x7eu ? q : 0x7eu);',
  '#endif',
  '}',
];

/** Per (chunk blockIdx.x, kv head blockIdx.y = b·Hkv + hkv): each channel's sum, min and max. */
function statsKernel(f: PvPrepassFields): string[] {
  const v = f.v;
  return [
    '__global__ void __launch_bounds__(PV8_THREADS) pv8_value_stats(const Args a, float* __restrict__ stats) {',
    '  constexpr int C8 = DV / 8, LANES = PV8_THREADS / C8;',
    '  __shared__ float red[3][LANES][DV];',
    '  const int tid = threadIdx.x, c8 = tid % C8, lane = tid / C8;',
    '  const int bh = blockIdx.y, b = bh / a.Hkv, hk = bh % a.Hkv;',
    `  const T* base = static_cast<const T*>(a.${v}) + b * a.${v}_stride_b + hk * a.${v}_stride_h + c8 * 8;`,
    '  const int j1 = min(a.Nk, ((int)blockIdx.x + 1) * PV8_CHUNK);',
    '  float sum[8], lo[8], hi[8];',
    '#pragma unroll',
    '  for (int i = 0; i < 8; ++i) sum[i] = 0.f, lo[i] = INFINITY, hi[i] = -INFINITY;',
    '  for (int j = blockIdx.x * PV8_CHUNK + lane; j < j1; j += LANES) {',
    `    const float4 raw = *reinterpret_cast<const float4*>(base + j * a.${v}_stride_n);`,
    '    const T* e = reinterpret_cast<const T*>(&raw);',
    '#pragma unroll',
    '    for (int i = 0; i < 8; ++i) {',
    '      const float x = to_f32(e[i]);',
    '      sum[i] += x;',
    '      lo[i] = fminf(lo[i], x);',
    '      hi[i] = fmaxf(hi[i], x);',
    '    }',
    '  }',
    '#pragma unroll',
    '  for (int i = 0; i < 8; ++i) {',
    '    red[0][lane][c8 * 8 + i] = sum[i];',
    '    red[1][lane][c8 * 8 + i] = lo[i];',
    '    red[2][lane][c8 * 8 + i] = hi[i];',
    '  }',
    '  __syncthreads();',
    '  for (int d = tid; d < DV; d += PV8_THREADS) {',
    '    float s = 0.f, l = INFINITY, h = -INFINITY;',
    '    for (int x = 0; x < LANES; ++x) s += red[0][x][d], l = fminf(l, red[1][x][d]), h = fmaxf(h, red[2][x][d]);',
    '    float* out = stats + ((size_t)bh * gridDim.x + blockIdx.x) * 3 * DV + d;',
    '    out[0] = s;',
    '    out[DV] = l;',
    '    out[2 * DV] = h;',
    '  }',
    '}',
  ];
}

/** Per (chunk, kv head): the channel mean and scale from every chunk's stats, then this chunk's codes. */
function quantizeKernel(f: PvPrepassFields): string[] {
  const v = f.v;
  return [
    '__global__ void __launch_bounds__(PV8_THREADS) pv8_quantize(const Args a, const Pv8Scratch w, const bool smooth) {',
    '  constexpr int C8 = DV / 8, PER = PV8_CHUNK * C8 / PV8_THREADS, ROW_WORDS = PV8_CHUNK / 16;',
    '  __shared__ float mean[DV], scale[DV];',
    '  __shared__ unsigned codes[DV][PV8_CHUNK / 4]; // [channel][k-position] bytes, 4 to a word',
    '  const int tid = threadIdx.x, nch = gridDim.x, chunk = blockIdx.x;',
    '  const int bh = blockIdx.y, b = bh / a.Hkv, hk = bh % a.Hkv;',
    '  for (int d = tid; d < DV; d += PV8_THREADS) {',
    '    float s = 0.f, l = INFINITY, h = -INFINITY;',
    '    for (int c = 0; c < nch; ++c) {',
    '      const float* st = w.stats + ((size_t)bh * nch + c) * 3 * DV + d;',
    '      s += st[0], l = fminf(l, st[DV]), h = fmaxf(h, st[2 * DV]);',
    '    }',
    "    // smooth v: the channel's mean over the call's keys, from the chunk sums in order.",
    '    const float m = smooth ? s / (float)a.Nk : 0.f;',
    `    const float sc = fmaxf(h - m, m - l) / ${E4M3_MAX}.f; // max|v − mean| / 448, rounded to f32`,
    '    mean[d] = m;',
    '    scale[d] = sc;',
    '    if (chunk == 0) w.sv[(size_t)bh * DV + d] = sc, w.mean[(size_t)bh * DV + d] = m;',
    '  }',
    '  __syncthreads();',
    `  const T* src = static_cast<const T*>(a.${v}) + b * a.${v}_stride_b + hk * a.${v}_stride_h;`,
    '  unsigned char* staged = reinterpret_cast<unsigned char*>(&codes[0][0]);',
    '#pragma unroll 4',
    '  for (int p = 0; p < PER; ++p) {',
    '    const int c = tid + p * PV8_THREADS, r = c / C8, c8 = c % C8, key = chunk * PV8_CHUNK + r;',
    '    float4 raw = make_float4(0.f, 0.f, 0.f, 0.f);',
    `    if (key < a.Nk) raw = *reinterpret_cast<const float4*>(src + (long long)key * a.${v}_stride_n + c8 * 8);`,
    '    const T* e = reinterpret_cast<const T*>(&raw);',
    '    const int at = pv8_position(r);',
    '#pragma unroll',
    '    for (int i = 0; i < 8; ++i) {',
    '      const int d = c8 * 8 + i;',
    '      // e4m3 of the f32 quotient; pad keys and an all-zero channel code 0.',
    '      const float x = to_f32(e[i]) - mean[d];',
    '      staged[d * PV8_CHUNK + at] = (unsigned char)(key < a.Nk && scale[d] != 0.f ? pv8_e4m3(x / scale[d]) : 0u);',
    '    }',
    '  }',
    '  __syncthreads();',
    '  // Out as 16-byte pieces of each channel row, up to NkPad (the pad codes were written 0 above).',
    '  const int nkPad = (a.Nk + PV8_KEY_PAD - 1) / PV8_KEY_PAD * PV8_KEY_PAD;',
    '  for (int u = tid; u < DV * ROW_WORDS; u += PV8_THREADS) {',
    '    const int d = u / ROW_WORDS, piece = u % ROW_WORDS, key0 = chunk * PV8_CHUNK + piece * 16;',
    '    if (key0 >= nkPad) continue;',
    '    unsigned* dst = reinterpret_cast<unsigned*>(w.vt + ((size_t)bh * DV + d) * nkPad + key0);',
    '#pragma unroll',
    '    for (int i = 0; i < 4; ++i) dst[i] = codes[d][piece * 4 + i];',
    '  }',
    '}',
  ];
}
