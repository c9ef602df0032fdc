#!/bin/bash
# One device call for token selection on CUDA (issue #13 item 6, issue #16 TokenSelect prefill), at
# most about 200 s: correctness of every selection stdlib artifact first (exit 1 on a failure,
# before any timing; includes decode shapes ranked by the multi-block top-k), then TokenSelect
# decode at 32K and 128K (attnc per pass and end to end, the one-block top-k build beside it,
# FlexAttention with the selection as a block mask, dense Flex) and TokenSelect prefill at 32K.
# Emit and build first, here:  npm run build && node bench/cuda/select-emit.mjs
# then on the GPU machine (carry bench/build/cuda-select):  bash bench/cuda/select.sh
# Results: $OUT/select.json (+ select.log, gpu.txt). A short call (decode only, ~60 s):
#   LIMIT_S=55 OUT=$OUT bash bench/cuda/select.sh --decode-only
set -o pipefail
export PYTHONUNBUFFERED=1
OUT=${OUT:-bench/build/select-out}
BUILD=${BUILD:-bench/build/cuda-select}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm --format=csv,noheader | tee "$OUT/gpu.txt"
timeout "${LIMIT_S:-195}" python3 bench/cuda/select.py --build "$BUILD" --out "$OUT" "$@" 2>&1 | tee "$OUT/select.log"
