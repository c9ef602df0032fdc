#!/bin/bash
# Device call 13 (round 17, ≤ 330 s of run time): the dilated backward before and after its dK/dV
# kernel runs in residue-class order (the forward's layout): main before the change
# (BUILD_OLD, the default ws engine) beside the new build's ws (default), ws_pp and ws_nosplit,
# gradients checked against FlexAttention's first; 16K, bf16 B 2 H 16 D 128.
# Prepare: node bench/cuda/backward-emit.mjs --out bench/build/cuda-backward-next --engines ws (before)
#          node bench/cuda/backward-emit.mjs --out bench/build/cuda-backward-res --only dilated --engines ws,ws_pp,ws_nosplit (after)
# Carry both; everything returns as $OUT/c13.tgz.
set -uo pipefail
cd "$(dirname "$0")/../.."
O=/tmp/o13
mkdir -p $O
T0=$(date +%s)
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,temperature.gpu --format=csv > $O/gpu.txt
export PATH="$PATH:/usr/local/cuda/bin" PYTHONUNBUFFERED=1
OUT=$O/old BUILD=${BUILD_OLD:-bench/build/cuda-backward-next} ENGINES=ws BUDGET=90 TIMEOUT=110 ONLY=dilated \
  bash bench/cuda/backward.sh 16384 > $O/old.log 2>&1
echo "old done at $(($(date +%s) - T0)) s"
OUT=$O/new BUILD=bench/build/cuda-backward-res ENGINES=ws,ws_pp,ws_nosplit BUDGET=170 TIMEOUT=190 ONLY=dilated \
  bash bench/cuda/backward.sh 16384 > $O/new.log 2>&1
echo "new done at $(($(date +%s) - T0)) s"
for f in $O/old.log $O/new.log; do grep -E '^\{' $f | cut -c1-400; done
tail -n 5 $O/new.log
tar czf "$OUT/c13.tgz" -C $O .
