#!/bin/bash
# Device call 60 (round 30, ≤ 240 s): workgroups renumbered so that every head of a query tile is
# launched before the next tile (coopHeadsInner, ':hi') on top of today's defaults, and P shuffled
# in registers (':ps') with it at D 64; f32, B 1, H 8, N = 16384, every kernel checked against the
# float64 reference first. Causal and full: one process per head dim, the default first and last;
# sliding window and document: one process per kernel (several in one process drift, round 29).
# Prepare: npm run build && bash bench/gpu-node/pack.sh; carry .carry and dist; returns $OUT/c60/.
set -uo pipefail
cd "$(dirname "$0")/../.."
T0=$(date +%s)
O="$OUT/c60"
mkdir -p "$O"
export ATTNC_DAWN_FLAGS=${ATTNC_DAWN_FLAGS:-disable-dawn-features=timestamp_quantization}
X=qg:pf:qd:fma:ur:sp
one() { # one TAG D PATTERNS ENGINES
  timeout 80 bash bench/gpu-node/run.sh node bench/wgsl/run.mjs --out "$O/$1.json" --no-decode \
    --only "$3" --dims "$2" --n 16384 --reps 3 --engines "$4" > "$O/$1.txt" 2>&1
  echo "== $1 exit $? at $(($(date +%s) - T0)) s"
  grep -v '^Warning:' "$O/$1.txt" | grep -v '^adapter' | sed 's/ready.*//' | tail -n 20
}
D128=coop:128x32x256:l8:$X
D64=coop:256x32x256:l8:$X
one d128 128 causal,full coop,$D128:hi,coop
one d64 64 causal,full coop,$D64:hi,$D64:hi:ps,coop
for p in sliding_window document; do
  one ${p}128 128 $p coop
  one ${p}128hi 128 $p $D128:hi
  one ${p}64 64 $p coop
  one ${p}64hi 64 $p $D64:hi
done
