#!/bin/bash
# Device call 11 (round 17, ≤ 300 s of run time): block routing on the wgmma-ws engine. Builds and
# checks every routing kernel's wgmma-ws variant against the oracle (4 cases each) beside the wgmma
# ones, compute-sanitizer on the FA3-consumer BiFormer, then BiFormer's attention alone and end to end
# beside FlexAttention with the same block mask (issue 16's pooled-routing target) at 16K / 32K.
# Prepare: npm run build && node bench/cuda/routing-emit.mjs; carry bench/build/cuda-routing.
set -uo pipefail
cd "$(dirname "$0")/../.."
O=/tmp/o11
mkdir -p $O
T0=$(date +%s)
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,temperature.gpu --format=csv > $O/gpu.txt
export PATH="$PATH:/usr/local/cuda/bin" PYTHONUNBUFFERED=1
ONLY=$(python3 -c "import json; print(','.join(e['variant'] for e in json.load(open('bench/build/cuda-routing/index.json')) if 'wgmma-ws' in e['variant'] or e['variant'].startswith('biformer')))")
V=biformer128_wgmma-ws_bf16_d128_fa3 C=biformer128c_default_bf16_d128
timeout 280 python3 bench/cuda/routing.py --build bench/build/cuda-routing --out $O/routing --only "$ONLY" \
  --sanitize "$V:memcheck,$V:racecheck,$C:memcheck,$C:racecheck" --sizes 16384,32768 > $O/routing.log 2>&1
echo "routing exit $? at $(($(date +%s) - T0)) s"
grep -v '^OK' $O/routing.log | cut -c1-600 | tail -n 30
grep -c '^OK' $O/routing.log
tar czf "$OUT/c11.tgz" -C $O .
