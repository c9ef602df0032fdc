#!/bin/bash
# Device call 14 (round 17, ≤ 320 s of run time; 89 s on the H200): the backward of all ten bench
# patterns at 16K as main emits it (the default ws engine), gradients checked against
# FlexAttention's first, beside Flex and SDPA. Prepare: node bench/cuda/backward-emit.mjs --out
# bench/build/cuda-backward-next --engines ws; carry it; everything returns as $OUT/c14.tgz.
set -uo pipefail
cd "$(dirname "$0")/../.."
O=/tmp/o14
mkdir -p $O
export PATH="$PATH:/usr/local/cuda/bin" PYTHONUNBUFFERED=1
OUT=$O/bwd BUILD=bench/build/cuda-backward-next ENGINES=ws BUDGET=280 TIMEOUT=300 \
  bash bench/cuda/backward.sh 16384 > $O/bwd.log 2>&1
grep -E '^\|' $O/bwd.log | tail -n 14
tar czf "$OUT/c14.tgz" -C $O .
