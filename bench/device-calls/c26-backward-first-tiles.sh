#!/bin/bash
# Device call 26 (round 21, ≤ 240 s): every head's first key tile first (tune knob firstTilesFirst,
# engine ws_ft) beside the default (ws) and key-tile-major order (ws_km; call 25: sinks + window
# 29% faster, full 17% slower), 16K, bf16 B 2 H 16 D 128, gradients checked first.
# Prepare: npm run build
#   node bench/cuda/backward-emit.mjs --out bench/build/cuda-backward-ft --only full,causal,sink,document --engines ws,ws_ft,ws_km
# carry bench/build/cuda-backward-ft; returns $OUT/c26.tgz.
set -uo pipefail
cd "$(dirname "$0")/../.."
O=/tmp/o26
mkdir -p $O
export PATH="$PATH:/usr/local/cuda/bin" PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,temperature.gpu --format=csv > $O/gpu.txt
timeout 230 python3 bench/cuda/backward.py --build bench/build/cuda-backward-ft --out $O --sizes 16384 \
  --engines ws,ws_ft,ws_km --budget 215 > $O/run.log 2>&1
echo "backward.py rc $?"
grep -E '^\| [a-z_]+ \| 16384 \| ws' $O/run.log
tar czf "$OUT/c26.tgz" -C $O gpu.txt run.log backward.json
