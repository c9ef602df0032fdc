#!/bin/bash
# Device call 58 (round 30, ≤ 240 s): P kept in registers and shuffled between a row's lanes in P·V
# (coopPShuffle, ':ps'), which frees the P tile and lets 64-key tiles fit beside 128 (D 128) or 256
# (D 64) query rows; against today's defaults (timed first and last), causal and full, N = 16384,
# H = 8, f32, one process per head dim, every kernel checked against the float64 reference first.
# Prepare: npm run build && bash bench/gpu-node/pack.sh; carry .carry and dist; returns $OUT/c58/.
set -uo pipefail
cd "$(dirname "$0")/../.."
T0=$(date +%s)
O="$OUT/c58"
mkdir -p "$O"
export ATTNC_DAWN_FLAGS=${ATTNC_DAWN_FLAGS:-disable-dawn-features=timestamp_quantization}
X=qd:fma:ur:sp
one() { # one D ENGINES
  timeout 115 bash bench/gpu-node/run.sh node bench/wgsl/run.mjs --out "$O/d$1.json" --no-decode \
    --only causal,full --dims "$1" --n 16384 --reps 3 --engines "$2" > "$O/d$1.txt" 2>&1
  echo "== D=$1 exit $? at $(($(date +%s) - T0)) s"
  grep -v '^Warning:' "$O/d$1.txt" | tail -n 40
}
one 128 coop,coop:128x32x256:l8:qg:pf:$X:ps,coop:128x64x256:l8:qg:pf:$X:ps,coop:128x64x256:l8:qg:$X:ps,coop:128x64x256:l4:qg:pf:$X:ps,coop:64x64x256:l8:qg:pf:$X:ps,coop
one 64 coop,coop:256x32x256:l8:qg:pf:$X:ps,coop:256x64x256:l8:qg:pf:$X:ps,coop:256x64x256:l8:qg:$X:ps,coop:128x64x256:l8:qg:pf:$X:ps,coop:256x64x512:l8:qg:pf:$X:ps,coop
