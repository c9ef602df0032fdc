#!/bin/bash
# The WGSL coop engine's knob sweep on the GPU machine, in one command of at most ~240 s:
#   bash bench/gpu-node/run.sh bash bench/wgsl/sweep.sh        (carry .carry and dist; see pack.sh)
# Every kernel and knob set is checked against the float64 reference before it is timed (decode:
# also at the timed shape); times are steady state (steady.mjs: launches back to back). Writes
# $OUT/sweep-*.json (rewritten after every row) and $OUT/sweep.txt; each part has its own time
# limit, so a slow part costs only itself.
#   A: prefill knobs (coopLanes, tiles, coopSplitKv, coopPrefetch, coopQGlobal), causal,
#      N = 16384, H = 8, D = 128 and 64;
#   B: document and sliding-window masks on the default coop schedule and on the row engine;
#   C: coop decode knobs at Nk = 128K, H 32 / 8 (rows per workgroup 1 or 4, prefetch, splits,
#      lanes, chunk; c1 runs each knob set twice, forward then reverse order);
#   D: prefill with Dawn's robustness transform off (what its index clamping costs).
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/sweep-out}
mkdir -p "$OUT"
# Dawn rounds timestamps to 2^16 ns unless told not to (runtime/device.ts reads this).
export ATTNC_DAWN_FLAGS=${ATTNC_DAWN_FLAGS:-disable-dawn-features=timestamp_quantization}
run() { # run NAME SECONDS ARGS...
  local name=$1 secs=$2
  shift 2
  echo "== $name (limit ${secs}s): $*"
  timeout "$secs" node bench/wgsl/run.mjs --out "$OUT/sweep-$name.json" "$@" 2>&1 | grep -v '^Warning:'
  echo "== $name exit ${PIPESTATUS[0]}"
}
{
  E128=coop,coop:64x16x128:pf,coop:64x16x128:l8,coop:64x16x128:l8:pf,coop:64x16x256:l8,coop:64x16x64:l8
  E128=$E128,coop:64x16x128:l16,coop:32x32x64:l8,coop:32x32x64:l8:pf,coop:32x32x128:l8,coop:32x16x64:l8:kv2
  E128=$E128,coop:32x16x64:l8:kv2:pf,coop:32x32x32,coop:16x64x64:l16,coop:64x8x128:l8:kv2:pf
  E128=$E128,coop:64x32x128:l8:kv2:qg,coop:64x32x128:l8:qg:pf,coop:64x48x128:l8:qg,coop:64x32x256:l8:kv2:qg:pf
  run a128 60 --no-decode --only causal --dims 128 --n 16384 --reps 2 --engines "$E128"
  E64=coop,coop:64x32x128:pf,coop:64x32x128:l8,coop:64x32x128:l8:kv2,coop:64x32x128:l8:kv2:pf
  E64=$E64,coop:64x32x256:l8:kv2,coop:64x32x64:l8:kv2,coop:64x32x64:l8:kv2:pf,coop:64x32x128:l16:kv2
  E64=$E64,coop:32x64x128:l8,coop:32x32x64:l8:kv2:pf,coop:64x64x128:l8:qg,coop:64x64x128:l8:qg:pf
  E64=$E64,coop:128x32x256:l8:kv2:qg
  run a64 40 --no-decode --only causal --dims 64 --n 16384 --reps 2 --engines "$E64"
  run b 30 --no-decode --only document,sliding_window --dims 64,128 --n 16384 --reps 2 --engines coop,row
  run c1 45 --no-prefill --engines coop --decode-nk 131072 --decode-h 32,8 --reps 2 --decode-repeat 2 \
    --decode-threads 128 --decode-lanes 8 --decode-chunk 1 --decode-split 64,128,256 --decode-rows 1,4 \
    --decode-prefetch 0,1
  run c2 30 --no-prefill --engines coop --decode-nk 131072 --decode-h 32,8 --reps 2 \
    --decode-threads 128 --decode-lanes 4,16 --decode-chunk 1,2 --decode-split 128 --decode-rows 4 \
    --decode-prefetch 0,1
  # D: what Dawn's robustness transform costs (index clamping): diagnostics only,
  # an engine in a browser cannot turn them off.
  ATTNC_DAWN_FLAGS="enable-dawn-features=allow_unsafe_apis,disable_robustness disable-dawn-features=timestamp_quantization" \
    run d 25 --no-decode --only causal --dims 128 --n 16384 --reps 2 --engines coop,coop:64x16x128:l8:pf
} 2>&1 | tee "$OUT/sweep.txt"
