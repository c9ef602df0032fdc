#!/bin/bash
# Device call 45 (round 28, ≤ 450 s): issue 13 item 1's forward table at today's default schedules
# (call 21's second step alone), 16K and 32K, every variant checked with compute-sanitizer before it
# is timed beside FlexAttention and SDPA in one process (bench/cuda/run-table.sh). Meant to follow
# call 44 on the same warm machine; on an H100 its figures are that card's, not issue 13's.
# Prepare: npm run build; node bench/cuda/emit.mjs --list bench/cuda/default-list.mjs --out bench/build/cuda-default
# carry bench/build/cuda-default; returns $OUT/c45/.
set -uo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PATH:/usr/local/cuda/bin" PYTHONUNBUFFERED=1
T0=$(date +%s)
O="$OUT/c45"
mkdir -p "$O"
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,temperature.gpu --format=csv | tee "$O/gpu.txt"
BUILD=bench/build/cuda-default OUT="$O/table" CHECK_S=170 TABLE_S=200 \
  timeout 430 bash bench/cuda/run-table.sh 16384,32768 > "$O/table.log" 2>&1
echo "== table exit $? at $(($(date +%s) - T0)) s"
grep -E '^\| ' "$O/table.log" | tail -n 30
