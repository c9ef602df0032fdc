#!/bin/bash
# One device call (≤ 300 s): build, check and time the tensor-core CUDA backward beside
# FlexAttention and SDPA (bench/cuda/backward.py). Emit first, here:
#   npx tsc -p tsconfig.json && node bench/cuda/backward-emit.mjs
# then on the GPU machine (carry bench/build/cuda-backward): bash bench/cuda/backward.sh [sizes]
# BUDGET (s, default 245) caps build + check + timings; rows past it are skipped, not cut off.
set -o pipefail
export PYTHONUNBUFFERED=1
OUT=${OUT:-bench/build/backward-out}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,temperature.gpu --format=csv | tee "$OUT/gpu.txt"
timeout 285 python3 bench/cuda/backward.py --build bench/build/cuda-backward --out "$OUT" \
  --sizes "${1:-4096,16384}" --budget "${BUDGET:-245}" 2>&1 | tee "$OUT/backward.log" | tail -70
