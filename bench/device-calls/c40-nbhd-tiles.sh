#!/bin/bash
# Device call 40 (round 25, ≤ 420 s): the 2-D neighbourhood's box mask on 64-key tiles (three blocks
# an SM, or two stages) and on two stages of 128-key tiles, beside the default (timed first and again
# last) and FlexAttention at 16K and 32K, every candidate checked against the float64 reference
# first (bench/cuda/neighbourhood.sh), then memcheck / racecheck on the fastest candidate if it is
# not the default.
# Prepare: npm run build && node bench/cuda/emit.mjs --engine wgmma --list bench/cuda/nbhd-r25-list.mjs --out bench/build/nbhd25
# carry bench/build/nbhd25; returns $OUT/c40/.
set -uo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PATH:/usr/local/cuda/bin" PYTHONUNBUFFERED=1
T0=$(date +%s)
O="$OUT/${TAG:-c40}"
OUT="$O" BUILD=bench/build/nbhd25 SIZES=${SIZES:-16384,32768} TIME_S=${TIME_S:-260} BUDGET=200 bash bench/cuda/neighbourhood.sh
best=$(python3 - "$O/nbhd.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
v = [x for x in r['sizes'][0]['variants'] if 'ms' in x and x.get('ok', True)]
b = min(v, key=lambda x: x['ms']) if v else None
print(b['variant'] if b and not b['variant'].endswith('__default_bf16_d128') else '')
PY
)
echo "fastest at 16K: ${best:-the default}"
if [ -n "$best" ]; then
  OUT="$O" BUILD=bench/build/nbhd25 SAN=$best bash bench/cuda/neighbourhood.sh
fi
echo "total: $(($(date +%s) - T0)) s"
