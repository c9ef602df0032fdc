#!/bin/bash
# Device call 52 (round 29, ≤ 120 s): tile shapes around the new WGSL coop defaults, every one
# with query tiles last first, fma chains and constant loop bounds (':qd:fma:ur'), causal and full,
# N = 16384, H = 8, f32, one process per head dim (the default timed first and last), each kernel
# checked against the float64 reference first. Prepare: npm run build && bash bench/gpu-node/pack.sh;
# carry .carry and dist; returns $OUT/c52/.
set -uo pipefail
cd "$(dirname "$0")/../.."
T0=$(date +%s)
O="$OUT/c52"
mkdir -p "$O"
export ATTNC_DAWN_FLAGS=${ATTNC_DAWN_FLAGS:-disable-dawn-features=timestamp_quantization}
X=qd:fma:ur
one() { # one D ENGINES
  timeout 100 bash bench/gpu-node/run.sh node bench/wgsl/run.mjs --out "$O/d$1.json" --no-decode \
    --only causal,full --dims "$1" --n 16384 --reps 3 --engines "$2" > "$O/d$1.txt" 2>&1
  echo "== D=$1 exit $? at $(($(date +%s) - T0)) s"
  grep -v '^Warning:' "$O/d$1.txt" | tail -n 40
}
one 128 coop,coop:128x32x128:l8:qg:pf:$X,coop:64x32x256:l8:kv2:qg:pf:$X,coop:128x32x256:l4:qg:pf:$X,coop:128x32x256:l8:qg:$X,coop:64x32x128:l8:qg:pf:$X,coop
one 64 coop,coop:256x32x512:l8:qg:pf:$X,coop:128x32x256:l8:qg:pf:$X,coop:256x32x256:l4:qg:pf:$X,coop:256x32x256:l8:qg:$X,coop:64x64x128:l8:qg:pf:$X,coop
