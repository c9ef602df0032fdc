// Issue 13 item 4, round 25: the D 128 neighbourhood default's box mask on other tile shapes, for
// one bench/cuda/neighbourhood.sh call (build, check, time beside FlexAttention at 16K and 32K):
//   npm run build && node bench/cuda/emit.mjs --engine wgmma --list bench/cuda/nbhd-r25-list.mjs --out bench/build/nbhd25
// The default (q64 k128, one stage, two blocks an SM) overlaps no K/V load with its own products:
// a unit is 4 tiles, and round 11's profile found the kernel latency-bound. These trade that for
// more blocks an SM (64-key tiles: 48 KiB of tiles) or a second stage. ptxas serializes the wgmmas
// of the 64-key box builds (C7520), which is why bench/cuda/nbhd-list.mjs (whose candidates
// test/cuda/patch-tweaks.test.ts holds to no C7520) does not carry them: timing says whether the
// occupancy pays for it.
import { box, variant, wg } from './nbhd-list.mjs';

const candidates = [
  ['q64_k128_s1_b2_box_va', wg(64, 128, 1, [...box, 'blocks2'])], // the default, named
  ['q64_k64_s1_b2_box_va', wg(64, 64, 1, [...box, 'blocks2'])], // 64-key tiles alone
  ['q64_k64_s1_b3_box_va', wg(64, 64, 1, [...box, 'blocks3'])], // and three blocks an SM
  ['q64_k64_s2_b2_box_va', wg(64, 64, 2, [...box, 'blocks2'])], // or two stages, two blocks
];

export default [
  variant('default', undefined, { defaultSchedule: true }),
  ...candidates.map(([id, s]) => variant(id, s)),
];
