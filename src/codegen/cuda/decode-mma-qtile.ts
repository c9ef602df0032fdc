// The tensor-core decode kernel's pieces for quantized K/V (decode-mma-quant.ts says what and
// why): Q's f16 A fragments with a power-of-two row scale, S = q̂·codes from shared-memory code
// words, P·V with p folded with the per-token V scale, and the code-row fetch. Shared memory holds
// code rows of D bytes (pitch D + 16: a warp's 16-byte K reads hit distinct banks) and DV bytes
// (pitch DV + 32, likewise for V's four rows a lane reads).
import { kPairOffsets, type MmaQuant } from './decode-mma-quant.js';

/** Constants of the quantized layout (bytes). */
export const quantConstants: readonly string[] = [
  'constexpr int KPB = D + 16, VPB = DV + 32; // code row pitches (bytes)',
  'constexpr int SCW = MMA_TILE / 2 + 4; // scale words a stage and cache (a window from an even row)',
  'constexpr size_t MMA_STREAM = (size_t)MMA_STAGES * (MMA_TILE * (KPB + VPB) + 2 * SCW * 4);',
];

/** First channel of lane t's K word for k-step ks (a 64-channel block of 4 k-steps: lanes 16 bytes apart). */
const kChan = '64 * (ks >> 2) + 16 * (lane & 3) + 4 * (ks & 3)';

/**
 * Row h8 of the thread's two Q rows (r0 and r0 + 8 of its row group; past `packed`: not ok, read
 * as row 0): its pointer qs, then the head of the loop over k-steps that finds its max |q|.
 */
export const qRowHead: readonly string[] = [
  '    const int p = rg * MMA_ROWS + r0 + 8 * h8;',
  '    const bool ok = p < packed;',
  '    const int pp = ok ? p : 0;',
  '    const T* qs = q_row(a, b, hk * group + pp / a.Nq, pp % a.Nq);',
  '    float amax = 0.f;',
  '#pragma unroll',
  '    for (int ks = 0; ks < D / 16; ++ks)',
  '#pragma unroll',
];

/** The row's power-of-two scale from its max |q| over the quad: f = 2^(14 - e), qinv = 2^(e - 14). */
export const qRowScale: readonly string[] = [
  '    amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, 1));',
  '    amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, 2)); // the quad holds the row',
  '    int ex = 0; // 0 for a zero row and for inf / NaN (they stay inf / NaN in f16)',
  '    if (amax > 0.f && amax <= 3.4e38f) frexpf(amax, &ex);',
  '    ex = max(ex, -100);',
  '    const float f = ldexpf(1.f, 14 - ex);',
  '    qinv[h8] = ldexpf(1.f, ex - 14);',
];

/**
 * Row r0 + 8 h8 of the block's q in f16, q · 2^(14 - e) (e the exponent of the row's max |q|), as
 * the pairs of K words' pairs 0 and 1 of k-step ks (into dst(0), dst(1)); qinv[h8] = 2^(e - 14).
 * Both quantized kernels' Q (h8 in scope).
 */
export function quantQRow(q: MmaQuant, dst: (h: 0 | 1) => string): string[] {
  const [p0, p1] = kPairOffsets(q.k.elem);
  return [
    ...qRowHead,
    '      for (int i = 0; i < 4; ++i) amax = fmaxf(amax, ok ? fabsf(to_f32(qs[' + kChan + ' + i])) : 0.f);',
    ...qRowScale,
    '#pragma unroll',
    '    for (int ks = 0; ks < D / 16; ++ks) {',
    `      const int c = ${kChan};`,
    '      auto qv = [&](int i) { return ok ? to_f32(qs[c + i]) * f : 0.f; };',
    `      ${dst(0)} = dm_h2(qv(${p0[0]}), qv(${p0[1]}));`,
    `      ${dst(1)} = dm_h2(qv(${p1[0]}), qv(${p1[1]}));`,
    '    }',
  ];
}

/** Q's A fragments in f16: q · 2^(14 - e) per row, e the exponent of the row's max |q|. */
export function quantLoadQ(q: MmaQuant): string[] {
  return [
    '  unsigned qf[D / 16][4];',
    '  float qinv[2]; // 2^(e - 14): S of q̂ back to q',
    '#pragma unroll',
    '  for (int h8 = 0; h8 < 2; ++h8) {',
    ...quantQRow(q, (h) => (h ? 'qf[ks][h8 + 2]' : 'qf[ks][h8]')),
    '  }',
  ];
}

/**
 * S = q̂·c on the warp's keys (kt: the warp's first K code row, bytes), times the folded column
 * scale on the C elements e < E (4; the lean loop's 2 · HALVES leaves padding rows unscaled).
 */
export const quantScores = (E: string): string[] => [
  '      float s[NT][4];',
  '#pragma unroll',
  '      for (int j = 0; j < NT; ++j) {',
  '        s[j][0] = s[j][1] = s[j][2] = s[j][3] = 0.f;',
  '        // Column r0 of tile j is the key dmq_key(j, ·) of lane 4 (r0 / 2) + ..., as the C fragment has it.',
  '        const int n = r0;',
  '        const unsigned char* kr = kt + (16 * (j >> 1) + (n >> 1) + 4 * (2 * (j & 1) + (n & 1))) * KPB + 16 * (lane & 3);',
  '#pragma unroll',
  '        for (int m = 0; m < D / 64; ++m) {',
  '          const DmW4 w4 = *reinterpret_cast<const DmW4*>(kr + 64 * m);',
  '          const unsigned w[4] = {w4.x, w4.y, w4.z, w4.w};',
  '#pragma unroll',
  '          for (int i = 0; i < 4; ++i) dm_mma_h(s[j], qf[4 * m + i], dmq_k(w[i], 0), dmq_k(w[i], 1));',
  '        }',
  '#pragma unroll',
  `        for (int e = 0; e < ${E}; ++e) s[j][e] *= sk[j][e & 1] * qinv[e >> 1];`,
  '      }',
];

