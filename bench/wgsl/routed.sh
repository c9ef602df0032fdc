#!/bin/bash
# Routed WGSL kernels (block routing, token selection) on the row and coop engines, on the GPU
# machine, in one command of at most ~150 s:
#   bash bench/gpu-node/run.sh bash bench/wgsl/routed.sh        (carry .carry and dist; see pack.sh)
# Each run is `attnc run` (the kernel checked against the routing oracle and the float64 reference,
# then timed, best of --repeat); writes $OUT/routed-<file>-<engine>.json and prints a summary.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/routed-out}
N=${N:-2048}
mkdir -p "$OUT"
export ATTNC_DAWN_FLAGS=${ATTNC_DAWN_FLAGS:-disable-dawn-features=timestamp_quantization}
for f in biformer nsa_select tokenselect; do
  for e in row coop; do
    j="$OUT/routed-$f-$e.json"
    timeout 60 node dist/cli/attnc.js run "stdlib/$f.attn" --nq "$N" --nk "$N" --heads 8 --kv-heads 2 \
      --dim 128 --repeat 5 --wgsl-engine "$e" --json > "$j" 2> "$OUT/routed-$f-$e.err"
    echo "$f $e exit $? $(node -e 'const r=JSON.parse(require("fs").readFileSync(process.argv[1],"utf8"));console.log("agrees", r.agrees, "gpu ms", r.gpuMs.toFixed(2), "pair density", r.routing?.pairDensity)' "$j" 2>/dev/null)"
  done
done
