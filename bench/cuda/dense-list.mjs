// Dense prefill variants (full and causal, bf16, D = 128) of issue 13 item 5: the tune-list
// candidates of the wgmma-ws engine for those two patterns plus the default, for Nsight Compute
// (bench/cuda/dense-ncu.py) and for a side-by-side timing through run-table.sh's ONLY filter.
//   npm run build && node bench/cuda/emit.mjs --engine wgmma --list bench/cuda/dense-list.mjs --out bench/build/cuda-dense
import tuned from './tune-list.mjs';

const dense = new Set(['full', 'causal']);
export default tuned.filter(
  (e) => dense.has(e.pattern) && (e.candidate === 'default' || e.candidate.startsWith('ws_')),
);
