#!/bin/bash
# One device call (≤ 150 s with nvcc) for int8 / fp8 decode with more bytes in flight (issue 10
# item 6): quant-decode.py over bf16, int8, e4m3, int4 and int2 (KIVI) at their defaults, and
# int8 / e4m3 under the QSTAGES / QKEYS / WARPS variants of DECODE_KNOB_VARIANTS (decode-knobs.ts:
# q_*). Every build is checked against the float64 reference before it is timed (B 4, H 32 / Hkv 8,
# D 128, one query, Nk 32K and 128K; same process as SDPA bf16).
# Emit here (15 MiB):
#   npx tsc -p tsconfig.json && node bench/cuda/quant-decode-emit.mjs --only "$(bash bench/cuda/quant-decode-q.sh --knobs)" --cases 0,2
# then on the GPU machine, from a directory holding bench/ and bench/build/cuda-quant-decode:
#   OUT=$OUT bash bench/cuda/quant-decode-q.sh
# Results: $OUT/quant-decode.json, quant-decode.log (the table and the best knob per format), gpu.txt.
KNOBS=default,q_k16,q_s3,q_s4,q_w4s4,q_w4s6,q_w4k32s3
if [ "$1" = "--knobs" ]; then echo "$KNOBS"; exit 0; fi
set -o pipefail
export PYTHONUNBUFFERED=1
OUT=${OUT:-bench/build/quant-decode-out}
BUILD=${BUILD:-bench/build/cuda-quant-decode}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm --format=csv,noheader | tee "$OUT/gpu.txt"
timeout "${LIMIT_S:-145}" python3 bench/cuda/quant-decode.py --build "$BUILD" --out "$OUT" \
  --formats bf16,int8,e4m3,int4,int2 --knobs "$KNOBS" --budget "${BUDGET:-120}" "$@" 2>&1 | tee "$OUT/quant-decode.log"
