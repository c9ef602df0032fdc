#!/bin/bash
# One device call: build, check and time `qk int8 smooth k` + `pv e4m3 [smooth v]` (SageAttention2's
# fp8 P·V on the wgmma-ws s8 kernel: int8wsPV, int8wsPVT, int8wsPVr serial, int8wsPVpp ping-pong)
# beside the s8 kernel with 16-bit P·V (int8ws, int8wsT, int8wsFR serial, int8wsP ping-pong),
# attnc's bf16 default and SDPA (bench/cuda/int8qk.py). Emit first, here:
#   npm run build && node bench/cuda/int8qk-emit.mjs pv
# then on the GPU machine (carry bench/build/cuda-int8qk-pv): bash bench/cuda/int8qk-pv.sh
# BUDGET (s, default 120) skips the 16K timing rows past it; TIMEOUT (s, default 150) cuts off.
set -o pipefail
export PYTHONUNBUFFERED=1
OUT=${OUT:-bench/build/int8qk-pv-out}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,temperature.gpu --format=csv | tee "$OUT/gpu.txt"
timeout "${TIMEOUT:-150}" python3 bench/cuda/int8qk.py --build bench/build/cuda-int8qk-pv --out "$OUT" \
  --check-n "${CHECK_N:-2048}" --n "${N:-16384}" --budget "${BUDGET:-120}" 2>&1 |
  tee "$OUT/int8qk.log" | tail -100
