// The transposed tensor-core decode step for int8 / fp8 caches with per-token scales
// (ATTNC_DEC_MMA_T, issue 10): keys are the MMA's M, the block's packed rows (GQA group × Nq ≤ 8)
// its N. The default kernel (decode-mma.ts) puts the packed rows on M = 16; at GQA 4, Nq 1 twelve
// of them are padding, so half its S MMAs and three quarters of its O registers do no work.
//
//   Sᵀ = K·Qᵀ   m16n8k16: A = 16 keys × 16 channels, dequantized from the K code words in shared
//               memory (the same words and byte pairs as the default kernel's B fragments);
//               B = Qᵀ, q̂'s f16 pairs of the lane's row r0 = g (held for the whole split);
//               C = 16 keys × 8 rows: lane (g, t) holds keys κ(g), κ(g) + 8 of rows 2t, 2t + 1.
//   Oᵀ += Vᵀ·Pᵀ A = Vᵀ, 16 channels × 16 keys: byte x of the lane's V words of keys t, t + 4
//               (slots 2t, 2t + 1) and t + 8, t + 12 (slots 2t + 8, 2t + 9), as the default
//               kernel's B fragments; B = Pᵀ, 16 keys × 8 rows; C = Oᵀ, 16 channels × 8 rows.
//
// Pᵀ from Sᵀ: a C fragment of m16n8 holds (key g, rows 2t, 2t + 1), a B fragment wants (keys 2t,
// 2t + 1, row g): the transpose of each 8 × 8 half. movmatrix.m8n8.trans.b16 does exactly that on
// the f16-packed halves (two a 16-key tile), so no shared memory. Its key slots come back in the
// S tile's row order: slot r ↔ key κ(r) with κ(r) = 4 (r & 1) + (r >> 1) (+ 8 for r ≥ 8), chosen so
// that slots 2t, 2t + 1, 2t + 8, 2t + 9 are keys t, t + 4, t + 8, t + 12 — the V rows the lane reads
// (conflict-free with the V pitch) — and K rows κ(g), κ(g) + 8 hit distinct banks too (pitch D + 16).
//
// The softmax runs over M: a row's (a column's) keys are spread over the 8 lanes g of one t, so the
// row max takes 3 xor shuffles (4, 8, 16) for each of the lane's 2 rows; l is reduced once at the
// end. The rescale always waits for a warp vote (decode-mma-lean.ts's bit 1: exact), and O is 32
// floats a lane at Dv 128 (the default: 128, half of them padding).
//
// With ATTNC_DEC_MMA_T 1 the block takes 8 packed rows (MMA_ROWS 8, so more blocks where the group
// × Nq passes 8) and the whole kernel is this one: its registers decide the occupancy alone.
// Emitted (default 0) where the lean code is a knob (mmaLeanEmission 'knob': the bench artifacts)
// for packed (not paged) int8 / fp8 caches; elsewhere nothing changes unless TRANSPOSED_DEFAULT.
import type { AttentionKernel } from '../../ir/kernel.js';
import { mmaLeanEmission } from './decode-mma-lean.js';
import { kPairOffsets, mmaQuantOf, type MmaQuant } from './decode-mma-quant.js';

/** ATTNC_DEC_MMA_T: 0 off, 1 the transposed step, 2 that with int8 K codes biased (fp8 K: as 1). */
export type TransposedMode = 0 | 1 | 2;

/**
 * The transposed step of the quantized caches' default kernels (lean emission 'on'): 0 = not
 * emitted there at all (goldens as before), 1 or 2 = ATTNC_DEC_MMA_T's default. Set once the H200 says so.
 */
export const TRANSPOSED_DEFAULT = 0 as TransposedMode;
/** Tile knobs of the transposed kernel where it is the default (t_k16b2: { KEYS: 16, MIN_BLOCKS: 2 }). */
export const TRANSPOSED_TILE: Readonly<{ WARPS?: number; KEYS?: number; MIN_BLOCKS?: number }> = {};

