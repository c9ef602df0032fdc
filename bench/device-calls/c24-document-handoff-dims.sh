#!/bin/bash
# Device call 24 (round 21, ≤ 200 s): the new default (ws: the tile walk handed to the consumers,
# so document takes the ping-pong kernel) beside the old one for document (ws_all8 = round 9's
# knobs) and the hand-over with splitMask alone, at D = 64 (never timed: the pingPong kernel spills
# 104 bytes there) and D = 128 (call 23 ran on an H100); gradients against torch autograd first.
# Prepare: npm run build
#   node bench/cuda/backward-emit.mjs --out bench/build/cuda-backward-d64 --dim 64 --only document --engines ws,ws_all8,ws_ho_split
#   node bench/cuda/backward-emit.mjs --out bench/build/cuda-backward-d128 --only document --engines ws,ws_all8,ws_ho_split
# carry both; returns $OUT/c24.tgz.
set -uo pipefail
cd "$(dirname "$0")/../.."
O=/tmp/o24
mkdir -p $O/d64 $O/d128
export PATH="$PATH:/usr/local/cuda/bin" PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,temperature.gpu --format=csv > $O/gpu.txt
for d in 64 128; do
  timeout 95 python3 bench/cuda/backward.py --build bench/build/cuda-backward-d$d --out $O/d$d --dim $d \
    --sizes 4096,16384 --only document --engines ws,ws_all8,ws_ho_split --budget 85 > $O/d$d/run.log 2>&1
  echo "D $d rc $?"
  grep -E '^\| document \| [0-9]+ \| ws' $O/d$d/run.log
done
tar czf "$OUT/c24.tgz" -C $O gpu.txt d64 d128
