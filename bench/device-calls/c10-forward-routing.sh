#!/bin/bash
# Device call 10 (round 17, ≤ 420 s of run time): the standing figures last timed in round 3 or
# never since the issue was filed. Pooled-query block routing (issue 16's last target: attention
# alone ≥ 1.2× Flex's at 16K / 32K; BiFormer blocks(128) and blocks(64), checked first), and the
# forward table's document, sinks + window, sliding window (default ws beside plain wgmma), full
# and causal rows at 16K / 32K beside Flex and SDPA (issue 13; checked first). Prepare here:
#   npm run build && node bench/cuda/routing-emit.mjs
#   node bench/cuda/emit.mjs --engine wgmma --list bench/cuda/tune-list.mjs --out bench/build/cuda-table
# carry bench/build/cuda-routing and bench/build/cuda-table; everything returns as $OUT/c10.tgz.
set -uo pipefail
cd "$(dirname "$0")/../.."
O=/tmp/o10
mkdir -p $O
T0=$(date +%s)
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,temperature.gpu --format=csv > $O/gpu.txt
export PATH="$PATH:/usr/local/cuda/bin" PYTHONUNBUFFERED=1
timeout 200 python3 bench/cuda/routing.py --build bench/build/cuda-routing --out $O/routing \
  --only biformer128_wgmma_bf16_d128,biformer_wgmma_bf16_d128,biformer_wgmma_bf16_d128_q64k64 \
  --sizes 16384,32768 > $O/routing.log 2>&1
echo "routing exit $? at $(($(date +%s) - T0)) s"
grep -v '^OK' $O/routing.log | tail -n 12
ONLY=std_document__default,std_sink_window__default,std_sliding_window__default,std_sliding_window__wg_q128_k128,std_full__default,std_causal__default
OUT=$O/table ONLY=$ONLY CHECK_S=100 TABLE_S=150 bash bench/cuda/run-table.sh 16384,32768 > $O/table.log 2>&1
echo "table exit $? at $(($(date +%s) - T0)) s"
tail -n 30 $O/table.log
tar czf "$OUT/c10.tgz" -C $O .
