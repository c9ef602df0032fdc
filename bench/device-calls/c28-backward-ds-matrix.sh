#!/bin/bash
# Device call 28 (round 22, ≤ 480 s): dS stored by stmatrix.trans (the dsMatrix knob, engine ws_dsm;
# the default `ws` since) beside round 21's default (ws_ft: the element stores), every bench pattern
# at 16K, bf16 B 2 H 16 D 128; each kernel checked against torch autograd first (atomic and
# deterministic), then timed beside Flex and SDPA. Round 22 ran it with ENGINES=ws,ws_dsm before the
# default changed; ENGINES=ws,ws_ft times them in the other order (the second is up to 10% slower).
# Prepare: npm run build; node bench/cuda/backward-emit.mjs --out bench/build/cuda-backward-dsm --engines ws_ft,ws
# carry bench/build/cuda-backward-dsm; returns $OUT/c28.tgz.
set -uo pipefail
cd "$(dirname "$0")/../.."
O=/tmp/o28
mkdir -p $O
export PATH="$PATH:/usr/local/cuda/bin" PYTHONUNBUFFERED=1
OUT=$O/bwd BUILD=bench/build/cuda-backward-dsm ENGINES=${ENGINES:-ws_ft,ws} BUDGET=${BUDGET:-420} TIMEOUT=${TIMEOUT:-450} \
  ONLY=${ONLY:-} bash bench/cuda/backward.sh 16384 > $O/bwd.log 2>&1
grep -E '^\||False' $O/bwd.log | tail -n 40
tar czf "$OUT/c28.tgz" -C $O .
