// The stdlib kernels on the Hopper wgmma engine, for `node bench/cuda/emit.mjs --engine wgmma
// --list bench/cuda/wgmma-list.mjs --out bench/build/cuda-wgmma`: the same variants as the mma
// list (every kernel in bf16 and f16 at D = 64 and 128, the DESIGN §6 patterns timed), plus
// 64-key tiles of full and causal to show what the tile width buys.
import mma from './mma-list.mjs';

const all = mma.filter((e) => !e.alt);
const alt = (e, suffix, schedule) => ({
  ...e,
  name: `${e.name}_${suffix}`,
  dtypes: ['bf16'],
  headDims: [128],
  schedule,
  alt: true,
});
const named = (n) => all.find((e) => e.name === n);
export default [
  ...all,
  alt(named('std_full'), 'k64', { blockK: 64 }),
  alt(named('std_causal'), 'k64', { blockK: 64 }),
];
