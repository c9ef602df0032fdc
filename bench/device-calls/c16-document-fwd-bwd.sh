#!/bin/bash
# Device call 16 (round 18, ≤ 480 s of run time): document at 32K on the H200 — the forward's
# default beside 112-key and 96-key/3-stage tiles and 64-key tiles (bench/cuda/doc-list.mjs; call 15
# gave the check too little time to time them), checked and sanitized first; then document's
# backward under every tune variant at 16K beside FlexAttention (gradients checked first).
# Prepare: npm run build && node bench/cuda/emit.mjs --engine wgmma --list bench/cuda/doc-list.mjs --out bench/build/cuda-doc
#   node bench/cuda/backward-emit.mjs --out bench/build/cuda-backward-doc --only document \
#     --engines ws,ws_pp,ws_dqb,ws_nosplit,ws_all8,ws_n128,ws_exp
# carry bench/build/cuda-doc and bench/build/cuda-backward-doc; everything returns as $OUT/c16.tgz.
set -uo pipefail
cd "$(dirname "$0")/../.."
O=/tmp/o16
mkdir -p $O
T0=$(date +%s)
export PATH="$PATH:/usr/local/cuda/bin" PYTHONUNBUFFERED=1
ONLY=std_document__default,std_document__walk_fa3_tw_k BUILD=bench/build/cuda-doc OUT=$O/table \
  CHECK_S=150 TABLE_S=170 bash bench/cuda/run-table.sh 16384,32768 > $O/table.log 2>&1
echo "table exit $? at $(($(date +%s) - T0)) s"
tail -n 16 $O/table.log
OUT=$O/bwd BUILD=bench/build/cuda-backward-doc ONLY=document ENGINES=ws,ws_pp,ws_dqb,ws_nosplit,ws_all8,ws_n128,ws_exp \
  BUDGET=150 TIMEOUT=170 bash bench/cuda/backward.sh 16384 > $O/bwd.log 2>&1
echo "bwd exit $? at $(($(date +%s) - T0)) s"
grep -E '^\|' $O/bwd.log | tail -n 6
tar czf "$OUT/c16.tgz" -C $O .
