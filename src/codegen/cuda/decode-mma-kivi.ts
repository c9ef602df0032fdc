// KIVI caches (unsigned int4 / int2 codes with f16 scale and zero point: K per channel in groups
// of 32 tokens, V per token in groups of 32 channels, an optional window of recent f16 tokens) in
// the tensor-core decode kernel (decode-mma.ts), unless built with -DATTNC_DEC_MMA_KIVI=0 (the SIMT
// kernel; kiviSwitch). Codes enter the f16 MMA exactly (decode-mma-dq.ts's magic-number pairs);
// scales and zero points are folded, never applied per element:
// - K: for the group g of 32 tokens a warp's keys lie in, q̂_g = f16(q̂ · s′_g) with s′ = s · 2^-(e+1),
//   e the exponent of the group's largest |s| over the row (so |q̂_g| < 2^14: no overflow; q̂ is the
//   row's q · 2^(14 - e_q) as in the int8 path), and q·k = 2^(e+1) 2^(e_q - 14) (q̂_g · code − q̂_g · z_g):
//   the bias is one more MMA of the rounded q̂_g with the f16 zero points (exact operands), so the
//   only rounding is q̂_g's (2^-11 relative per term; channels whose s′ is an f16 subnormal lose
//   precision below 2^-25 of the row's largest term). A warp whose keys straddle two groups (a
//   split not aligned to 32; the host's splits are whole tiles) runs its MMAs once per group, the
//   other group's codes read as 0.
// - V: per channel group g (n-tiles 4g..4g+3), p′_t,g = f16(p_t · s_t,g) and O_g −= Σ_t p′_t,g z_t,g,
//   the latter by one more MMA a group into column g of one C fragment (rescaled with O).
// - Recent tokens (the last min(r, Nk), f16 rows): a tail after the code tiles, f16 pairs read
//   straight from global memory into the MMA's fragments (at most r keys, in the splits that
//   reach the window).
// Channel orders: lane t's K words are t·KWL .. t·KWL + KWL − 1 of a code row; pair P = 2 ks + h
// of them is word P / KPPW, pairs (i, i + KPPW) with i = P % KPPW; Q's A fragments take the same
// channels. O's n-tile n, column x holds channel 32 (n / 4) + 4 x + n % 4 (one V group a tile).
// This file holds the layout, helpers, Q, fetch and V bias; the per-tile S and P·V lines are in
// decode-mma-kivi-step.ts, the recent tail in decode-mma-kivi-tail.ts.
import type { AttentionKernel } from '../../ir/kernel.js';
import type { QuantFormat } from '../../quant/format.js';
import { f16PairHelpers, mmaF16Ptx } from './decode-mma-quant.js';
import { copyHelpers, scaleWordHelper } from './decode-mma-scales.js';
import { pagedCodeFetch, pagedGroupsFetch, pagedHalvesFetch } from './decode-mma-paged.js';
import { qRowHead, qRowScale, quantFetch } from './decode-mma-qtile.js';
import { unsignedPairHelpers, type UnsignedCodeBits } from './decode-mma-dq.js';

export interface MmaKivi {
  readonly kBits: UnsignedCodeBits;
  readonly vBits: UnsignedCodeBits;
  /** Recent f16 tokens (the same window on K and V), 0 without one. */
  readonly recent: number;
  /** Code rows and scales in pools of pages (docs/LANGUAGE.md "Paged quantized caches"). */
  readonly paged: boolean;
}

/** The KIVI shape this kernel takes: unsigned int4/int2, f16 scale and zero, group 32, f16 recent. */
function kiviBits(q: QuantFormat, per: 'channel' | 'token'): UnsignedCodeBits | undefined {
  if (q.kind !== 'int' || (q.elem !== 'int4' && q.elem !== 'int2')) return undefined;
  if (q.norm || q.salient || q.zero !== 'f16' || q.scale.dtype !== 'f16') return undefined;
  if (q.scale.per.kind !== per || q.scale.per.group !== 32) return undefined;
  if (q.recent && q.recent.dtype !== 'f16') return undefined;
  return q.elem === 'int4' ? 4 : 2;
}

