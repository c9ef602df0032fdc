#!/bin/bash
# Device call 32 (round 23, ≤ 150 s of run time): quantized decode's occupancy. The int8 / e4m3
# tensor-core decode block (8 warps) takes 184 registers, so an SM holds one block: 8 warps to hide
# the latency of a loop the round 9 profile found half issue-bound. The new QMIN_BLOCKS knob caps
# the quantized kernel's registers without touching a float twin in the same translation unit:
# 4-warp blocks at 170 registers fit 3 an SM (12 warps, no spills), 2-warp blocks 6.
# All at the lean code (LEAN 3, what a compiled kernel over a quantized cache runs); bf16 for SDPA.
# The variants were DECODE_KNOB_VARIANTS entries at commit f998732 (removed after this call, slower):
#   q_l3_w4m3       MMA_LEAN 3, MMA_QWARPS 4, MMA_QMIN_BLOCKS 3
#   q_l3_w4k16s4m3  MMA_LEAN 3, MMA_QWARPS 4, MMA_QKEYS 16, MMA_QSTAGES 4, MMA_QMIN_BLOCKS 3
#   q_l3_w2m6       MMA_LEAN 3, MMA_QWARPS 2, MMA_QMIN_BLOCKS 6
# (to re-run: restore them there, or emit at that commit).
# Prepare: npm run build
#   node bench/cuda/quant-decode-emit.mjs --only default,lean3,q_l3_w4m3,q_l3_w4k16s4m3,q_l3_w2m6 --cases 0,2 --formats bf16,int8,e4m3
# carry bench/build/cuda-quant-decode; returns $OUT/c32-quant.tgz.
set -uo pipefail
cd "$(dirname "$0")/../.."
O=/tmp/o32
mkdir -p $O/quant
T0=$(date +%s)
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,temperature.gpu --format=csv > $O/gpu.txt
export PATH="$PATH:/usr/local/cuda/bin" PYTHONUNBUFFERED=1
timeout 140 python3 bench/cuda/quant-decode.py --build bench/build/cuda-quant-decode --out $O/quant \
  --formats bf16,int8,e4m3 --knobs default,lean3,q_l3_w4m3,q_l3_w4k16s4m3,q_l3_w2m6 --budget 120 > $O/quant.log 2>&1
echo "quant-decode exit $? at $(($(date +%s) - T0)) s"
tail -n 40 $O/quant.log
tar czf "$OUT/c32-quant.tgz" -C $O gpu.txt quant quant.log
