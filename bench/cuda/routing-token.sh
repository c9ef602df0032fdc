#!/bin/bash
# One device call for token-granular routing (issue #16), at most about 200 s: correctness of every
# nsa_select artifact first (float64 routing reference, float32 attention on the kernel's own
# indices; exit 1 on a failure, before any timing), then NSA-style at 16K/64K/128K × 16/64 query
# heads over 4 kv heads (per pass, TFLOP/s over attended pairs, ranking share; drifting-query rows and
# the ranking's constant variants at 64K as separate rows) beside FlexAttention
# with the same selection (16K, 16 heads) and causal SDPA, TokenSelect prefill at 32K; then
# compute-sanitizer (memcheck, racecheck) on the token attention at a small GQA case.
# Emit and build first, here:  npm run build && node bench/cuda/routing-token-emit.mjs
# then on the GPU machine (carry bench/build/cuda-token):  bash bench/cuda/routing-token.sh
# Results: $OUT/routing-token-results.json (+ sanitize-*.txt, routing-token.log).
# Key-major (issue 16): node bench/cuda/routing-token-emit.mjs --keymajor, then
#   SANITIZE_ONLY=nsa_select_wgmma_bf16_d128_keymajor bash bench/cuda/routing-token.sh --sizes 65536 \
#     --heads 16,64 --flex '' --local-q '' --rank-sizes '' --no-sdpa --no-tokenselect --variants keymajor,...
# Ranking knobs (round 9: ROUTE_QREG, ROUTE_QVEC): node bench/cuda/routing-token-emit.mjs --rank --out
#   bench/build/cuda-token-rank16, then BUILD=bench/build/cuda-token-rank16 LIMIT_S=100 SANITIZE_S=40 \
#   SANITIZE_ONLY=nsa_select_wgmma_bf16_d128_qreg_qvec bash bench/cuda/routing-token.sh --sizes 16384,65536 \
#     --heads 16,64 --flex '' --local-q '' --rank-sizes 16384,65536 --no-sdpa --no-tokenselect
set -o pipefail
export PYTHONUNBUFFERED=1
OUT=${OUT:-bench/build/routing-token-out}
BUILD=${BUILD:-bench/build/cuda-token}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm --format=csv,noheader | tee "$OUT/gpu.txt"
timeout "${LIMIT_S:-150}" python3 bench/cuda/routing-token.py --build "$BUILD" --out "$OUT" "$@" 2>&1 | tee "$OUT/routing-token.log"
rc=$?
if [ "${SANITIZE:-1}" = 1 ]; then
  for tool in memcheck racecheck; do
    timeout "${SANITIZE_S:-50}" compute-sanitizer --tool $tool --error-exitcode 9 python3 bench/cuda/routing.py --build "$BUILD" \
      --only "${SANITIZE_ONLY:-nsa_select_wgmma_bf16_d128}" --no-bench --no-build --cases 1 > "$OUT/sanitize-$tool.txt" 2>&1 &
  done
  wait
  for tool in memcheck racecheck; do echo "sanitize $tool:"; tail -3 "$OUT/sanitize-$tool.txt"; done
fi
exit $rc