/** KIVI K/V the tensor-core kernel takes (packed or paged caches, D and DV multiples of 64, DV ≤ 256), else undefined. */
export function mmaKiviOf(k: AttentionKernel): MmaKivi | undefined {
  const { k: kf, v: vf, paged } = k.formats;
  if (kf.kind !== 'quant' || vf.kind !== 'quant') return undefined;
  const kBits = kiviBits(kf.format, 'channel');
  const vBits = kiviBits(vf.format, 'token');
  const s = k.schedule;
  if (!kBits || !vBits || s.headDim % 64 !== 0 || s.valueDim % 64 !== 0 || s.valueDim > 256) return undefined;
  const rk = kf.format.recent?.tokens ?? 0;
  if (rk !== (vf.format.recent?.tokens ?? 0)) return undefined;
  return { kBits, vBits, recent: rk, paged: paged !== undefined };
}

/** Stream bytes a key and stage (codes and pitches; the scale windows are small and ignored). */
export const kiviStreamBytesPerKey = (kv: MmaKivi, D: number, DV: number): number =>
  (D * kv.kBits) / 8 + 16 + (DV * kv.vBits) / 8 + 16 + 4 * (DV / 32) + (4 * D) / 32;

/**
 * The switch: on since the H200 timed it (2026-12-04, B 4 H 32/8 D 128, recent 128: int4 0.61 ms at
 * 128K against the SIMT kernel's 1.49, int2 0.56 against 1.47; 0.18 / 0.17 against 0.43 at 32K);
 * -DATTNC_DEC_MMA_KIVI=0 gives the SIMT kernel back. The host takes the tensor-core kernel where
 * KIVI_MMA_SWITCH holds (decode-host.ts); ATTNC_DEC_MMA itself is left alone, since the macro is
 * global to a translation unit that may hold other kernels (a staged kernel's float twin).
 */
export const kiviSwitch: readonly string[] = [
  '#ifndef ATTNC_DEC_MMA_KIVI',
  '#define ATTNC_DEC_MMA_KIVI 1 // 0: KIVI caches on the SIMT kernel (decode-mma-kivi.ts)',
  '#endif',
];
export const KIVI_MMA_SWITCH = '(ATTNC_DEC_MMA && ATTNC_DEC_MMA_KIVI)';

/** Constants of the KIVI layout (bytes, words). */
export const kiviConstants = (kv: MmaKivi): string[] => [
  `constexpr int KBITS = ${kv.kBits}, VBITS = ${kv.vBits}, RECENT = ${kv.recent};`,
  'constexpr int KCPW = 32 / KBITS, KPPW = KCPW / 2, VCPW = 32 / VBITS; // codes / pairs a word',
  'constexpr int KB = D * KBITS / 8, VB = DV * VBITS / 8, KPB = KB + 16, VPB = VB + 16; // row bytes, pitches',
  'constexpr int KWL = D / (4 * KCPW); // K words a lane reads of a key row',
  'constexpr int KG = (MMA_TILE + 30) / 32 + 1, KGW = KG * D / 2; // K groups a tile touches; their words',
  'constexpr int VG = DV / 32, VGW = MMA_TILE * VG / 2; // V groups a key; words a tile',
  'static_assert(KB % 16 == 0 && VB % 16 == 0 && D % (4 * KCPW) == 0 && DV % 64 == 0 && VG <= 8, "KIVI tiles");',
  'constexpr size_t MMA_STREAM = (size_t)MMA_STAGES * (MMA_TILE * (KPB + VPB) + 4 * (2 * KGW + 2 * VGW));',
];

/**
 * Lane t's K channel of pair p (c; its pair partner c + KPPW): KIVI's order, the lane's KWL words
 * contiguous (16-byte reads); `interleaved` (decode-mma-tokint.ts, K scales per run of channels):
 * word p / KPPW of the lanes side by side, so that each k-step's 16 channels lie in one run of
 * 4·KCPW channels.
 */
