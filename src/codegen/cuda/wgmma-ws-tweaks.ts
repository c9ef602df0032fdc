// Schedule.wsTweaks: refinements of the warp-specialized Hopper core after FlashAttention-3's
// mainloop (hopper/mainloop_fwd_sm90_tma_gmma_ws.hpp, softmax.h), each its own switch so the
// bench can time them one at a time beside the default (issue 13 item 5). None changes results
// beyond rounding; without any, the emitted code is exactly the untweaked core's.
//   splitKv       K and V of a stage complete and are released on their own mbarriers: K goes back
//                 to the producer as soon as S = Q·Kᵀ has read it, so the next K streams in under
//                 softmax and P·V instead of after them (with 2 stages and the overlapped
//                 consumers, a shared K+V barrier leaves no tile of prefetch distance).
//   fastExp       exp2 as ex2.approx.ftz: one MUFU per probability (exp2f's non-ftz form adds a
//                 compare and two predicated multiplies for denormal results).
//   lazyRescale   a row keeps its running max until the tile max exceeds it by more than 8 (log2
//                 units; P ≤ 256 then), and O is rescaled only when some row of the warp moved
//                 (FlashAttention-4's conditional rescaling); the final 1/l makes it exact.
//   zeroInit      S's first k16 step overwrites the accumulators (wgmma scale-d 0) instead of
//                 zeroing BK/2 registers per tile.
//   pvN128        O += P·V as one m64n128k16 per k step at Dv = 128 (FlashAttention-3's shape)
//                 instead of two m64n64k16 reading the same P registers.
//   packFirst     serial consumers: P packed to 16 bits whole before the P·V wgmmas (as the
//                 overlapped loop does) instead of each k step's fragment between them, where
//                 ptxas injects a warpgroup.arrive per wgmma (C7519).
//   regs240       setmaxnreg 24/240 (FlashAttention-3's split with 2 consumer warpgroups) instead
//                 of 40/232; the producer's tile walk must then fit in 24 registers.
//   foldScale     kernels without a score modifier: the row max is taken over the raw q·k and
//                 each probability is ex2(fma(s, |scale|, -max)), one FFMA instead of a multiply
//                 and a subtract (FlashAttention-3's softmax); a negative scale negates the Q
//                 tile in shared memory once, so the raw max stays the scaled one.
//   rescaleInTurn overlapped consumers: O *= alpha between issuing the next S = Q·Kᵀ and this
//                 P·V (under the S product, FlashAttention-3's order) instead of after P·V retires.
import type { Schedule, WsTweak } from '../../ir/kernel.js';
import { wgmmaFn } from './wgmma-device.js';

export const wsTweakNames: readonly WsTweak[] = [
  'splitKv',
  'fastExp',
  'lazyRescale',
  'zeroInit',
  'pvN128',
  'rescaleInTurn',
  'packFirst',
  'regs240',
  'foldScale',
];

/** The switches a schedule turns on. */
export type WsTweaks = Readonly<Record<WsTweak, boolean>>;

export function wsTweaksOf(s: Schedule): WsTweaks {
  const on = new Set(s.wsTweaks ?? []);
  return Object.fromEntries(wsTweakNames.map((t) => [t, on.has(t)])) as Record<WsTweak, boolean>;
}

/** Why `s.wsTweaks` cannot apply (undefined when it can); `name` describes the schedule. */
export function wsTweaksProblem(s: Schedule, name: string): string | undefined {
  const asked: readonly unknown[] | undefined = s.wsTweaks;
  if (asked === undefined) return undefined;
  if (!Array.isArray(asked)) return `${name}: wsTweaks must be a list of ${wsTweakNames.join(', ')}`;
  const unknown = asked.filter((t) => !wsTweakNames.includes(t as WsTweak));
  if (unknown.length)
    return `${name}: unknown wsTweaks ${unknown.map(String).join(', ')}; known: ${wsTweakNames.join(', ')}`;
  if (new Set(asked).size !== asked.length) return `${name}: wsTweaks lists a tweak twice`;
  const t = wsTweaksOf(s);
  if (t.splitKv && s.wsProducerWalk) return `${name}: wsTweaks splitKv does not combine with wsProducerWalk`;
  if (t.pvN128 && s.valueDim !== 128) return `${name}: wsTweaks pvN128 needs valueDim 128`;
  const overlapped = s.wsConsumers === 'overlap' || s.wsConsumers === 'fa3';
  if (t.packFirst && overlapped)
    return `${name}: wsTweaks packFirst is for the serial consumers (the overlapped ones always pack first)`;
  if (t.regs240 && s.blockQ !== 128)
    return `${name}: wsTweaks regs240 splits registers for 2 consumer warpgroups`;
  if (t.rescaleInTurn && !overlapped)
    return `${name}: wsTweaks rescaleInTurn needs wsConsumers overlap or fa3 (the serial tile rescales in its softmax)`;
  return undefined;
}

