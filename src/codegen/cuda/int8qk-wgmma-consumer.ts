// The consumer warpgroups of the `qk int8` wgmma-ws kernel (int8qk-wgmma.ts): S = Q·Kᵀ as s8
// wgmma over the codes in shared memory, the s32 sums scaled by sq·sk to f32 scores, then
// wgmma-ws's own softmax and P·V (16-bit, or e4m3 with `pv e4m3`), serial, ping-pong or overlapped.
import type { AttentionKernel } from '../../ir/kernel.js';
import { INT8_QK_MAX } from '../../ir/int8qk.js';
import type { PvE4m3 } from '../../ir/pv-e4m3.js';
import type { CoreExprs } from './exprs.js';
import { indent } from './indent.js';
import { consumerFrame, consumerLoopCode, pingpongCode } from './wgmma-ws-body.js';
import { overlapLoopCode, type OverlapQk } from './wgmma-ws-overlap.js';
import { foldsScale, serialSoftmaxCode } from './wgmma-ws-softmax.js';
import { pvIssueCode } from './wgmma-ws-tweaks.js';
import type { WgmmaWsPlan } from './wgmma-ws-plan.js';
import { pvE4m3FinishCode, pvE4m3TileCode } from './int8qk-pv-wgmma.js';

/** One tile: S in s32 from the codes, to f32 scores, the serial softmax, O += P·V (16-bit, or e4m3 with `pv`). */
function tileLambda(e: CoreExprs, plan: WgmmaWsPlan, pv?: PvE4m3): string[] {
  return [
    "// This warpgroup's 64 rows of Q codes: 64 · 128 bytes.",
    'const unsigned char* Qw = Qs8 + (warp / 4) * 64 * D;',
    '// Only MASKED tiles (partial, or past Nk) test per element.',
    'auto tile = [&](auto masked, const int kt, const int st) {',
    '  constexpr bool MASKED = decltype(masked)::value;',
    '  const unsigned char* Kb = Ks8 + st * (BK * D);',
    pv ? '  const unsigned char* Vb8 = Vs8 + st * (BK * DV);' : '  const T* Vb = Vs + st * (BK * DV);',
    '  const int kbase = kt * BK;',
    '  (void)kbase;',
    '  // S = Q·Kᵀ in int32: D / 32 k32 steps, 32 bytes along the one panel; the first overwrites.',
    '  int si[NT][4];',
    ...(plan.pingpong ? ["  pp_sync(); // the other warpgroup's S = Q·Kᵀ is issued"] : []),
    '  wg_fence();',
    '#pragma unroll',
    '  for (int ks = 0; ks < D / 32; ++ks)',
    '    wg_qk8(si, desc128(reinterpret_cast<const T*>(Qw + ks * 32), 16),',
    '           desc128(reinterpret_cast<const T*>(Kb + ks * 32), 16), ks > 0);',
    '  wg_commit();',
    ...(plan.pingpong ? ['  pp_arrive(); // its turn'] : []),
    '  wg_wait0();',
    '  acc_fence_i(si);',
    ...indent(scoresCode(foldsScale(e, plan.tweaks), 'si[j][x]', ['float s[NT][4];']), '  '),
    ...(pv ? pvE4m3TileCode(e, plan) : pv16Code(e, plan)),
  ];
}

/** The 16-bit P·V part of the tile (the serial softmax first). */
function pv16Code(e: CoreExprs, plan: WgmmaWsPlan): string[] {
  const t = plan.tweaks;
  return [
    ...indent(serialSoftmaxCode(e, t), '  '),
    '  // O += P·V: n-tiles 2kv, 2kv+1 of S are the A fragment of k-step kv; V is MN-major. P is',
    '  // packed whole first (wsTweaks packFirst), so ptxas injects no warpgroup.arrive between the wgmmas.',
    '  unsigned pk[BK / 16][4];',
    '#pragma unroll',
    '  for (int kv = 0; kv < BK / 16; ++kv) {',
    '    pk[kv][0] = pack2(s[2 * kv][0], s[2 * kv][1]);',
    '    pk[kv][1] = pack2(s[2 * kv][2], s[2 * kv][3]);',
    '    pk[kv][2] = pack2(s[2 * kv + 1][0], s[2 * kv + 1][1]);',
    '    pk[kv][3] = pack2(s[2 * kv + 1][2], s[2 * kv + 1][3]);',
    '  }',
    '  acc_fence(o);',
    '  wg_fence();',
    '#pragma unroll',
    '  for (int kv = 0; kv < BK / 16; ++kv) {',
    ...indent(pvIssueCode(t, 'pk[kv]'), '    '),
    '  }',
    '  wg_commit();',
    '  wg_wait0();',
    '  acc_fence(o);',
    '};',
  ];
}

/**
 * The overlapped consumers' S (wgmma-ws-overlap.ts): issued into the bits of its f32 array (the
 * loop's S registers; wgmma .s32 takes no .f32 registers, hence the int view), made scores first
 * thing in the softmax, once S has landed.
 */
const overlapQk: OverlapQk = {
  issue: [
    "// This warpgroup's 64 rows of Q codes: 64 · 128 bytes.",
    'const unsigned char* Qw = Qs8 + (warp / 4) * 64 * D;',
    '// Issues S = Q·Kᵀ (s32 sums in the bits of s) of the tile in buffer st; the first k32 step overwrites.',
    'auto issue_qk = [&](float (&s)[NT][4], const int st) {',
    '  const unsigned char* Kb = Ks8 + st * (BK * D);',
    '  wg_fence();',
    '#pragma unroll',
    '  for (int ks = 0; ks < D / 32; ++ks)',
    '    wg_qk8(reinterpret_cast<int (&)[NT][4]>(s), desc128(reinterpret_cast<const T*>(Qw + ks * 32), 16),',
    '           desc128(reinterpret_cast<const T*>(Kb + ks * 32), 16), ks > 0);',
    '  wg_commit();',
    '};',
  ],
  scores: (fold) => scoresCode(fold, '__float_as_int(s[j][x])'),
};

