#!/bin/bash
# Device call 47 (round 29, ≤ 200 s): the WGSL coop engine's query tiles last first
# (schedule.coopQDescending) beside today's default, in one process per head dim: causal, full and
# sliding window 1024 at N = 16384, H = 8, f32, each kernel checked against the float64
# reference before it is timed (bench/wgsl/run.mjs), the matmul ceiling of the same process.
# Engines: 'coop' (the device's default: D 128 128x32/256, D 64 256x32/512, 8 lanes, Q from storage,
# prefetch; timed first and last) and the same tile with ':qd'; then, last first too, two register
# blocks of 8 rows an invocation (half the invocations a tile: more FMAs a workgroup-memory load).
# Prepare: npm run build && bash bench/gpu-node/pack.sh; carry .carry and dist; returns $OUT/c47/.
set -uo pipefail
cd "$(dirname "$0")/../.."
T0=$(date +%s)
O="$OUT/c47"
mkdir -p "$O"
export ATTNC_DAWN_FLAGS=${ATTNC_DAWN_FLAGS:-disable-dawn-features=timestamp_quantization}
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm --format=csv | tee "$O/gpu.txt"
one() { # one D ENGINES
  timeout 90 bash bench/gpu-node/run.sh node bench/wgsl/run.mjs --out "$O/d$1.json" --no-decode \
    --only causal,full,sliding_window --dims "$1" --n 16384 --reps 3 --engines "$2" > "$O/d$1.txt" 2>&1
  echo "== D=$1 exit $? at $(($(date +%s) - T0)) s"
  grep -v '^Warning:' "$O/d$1.txt" | tail -n 25
}
one 128 coop,coop:128x32x256:l8:qg:pf:qd,coop:128x32x128:l8:qg:pf:qd,coop
one 64 coop,coop:256x32x512:l8:qg:pf:qd,coop:256x32x256:l8:qg:pf:qd,coop:128x32x128:l8:qg:pf:qd,coop