/** The knob's default for kernel k: undefined where the kernel does not carry the transposed step. */
export function transposedDefault(k: AttentionKernel): TransposedMode | undefined {
  if (mmaQuantOf(k) === undefined || k.formats.paged !== undefined) return undefined;
  const lean = mmaLeanEmission(k);
  if (lean === 'knob') return 0;
  return lean === 'on' && TRANSPOSED_DEFAULT !== 0 ? TRANSPOSED_DEFAULT : undefined;
}

/** The knob's `#ifndef` default and its check. */
export const tKnob = (on: TransposedMode): string[] => [
  '#ifndef ATTNC_DEC_MMA_T',
  `#define ATTNC_DEC_MMA_T ${on} // 1: the transposed MMA, 8 packed rows a block; 2: int8 K biased too (decode-mma-t.ts)`,
  '#endif',
  'static_assert(ATTNC_DEC_MMA_T >= 0 && ATTNC_DEC_MMA_T <= 2, "ATTNC_DEC_MMA_T: 0, 1, or 2 (1 with int8 K codes biased)");',
];

/** movmatrix (namespace dec), which the emulator swaps for its stand-in (decode-mma-emu.ts). */
export const movmatrixPtx: readonly string[] = [
  '// The 8 x 8 b16 matrix of the warp (lane (g, t): row g, columns 2t, 2t + 1), transposed.',
  '__device__ __forceinline__ unsigned dm_movt(unsigned x) {',
  '  unsigned r;',
  '  asm volatile("movmatrix.sync.aligned.m8n8.trans.b16 %0, %1;\\n" : "=r"(r) : "r"(x));',
  '  return r;',
  '}',
];

/**
 * Device helpers: κ, the row-to-column broadcast of a per-row value, and for ATTNC_DEC_MMA_T 2
 * (int8 K) the biased K pair: f16 1152 + c without the HSUB2 (exact: 1024 + (c ^ 0x80) < 2048), so
 * S carries 1152 · Σ q̂ of its row, which the step subtracts once per element (kbias). The f32
 * accumulation of the larger terms costs ~2^-15 of the logit scale (2^-11: q̂'s own rounding).
 */
export const tHelpers: readonly string[] = [
  ...movmatrixPtx,
  '__device__ __forceinline__ unsigned dmt_kbiased(unsigned w, int h) {',
  '  return ((h ? w >> 8 : w) & 0x00ff00ffu) ^ 0x64806480u; // f16 1024 + (code ^ 0x80) = 1152 + code',
  '}',
  '__device__ __forceinline__ float dmt_h2sum(unsigned w) { // lo + hi of an f16 pair',
  '  const unsigned short lo = (unsigned short)(w & 0xffffu), hi = (unsigned short)(w >> 16);',
  '  return dq_half(&lo, 0) + dq_half(&hi, 0);',
  '}',
  '// Key (among the warp keys) of row h · 8 + g of the S tile j: κ(g) = 4 (g & 1) + (g >> 1).',
  '__device__ __forceinline__ int dmt_key(int j, int h) {',
  '  const int g = (int)(threadIdx.x & 31) >> 2;',
  '  return 16 * j + 8 * h + 4 * (g & 1) + (g >> 1);',
  '}',
  "// v of lane (want, t) for lane (g, t): an xor butterfly over g's bits (each lane keeps its partner's",
  '// value where that bit of want differs from its own g), so every lane takes part in every shuffle.',
  '__device__ __forceinline__ float dmt_from_row(float v, int want) {',
  '  const int g = (int)(threadIdx.x & 31) >> 2;',
  '#pragma unroll',
  '  for (int b = 0; b < 3; ++b) {',
  '    const float w = __shfl_xor_sync(0xffffffffu, v, 4 << b);',
  '    v = ((want ^ g) >> b) & 1 ? w : v;',
  '  }',
  '  return v;',
  '}',
];

