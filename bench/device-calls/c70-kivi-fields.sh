#!/bin/bash
# Device call 70 (round 33, ≤ 400 s): the quantized tensor-core decode with round 33's conversions
# (KIVI codes masked in place and turned into f16 by one hfma2, a shift of 8 shared by a word's
# upper fields; V's byte_perm taking the lane's bytes itself; padding rows' A registers 0 under a
# one-half lean loop) beside round 32's code (formats *_r32, emitted from 8b36327), all at LEAN 3,
# outputs checked first; B 4, H 32 / Hkv 8, D 128, one query, 32K and 128K, SDPA bf16 in the same
# process. Then the paged decode (call 66's table: bf16 / int8 pages of 16 / 64 / 256 against the
# contiguous kernel) on this card, and Nsight Compute on the new int4 split kernel at 128K.
# Prepare: npm run build; node bench/cuda/quant-decode-emit.mjs --only lean3 --cases 2 --formats
#   bf16,int8,e4m3,int4,int2; the same from a worktree of 8b36327 (int8,e4m3,int4,int2), copied in
#   as <format>_r32 and added to index.json (variants and lean3's formats); node
#   bench/cuda/paged-decode-emit.mjs. Carry bench/build/cuda-quant-decode and bench/build/cuda-paged;
#   returns $OUT/c70/ and $OUT/c70.tar.xz.
set -uo pipefail
cd "$(dirname "$0")/../.."
T0=$(date +%s)
O="$OUT/c70"
mkdir -p "$O/ncu"
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,temperature.gpu --format=csv > "$O/gpu.txt"
cat "$O/gpu.txt"
export PATH="$PATH:/usr/local/cuda/bin" PYTHONUNBUFFERED=1
B=bench/build/cuda-quant-decode
timeout 200 python3 bench/cuda/quant-decode.py --build $B --out "$O" --knobs lean3 --budget 170 > "$O/quant.log" 2>&1
echo "quant exit $? at $(($(date +%s) - T0)) s"
grep -E "^\| (32768|131072)|FAIL|fail" "$O/quant.log" | head -40
timeout 120 python3 bench/cuda/paged-decode.py --build bench/build/cuda-paged --out "$O" > "$O/paged.log" 2>&1
echo "paged exit $? at $(($(date +%s) - T0)) s"
grep "^|" "$O/paged.log" | grep -v "^| ---"
ATTNC_NCU='int4 lean3 Nk=131072' timeout 90 ncu --profile-from-start off --kernel-name regex:mma_split \
  --launch-count 1 --section SpeedOfLight --section Occupancy --section LaunchStats --section WarpStateStats \
  --section SchedulerStats --section SourceCounters -f -o "$O/ncu/new" \
  python3 bench/cuda/quant-decode.py --build $B --out "$O/ncu" --formats int4 --knobs lean3 --reuse > "$O/ncu/run.log" 2>&1
echo "ncu exit $? at $(($(date +%s) - T0)) s"
if [ -f "$O/ncu/new.ncu-rep" ]; then
  ncu -i "$O/ncu/new.ncu-rep" --page details > "$O/ncu/details.txt" 2>&1
  ncu -i "$O/ncu/new.ncu-rep" --page source --csv --print-source sass > "$O/ncu/sass.csv" 2>&1
  python3 bench/cuda/ncu-sass-summary.py "$O/ncu/sass.csv" --per 131072 > "$O/ncu-sass-summary.txt" 2>&1
  head -30 "$O/ncu-sass-summary.txt"
  grep -E "Registers Per|Issued Warp|Duration" "$O/ncu/details.txt"
  rm -f "$O/ncu/sass.csv"
fi
tar -C "$OUT" -cJf "$OUT/c70.tar.xz" c70
echo "done at $(($(date +%s) - T0)) s"
