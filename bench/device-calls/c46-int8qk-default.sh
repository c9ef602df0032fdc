#!/bin/bash
# Device call 46 (round 28, ≤ 300 s): `qk int8`'s new default (ping-pong consumers + foldScale,
# int8QkWsDefault) at 16K and 32K beside attnc bf16 and SDPA, with two variants of it (P packed
# first; three stages) and round 26's ping-pong build without foldScale, one process per size.
# SIZES (default "16384 32768") picks the N of each process.
# Prepare: npm run build; node bench/cuda/int8qk-emit.mjs, its index trimmed to bf16, int8,
#   int8wsP, int8wsPFk, int8wsPFs3. carry bench/build/cuda-int8qk; returns $OUT/c46/.
set -uo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PATH:/usr/local/cuda/bin" PYTHONUNBUFFERED=1
T0=$(date +%s)
O="$OUT/c46"
mkdir -p "$O"
for n in ${SIZES:-16384 32768}; do
  OUT="$O/n$n" N=$n TIMEOUT=140 BUDGET=110 bash bench/cuda/int8qk.sh > "$O/int8qk-$n.txt" 2>&1
  echo "== int8qk N=$n exit $? at $(($(date +%s) - T0)) s"
  grep -A20 "== timings" "$O/int8qk-$n.txt" | head -20
done