/** First channel of lane t's K word for k-step ks (decode-mma-qtile.ts's order). */
const kChan = '64 * (ks >> 2) + 16 * (lane & 3) + 4 * (ks & 3)';

/** Qᵀ's B fragments (row r0 of the block: q̂ = q · 2^(14 - e)) and qinvc, 2^(e - 14) of rows 2t, 2t + 1. */
export function tLoadQ(q: MmaQuant): string[] {
  const [p0, p1] = kPairOffsets(q.k.elem);
  return [
    '  unsigned qt[D / 16][2];',
    "  float qinvc[2]; // S of q̂ back to q, for the lane's C columns (rows 2t, 2t + 1)",
    `  constexpr bool KBIAS = ${q.k.elem === 'int8' ? 'ATTNC_DEC_MMA_T == 2' : 'false'}; // biased int8 K pairs`,
    '  [[maybe_unused]] float kbias[2] = {0.f, 0.f}; // 1152 · Σ q̂ of rows 2t, 2t + 1 (KBIAS)',
    '  {',
    '    const int p = rg * MMA_ROWS + r0;',
    '    const bool ok = p < packed;',
    '    const int pp = ok ? p : 0;',
    '    const T* qs = q_row(a, b, hk * group + pp / a.Nq, pp % a.Nq);',
    '    float amax = 0.f;',
    '#pragma unroll',
    '    for (int ks = 0; ks < D / 16; ++ks)',
    '#pragma unroll',
    `      for (int i = 0; i < 4; ++i) amax = fmaxf(amax, ok ? fabsf(to_f32(qs[${kChan} + i])) : 0.f);`,
    '    amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, 1));',
    '    amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, 2)); // the quad holds the row',
    '    int ex = 0; // 0 for a zero row and for inf / NaN (they stay inf / NaN in f16)',
    '    if (amax > 0.f && amax <= 3.4e38f) frexpf(amax, &ex);',
    '    ex = max(ex, -100);',
    '    const float f = ldexpf(1.f, 14 - ex), qinv = ldexpf(1.f, ex - 14);',
    '#pragma unroll',
    '    for (int ks = 0; ks < D / 16; ++ks) {',
    `      const int c = ${kChan};`,
    '      auto qv = [&](int i) { return ok ? to_f32(qs[c + i]) * f : 0.f; };',
    `      qt[ks][0] = dm_h2(qv(${p0[0]}), qv(${p0[1]}));`,
    `      qt[ks][1] = dm_h2(qv(${p1[0]}), qv(${p1[1]}));`,
    '    }',
    '#pragma unroll',
    '    for (int i = 0; i < 2; ++i) qinvc[i] = dmt_from_row(qinv, 2 * (lane & 3) + i);',
    "    if (KBIAS) { // the f16 q̂ the MMA multiplies, summed over the quad's channels",
    '      float sq = 0.f;',
    '#pragma unroll',
    '      for (int ks = 0; ks < D / 16; ++ks) sq += dmt_h2sum(qt[ks][0]) + dmt_h2sum(qt[ks][1]);',
    '      sq += __shfl_xor_sync(0xffffffffu, sq, 1);',
    '      sq += __shfl_xor_sync(0xffffffffu, sq, 2);',
    '#pragma unroll',
    '      for (int i = 0; i < 2; ++i) kbias[i] = 1152.f * dmt_from_row(sq, 2 * (lane & 3) + i);',
    '    }',
    '  }',
  ];
}

/** Rows 2t, 2t + 1 of the lane (its C columns): head and query position for masks and scores. */
export const tLaneRows: readonly string[] = [
  '  [[maybe_unused]] int hr2[2], qp2[2];',
  '#pragma unroll',
  '  for (int i = 0; i < 2; ++i) {',
  '    const int p = rg * MMA_ROWS + 2 * (lane & 3) + i, pp = p < packed ? p : 0; // padding rows: discarded',
  '    hr2[i] = hk * group + pp / a.Nq;',
  '    qp2[i] = pp % a.Nq + a.q_offset;',
  '  }',
];

