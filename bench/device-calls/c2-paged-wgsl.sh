#!/bin/bash
# Device call 2 (≤ 330 s of run time): paged decode (bf16, int8; pages of 16/64/256) beside the
# contiguous kernel with today's defaults (issue 10: round 7 timed paged bf16 against the pre-lean
# decode), then WGSL on Dawn/Vulkan: the coop prefill defaults (causal, full; D 64, 128; 16K) with the
# matmul ceiling, and the f32 decode (issue 11; last timed in round 7).
# Prepare and call as bench/device-calls/README.md says; everything comes back as $OUT/c2.tgz.
set -uo pipefail
cd "$(dirname "$0")/../.."
O=/tmp/o
mkdir -p $O
T0=$(date +%s)
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,temperature.gpu --format=csv > $O/gpu.txt
export PATH="$PATH:/usr/local/cuda/bin" PYTHONUNBUFFERED=1
timeout 170 python3 bench/cuda/paged-decode.py --build bench/build/cuda-paged --out $O/paged > $O/paged.log 2>&1
echo "paged exit $? at $(($(date +%s) - T0)) s"
tail -n 25 $O/paged.log
export ATTNC_DAWN_FLAGS=disable-dawn-features=timestamp_quantization
timeout 150 bash bench/gpu-node/run.sh node bench/wgsl/run.mjs --only causal,full --dims 64,128 --n 16384 \
  --reps 3 --engines coop --out $O/wgsl.json > $O/wgsl.log 2>&1
echo "wgsl exit $? at $(($(date +%s) - T0)) s"
tail -n 20 $O/wgsl.log
tar czf "$OUT/c2.tgz" -C $O .
