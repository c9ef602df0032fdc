#!/bin/bash
# Device call 12 (round 17, ≤ 560 s of run time): document and sinks + window on the wgmma-ws
# consumers with the dense default's tweaks (bench/cuda/doc-list.mjs), beside today's defaults,
# FlexAttention and SDPA, at 16K and 32K; checked and sanitized first (run-table.sh).
# Prepare: npm run build && node bench/cuda/emit.mjs --engine wgmma --list bench/cuda/doc-list.mjs --out bench/build/cuda-doc
# carry bench/build/cuda-doc; everything returns as $OUT/c12.tgz.
set -uo pipefail
cd "$(dirname "$0")/../.."
O=/tmp/o12
mkdir -p $O
T0=$(date +%s)
export PATH="$PATH:/usr/local/cuda/bin" PYTHONUNBUFFERED=1
BUILD=bench/build/cuda-doc OUT=$O/table CHECK_S=170 TABLE_S=230 bash bench/cuda/run-table.sh 16384,32768 > $O/table.log 2>&1
echo "table exit $? at $(($(date +%s) - T0)) s"
tail -n 40 $O/table.log
tar czf "$OUT/c12.tgz" -C $O .