/** The state: m, l of rows 2t, 2t + 1, Oᵀ tiles of 16 channels. */
export const tState: readonly string[] = [
  '  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f}, o[DV / 16][4];',
  '#pragma unroll',
  '  for (int n = 0; n < DV / 16; ++n) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.f;',
];

/** Sᵀ = codes·q̂ᵀ on the warp's NM tiles of 16 keys, times the folded key and row scales. */
export const tScores: readonly string[] = [
  '      float s[NM][4];',
  '#pragma unroll',
  '      for (int j = 0; j < NM; ++j) {',
  '        s[j][0] = s[j][1] = s[j][2] = s[j][3] = 0.f;',
  '        const unsigned char* kr = kt + dmt_key(j, 0) * KPB + 16 * (lane & 3); // rows κ(g), κ(g) + 8',
  '#pragma unroll',
  '        for (int m = 0; m < D / 64; ++m) {',
  '          const DmW4 ga = *reinterpret_cast<const DmW4*>(kr + 64 * m);',
  '          const DmW4 gb = *reinterpret_cast<const DmW4*>(kr + 8 * KPB + 64 * m);',
  '          const unsigned wa[4] = {ga.x, ga.y, ga.z, ga.w}, wb[4] = {gb.x, gb.y, gb.z, gb.w};',
  '#pragma unroll',
  '          for (int i = 0; i < 4; ++i) {',
  '            auto kp = [](unsigned w, int h) { return KBIAS ? dmt_kbiased(w, h) : dmq_k(w, h); };',
  '            const unsigned af[4] = {kp(wa[i], 0), kp(wb[i], 0), kp(wa[i], 1), kp(wb[i], 1)};',
  '            dm_mma_h(s[j], af, qt[4 * m + i][0], qt[4 * m + i][1]);',
  '          }',
  '        }',
  '#pragma unroll',
  '        for (int e = 0; e < 4; ++e) s[j][e] = (KBIAS ? s[j][e] - kbias[e & 1] : s[j][e]) * (sk[j][e >> 1] * qinvc[e & 1]);',
  '      }',
];

/** The online softmax over keys (M) for the lane's rows 2t + (e & 1); SCORE: decode-mma.ts's score lines. */
export const tSoftmax = (SCORE: readonly string[]): string[] => [
  '      float mt[2] = {-INFINITY, -INFINITY};',
  '#pragma unroll',
  '      for (int j = 0; j < NM; ++j)',
  '#pragma unroll',
  '        for (int e = 0; e < 4; ++e) {',
  '          const int kj = kw + dmt_key(j, e >> 1);',
  ...SCORE,
  '          mt[e & 1] = fmaxf(mt[e & 1], s[j][e]);',
  '        }',
  '#pragma unroll',
  "      for (int i = 0; i < 2; ++i) // a row's keys: the 8 lanes g of its t",
  '#pragma unroll',
  '        for (int d = 4; d < 32; d <<= 1) mt[i] = fmaxf(mt[i], __shfl_xor_sync(0xffffffffu, mt[i], d));',
  "      // Rescale only when some lane's row max rose (every other corr would be exactly 1).",
  '      if (dm_any(mt[0] > m[0] || mt[1] > m[1])) {',
  '#pragma unroll',
  '        for (int i = 0; i < 2; ++i) {',
  '          const bool up = mt[i] > -INFINITY; // else: no finite score this step, m kept, corr 1',
  '          const float mn = up ? fmaxf(m[i], mt[i]) : m[i], corr = up ? exp2f(m[i] - mn) : 1.f;',
  '          l[i] *= corr;',
  '#pragma unroll',
  '          for (int n = 0; n < DV / 16; ++n) o[n][i] *= corr, o[n][2 + i] *= corr;',
  '          m[i] = mn;',
  '        }',
  '      }',
  '      // -inf (masked) weighs 0; a NaN or +inf score gives p = NaN, which poisons the row.',
  '#pragma unroll',
  '      for (int j = 0; j < NM; ++j)',
  '#pragma unroll',
  '        for (int e = 0; e < 4; ++e) {',
  '          s[j][e] = s[j][e] == -INFINITY ? 0.f : exp2f(s[j][e] - m[e & 1]);',
  '          l[e & 1] += s[j][e];',
  '        }',
];

