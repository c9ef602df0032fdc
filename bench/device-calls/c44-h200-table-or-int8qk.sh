#!/bin/bash
# Device call 44 (round 27, ≤ 560 s): starts were scarce again, and whichever card comes decides.
#  - An H200: issue 13 item 1, the forward table at today's default schedules (16K / 32K, beside
#    Flex and SDPA in one process, checked and sanitized first: call 21's second step with the
#    round-26 defaults), then, if the call has room, call 43's quantized-decode step (LEAN 3).
#  - An H100: call 43's first three steps (int8 Q·Kᵀ without I2F beside the I2F build; the
#    neighbourhood at 32K; quantized decode), all same-process ratios.
# Prepare: everything c43-int8qk-nbhd32-qdecode.sh names, plus
#   node bench/cuda/emit.mjs --list bench/cuda/default-list.mjs --out bench/build/cuda-default
# carry bench/build/{cuda-default,cuda-int8qk,nbhd26,cuda-quant-decode}; returns $OUT/c44/.
set -uo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PATH:/usr/local/cuda/bin" PYTHONUNBUFFERED=1
T0=$(date +%s)
O="$OUT/c44"
mkdir -p "$O/quant"
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,temperature.gpu --format=csv | tee "$O/gpu.txt"
quant() {
  timeout "$1" python3 bench/cuda/quant-decode.py --build bench/build/cuda-quant-decode --out "$O/quant" \
    --formats bf16,int8,e4m3 --knobs default,lean3 --budget $(($1 - 30)) > "$O/quant.log" 2>&1
  echo "== quant-decode exit $? at $(($(date +%s) - T0)) s"
  tail -n 16 "$O/quant.log"
}
if grep -q H200 "$O/gpu.txt"; then
  BUILD=bench/build/cuda-default OUT="$O/table" CHECK_S=170 TABLE_S=200 \
    bash bench/cuda/run-table.sh 16384,32768 > "$O/table.log" 2>&1
  echo "== table exit $? at $(($(date +%s) - T0)) s"
  grep -E '^\| ' "$O/table.log" | tail -n 30
  LEFT=$((540 - ($(date +%s) - T0)))
  [ "$LEFT" -gt 90 ] && quant "$LEFT"
else
  OUT="$O/int8qk/qk" TIMEOUT=160 BUDGET=130 bash bench/cuda/int8qk.sh > "$O/int8qk-qk.txt" 2>&1
  echo "== int8qk exit $? at $(($(date +%s) - T0)) s"
  tail -n 30 "$O/int8qk-qk.txt"
  OUT="$O/nbhd" BUILD=bench/build/nbhd26 SIZES=32768 TIME_S=120 BUDGET=90 bash bench/cuda/neighbourhood.sh > "$O/nbhd.txt" 2>&1
  echo "== nbhd exit $? at $(($(date +%s) - T0)) s"
  tail -n 14 "$O/nbhd.txt"
  quant 150
fi
