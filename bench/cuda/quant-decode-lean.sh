#!/bin/bash
# One device call (≤ 150 s with nvcc) for the lean per-step code of the tensor-core decode kernel
# (ATTNC_DEC_MMA_LEAN, src/codegen/cuda/decode-mma-lean.ts; issue 10 item 6, issue 13 item 6):
# quant-decode.py over bf16, int8, e4m3, int4 and int2 (KIVI) at their defaults and under lean1
# (rescale O only when a row max rose), lean2 (one row half: rows 8..15 are padding at GQA 4) and
# lean3 (both), side by side in one process. Every build is checked against the float64 reference
# before it is timed (B 4, H 32 / Hkv 8, D 128, one query, Nk 32K and 128K; SDPA bf16 in the same
# process). Then, if at least 45 s are left, a second pass under Nsight Compute (the libraries of
# the first, --reuse) profiles one launch each of int8 default and int8 lean3 at 128K (full set).
# Emit here (11 MiB):
#   npx tsc -p tsconfig.json && node bench/cuda/quant-decode-emit.mjs --only "$(bash bench/cuda/quant-decode-lean.sh --knobs)" --cases 0,2
# then on the GPU machine, from a directory holding bench/, python/ and bench/build/cuda-quant-decode:
#   OUT=$OUT bash bench/cuda/quant-decode-lean.sh
# Results: $OUT/quant-decode.json, quant-decode.log (the table and the best knob per format),
# gpu.txt; with the profile: $OUT/ncu/lean.ncu-rep, lean-details.txt, lean-sass.csv, log.
KNOBS=default,lean1,lean2,lean3
if [ "$1" = "--knobs" ]; then echo "$KNOBS"; exit 0; fi
set -o pipefail
export PYTHONUNBUFFERED=1
OUT=${OUT:-bench/build/quant-decode-out}
BUILD=${BUILD:-bench/build/cuda-quant-decode}
TOTAL=${TOTAL_S:-145}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm --format=csv,noheader | tee "$OUT/gpu.txt"
timeout "${LIMIT_S:-110}" python3 bench/cuda/quant-decode.py --build "$BUILD" --out "$OUT" \
  --formats bf16,int8,e4m3,int4,int2 --knobs "$KNOBS" --budget "${BUDGET:-95}" 2>&1 | tee "$OUT/quant-decode.log"
left=$((TOTAL - SECONDS))
if [ "${NCU:-1}" = 1 ] && [ "$left" -ge 45 ] && command -v ncu > /dev/null; then
  mkdir -p "$OUT/ncu"
  echo "== ncu ($left s left)"
  ATTNC_NCU='^int8 (default|lean3) Nk=131072' timeout $((left - 12)) \
    ncu --profile-from-start off --set full --import-source yes -f -o "$OUT/ncu/lean" \
    python3 bench/cuda/quant-decode.py --build "$BUILD" --out "$OUT/ncu" --formats int8 \
    --knobs default,lean3 --reuse --budget 60 > "$OUT/ncu/log" 2>&1
  echo "ncu rc $?"
  grep -E "ncu: profiled" "$OUT/ncu/log"
  if [ -f "$OUT/ncu/lean.ncu-rep" ]; then
    timeout 8 ncu -i "$OUT/ncu/lean.ncu-rep" --page details > "$OUT/ncu/lean-details.txt" 2>&1
    timeout $((TOTAL - SECONDS > 2 ? TOTAL - SECONDS - 1 : 1)) ncu -i "$OUT/ncu/lean.ncu-rep" --page source --csv \
      --print-source sass > "$OUT/ncu/lean-sass.csv" 2>&1
    grep -E "^  [a-zA-Z_]+.*\(|Duration|DRAM Throughput|Registers Per|Issue Slots Busy|No Eligible" \
      "$OUT/ncu/lean-details.txt" | head -24
  fi
fi
echo "total ${SECONDS} s"
