#!/bin/bash
# Device call 15 (round 17, ≤ 200 s of run time): document's default (walk + FA3 + tweaks) beside
# three stages and 112- / 96-key tiles (bench/cuda/doc-list.mjs), checked and sanitized first, at
# 16K and 32K beside FlexAttention. Prepare as call 12; carry bench/build/cuda-doc.
set -uo pipefail
cd "$(dirname "$0")/../.."
O=/tmp/o15
mkdir -p $O
export PATH="$PATH:/usr/local/cuda/bin" PYTHONUNBUFFERED=1
ONLY=std_document__walk_fa3_tw BUILD=bench/build/cuda-doc OUT=$O/table CHECK_S=70 TABLE_S=90 \
  bash bench/cuda/run-table.sh 16384,32768 > $O/table.log 2>&1
tail -n 12 $O/table.log
tar czf "$OUT/c15.tgz" -C $O .
