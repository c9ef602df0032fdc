#!/bin/bash
# Device call 36 (round 23, ≤ 500 s): the dQ block double-buffered (dqDouble, engine ws_dq2) beside
# the default (ws_dsm), full / causal / sliding / prefix at 16K, bf16 B 2 H 16 D 128; every kernel
# checked against torch autograd first, then timed beside Flex and SDPA — in both engine orders,
# two processes (the engine timed second in a process has run up to 10% slower: round 22).
# Prepare: npm run build; node bench/cuda/backward-emit.mjs --out bench/build/cuda-backward-dq2 --engines ws_dsm,ws_dq2
# carry bench/build/cuda-backward-dq2; returns $OUT/c36.tgz.
set -uo pipefail
cd "$(dirname "$0")/../.."
O=/tmp/o36
mkdir -p $O
export PATH="$PATH:/usr/local/cuda/bin" PYTHONUNBUFFERED=1
for order in ws_dsm,ws_dq2 ws_dq2,ws_dsm; do
  OUT=$O/bwd-${order/,/-} BUILD=bench/build/cuda-backward-dq2 ENGINES=$order BUDGET=${BUDGET:-200} TIMEOUT=${TIMEOUT:-220} \
    ONLY=${ONLY:-full,causal,sliding_window,prefix_lm} bash bench/cuda/backward.sh 16384 > $O/bwd-${order/,/-}.log 2>&1
  echo "== $order"
  grep -E '^\||False' $O/bwd-${order/,/-}.log | tail -n 16
done
tar czf "$OUT/c36.tgz" -C $O .