const kChannel = (interleaved: boolean): string =>
  interleaved
    ? '  return KCPW * ((p / KPPW) * 4 + (int)(threadIdx.x & 3)) + p % KPPW;'
    : '  return KCPW * ((int)(threadIdx.x & 3) * KWL + p / KPPW) + p % KPPW;';

/** Device helpers (namespace dec); `interleaved`: the K channel order (kChannel). */
export function kiviHelpers(kv: MmaKivi, interleaved = false): string[] {
  const widths = [...new Set([kv.kBits, kv.vBits])];
  return [
    '// ---- KIVI K/V in the tensor-core kernel: codegen/cuda/decode-mma-kivi.ts ----',
    ...f16PairHelpers,
    ...unsignedPairHelpers(widths),
    `__device__ __forceinline__ unsigned dk_kpair(unsigned w, int i) { return dmq_u${kv.kBits}k(w, i); }`,
    '// Code nq of both halves of t (two keys) → f16 pair (4 codes × VBITS ≤ 16 bits a half).',
    '__device__ __forceinline__ unsigned dk_vcode(unsigned t, int nq) { return dmq_field(t, VBITS, VBITS * nq); }',
    "// Channel of lane t's K pair (k-step ks, register h): the first of (c, c + KPPW).",
    '__device__ __forceinline__ int dk_chan(int ks, int h) {',
    '  const int p = 2 * ks + h;',
    kChannel(interleaved),
    '}',
    "// Key of S tile j, column parity e of the lane, among its warp's keys (as decode-mma-quant.ts).",
    '__device__ __forceinline__ int dmq_key(int j, int e) { return 16 * (j >> 1) + (int)(threadIdx.x & 3) + 4 * (2 * (j & 1) + e); }',
    '__device__ __forceinline__ float dk_lo(unsigned h) { return dec_half_bits((unsigned short)(h & 0xffffu)); }',
    '__device__ __forceinline__ float dk_hi(unsigned h) { return dec_half_bits((unsigned short)(h >> 16)); }',
    '// f16 pair product, rounded once (host: the exact f32 product of two f16, rounded to f16).',
    '__device__ __forceinline__ unsigned dk_hmul2(unsigned a, unsigned b) {',
    '#ifdef __CUDA_ARCH__',
    '  const __half2 r = __hmul2(*reinterpret_cast<const __half2*>(&a), *reinterpret_cast<const __half2*>(&b));',
    '  return *reinterpret_cast<const unsigned*>(&r);',
    '#else',
    '  return dm_h2(dk_lo(a) * dk_lo(b), dk_hi(a) * dk_hi(b));',
    '#endif',
    '}',
    '// f16 bits of 2^a, -24 <= a <= 15.',
    '__device__ __forceinline__ unsigned dk_pow2h(int a) { return a >= -14 ? (unsigned)(a + 15) << 10 : 1u << (a + 24); }',
    "// Halves (c, c + KPPW) of pair p from the lane's words w of f16 per channel (dk_chan's order);",
    '// w in registers, or volatile shared memory read at each use (decode-mma-kivi-km-step.ts).',
    'template <class W>',
    '__device__ __forceinline__ unsigned dk_pair(W* w, int p) {',
    '  const int b = (KCPW / 2) * (p / KPPW) + (p % KPPW) / 2;',
    '  return __byte_perm(w[b], w[b + KPPW / 2], (p & 1) ? 0x7632u : 0x5410u);',
    '}',
    '// Per 16-bit half unsigned max.',
    '__device__ __forceinline__ unsigned dk_vmax2(unsigned a, unsigned b) {',
    '#ifdef __CUDA_ARCH__',
    '  return __vmaxu2(a, b);',
    '#else',
    '  const unsigned lo = (a & 0xffffu) > (b & 0xffffu) ? a & 0xffffu : b & 0xffffu;',
    '  return lo | ((a >> 16) > (b >> 16) ? a >> 16 : b >> 16) << 16;',
    '#endif',
    '}',
    ...mmaF16Ptx,
    ...quantFetch,
    ...copyHelpers,
    '// f16 values src[first .. first + n) into W words of dst, zero past n, published by the barrier',
    '// before the tile: 16-byte cp.async where src + first and dst are 16-byte aligned (the K windows',
    '// always, the V windows from an even token: 4 a thread at most where 4-byte copies took 9),',
    '// else 4-byte ones where 4-byte aligned, else plain copies. The tests are the same for the block.',
    '__device__ __forceinline__ void dk_fetch_halves(const unsigned short* src, unsigned* dst, size_t first, int n, int W) {',
    '  const unsigned short* s = src + first;',
    '  if ((((size_t)s | (size_t)dst) & 15u) == 0 && W % 4 == 0) {',
    '    for (int i = threadIdx.x; i < W / 4; i += MMA_THREADS) {',
    '      const int nb = min(max(2 * (n - 8 * i), 0), 16);',
    '      dm_cpn<16>(dst + 4 * i, nb ? s + 8 * i : s, nb);',
    '    }',
    '    return;',
    '  }',
    '  const bool aligned = ((size_t)s & 3u) == 0;',
    '  for (int i = threadIdx.x; i < W; i += MMA_THREADS) {',
    '    const int h = 2 * i, nb = h >= n ? 0 : h + 1 >= n ? 2 : 4;',
    '    if (aligned) dm_cpn<4>(dst + i, s + (nb ? h : 0), nb);',
    '    else dst[i] = (nb ? (unsigned)s[h] : 0u) | (nb == 4 ? (unsigned)s[h + 1] << 16 : 0u);',
    '  }',
    '}',
    ...(kv.paged ? [...scaleWordHelper, ...pagedCodeFetch, ...pagedHalvesFetch, ...pagedGroupsFetch] : []),
  ];
}

