// The stdlib kernels for bench/cuda/emit.mjs (`--list bench/cuda/stdlib-list.mjs`): compiled from
// their .attn sources by the frontend. Values for the check where defaults do not suit small
// inputs, and for the timings where DESIGN §6 asks for them (window 1024, 4 sinks, prefix S/4 ≈ 1024
// at S = 4096).
const variants = { dtypes: ['bf16'], headDims: [128], perf: true };
const std = (name, extra = {}) => ({
  name: `std_${name}`,
  source: `stdlib/${name}.attn`,
  ...variants,
  ...extra,
});

export default [
  std('full'),
  std('causal'),
  std('sliding_window', { params: { window: 256 }, perfParams: { window: 1024 } }),
  std('sink_window', { params: { window: 256, sinks: 4 }, perfParams: { window: 1024, sinks: 4 } }),
  std('prefix_lm', { params: { prefix: 300 }, perfParams: { prefix: 1024 } }),
  std('document', { tensors: { doc: { kind: 'segments', maxLen: 400 } } }),
  std('dilated', { params: { dilation: 2 } }),
  std('alibi'),
  std('softcap'),
  // A 37-wide image (odd, so neighbourhoods wrap nowhere near tile edges) in the check; the
  // benchmark's 128-wide image with 15×15 neighbourhoods in the timings.
  std('neighbourhood', { params: { W: 37, r: 3 }, perfParams: { W: 128, r: 7 } }),
  std('modality', { tensors: { span: { kind: 'ints', lo: 0, hi: 3 } } }),
  std('sink_calibration', { tensors: { gain: { kind: 'uniform', lo: 0.5, hi: 2.0 } }, perf: false }),
];
