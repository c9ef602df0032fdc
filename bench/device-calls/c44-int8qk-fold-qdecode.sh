#!/bin/bash
# Device call 44 (round 27, ≤ 470 s): starts were scarce again, so the most informative step first
# on whichever card comes, each step's results kept as it ends:
#  1. `qk int8` on the s8 wgmma-ws kernel, ping-pong and FlashAttention-3 consumers: today's code
#     (s32 → f32 by an integer add and an FADD), with foldScale (PF, FF: the raw sums into the
#     max, |qscale| · sq · sk into the exp2's FFMA), and round 25's I2F build (PI2F, FI2F), beside
#     bf16 and SDPA, one process (bench/cuda/int8qk.sh; the index trimmed to those variants);
#  2. quantized decode at the true defaults (LEAN 3 for int8 / e4m3, bf16 beside, SDPA), 32K and
#     128K — on an H200, issue 10's int8 / fp8 rows there;
#  3. the neighbourhood at 32K with the round-26 default beside round 25's, if there is room.
# Prepare: npm run build; node bench/cuda/int8qk-emit.mjs, then the I2F variants of an emit at
#   0175b33 renamed `<variant>I2F` into bench/build/cuda-int8qk's index (c43's recipe) and the index
#   trimmed to bf16, int8, int8wsP, int8wsPF, int8wsPI2F, int8wsF, int8wsFF, int8wsFI2F;
#   node bench/cuda/quant-decode-emit.mjs --only default,lean3 --cases 0,2;
#   node bench/cuda/emit.mjs --engine wgmma --list bench/cuda/nbhd-r25-list.mjs --out bench/build/nbhd26, its
#   index trimmed to the default and q64_k128_s1_b2_box_va.
# carry bench/build/{cuda-int8qk,cuda-quant-decode,nbhd26}; returns $OUT/c44/.
set -uo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PATH:/usr/local/cuda/bin" PYTHONUNBUFFERED=1
T0=$(date +%s)
O="$OUT/c44"
mkdir -p "$O/quant"
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,temperature.gpu --format=csv | tee "$O/gpu.txt"
OUT="$O/int8qk" TIMEOUT=170 BUDGET=140 bash bench/cuda/int8qk.sh > "$O/int8qk.txt" 2>&1
echo "== int8qk exit $? at $(($(date +%s) - T0)) s"
tail -n 40 "$O/int8qk.txt"
timeout 150 python3 bench/cuda/quant-decode.py --build bench/build/cuda-quant-decode --out "$O/quant" \
  --formats bf16,int8,e4m3 --knobs default,lean3 --budget 120 > "$O/quant.log" 2>&1
echo "== quant-decode exit $? at $(($(date +%s) - T0)) s"
tail -n 16 "$O/quant.log"
LEFT=$((450 - ($(date +%s) - T0)))
if [ "$LEFT" -gt 150 ]; then
  OUT="$O/nbhd" BUILD=bench/build/nbhd26 SIZES=32768 TIME_S=$((LEFT - 90)) BUDGET=$((LEFT - 120)) \
    timeout "$LEFT" bash bench/cuda/neighbourhood.sh > "$O/nbhd.txt" 2>&1
  echo "== nbhd exit $? at $(($(date +%s) - T0)) s"
  tail -n 14 "$O/nbhd.txt"
fi
