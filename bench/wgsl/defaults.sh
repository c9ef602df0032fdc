#!/bin/bash
# The WGSL coop engine's DEFAULT schedules on the GPU machine, in one command of at most ~80 s:
#   bash bench/gpu-node/run.sh bash bench/wgsl/defaults.sh       (carry .carry and dist; see pack.sh)
# What the schedule pass picks unasked for the device (engine spec 'coop'; schedule-rules.ts takes
# the measured best knob sets where workgroup memory and subgroups allow), each checked against the
# float64 reference before it is timed (run.mjs), steady-state times (steady.mjs):
#   p: prefill causal + full, N = 16384, H = 8, D = 64 and 128, the matmul ceiling of the same
#      process, and each pipeline's ready time (readyMs: compile() output to a runnable kernel);
#   d: the default coop decode at Nk = 128K, H 32 / Hkv 8 (GB/s of K+V);
#   e: an emitted module with both engines and the CLI's two coop tiers (engines.mjs): engineFor's
#      default, each engine against the reference, createKernel's ready time.
# Writes $OUT/defaults-p.json, $OUT/defaults-d.json, $OUT/defaults-e.json (rewritten after every row) and $OUT/defaults.txt.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/defaults-out}
mkdir -p "$OUT"
# Dawn rounds timestamps to 2^16 ns unless told not to (runtime/device.ts reads this).
export ATTNC_DAWN_FLAGS=${ATTNC_DAWN_FLAGS:-disable-dawn-features=timestamp_quantization}
run() { # run NAME SECONDS ARGS...
  local name=$1 secs=$2
  shift 2
  echo "== $name (limit ${secs}s): $*"
  timeout "$secs" node bench/wgsl/run.mjs --out "$OUT/defaults-$name.json" "$@" 2>&1 | grep -v '^Warning:'
  echo "== $name exit ${PIPESTATUS[0]}"
}
{
  run p 45 --no-decode --only causal,full --dims 64,128 --n 16384 --reps 2 --engines coop
  run d 20 --no-prefill --engines coop --decode-nk 131072 --decode-h 32,8 --reps 2
  echo "== e (limit 15s)"
  timeout 15 node bench/wgsl/engines.mjs --out "$OUT/defaults-e.json" 2>&1 | grep -v '^Warning:'
  echo "== e exit ${PIPESTATUS[0]}"
} 2>&1 | tee "$OUT/defaults.txt"
