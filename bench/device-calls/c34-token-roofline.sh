#!/bin/bash
# Device call 34 (round 23, ≤ 300 s): is the token-granular routed attention (NSA-style, 64K, random
# queries) bound by L2? Nsight Compute on the token attention and the tensor-core ranking at 16
# and 64 query heads over 4 kv heads (one launch each: SpeedOfLight, MemoryWorkloadAnalysis, bytes
# through L1 / L2 / DRAM). (As run in round 23 it first timed torch copy_/sum over 4 MiB..1 GiB
# buffers, bench/cuda/l2-bandwidth.py, since removed: below 1 GiB each call took 9-26 us, launch
# overhead, not L2; only its 1 GiB rows, ~3.0 TB/s of HBM, meant anything.)
# Prepare: npm run build && node bench/cuda/routing-token-emit.mjs --keymajor   # bench/build/cuda-token
# carry bench/build/cuda-token; returns $OUT/c34-*.txt.
set -uo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PATH:/usr/local/cuda/bin" PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm --format=csv > "$OUT/c34-gpu.txt"
M=lts__t_bytes.sum,dram__bytes_read.sum,l1tex__t_bytes.sum,lts__t_sector_hit_rate.pct,gpu__time_duration.sum
for H in 16 64; do
  for K in token_attn route_topk_tc; do
    timeout 120 ncu --kernel-name "regex:$K" --launch-count 1 --section SpeedOfLight --section MemoryWorkloadAnalysis \
      --metrics $M python3 bench/cuda/routing-ncu.py --build bench/build/cuda-token \
      --variant "${VARIANT:-nsa_select_wgmma_bf16_d128}" --H $H > "$OUT/c34-$K-h$H.txt" 2>&1
    echo "== $K H $H (exit $?)"
    grep -E "Duration|Throughput|lts__t_bytes|dram__bytes_read|l1tex__t_bytes|hit_rate|L2 Hit|L1/TEX Hit|Mem Busy|Max Bandwidth" "$OUT/c34-$K-h$H.txt" | head -20
  done
done