/**
 * Row r0 + 8 h8 of the block's q as f16 pairs q̂ = q · 2^(14 - e) in the KIVI K channel order
 * (pair h of k-step ks into `dst`; qinv[h8] = 2^(e - 14)): both KIVI kernels' Q (h8 in scope).
 */
export const kiviQRow = (dst: string): string[] => [
  ...qRowHead,
  '      for (int h = 0; h < 2; ++h) {',
  '        const int c = dk_chan(ks, h);',
  '        if (ok) amax = fmaxf(amax, fmaxf(fabsf(to_f32(qs[c])), fabsf(to_f32(qs[c + KPPW]))));',
  '      }',
  ...qRowScale,
  '#pragma unroll',
  '    for (int ks = 0; ks < D / 16; ++ks)',
  '#pragma unroll',
  '      for (int h = 0; h < 2; ++h) {',
  '        const int c = dk_chan(ks, h);',
  `        ${dst} = ok ? dm_h2(to_f32(qs[c]) * f, to_f32(qs[c + KPPW]) * f) : 0u;`,
  '      }',
];

/** Q's f16 A fragments q̂ = q · 2^(14 - e) per row in the KIVI K channel order (qinv = 2^(e - 14)). */
export const kiviLoadQ: readonly string[] = [
  '  unsigned qf[D / 16][4];',
  '  float qinv[2];',
  '#pragma unroll',
  '  for (int h8 = 0; h8 < 2; ++h8) {',
  ...kiviQRow('qf[ks][h8 + 2 * h]'),
  '  }',
  '  // Σ_t p′_t,g z_t,g of V group g in column g of one C fragment (rows r0, r0 + 8), rescaled with o.',
  '  float vb[4] = {0.f, 0.f, 0.f, 0.f};',
];

/**
 * Fetch lines of tile `it` (t0, t1 in scope; kv0 packed, kcp / vcp paged): code rows, K group
 * windows, V scale windows.
 */
