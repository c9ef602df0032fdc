#!/bin/bash
# Device call 25 (round 21, ≤ 240 s): the backward's dK/dV blocks in key-tile-major order (tune
# knob keyMajor, engine ws_km) beside the default (ws), 16K, bf16 B 2 H 16 D 128, gradients checked
# against torch autograd first: the masks whose first key tiles carry the most q-tiles (causal,
# sinks + window, prefix-LM), and full, sliding window and document for what it costs elsewhere.
# Prepare: npm run build
#   node bench/cuda/backward-emit.mjs --out bench/build/cuda-backward-km --only full,causal,sliding,sink,prefix,document --engines ws,ws_km
# carry bench/build/cuda-backward-km; returns $OUT/c25.tgz.
set -uo pipefail
cd "$(dirname "$0")/../.."
O=/tmp/o25
mkdir -p $O
export PATH="$PATH:/usr/local/cuda/bin" PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,temperature.gpu --format=csv > $O/gpu.txt
timeout 230 python3 bench/cuda/backward.py --build bench/build/cuda-backward-km --out $O --sizes 16384 \
  --engines ws,ws_km --budget 215 > $O/run.log 2>&1
echo "backward.py rc $?"
grep -E '^\| [a-z_]+ \| 16384 \| ws' $O/run.log
tar czf "$OUT/c25.tgz" -C $O gpu.txt run.log backward.json
