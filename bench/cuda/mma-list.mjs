// The stdlib kernels on the tensor-core engine, for `node bench/cuda/emit.mjs --engine mma --list
// bench/cuda/mma-list.mjs --out bench/build/cuda-mma`: every kernel in bf16 and f16 at D = 64 and
// 128 for the correctness check; the DESIGN §6 patterns (bf16, D = 128) are timed by bench.py
// beside FlexAttention and SDPA; a few other schedules of full and causal show what tiling buys.
import base from './stdlib-list.mjs';

const patterns = {
  std_full: 'full',
  std_causal: 'causal',
  std_sliding_window: 'sliding_window',
  std_sink_window: 'sink_window',
  std_prefix_lm: 'prefix_lm',
  std_document: 'document',
  std_dilated: 'dilated',
};

const all = base.map((e) => ({
  ...e,
  dtypes: ['bf16', 'f16'],
  headDims: [64, 128],
  perf: e.name in patterns,
  pattern: patterns[e.name] ?? null,
}));

const alt = (e, suffix, schedule) => ({
  ...e,
  name: `${e.name}_${suffix}`,
  dtypes: ['bf16'],
  headDims: [128],
  schedule,
  alt: true,
});

const full = all.find((e) => e.name === 'std_full');
const causal = all.find((e) => e.name === 'std_causal');
export default [
  ...all,
  alt(full, 'q64', { blockQ: 64, threads: 128 }),
  alt(full, 's1', { stages: 1 }),
  alt(causal, 'q64', { blockQ: 64, threads: 128 }),
];
