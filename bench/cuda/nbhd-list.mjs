// Issue 13 item 4, round 9: the 2-D neighbourhood kernel's patch tweaks (Schedule.patchTweaks,
// src/codegen/cuda/patch-tweaks.ts and patch-box.ts) beside the default, for
// bench/cuda/neighbourhood.sh (one device call: build, check, time beside FlexAttention).
//   npm run build && node bench/cuda/emit.mjs --engine wgmma --list bench/cuda/nbhd-list.mjs --out bench/build/nbhd
// Every candidate compiles without spills and, but for the default, without ptxas's C7520 (wgmma
// serialized); test/cuda/patch-tweaks.test.ts checks that on these very schedules.
import base from './stdlib-list.mjs';

const std = base.find((x) => x.name === 'std_neighbourhood');
if (!std) throw new Error('nbhd-list: no std_neighbourhood entry');

/** A wgmma schedule of the patch layout: tiles, stages and Schedule.patchTweaks. */
export const wg = (blockQ, blockK, stages, patchTweaks) => ({
  engine: 'wgmma',
  blockQ,
  blockK,
  threads: 2 * blockQ,
  stages,
  patchTweaks,
});
const lean = ['unitRegs', 'rowTable', 'visitAll'];
export const box = ['boxMask', 'visitAll'];

/** id → schedule; `default` is what the schedule pass picks (wgmma q128 k128, two stages). */
export const nbhdCandidates = [
  // One tweak at a time on the default tiles, then together.
  ['u', wg(128, 128, 2, ['unitRegs'])],
  ['u_rt', wg(128, 128, 2, ['unitRegs', 'rowTable'])],
  ['u_rt_va', wg(128, 128, 2, lean)],
  ['box', wg(128, 128, 2, ['boxMask'])],
  ['box_va', wg(128, 128, 2, box)],
  // 112-key tiles: an interior 8 × 16 patch's 660 keys fill 6 tiles of 112 (672 slots) instead of
  // 6 of 128 (768): an eighth less matrix and softmax work. (boxMask here is serialized: C7520.)
  ['k112_u_rt_va', wg(128, 112, 2, lean)],
  // More blocks per SM: 64-query patches (8 × 8, 22 × 22 = 484-key boxes) in 128-thread blocks.
  ['q64_k128_s1_b2_box_va', wg(64, 128, 1, [...box, 'blocks2'])],
  ['q64_k128_s1_b2_u_rt_va', wg(64, 128, 1, [...lean, 'blocks2'])],
  ['q64_k64_s1_b3_u_rt_va', wg(64, 64, 1, [...lean, 'blocks3'])],
  ['q64_k64_s2_u_rt_va', wg(64, 64, 2, lean)],
  // Round 25: the box mask on 64-key tiles, two stages. Until the tile-bound scans gave way to the
  // whole range in box units under visitAll (mma-tiles.ts, everyTile), ptxas serialized its wgmmas
  // (C7520); the compile test below keeps it so. (Three blocks an SM, bench/cuda/nbhd-r25-list.mjs,
  // spills 12 bytes at its 168-register bound.)
  ['q64_k64_s2_b2_box_va', wg(64, 64, 2, [...box, 'blocks2'])],
];

/** A bench-list entry: stdlib's neighbourhood kernel (bf16, D 128) at schedule `schedule`. */
export const variant = (id, schedule, extra = {}) => ({
  ...std,
  name: `std_neighbourhood__${id}`,
  dtypes: ['bf16'],
  headDims: [128],
  schedule,
  perf: true,
  pattern: 'neighbourhood',
  candidate: id,
  ...extra,
});

export default [
  variant('default', undefined, { defaultSchedule: true }),
  ...nbhdCandidates.map(([id, s]) => variant(id, s)),
  // Check only: an image wider than the queries (W = 5000 over 1000-odd rows) makes the boxMask
  // grid fall back to plain q-tiles (the unit body's general-mask instantiation).
  variant('box_va_plain', wg(128, 128, 2, box), { params: { W: 5000, r: 3 }, perf: false, pattern: null }),
  // Check only, D = 64 (the goldens' head dim, whose default takes a non-boxMask pick).
  ...['u_rt_va', 'k112_u_rt_va'].map((id) =>
    variant(`${id}_check`, nbhdCandidates.find(([c]) => c === id)[1], {
      headDims: [64],
      perf: false,
      pattern: null,
    }),
  ),
];
