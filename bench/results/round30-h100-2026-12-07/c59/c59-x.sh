# Device call 59 (round 30): P shuffled (:ps) with the co_p fallback rendered with constant column
# indices (fb*), then (nofb*) with ATTNC_X_NOFB=1, an uncommitted experiment switch that rendered only
# the shuffle path (no run-time fallback): how much the fallback branch costs.
#!/bin/bash
set -uo pipefail
cd "$(dirname "$0")/../.."
T0=$(date +%s)
O="$OUT/c59"
mkdir -p "$O"
export ATTNC_DAWN_FLAGS=${ATTNC_DAWN_FLAGS:-disable-dawn-features=timestamp_quantization}
X=qd:fma:ur:sp
one() { # one TAG D ENGINES
  timeout 80 bash bench/gpu-node/run.sh node bench/wgsl/run.mjs --out "$O/$1.json" --no-decode \
    --only causal,full --dims "$2" --n 16384 --reps 3 --engines "$3" > "$O/$1.txt" 2>&1
  echo "== $1 exit $? at $(($(date +%s) - T0)) s"
  grep -v '^Warning:' "$O/$1.txt" | grep -v '^adapter' | sed 's/ready.*//' | tail -n 40
}
one fb128 128 coop,coop:128x32x256:l8:qg:pf:$X:ps,coop:128x64x256:l8:qg:pf:$X:ps
one fb64 64 coop:256x32x256:l8:qg:pf:$X:ps,coop:128x64x256:l8:qg:pf:$X:ps
export ATTNC_X_NOFB=1
one nofb128 128 coop:128x32x256:l8:qg:pf:$X:ps,coop:128x64x256:l8:qg:pf:$X:ps,coop:128x64x256:l8:qg:$X:ps
one nofb64 64 coop:256x32x256:l8:qg:pf:$X:ps,coop:128x64x256:l8:qg:pf:$X:ps,coop:256x64x256:l8:qg:pf:$X:ps,coop
