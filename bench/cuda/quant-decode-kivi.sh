#!/bin/bash
# One device call (≤ 150 s with nvcc) for KIVI int4 / int2 decode on the tensor-core kernel (issue
# 10 item 6): quant-decode.py over bf16, int4 and int2 at their defaults (int4 / int2: the
# tensor-core kernel, decode-mma-kivi.ts), under kivi_simt (-DATTNC_DEC_MMA_KIVI=0: the SIMT kernel
# it replaced), and kivi_mma_s3 / kivi_mma_w4s4 (its stages / warps),
# side by side in one process. Every build is checked against the float64 reference before it is
# timed (B 4, H 32 / Hkv 8, D 128, one query, Nk 32K and 128K; SDPA bf16 in the same process).
# Emit here:
#   npx tsc -p tsconfig.json && node bench/cuda/quant-decode-emit.mjs --only "$(bash bench/cuda/quant-decode-kivi.sh --knobs)" --cases 0,2 --formats bf16,int4,int2
# then on the GPU machine, from a directory holding bench/, python/ and bench/build/cuda-quant-decode:
#   OUT=$OUT bash bench/cuda/quant-decode-kivi.sh
# Results: $OUT/quant-decode.json, quant-decode.log (the table and the best knob per format), gpu.txt.
KNOBS=default,kivi_simt,kivi_mma_s3,kivi_mma_w4s4
if [ "$1" = "--knobs" ]; then echo "$KNOBS"; exit 0; fi
set -o pipefail
export PYTHONUNBUFFERED=1
OUT=${OUT:-bench/build/quant-decode-out}
BUILD=${BUILD:-bench/build/cuda-quant-decode}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm --format=csv,noheader | tee "$OUT/gpu.txt"
timeout "${LIMIT_S:-145}" python3 bench/cuda/quant-decode.py --build "$BUILD" --out "$OUT" \
  --formats bf16,int4,int2 --knobs "$KNOBS" --budget "${BUDGET:-120}" "$@" 2>&1 | tee "$OUT/quant-decode.log"