export function kiviFetch(field: (key: string) => string, paged: boolean): string[] {
  const f = (key: string): string => `a.${field(key)}`;
  if (paged)
    return [
      '      dm_fetch_code_pages<KB, KPB>(kcp, ks + (it % MMA_STAGES) * MMA_TILE * KPB, t0, t1);',
      '      dm_fetch_code_pages<VB, VPB>(vcp, vs + (it % MMA_STAGES) * MMA_TILE * VPB, t0, t1);',
      '      {',
      '        const long long kpe = (long long)a.Hkv * (PAGE / 32) * D, khead = (long long)hk * (PAGE / 32) * D;',
      '        unsigned* kd = skz + (it % MMA_STAGES) * 2 * KGW;',
      `        dk_fetch_groups_pages(${f('cache:k_scale')} + khead, kd, kcp.pages, kpe, t0, t1, KGW);`,
      `        dk_fetch_groups_pages(${f('cache:k_zero')} + khead, kd + KGW, kcp.pages, kpe, t0, t1, KGW);`,
      '        const long long vpe = (long long)a.Hkv * PAGE * VG, vhead = (long long)hk * PAGE * VG;',
      '        unsigned* vd = svz + (it % MMA_STAGES) * 2 * VGW;',
      `        dm_fetch_halves_pages<VG>(${f('cache:v_scale')} + vhead, vd, kcp.pages, vpe, t0, t1 - t0, VGW);`,
      `        dm_fetch_halves_pages<VG>(${f('cache:v_zero')} + vhead, vd + VGW, kcp.pages, vpe, t0, t1 - t0, VGW);`,
      '      }',
    ];
  return [
    '      dm_fetch_codes<KB, KPB>(kc, ks + (it % MMA_STAGES) * MMA_TILE * KPB, t0, t1);',
    '      dm_fetch_codes<VB, VPB>(vc, vs + (it % MMA_STAGES) * MMA_TILE * VPB, t0, t1);',
    '      {',
    '        const size_t g0 = ((size_t)b * a.Hkv + hk) * n_groups + t0 / 32;',
    '        const int gn = ((t1 - 1) / 32 - t0 / 32 + 1) * D;',
    '        unsigned* kd = skz + (it % MMA_STAGES) * 2 * KGW;',
    `        dk_fetch_halves(${f('cache:k_scale')}, kd, g0 * D, gn, KGW);`,
    `        dk_fetch_halves(${f('cache:k_zero')}, kd + KGW, g0 * D, gn, KGW);`,
    '        unsigned* vd = svz + (it % MMA_STAGES) * 2 * VGW;',
    `        dk_fetch_halves(${f('cache:v_scale')}, vd, (kv0 + t0) * VG, (t1 - t0) * VG, VGW);`,
    `        dk_fetch_halves(${f('cache:v_zero')}, vd + VGW, (kv0 + t0) * VG, (t1 - t0) * VG, VGW);`,
    '      }',
  ];
}

/** Output column of o[n][2 h8 + ee]: channel 32 (n / 4) + 4 (2t + ee) + n % 4. */
export const kiviOutColumn = '32 * (n >> 2) + 4 * (2 * (lane & 3) + ee) + (n & 3)';

/** The zero-point terms of V (column g of vb: quad lane g / 2, element g % 2) subtracted from o. */
export const kiviVBias: readonly string[] = [
  '  float vq[4][4]; // vq[k][d]: vb[k] of quad lane (lane & 3) ^ d',
  '#pragma unroll',
  '  for (int k = 0; k < 4; ++k) {',
  '    vq[k][0] = vb[k];',
  '#pragma unroll',
  '    for (int d = 1; d < 4; ++d) vq[k][d] = __shfl_xor_sync(0xffffffffu, vb[k], d);',
  '  }',
  '#pragma unroll',
  '  for (int h8 = 0; h8 < 2; ++h8)',
  '#pragma unroll',
  '    for (int g = 0; g < VG; ++g) {',
  '      const int d = (lane & 3) ^ (g >> 1);',
  '      const float x = d == 0 ? vq[2 * h8 + (g & 1)][0] : d == 1 ? vq[2 * h8 + (g & 1)][1] : d == 2 ? vq[2 * h8 + (g & 1)][2] : vq[2 * h8 + (g & 1)][3];',
  '#pragma unroll',
  '      for (int nq = 0; nq < 4; ++nq) o[4 * g + nq][2 * h8] -= x, o[4 * g + nq][2 * h8 + 1] -= x;',
  '    }',
];

/** vb follows o through the online softmax's rescaling (corr, h8 in scope). */
export const kiviRescale: readonly string[] = ['          vb[2 * h8] *= corr, vb[2 * h8 + 1] *= corr;'];
