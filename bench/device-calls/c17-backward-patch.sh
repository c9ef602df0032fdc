#!/bin/bash
# Device call 17 (round 18, ≤ 300 s of run time): neighbourhood's backward with bwd_dkdv in 2-D
# patch order (engine ws_patch: Schedule.patchTweaks 'backward', opt-in until this call) beside the
# default (ws: plain key tiles, ping-pong dQ) and ws_pp, at 4K and 16K, gradients checked against
# FlexAttention's first (bench/cuda/backward.py).
# Prepare: node bench/cuda/backward-emit.mjs --out bench/build/cuda-backward-patch --only neighbourhood \
#   --engines ws,ws_pp,ws_patch
# carry bench/build/cuda-backward-patch; everything returns as $OUT/c17.tgz. If ws_patch agrees and
# is faster, make the patch order the default (drop the opt-in in backward-patch.ts backwardPatchAsked).
set -uo pipefail
cd "$(dirname "$0")/../.."
O=/tmp/o17
mkdir -p $O
T0=$(date +%s)
export PATH="$PATH:/usr/local/cuda/bin" PYTHONUNBUFFERED=1
OUT=$O/bwd BUILD=bench/build/cuda-backward-patch ONLY=neighbourhood ENGINES=ws,ws_pp,ws_patch \
  BUDGET=150 TIMEOUT=170 bash bench/cuda/backward.sh 4096,16384 > $O/bwd.log 2>&1
echo "bwd exit $? at $(($(date +%s) - T0)) s"
grep -E '^\|' $O/bwd.log | tail -n 8
tar czf "$OUT/c17.tgz" -C $O .
