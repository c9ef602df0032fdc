// perf-tma's device list for `node bench/cuda/emit.mjs --engine wgmma-ws --list bench/ws/ws-list.mjs
// --out bench/build/cuda-ws`: every stdlib kernel on the warp-specialized engine with the schedule
// the schedule pass picks (bf16 and f16, D = 64 and 128: 2 stages, 128-key tiles, 176 for the
// unmasked `full`), and the wgmma engine's timed patterns under `_wg` names (same build, same
// call), so bench.py times both engines. bench/ws/emit-variants.mjs adds plan variants
// (ping-pong, overlap, other tiles) to the same build.
import mma from '../cuda/mma-list.mjs';

const all = mma
  .filter((e) => !e.alt)
  .map((e) => (e.name === 'std_full' ? { ...e, schedule: { blockK: 176 } } : e));
const alt = (e, suffix, schedule) => ({
  ...e,
  name: `${e.name}_${suffix}`,
  dtypes: ['bf16'],
  headDims: [128],
  schedule,
  alt: true,
});
export default [
  ...all,
  ...all.filter((e) => e.perf).map((e) => alt(e, 'wg', { engine: 'wgmma', threads: 256, blockK: 128 })),
];
