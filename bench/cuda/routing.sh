#!/bin/bash
# One device call for block routing on CUDA: build + check every routing artifact, compute-sanitizer
# (memcheck + racecheck) on every benchmarked kernel, then the end-to-end timings vs FlexAttention. Emit first, here:
#   npm run build && node bench/cuda/routing-emit.mjs
# then on the GPU machine (carry bench/build): bash bench/cuda/routing.sh
set -o pipefail
export PYTHONUNBUFFERED=1
OUT=${OUT:-bench/build/routing-out}
mkdir -p $OUT
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm --format=csv,noheader
timeout ${LIMIT_S:-420} python3 bench/cuda/routing.py --build bench/build/cuda-routing --out $OUT \
  --sanitize "${SANITIZE-$(for v in biformer128_wgmma_bf16_d128 biformer_wgmma_bf16_d128 biformer_wgmma_bf16_d128_q64k64 nsa_select_wgmma_bf16_d128 nsa_select_mma_bf16_d128; do printf '%s:memcheck,%s:racecheck,' $v $v; done)}" \
  "$@" 2>&1 | tee $OUT/routing.log
