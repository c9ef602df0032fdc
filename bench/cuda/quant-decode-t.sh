#!/bin/bash
# One device call (≤ 150 s with nvcc) for the transposed tensor-core decode step of int8 / fp8
# caches (ATTNC_DEC_MMA_T, src/codegen/cuda/decode-mma-t.ts; issue 10): keys as the MMA's M, the
# GQA group as N, 8 packed rows a block. quant-decode.py over int8 and e4m3 (f16 scale per token)
# under default (here LEAN 0: the artifacts carry the lean code as a knob, so this is round 9's
# pre-lean kernel), lean3 (the production default of these caches), t (transposed, quantized tile defaults:
# 8 warps x 32 keys x 2 stages, one block an SM), t_k16b2 (16 keys a warp, MIN_BLOCKS 2: two blocks
# an SM), t_w4b2 (4 warps x 32 keys, MIN_BLOCKS 2), and for int8 tb / tb_k16b2 (ATTNC_DEC_MMA_T 2:
# t / t_k16b2 with the K codes biased by 1152, no HSUB2 a pair), side by side in one process. Every build is
# checked against the float64 reference first (cases 0: GQA 4 x Nq 1; 2: GQA 3 x Nq 3, two row
# groups of 8), then timed beside SDPA bf16 (B 4, H 32 / Hkv 8, D 128, one query, Nk 32K, 128K).
# Then, if at least 45 s are left, ncu (full set) of one launch each of int8 lean3 and int8 t at 128K
# (the first pass's libraries, --reuse). Emit here (6 MiB):
#   npx tsc -p tsconfig.json && node bench/cuda/quant-decode-emit.mjs --only "$(bash bench/cuda/quant-decode-t.sh --knobs)" --formats int8,e4m3 --cases 0,2 --dir cuda-quant-decode-t
# then on the GPU machine, from a directory holding bench/, python/ and bench/build/cuda-quant-decode-t:
#   OUT=$OUT bash bench/cuda/quant-decode-t.sh
# Results: $OUT/quant-decode.json, quant-decode.log (table, best knob per format), gpu.txt; with the
# profile: $OUT/ncu/t.ncu-rep, t-details.txt, t-sass.csv, log.
KNOBS=default,lean3,t,t_k16b2,t_w4b2,tb,tb_k16b2
if [ "$1" = "--knobs" ]; then echo "$KNOBS"; exit 0; fi
set -o pipefail
export PYTHONUNBUFFERED=1
OUT=${OUT:-bench/build/quant-decode-t-out}
BUILD=${BUILD:-bench/build/cuda-quant-decode-t}
TOTAL=${TOTAL_S:-145}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm --format=csv,noheader | tee "$OUT/gpu.txt"
timeout "${LIMIT_S:-95}" python3 bench/cuda/quant-decode.py --build "$BUILD" --out "$OUT" \
  --formats int8,e4m3 --knobs "$KNOBS" --budget "${BUDGET:-80}" 2>&1 | tee "$OUT/quant-decode.log"
left=$((TOTAL - SECONDS))
if [ "${NCU:-1}" = 1 ] && [ "$left" -ge 45 ] && command -v ncu > /dev/null; then
  mkdir -p "$OUT/ncu"
  echo "== ncu ($left s left)"
  ATTNC_NCU='^int8 (lean3|t) Nk=131072' timeout $((left - 12)) \
    ncu --profile-from-start off --set full --import-source yes -f -o "$OUT/ncu/t" \
    python3 bench/cuda/quant-decode.py --build "$BUILD" --out "$OUT/ncu" --formats int8 \
    --knobs lean3,t --reuse --budget 60 > "$OUT/ncu/log" 2>&1
  echo "ncu rc $?"
  grep -E "ncu: profiled" "$OUT/ncu/log"
  if [ -f "$OUT/ncu/t.ncu-rep" ]; then
    timeout 8 ncu -i "$OUT/ncu/t.ncu-rep" --page details > "$OUT/ncu/t-details.txt" 2>&1
    timeout $((TOTAL - SECONDS > 2 ? TOTAL - SECONDS - 1 : 1)) ncu -i "$OUT/ncu/t.ncu-rep" --page source --csv \
      --print-source sass > "$OUT/ncu/t-sass.csv" 2>&1
    grep -E "^  [a-zA-Z_]+.*\(|Duration|DRAM Throughput|Registers Per|Issue Slots Busy|No Eligible|Executed Instructions  " \
      "$OUT/ncu/t-details.txt" | head -30
  fi
fi
echo "total ${SECONDS} s"
