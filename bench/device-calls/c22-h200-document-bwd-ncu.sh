#!/bin/bash
# Device call 22 (round 21, ≤ 240 s): why document's backward runs at 246 TFLOP/s where causal's
# runs at 398 (H200, round 17: 0.91× Flex). Nsight Compute (--set full) on one launch of bwd_dkdv
# for document, round 20's default (ws then) and the tile walk handed over (ws_ho, the default
# since), bf16 B 2 H 16 D 128 S 16K, beside the timings.
# Prepare: npm run build
#   node bench/cuda/backward-emit.mjs --out bench/build/cuda-backward-doc --only document --engines ws,ws_ho
# carry bench/build/cuda-backward-doc; returns $OUT/c22.tgz.
set -uo pipefail
cd "$(dirname "$0")/../.."
O=/tmp/o22
mkdir -p $O/ncu
export PATH="$PATH:/usr/local/cuda/bin" PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,temperature.gpu --format=csv > $O/gpu.txt
ATTNC_NCU='^attnc bwd (ws|ws_ho) document S=16384' timeout 220 \
  ncu --profile-from-start off --kernel-name regex:bwd_dkdv --set full --import-source yes -f -o $O/ncu/bwd \
  python3 bench/cuda/backward.py --build bench/build/cuda-backward-doc --out $O --sizes 16384 \
  --only document --engines ws,ws_ho --budget 200 > $O/run.log 2>&1
echo "ncu rc $?"
grep -E '^\| ' $O/run.log | tail -n 8
ncu --import $O/ncu/bwd.ncu-rep --page details > $O/ncu/details.txt 2>&1
ncu --import $O/ncu/bwd.ncu-rep --page source --csv --print-source sass > $O/ncu/sass.csv 2>/dev/null
grep -E 'bwd_dkdv|Duration|Compute \(SM\) Throughput|Registers Per|Achieved Occupancy|Warp Cycles Per Issued|No Eligible|One or More' $O/ncu/details.txt | head -30
tar czf "$OUT/c22.tgz" -C $O gpu.txt run.log backward.json ncu/details.txt ncu/sass.csv
