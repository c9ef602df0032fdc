#!/bin/bash
# Device call 3 (≤ 320 s of run time): the two standing targets last timed before round 11.
# Token-granular routing (issue 16; last timed in round 10: NSA-style 64K, 16 heads 26.6 ms, 64 heads
# 45.7 ms): NSA-style at 16K and 64K × 16/64 query heads over 4 KV heads, beside FlexAttention with
# the same selection (16K, 16 heads) and causal SDPA, TokenSelect prefill at 32K; correctness first.
# Quantized decode (issue 10; int4/int2 last timed in round 9, int8/e4m3 in round 10): bf16, int8,
# e4m3, int4, int2 at today's default knobs beside SDPA bf16 (B 4, H 32 / Hkv 8, D 128, Nk 32K, 128K).
# Prepare and call as bench/device-calls/README.md says; everything comes back as $OUT/c3.tgz.
set -uo pipefail
cd "$(dirname "$0")/../.."
O=/tmp/o3
mkdir -p $O/token $O/quant
T0=$(date +%s)
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,temperature.gpu --format=csv > $O/gpu.txt
export PATH="$PATH:/usr/local/cuda/bin" PYTHONUNBUFFERED=1
timeout 170 python3 bench/cuda/routing-token.py --build bench/build/cuda-token --out $O/token \
  --sizes 16384,65536 --heads 16,64 --flex 16384x16 --local-q '' --rank-sizes '' > $O/token.log 2>&1
echo "routing-token exit $? at $(($(date +%s) - T0)) s"
tail -n 30 $O/token.log
timeout 130 python3 bench/cuda/quant-decode.py --build bench/build/cuda-quant-decode --out $O/quant \
  --formats bf16,int8,e4m3,int4,int2 --knobs default --budget 110 > $O/quant.log 2>&1
echo "quant-decode exit $? at $(($(date +%s) - T0)) s"
tail -n 25 $O/quant.log
tar czf "$OUT/c3.tgz" -C $O .
