#!/bin/bash
# Device call 48 (round 29, ≤ 180 s): the WGSL coop engine's new defaults (query tiles last first;
# at D ≤ 64 256x32 tiles of 256 invocations) against round 7/8's (the same tiles without ':qd', and
# 256x32/512 at D 64) on all four patterns, N = 16384, H = 8, f32, one process per head dim, old and
# new each timed twice (first and last), with the new default plus explicit fma chains (':fma',
# schedule.coopFma), constant loop bounds (':ur', schedule.coopUnroll) and both between; every
# kernel checked against the float64 reference first.
# Prepare: npm run build && bash bench/gpu-node/pack.sh; carry .carry and dist; returns $OUT/c48/.
set -uo pipefail
cd "$(dirname "$0")/../.."
T0=$(date +%s)
O="$OUT/c48"
mkdir -p "$O"
export ATTNC_DAWN_FLAGS=${ATTNC_DAWN_FLAGS:-disable-dawn-features=timestamp_quantization}
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm --format=csv | tee "$O/gpu.txt"
N128=coop:128x32x256:l8:qg:pf:qd N64=coop:256x32x256:l8:qg:pf:qd # the new defaults, spelt out
one() { # one D ENGINES
  timeout 100 bash bench/gpu-node/run.sh node bench/wgsl/run.mjs --out "$O/d$1.json" --no-decode \
    --only causal,full,sliding_window,document --dims "$1" --n 16384 --reps 3 --engines "$2" > "$O/d$1.txt" 2>&1
  echo "== D=$1 exit $? at $(($(date +%s) - T0)) s"
  grep -v '^Warning:' "$O/d$1.txt" | tail -n 40
}
one 128 coop,coop:128x32x256:l8:qg:pf,$N128:fma,$N128:ur,$N128:fma:ur,coop,coop:128x32x256:l8:qg:pf
one 64 coop,coop:256x32x512:l8:qg:pf,$N64:fma,$N64:ur,$N64:fma:ur,coop:256x32x256:l4:qg:pf:qd,coop,coop:256x32x512:l8:qg:pf