/**
 * O += (p · s_v)·c over the warp's keys (vt: its first V code row, bytes). `halves`: the row halves
 * the loop computes (HALVES in the lean loop, else 2); with one, the padding rows' A registers are
 * 0 (their p are 0; 0 · s_v is no constant to the compiler, and NaN for a non-finite scale).
 */
export const quantPv = (halves: string): string[] => [
  '#pragma unroll',
  '      for (int kk = 0; kk < NT / 2; ++kk) {',
  `        constexpr bool rows8 = ${halves} > 1; // rows 8..15 live`,
  '        const unsigned pa[4] = {dm_h2(s[2 * kk][0] * sv[2 * kk][0], s[2 * kk][1] * sv[2 * kk][1]),',
  '                                rows8 ? dm_h2(s[2 * kk][2] * sv[2 * kk][0], s[2 * kk][3] * sv[2 * kk][1]) : 0u,',
  '                                dm_h2(s[2 * kk + 1][0] * sv[2 * kk + 1][0], s[2 * kk + 1][1] * sv[2 * kk + 1][1]),',
  '                                rows8 ? dm_h2(s[2 * kk + 1][2] * sv[2 * kk + 1][0], s[2 * kk + 1][3] * sv[2 * kk + 1][1]) : 0u};',
  '        // Keys t, t + 4 (b0) and t + 8, t + 12 (b1) of the block; channels r0 · DV / 8 + nb.',
  '        const unsigned char* vr = vt + (16 * kk + (lane & 3)) * VPB + r0 * (DV / 8);',
  '#pragma unroll',
  '        for (int m = 0; m < DV / 128; ++m) {',
  '          DmW4 w4[4];',
  '#pragma unroll',
  '          for (int i = 0; i < 4; ++i) w4[i] = *reinterpret_cast<const DmW4*>(vr + 4 * i * VPB + 16 * m);',
  '#pragma unroll',
  '          for (int x = 0; x < 16; ++x) {',
  '            auto word = [&](int i) { const unsigned* p = &w4[i].x; return p[x >> 2]; };',
  '            dm_mma_h(o[16 * m + x], pa, dmq_v(word(0), word(1), x & 3), dmq_v(word(2), word(3), x & 3));',
  '          }',
  '        }',
  '      }',
];

/**
 * Code rows t0..t1-1 (ROWB bytes each, from `src`: the cache head's first row) into dst, PITCH
 * apart. Where the threads split a pass into whole rows (MMA_THREADS a multiple of the row's 16-byte
 * chunks) a thread keeps one chunk column and one source pointer, and its copies step by constant
 * offsets: the general form's index division and 64-bit multiply a copy, which ptxas recomputed
 * for every 16 bytes under the kernel's register pressure (call 65: ~29 instructions a copy, a
 * third of the int8 kernel's), leave the loop.
 */
export const quantFetch: readonly string[] = [
  '#ifdef __CUDA_ARCH__',
  'typedef uint4 DmW4; // 16-byte shared-memory reads',
  '#else',
  'struct alignas(16) DmW4 { unsigned x, y, z, w; };',
  '#endif',
  'template <int ROWB, int PITCH>',
  '__device__ __forceinline__ void dm_fetch_codes(const unsigned char* src, unsigned char* dst, int t0, int t1) {',
  '  constexpr int C = ROWB / 16, N = (MMA_TILE * C + MMA_THREADS - 1) / MMA_THREADS;',
  '  if constexpr (ATTNC_DEC_MMA_FETCH_RUNS && MMA_THREADS % C == 0) {',
  '    constexpr int R = MMA_THREADS / C; // rows a pass',
  '    const int j0 = threadIdx.x / C, c = threadIdx.x % C;',
  "    const unsigned char* first = src + (size_t)t0 * ROWB + c * 16; // the tile's first row: rows past t1 name it",
  '    const unsigned char* s = first + (size_t)j0 * ROWB;',
  '    unsigned char* d = dst + j0 * PITCH + c * 16;',
  '    const int left = t1 - t0 - j0; // valid rows from the thread’s first',
  '#pragma unroll',
  '    for (int n = 0; n < N; ++n)',
  '      if (MMA_TILE % R == 0 || n * R + j0 < MMA_TILE) {',
  '        const bool ok = n * R < left;',
  '        dec_cp<16>(d + n * R * PITCH, ok ? s + (size_t)n * R * ROWB : first, ok);',
  '      }',
  '  } else {',
  '#pragma unroll',
  '    for (int n = 0; n < N; ++n) {',
  '      const int i = threadIdx.x + n * MMA_THREADS, j = i / C, c = i % C, kj = t0 + j;',
  '      const bool ok = kj < t1;',
  '      if (i < MMA_TILE * C) dec_cp<16>(dst + j * PITCH + c * 16, src + (size_t)(ok ? kj : t0) * ROWB + c * 16, ok);',
  '    }',
  '  }',
  '}',
];

/** Output column of o[n][2 h8 + e]: channel (2t + e) · DV / 8 + n. */
export const quantOutColumn = '(2 * (lane & 3) + ee) * (DV / 8) + n';