/** Device helpers the tweaks need (none without them). */
export function wsTweakDevice(t: WsTweaks): string[] {
  if (!t.fastExp) return [];
  return [
    '// 2^x in one MUFU.EX2: denormal results flush to 0 (a probability below 2^-126 of the row max).',
    '__device__ __forceinline__ float ex2_ftz(float x) {',
    '  float y;',
    '  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));',
    '  return y;',
    '}',
  ];
}

/** The wgmma helpers the tweaks call: S with scale-d (zeroInit), P·V at n128 (pvN128). */
export function wsTweakMmaDevice(t: WsTweaks, s: Schedule, dtype: 'f16' | 'bf16'): string[] {
  return [
    ...(t.zeroInit ? ['', ...wgmmaFn('wg_qk_z', s.blockK, dtype, false, false, undefined, true)] : []),
    // MN-major V at n128: two 64-wide swizzle atoms along N, a panel (BK·128 bytes) apart (LBO).
    ...(t.pvN128 ? ['', ...wgmmaFn('wg_pv128', 128, dtype, true, true)] : []),
  ];
}

/** S = Q·Kᵀ of the tile at Kb into s (after wg_fence; the caller commits). */
export function qkIssueCode(t: WsTweaks): string[] {
  const operands = [
    'desc128(Qw + (ks >> 2) * (BQ * 64) + (ks & 3) * 16, 16),',
    '      desc128(Kb + (ks >> 2) * (BK * 64) + (ks & 3) * 16, 16)',
  ];
  if (!t.zeroInit) {
    return [
      '#pragma unroll',
      'for (int ks = 0; ks < D / 16; ++ks)',
      `  wg_qk(s, ${operands[0]}`,
      `  ${operands[1]});`,
    ];
  }
  return [
    '// The first k step overwrites s (scale-d 0): no zeroing pass.',
    '#pragma unroll',
    'for (int ks = 0; ks < D / 16; ++ks)',
    `  wg_qk_z(s, ${operands[0]}`,
    `  ${operands[1]}, ks > 0);`,
  ];
}

/** O += P·V of k step kv from P fragment `pa` and the tile at Vb. */
export function pvIssueCode(t: WsTweaks, pa: string): string[] {
  if (t.pvN128) return [`wg_pv128(o, ${pa}, desc128(Vb + kv * 16 * 64, BK * 128));`];
  return [
    `wg_pv<0>(o, ${pa}, desc128(Vb + kv * 16 * 64, 1024));`,
    `if constexpr (DV == 128) wg_pv<1>(o, ${pa}, desc128(Vb + BK * 64 + kv * 16 * 64, 1024));`,
  ];
}

/** splitKv: this warp's S = Q·Kᵀ has read K of stage `st` (wait_group done): hand it back. */
export const releaseK = (st: string): string[] => [
  '__syncwarp();',
  `if (lane == 0) mbar_arrive(&empty_k[${st}]); // K read (splitKv): the next K may stream in`,
];

/**
 * foldScale, once Q has landed: with a negative scale this warpgroup negates its 64 rows of Q
 * (exact in 16 bits), so that s·|scale| = q·k·scale and the raw row max is the scaled one; the
 * writes reach wgmma's async proxy before the warpgroup's named barrier (5 or 6).
 */
export const foldScaleQCode: readonly string[] = [
  'mbar_wait(qbar, 0);',
  'if (qscale < 0.f) {',
  '#pragma unroll',
  '  for (int p = 0; p < D / 64; ++p) {',
  '    uint4* qv = reinterpret_cast<uint4*>(Qs + p * (BQ * 64) + (warp / 4) * 64 * 64);',
  '    for (int i = tid % 128; i < 64 * 64 / 8; i += 128) {',
  '      uint4 v = qv[i];',
  '      v.x ^= 0x80008000u;',
  '      v.y ^= 0x80008000u;',
  '      v.z ^= 0x80008000u;',
  '      v.w ^= 0x80008000u;',
  '      qv[i] = v;',
  '    }',
  '  }',
  '  proxy_fence();',
  '  asm volatile("bar.sync %0, 128;\\n" ::"r"(5 + warp / 4) : "memory");',
  '}',
  '// |scale|, kept off 0 so that a masked -inf stays -inf (not -inf · 0 = NaN) in the FFMA; a NaN',
  '// scale stays NaN and poisons the output as the unfolded product does.',
  'const float qs = qscale == 0.f ? 1e-30f : fabsf(qscale);',
];
