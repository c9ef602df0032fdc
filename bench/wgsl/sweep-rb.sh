#!/bin/bash
# The register-blocked coop tile (schedule.coopRegBlock, engine spec ':rb') next to today's coop
# default and best knob sets, on the GPU machine in one command of at most ~200 s:
#   bash bench/gpu-node/run.sh bash bench/wgsl/sweep-rb.sh        (carry .carry and dist; see pack.sh)
# Every schedule is checked against the float64 reference before it is timed (run.mjs); times are
# steady state (steady.mjs). causal and full, N = 16384, H = 8, f32; the register-tiled matmul of
# the same process is the ceiling. Writes $OUT/sweep-rb-*.json (rewritten after every row) and
# $OUT/sweep-rb.txt, then checks an emitted module with both engines (engines.mjs). ':rb:qg' stages Qᵀ per tile in 32-dim chunks with Kᵀ (frees workgroup memory
# for larger tiles at D = 128) instead of once.
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
  timeout "$secs" node bench/wgsl/run.mjs --out "$OUT/sweep-rb-$name.json" "$@" 2>&1 | grep -v '^Warning:'
  echo "== $name exit ${PIPESTATUS[0]}"
}
{
  # D = 128: today's default and best, then rb with Qᵀ staged once (tiles limited by its 32 KiB at
  # blockQ 64), then rb with Qᵀ by chunks.
  E128=coop,coop:64x32x256:l8:kv2:qg:pf,coop:64x16x128:l8:pf
  E128=$E128,coop:64x16x64:rb,coop:64x16x32:rb,coop:32x32x64:l8:rb,coop:32x32x32:l8:rb,coop:32x32x32:rb
  E128=$E128,coop:16x64x32:l8:rb,coop:16x64x64:l16:rb
  E128=$E128,coop:64x32x64:rb:qg,coop:64x32x64:l8:rb:qg,coop:64x32x128:l8:rb:qg,coop:64x32x64:l8:rb:qg:kv2
  E128=$E128,coop:64x48x64:rb:qg,coop:96x32x96:l8:rb:qg
  run r128 110 --no-decode --only causal,full --dims 128 --n 16384 --reps 2 --engines "$E128"
  E64=coop,coop:64x64x128:l8:qg:pf,coop:128x32x256:l8:kv2:qg
  E64=$E64,coop:64x32x64:rb,coop:64x32x32:rb,coop:64x32x64:l8:rb,coop:64x32x32:l8:rb,coop:64x48x64:rb
  E64=$E64,coop:64x32x64:rb:kv2,coop:128x32x128:l8:rb:qg,coop:64x64x64:l8:rb:qg,coop:64x64x128:l8:rb:qg
  E64=$E64,coop:64x64x128:l16:rb:qg
  run r64 90 --no-decode --only causal,full --dims 64 --n 16384 --reps 2 --engines "$E64"
  # An emitted module with both engines: engineFor() should take coop on this GPU; both agree.
  echo "== engines (limit 30s)"
  timeout 30 node bench/wgsl/engines.mjs --out "$OUT/sweep-rb-engines.json" 2>&1 | grep -v '^Warning:'
  echo "== engines exit ${PIPESTATUS[0]}"
} 2>&1 | tee "$OUT/sweep-rb.txt"
