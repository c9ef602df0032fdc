// The tensor-core decode kernel's lean per-step code (ATTNC_DEC_MMA_LEAN, a bit mask), from the
// round 9 profile (H200, 128K keys): the split kernels are bound by instructions a key, not by
// DRAM, and two pieces of the online softmax were work that changes nothing:
//   bit 1  the O rescale (DV/4 FMULs a lane, both row halves) ran on every warp step although a
//          row's max rises only a few times over a split; now the warp votes (__any_sync) and
//          rescales only when some lane's row max rose. Exact: a row whose max did not rise has
//          corr = exp2(0) = 1, and multiplying by 1 is the identity (NaN / inf rows as before:
//          the same comparisons decide). Inside the voted block a lane whose row has no finite
//          max this step takes corr = 1 by a select instead of a per-lane (divergent) branch.
//   bit 2  rows 8..15 of the MMA (C elements 2, 3) are padding when the block's packed rows
//          (GQA group × Nq) end at or before row 8 — every GQA ≤ 8 single-query decode. The tile
//          loop is then instantiated with one row half (HALVES 1): no scores, max, exp, l or
//          rescale for them, and their P elements are 0. Block-uniform run-time choice: the loop
//          body is emitted once as a generic lambda, called with HALVES 1 or 2.
// Emission (Schedule.decodeLean, resolved by decodeLeanOf): 'off' emits the kernel as before, byte
// for byte; 'knob' emits the lean structure with `#define ATTNC_DEC_MMA_LEAN 0` (0 compiles to the
// old arithmetic; the bench's artifacts, -DATTNC_DEC_MMA_LEAN=1/2/3 variants); 'on' the same with 3.
// By default (absent) a kernel over quantized K/V caches gets 'on' and a float-cache kernel 'off':
// measured on the H200 (B 4, H 32 / Hkv 8, D 128, 128K keys, same process), LEAN 3 took int8 from
// 0.493 to 0.364 ms, e4m3 0.466 → 0.336, KIVI int4 0.616 → 0.567, int2 0.574 → 0.531, but bf16
// from 0.531 to 0.559 (bit 2's second instantiation of the loop costs the float kernel more than
// it saves). The mode is the schedule's, so each kernel carries its own (no compiler-wide state),
// the schedule hash tells the variants apart, and the manifest records the resolved mode.
import { DECODE_LEAN_MODES, type AttentionKernel, type DecodeLean } from '../../ir/kernel.js';

/** Why `mode` is no Schedule.decodeLean (undefined: it is one, or absent). */
export function decodeLeanProblem(mode: unknown): string | undefined {
  if (mode === undefined || DECODE_LEAN_MODES.includes(mode as DecodeLean)) return undefined;
  return `schedule.decodeLean expects ${DECODE_LEAN_MODES.join(', ')} (or none: on for quantized K/V caches), got \`${String(mode)}\``;
}

/** How kernel `k`'s lean code is emitted: its schedule's decodeLean, else on for quantized K/V caches. */
export function decodeLeanOf(k: AttentionKernel): DecodeLean {
  const asked = k.schedule.decodeLean;
  const problem = decodeLeanProblem(asked);
  if (problem !== undefined) throw new Error(`CUDA backend: ${problem}`);
  if (asked !== undefined) return asked;
  return k.formats.k.kind === 'quant' || k.formats.v.kind === 'quant' ? 'on' : 'off';
}

/** The decodeLean a knob variant's build needs: 'knob' where it sets ATTNC_DEC_MMA_LEAN, else none (the default). */
export const decodeLeanFor = (knobs: Readonly<Record<string, number>>): DecodeLean | undefined =>
  'MMA_LEAN' in knobs ? 'knob' : undefined;

/** The knob's `#ifndef` default and its check (emitted with the other tensor-core knobs). */
export const leanKnob = (mode: Exclude<DecodeLean, 'off'>): string[] => [
  '#ifndef ATTNC_DEC_MMA_LEAN',
  `#define ATTNC_DEC_MMA_LEAN ${mode === 'on' ? 3 : 0} // bits: 1 rescale on a max rise only, 2 skip padding rows 8..15 (decode-mma-lean.ts)`,
  '#endif',
  'static_assert(ATTNC_DEC_MMA_LEAN >= 0 && ATTNC_DEC_MMA_LEAN <= 3, "ATTNC_DEC_MMA_LEAN: bits 1, 2");',
];

