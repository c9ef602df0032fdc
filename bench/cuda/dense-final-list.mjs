// The last dense timing of issue 13 item 5 (full and causal, bf16, D = 128, 16K and 32K): the new
// default (FlashAttention-3 consumers + wsTweaks with foldScale) beside the round-3 candidates of
// tune-list.mjs, eleven variants, for dense-ncu.sh (it times whatever bench/build/cuda-dense holds):
//   npm run build && rm -rf bench/build/cuda-dense && \
//     node bench/cuda/emit.mjs --engine wgmma --list bench/cuda/dense-final-list.mjs --out bench/build/cuda-dense
//   SIZES=16384,32768 NCU= bash bench/cuda/dense-ncu.sh
import tuned from './tune-list.mjs';

const ids = new Set([
  'default',
  'ws_overlap_tw_fold',
  'ws_overlap_tw_fold_r240',
  'ws_overlap_k176_tw_fold',
  'ws_overlap_k160_tw_fold',
  'ws_fa3_tw_fold_r240',
  'ws_fa3_fold_eager',
]);
const dense = new Set(['full', 'causal']);
export default tuned.filter((e) => dense.has(e.pattern) && ids.has(e.candidate));
