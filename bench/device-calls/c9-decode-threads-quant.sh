#!/bin/bash
# Device call 9 (≤ 220 s of run time; round 16): the WGSL coop decode's workgroup size at 32K and
# 128K (f32 K/V, H 32 / Hkv 8; 32, 64 = today's default, 128 invocations) alone in its process —
# round 16's call 5 read 1,714 GB/s at 128K with 32 invocations against 606 with 64 on an H100 —
# then the quantized decode at today's defaults beside SDPA (call 3's second half). Checked first.
# Carry: .carry, dist/src, bench/build/cuda-quant-decode (the whole dist does not fit beside them). Comes back as $OUT/c9.tgz.
set -uo pipefail
cd "$(dirname "$0")/../.."
O=/tmp/o9
mkdir -p $O/quant
T0=$(date +%s)
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,temperature.gpu --format=csv > $O/gpu.txt
export PATH="$PATH:/usr/local/cuda/bin" PYTHONUNBUFFERED=1
export ATTNC_DAWN_FLAGS=disable-dawn-features=timestamp_quantization
timeout 80 bash bench/gpu-node/run.sh node bench/wgsl/run.mjs --no-prefill --reps 5 --engines coop \
  --decode-threads 32,64,128 --out $O/wgsl-decode.json > $O/wgsl-decode.log 2>&1
echo "wgsl decode exit $? at $(($(date +%s) - T0)) s"
grep -E '^decode' $O/wgsl-decode.log
timeout 125 python3 bench/cuda/quant-decode.py --build bench/build/cuda-quant-decode --out $O/quant \
  --formats bf16,int8,e4m3,int4,int2 --knobs default --budget 105 > $O/quant.log 2>&1
echo "quant-decode exit $? at $(($(date +%s) - T0)) s"
tail -n 14 $O/quant.log
tar czf "$OUT/c9.tgz" -C $O .