/** Device helpers: the row-half count as a type, and the warp vote (a butterfly OR on the CPU emulator). */
export const leanHelpers: readonly string[] = [
  'template <int N> struct DmHalves { static constexpr int value = N; };',
  '__device__ __forceinline__ bool dm_any(bool p) {',
  '#ifdef __CUDACC__',
  '  return __any_sync(0xffffffffu, p);',
  '#else // the CPU emulator has shuffles, not votes',
  '  int x = p;',
  '  for (int d = 1; d < 32; d <<= 1) x |= __shfl_xor_sync(0xffffffffu, x, d);',
  '  return x != 0;',
  '#endif',
  '}',
];

/**
 * The tile loop (`body`, which sees the constant HALVES) run once with the block's row halves:
 * HALVES 1 where bit 2 is set and rows 8..15 of the block are all padding, else 2.
 */
export const leanStream = (body: readonly string[]): string[] => [
  '  // LEAN bit 2: rows 8..15 of this block are padding (block-uniform), the loop takes one row half.',
  '  const bool lo_only = (ATTNC_DEC_MMA_LEAN & 2) != 0 && rg * MMA_ROWS + 8 >= packed;',
  '  auto stream = [&](auto halves) {',
  '    constexpr int HALVES = decltype(halves)::value;',
  ...body.map((l) => (l.startsWith('#') ? l : `  ${l}`)),
  '  };',
  '  if (lo_only)',
  '    stream(DmHalves<1>{});',
  '  else',
  '    stream(DmHalves<2>{});',
];

/**
 * decode-mma-step.ts's masks, scores and online softmax on S with the lean bits: rows of half 1 only
 * when `halves` (an expression: HALVES in the tile loop, 2 in KIVI's recent tail) is 2, and the
 * rescale behind the warp's vote. SCORE, KJ, rescale: as decode-mma-step.ts's onlineSoftmax takes them.
 */
export const leanSoftmax = (
  SCORE: readonly string[],
  KJ: string,
  rescale: readonly string[],
  halves: string,
): string[] => [
  '      float mt[2] = {-INFINITY, -INFINITY};',
  '#pragma unroll',
  '      for (int j = 0; j < NT; ++j)',
  '#pragma unroll',
  `        for (int e = 0; e < 2 * ${halves}; ++e) {`,
  `          const int kj = ${KJ};`,
  ...SCORE,
  '          mt[e >> 1] = fmaxf(mt[e >> 1], s[j][e]);',
  '        }',
  '#pragma unroll',
  `      for (int h8 = 0; h8 < ${halves}; ++h8) {`,
  '        mt[h8] = fmaxf(mt[h8], __shfl_xor_sync(0xffffffffu, mt[h8], 1));',
  '        mt[h8] = fmaxf(mt[h8], __shfl_xor_sync(0xffffffffu, mt[h8], 2));',
  '      }',
  "      // LEAN bit 1: only when some lane's row max rose; every other corr would be exactly 1.",
  `      if ((ATTNC_DEC_MMA_LEAN & 1) == 0 || dm_any(mt[0] > m[0] || (${halves} > 1 && mt[1] > m[1]))) {`,
  '#pragma unroll',
  `        for (int h8 = 0; h8 < ${halves}; ++h8) {`,
  '          // Under the vote no divergent branch: a row without a finite max this step keeps m, corr 1.',
  '          if ((ATTNC_DEC_MMA_LEAN & 1) != 0 || mt[h8] > -INFINITY) {',
  '            const bool up = mt[h8] > -INFINITY;',
  '            const float mn = up ? fmaxf(m[h8], mt[h8]) : m[h8], corr = up ? exp2f(m[h8] - mn) : 1.f;',
  '            l[h8] *= corr;',
  '#pragma unroll',
  '            for (int n = 0; n < DV / 8; ++n) o[n][2 * h8] *= corr, o[n][2 * h8 + 1] *= corr;',
  ...rescale.map((l) => `  ${l}`),
  '            m[h8] = mn;',
  '          }',
  '        }',
  '      }',
  '      // -inf (masked) weighs 0; a NaN or +inf score gives p = NaN, which poisons the row.',
  '      // Padding rows of a one-half loop weigh 0 (their O rows are never read).',
  '#pragma unroll',
  '      for (int j = 0; j < NT; ++j)',
  '#pragma unroll',
  '        for (int e = 0; e < 4; ++e) {',
  `          if (e >= 2 * ${halves}) {`,
  '            s[j][e] = 0.f;',
  '            continue;',
  '          }',
  '          s[j][e] = s[j][e] == -INFINITY ? 0.f : exp2f(s[j][e] - m[e >> 1]);',
  '          l[e >> 1] += s[j][e];',
  '        }',
];