/** Oᵀ += Vᵀ·(p · s_v)ᵀ: channels r0 · DV / 8 + 16 mb + x of the lane's V words, x = 2 mi + h. */
export const tPv: readonly string[] = [
  '#pragma unroll',
  '      for (int j = 0; j < NM; ++j) {',
  "        // (key slot g, rows 2t, 2t + 1) → (slots 2t, 2t + 1, row g): Pᵀ's B fragment, per 8-key half.",
  '        const unsigned pb0 = dm_movt(dm_h2(s[j][0] * sv[j][0], s[j][1] * sv[j][0]));',
  '        const unsigned pb1 = dm_movt(dm_h2(s[j][2] * sv[j][1], s[j][3] * sv[j][1]));',
  '        const unsigned char* vr = vt + (16 * j + (lane & 3)) * VPB + r0 * (DV / 8); // keys t + 4i',
  '#pragma unroll',
  '        for (int mb = 0; mb < DV / 128; ++mb) {',
  '          DmW4 w4[4];',
  '#pragma unroll',
  '          for (int i = 0; i < 4; ++i) w4[i] = *reinterpret_cast<const DmW4*>(vr + 4 * i * VPB + 16 * mb);',
  '          auto word = [&](int i, int x) { const unsigned* p = &w4[i].x; return p[x >> 2]; };',
  '#pragma unroll',
  '          for (int mi = 0; mi < 8; ++mi) {',
  '            const int x0 = 2 * mi, x1 = 2 * mi + 1; // channel rows g, g + 8 of the tile',
  '            const unsigned af[4] = {dmq_v(word(0, x0), word(1, x0), x0 & 3), dmq_v(word(0, x1), word(1, x1), x1 & 3),',
  '                                    dmq_v(word(2, x0), word(3, x0), x0 & 3), dmq_v(word(2, x1), word(3, x1), x1 & 3)};',
  '            dm_mma_h(o[8 * mb + mi], af, pb0, pb1);',
  '          }',
  '        }',
  '      }',
];

/** The warp's m, l and Oᵀ into decode-mma.ts's combine buffers (its tail merges the warps). */
export const tCombineHead: readonly string[] = [
  '  dec_wait<0>();',
  '  __syncthreads(); // the stream buffers are free: they hold the combine now',
  '#pragma unroll',
  '  for (int i = 0; i < 2; ++i)',
  '#pragma unroll',
  '    for (int d = 4; d < 32; d <<= 1) l[i] += __shfl_xor_sync(0xffffffffu, l[i], d);',
  '  float* cm = reinterpret_cast<float*>(dm_smem); // [WARPS][8] m, then l, then o [WARPS][8][DV]',
  '  float* cl = cm + MMA_WARPS * MMA_ROWS;',
  '  float* co = cl + MMA_WARPS * MMA_ROWS;',
  '#pragma unroll',
  '  for (int i = 0; i < 2; ++i) {',
  '    const int r = 2 * (lane & 3) + i;',
  '    if (r0 == 0) {',
  '      cm[warp * MMA_ROWS + r] = l[i] != 0.f ? m[i] : -INFINITY; // l NaN: poisoned, kept',
  '      cl[warp * MMA_ROWS + r] = l[i];',
  '    }',
  '#pragma unroll',
  '    for (int n = 0; n < DV / 16; ++n)',
  '#pragma unroll',
  '      for (int h = 0; h < 2; ++h)',
  '        co[((size_t)warp * MMA_ROWS + r) * DV + r0 * (DV / 8) + 16 * (n >> 3) + 2 * (n & 7) + h] = o[n][2 * h + i];',
  '  }',
];
