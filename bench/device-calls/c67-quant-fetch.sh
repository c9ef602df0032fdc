#!/bin/bash
# Device call 67 (round 32, ≤ 300 s): the quantized tensor-core decode with round 32's tile fetch
# (code rows from one pointer a thread at constant offsets; KIVI's scale windows by 16-byte copies)
# beside round 31's code (formats *_r31, emitted from commit 7d88805), all at LEAN 3 (the emitted
# default for quantized caches), outputs checked first; B 4, H 32 / Hkv 8, D 128, one query, 32K and
# 128K, SDPA bf16 in the same process. Then Nsight Compute on one launch each of the new int8 and
# int4 split kernels at 128K (instructions per warp and tile by opcode, bench/cuda/ncu-sass-summary.py).
# Prepare: npm run build; emit round 31's artifacts from a worktree of 7d88805 and today's with
#   node bench/cuda/quant-decode-emit.mjs --only lean3 --cases 2 --formats bf16,int8,e4m3,int4,int2,
#   then add the old ones to index.json as <format>_r31 (lean3's formats too; cases shared).
# Carry bench/build/cuda-quant-decode; returns $OUT/c67/ and $OUT/c67.tar.xz.
set -uo pipefail
cd "$(dirname "$0")/../.."
T0=$(date +%s)
O="$OUT/c67"
mkdir -p "$O/ncu"
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,temperature.gpu --format=csv > "$O/gpu.txt"
export PATH="$PATH:/usr/local/cuda/bin" PYTHONUNBUFFERED=1
B=bench/build/cuda-quant-decode
timeout 170 python3 bench/cuda/quant-decode.py --build $B --out "$O" --knobs lean3 --budget 150 > "$O/quant.log" 2>&1
echo "quant exit $? at $(($(date +%s) - T0)) s"
grep -E "^\| (32768|131072)" "$O/quant.log"
ATTNC_NCU='(int8|int4) lean3 Nk=131072' timeout 100 ncu --profile-from-start off --kernel-name regex:mma_split \
  --launch-count 2 --section SpeedOfLight --section Occupancy --section LaunchStats --section WarpStateStats \
  --section SchedulerStats --section SourceCounters -f -o "$O/ncu/new" \
  python3 bench/cuda/quant-decode.py --build $B --out "$O/ncu" --formats int8,int4 --knobs lean3 --reuse > "$O/ncu/run.log" 2>&1
echo "ncu exit $? at $(($(date +%s) - T0)) s"
if [ -f "$O/ncu/new.ncu-rep" ]; then
  ncu -i "$O/ncu/new.ncu-rep" --page details > "$O/ncu/details.txt" 2>&1
  ncu -i "$O/ncu/new.ncu-rep" --page source --csv --print-source sass > "$O/ncu/sass.csv" 2>&1
  python3 bench/cuda/ncu-sass-summary.py "$O/ncu/sass.csv" --per 131072 > "$O/ncu/summary.txt" 2>&1
  cat "$O/ncu/summary.txt"
  grep -E "Duration|Registers Per|Issue Slots Busy|DRAM Throughput|Eligible Warps" "$O/ncu/details.txt"
  rm -f "$O/ncu/sass.csv"
fi
tar -C "$OUT" -cJf "$OUT/c67.tar.xz" c67
echo "done at $(($(date +%s) - T0)) s"
