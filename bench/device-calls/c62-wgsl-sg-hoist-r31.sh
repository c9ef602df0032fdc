#!/bin/bash
# Device call 62 (round 31, ≤ 240 s): the run-time subgroup check hoisted out of the tile loop
# (coopSgHoist, ':sh'; round 30's experiment without the check ran D 64 2.5% faster) beside
# today's defaults, then round 30's defaults unasked (call 61's content: bench/wgsl/defaults.sh,
# sliding window and document a process per kernel). f32, B 1, H 8, N = 16384, every kernel
# checked against the float64 reference first; causal and full a process per head dim, the
# default first and last. D 128 also tries four lanes a row (no check at all) and 256-row tiles of
# 512 invocations with P in registers. Prepare: npm run build && bash bench/gpu-node/pack.sh;
# carry .carry and dist; returns $OUT/c62/ (≤ 8 files: the rest in one tarball).
set -uo pipefail
cd "$(dirname "$0")/../.."
T0=$(date +%s)
O="$OUT/c62"
R=/tmp/c62
mkdir -p "$O" "$R"
export ATTNC_DAWN_FLAGS=${ATTNC_DAWN_FLAGS:-disable-dawn-features=timestamp_quantization}
X=qg:pf:qd:fma:ur:sp
one() { # one TAG D PATTERNS ENGINES
  timeout 90 bash bench/gpu-node/run.sh node bench/wgsl/run.mjs --out "$R/$1.json" --no-decode \
    --only "$3" --dims "$2" --n 16384 --reps 3 --engines "$4" > "$R/$1.txt" 2>&1
  echo "== $1 exit $? at $(($(date +%s) - T0)) s"
  grep -v '^Warning:' "$R/$1.txt" | grep -v '^adapter' | tail -n 20
}
D128=coop:128x32x256:l8:$X
D64=coop:256x32x256:l8:$X
one d64 64 causal,full coop,$D64:ps:sh,$D64:hi:ps:sh,coop
one d128 128 causal,full coop,$D128:sh,$D128:hi:sh,coop:128x32x256:l4:$X,coop:256x32x512:l8:$X:ps,coop
for p in sliding_window document; do
  one ${p}64 64 $p coop
  one ${p}64sh 64 $p $D64:hi:ps:sh
  one ${p}128 128 $p coop
  one ${p}128sh 128 $p $D128:hi:sh
done
OUT="$R" timeout 100 bash bench/gpu-node/run.sh bash bench/wgsl/defaults.sh > /dev/null 2>&1
echo "== defaults exit $? at $(($(date +%s) - T0)) s"
grep -v '^Warning:' "$R/defaults.txt" | tail -n 30
cp "$R"/d64.* "$R"/d128.* "$R"/defaults.txt "$R"/defaults-p.json "$O"/ 2>/dev/null
tar -C "$R" -cJf "$O/rest.tar.xz" .
