#!/bin/bash
# Device call 39 (round 25, ≤ 400 s): NSA-style ranking with the vote pass's query rows asked of L2
# ahead of use (ROUTE_QPREF, routing-topk-mma-parts.ts). Every variant is checked against the
# float64 routing oracle first (routing-token.py exits before any timing on a failure), then timed
# at 64K with 16 and 64 query heads over 4 kv heads (the default first and again last, the
# variants between), then memcheck / racecheck on qpf2, then Nsight Compute on the ranking of the
# default and of qpf2 at 64 heads (DRAM bytes, L2 hit rate).
# Ran once (round 25, H100, 115 s; bench/results/device-calls-h100-2026-12-06-r25/c39-rank-prefetch):
# no variant gained enough to keep, and the knob was removed — to re-run, check out commit 86539f4.
# Prepare (at that commit): npm run build && node bench/cuda/routing-token-emit.mjs --rank --out bench/build/cuda-token-rank25
# carry bench/build/cuda-token-rank25; returns $OUT/c39-*.
set -uo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PATH:/usr/local/cuda/bin" PYTHONUNBUFFERED=1
B=bench/build/cuda-token-rank25
T0=$(date +%s)
OUT="$OUT/c39" BUILD=$B LIMIT_S=${LIMIT_S:-200} SANITIZE_S=60 SANITIZE_ONLY=nsa_select_wgmma_bf16_d128_qpf2 \
  bash bench/cuda/routing-token.sh --sizes 65536 --heads 16,64 --flex '' --local-q '' --rank-sizes 65536 \
  --no-sdpa --no-tokenselect
echo "timing + sanitizers: $(($(date +%s) - T0)) s"
M=lts__t_bytes.sum,dram__bytes_read.sum,l1tex__t_bytes.sum,lts__t_sector_hit_rate.pct,gpu__time_duration.sum
for V in nsa_select_wgmma_bf16_d128 nsa_select_wgmma_bf16_d128_qpf2; do
  timeout 100 ncu --kernel-name "regex:route_topk_tc" --launch-count 1 --section SpeedOfLight --section WarpStateStats \
    --metrics $M python3 bench/cuda/routing-ncu.py --build $B --variant $V --H 64 > "$OUT/c39/ncu-$V-h64.txt" 2>&1
  echo "== ncu $V H 64 (exit $?)"
  grep -E "Duration|lts__t_bytes|dram__bytes_read|hit_rate|Stall|Warp Cycles" "$OUT/c39/ncu-$V-h64.txt" | head -14
done
echo "total: $(($(date +%s) - T0)) s"
