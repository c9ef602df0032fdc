#!/bin/bash
# Device call 23 (round 21, ≤ 260 s): document's backward with the tile walk handed to the
# consumers (tune knob tileHandoff, backward-wgmma-tune.ts), each variant checked against torch
# autograd (small shapes, ragged) before timing beside FlexAttention, bf16 B 2 H 16 D 128, 4K / 16K:
#   ws           the default (round 9's knobs: document's mask counts as costly)
#   ws_ho        handoff + the cheap masks' knobs (splitMask, dqBulk, pingPong)
#   ws_ho_split  handoff + splitMask, 8-byte dQ atomics
#   ws_ho_only   handoff alone (the default's knobs)
# Prepare: npm run build
#   node bench/cuda/backward-emit.mjs --out bench/build/cuda-backward-doc --only document --engines ws,ws_ho,ws_ho_split,ws_ho_only
# carry bench/build/cuda-backward-doc; returns $OUT/c23.tgz.
set -uo pipefail
cd "$(dirname "$0")/../.."
O=/tmp/o23
mkdir -p $O
export PATH="$PATH:/usr/local/cuda/bin" PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,temperature.gpu --format=csv > $O/gpu.txt
timeout 240 python3 bench/cuda/backward.py --build bench/build/cuda-backward-doc --out $O --sizes 4096,16384 \
  --only document --engines ws,ws_ho,ws_ho_split,ws_ho_only --budget 220 > $O/run.log 2>&1
echo "backward.py rc $?"
grep -E '^\| |check|error' $O/run.log | tail -n 24
tar czf "$OUT/c23.tgz" -C $O gpu.txt run.log backward.json