/**
 * The tile's s32 sums (`sum`, an expression in j and x) made the values the softmax takes: the
 * scores Σ qi8·ki8 · sq · sk (qscale comes in the element step, as for float scores), or under
 * foldScale the sums themselves, their sign flipped for a negative qscale (exactly: an FFMA by ±1
 * of 1.5 · 2^23 + Σ whose result is ±Σ), and `qs` = |qscale| · sq · sk for the exp2's FFMA — one
 * multiply a score fewer, as foldScale saves the float kernel its qscale.
 */
function scoresCode(fold: boolean, sum: string, declare: readonly string[] = []): string[] {
  const loop = (value: string): string[] => [
    '#pragma unroll',
    'for (int j = 0; j < NT; ++j)',
    '#pragma unroll',
    `  for (int x = 0; x < 4; ++x) s[j][x] = ${value};`,
  ];
  if (!fold)
    return [
      '// scores = Σ qi8·ki8 · sq · sk (qscale comes in the element step, as for float scores).',
      'const float ts = qk_sq * qk_sk_ring[st];',
      ...declare,
      ...loop(`qk_s32_f32(${sum}) * ts`),
    ];
  return [
    '// foldScale: the sums (signed as qscale), and |qscale| · sq · sk for the exp2. qs stays off 0',
    '// (only an underflow or an all-zero block gives 0, whose sums are 0) so a masked -inf stays',
    '// -inf in the FFMA; a NaN stays NaN.',
    'const float qs_t = qk_qs * qk_sk_ring[st];',
    'const float qs = qs_t == 0.f ? 1e-30f : qs_t;',
    ...declare,
    ...loop(`qk_s32_f32_signed(${sum}, qk_sg)`),
  ];
}

/** foldScale's per-CTA factors: qscale's sign, and |qscale| · sq (each tile multiplies in its sk). */
const foldScaleInt8Code: readonly string[] = [
  'const float qk_sg = qscale < 0.f ? -1.f : 1.f;',
  'const float qk_qs = fabsf(qscale) * qk_sq;',
];

/**
 * `qk_s32_f32(x)`: an s32 sum of D products of codes in [−INT8_QK_MAX, INT8_QK_MAX] as f32, exactly, without I2F.
 * I2F issues at 16 a clock an SM, the rate of the softmax's ex2 (MUFU): one per score doubled the
 * tile's quarter-rate work, which the s8 wgmma's saving (256 of bf16's 512 clocks a 64 × 128 × 128
 * product) could not pay for. Below 2^22 in magnitude, x + 0x4B400000 is the bit pattern of
 * 1.5 · 2^23 + x (one ulp is 1 there), and subtracting 1.5 · 2^23 is exact: an integer add and an
 * FADD, both full rate, and the same f32 as (float) x.
 */
export const s32ToF32Helper = (fold: boolean): string[] => [
  `static_assert(D * ${INT8_QK_MAX} * ${INT8_QK_MAX} < (1 << 22), "qk int8: |S| must stay below 2^22 for qk_s32_f32");`,
  '__device__ __forceinline__ float qk_s32_f32(int x) {',
  '  return __int_as_float(x + 0x4B400000) - 12582912.f; // 1.5 · 2^23: exact for |x| < 2^22',
  '}',
  ...(fold
    ? [
        '// sg · x for sg = ±1 in one FFMA: sg · (1.5 · 2^23 + x) − sg · 1.5 · 2^23 is exactly ±x, as above.',
        '__device__ __forceinline__ float qk_s32_f32_signed(int x, float sg) {',
        '  return fmaf(__int_as_float(x + 0x4B400000), sg, -12582912.f * sg);',
        '}',
      ]
    : []),
];

/** The consumers' code: the Q block scale, then the tile loop of the plan's consumer schedule. */
export function int8QkConsumerCode(kernel: AttentionKernel, e: CoreExprs, plan: WgmmaWsPlan): string[] {
  const pv = kernel.pvE4m3;
  if (pv)
    return consumerFrame(kernel, e, plan, () => [
      "// This CTA's Q block scale (the pre-pass's); K's come with each tile (qk_sk_ring).",
      'const float qk_sq = __ldg(qk_sq_g + (size_t)(b * a.H + h) * ((a.Nq + BQ - 1) / BQ) + q0 / BQ);',
      // Ping-pong: the warpgroups take turns at S = Q·Kᵀ (the tile's pp_sync / pp_arrive).
      ...(plan.pingpong ? pingpongCode : []),
      ...tileLambda(e, plan, pv),
      ...consumerLoopCode(e, false, false),
      ...pvE4m3FinishCode(pv),
    ]);
  return consumerFrame(kernel, e, plan, () => [
    "// This CTA's Q block scale (the pre-pass's); K's come with each tile (qk_sk_ring).",
    'const float qk_sq = __ldg(qk_sq_g + (size_t)(b * a.H + h) * ((a.Nq + BQ - 1) / BQ) + q0 / BQ);',
    ...(foldsScale(e, plan.tweaks) ? foldScaleInt8Code : []),
    ...(plan.pingpong ? pingpongCode : []),
    ...(plan.overlap
      ? overlapLoopCode(e, { pingpong: plan.pingpong, walk: false, tweaks: plan.tweaks, qk: overlapQk })
      : [...tileLambda(e, plan), ...consumerLoopCode(e, false, false)]),
  ]);
}
