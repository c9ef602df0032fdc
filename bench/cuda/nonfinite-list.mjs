// Kernels for bench/cuda/nonfinite.py (the "Non-finite values" contract of docs/LANGUAGE.md on a
// GPU, every engine): emit once per engine, e.g.
//   node bench/cuda/emit.mjs --engine mma --list bench/cuda/nonfinite-list.mjs --out bench/build/nf-mma
export default [
  { name: 'nf_causal', source: 'stdlib/causal.attn', dtypes: ['bf16', 'f16'], headDims: [64] },
  { name: 'nf_scored', source: 'bench/cuda/kernels/nonfinite_scored.attn', dtypes: ['bf16'], headDims: [64] },
];
