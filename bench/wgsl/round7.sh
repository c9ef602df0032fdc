#!/bin/bash
# Round 7 of the WGSL coop engine on the GPU machine (issue 11), one command of at most ~180 s:
#   bash bench/gpu-node/run.sh bash bench/wgsl/round7.sh        (carry .carry and dist; see pack.sh)
# Every kernel and knob set is checked against the float64 reference before it is timed.
#   d: coop decode, f32, D 128, H 32 / Hkv 8, Nk 128K and 32K: the default and the knob sets below
#      side by side (round7-decode.mjs: inputs uploaded once, warm-up, interleaved rounds, GPU
#      time per pass by timestamps; split pass alone and merge pass alone);
#   p: prefill defaults, causal + full, N 16384, H 8, D 64 and 128, and the matmul ceiling;
#   q, r: prefill knob sets at D 128 (causal + full) / D 64 (causal): coopDoubleKv (':db', K/V
#      buffers taken in turn, one barrier less per tile) beside the same tile without it, and
#      larger register blocks (4 rows per invocation).
# Writes $OUT/round7-d.json, round7-p.json, round7-q.json, round7-r.json, the whole log in
# $OUT/round7-log.txt and a short summary in $OUT/round7.txt (round7-summary.mjs).
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/round7-out}
mkdir -p "$OUT"
# Dawn rounds timestamps to 2^16 ns unless told not to (runtime/device.ts reads this).
export ATTNC_DAWN_FLAGS=${ATTNC_DAWN_FLAGS:-disable-dawn-features=timestamp_quantization}
run() { # run NAME SECONDS SCRIPT ARGS...
  local name=$1 secs=$2 script=$3
  shift 3
  echo "== $name (limit ${secs}s): $script $*"
  timeout "$secs" node "$script" --out "$OUT/round7-$name.json" "$@" 2>&1 | grep -v '^Warning:'
  echo "== $name exit ${PIPESTATUS[0]}"
}
# Decode knob sets: t threads, l lanes, c keys per lane group per step, s keys per split, pf
# prefetch, mc/mt the wide merge's vec4 columns / invocations per workgroup (decode-coop-tuning.ts).
DEC=default,mc8,mc4,mc32:mt1024,s512:mc8,s1024:mc8,pf:mc8,s512:pf:mc8,c4:mc8,t256:mc8,t64:mc8
DEC=$DEC,l16:mc8,l16:c4:mc8,l16:pf:mc8,l32:c4:mc8,l32:c4:pf:s512:mc8,l32:c8:s512:mc8
{
  run d 70 bench/wgsl/round7-decode.mjs --nk 131072,32768 --rounds 5 --variants "$DEC"
  run p 30 bench/wgsl/run.mjs --no-decode --only causal,full --dims 64,128 --n 16384 --reps 3 --engines coop
  # D 128: coopDoubleKv (db) beside the same tile without it, then 4 rows per invocation.
  Q=coop:64x32x256:l8:qg:pf:db,coop:64x32x256:l8:qg:pf,coop:64x16x256:l8:kv2:qg:pf:db,coop:64x16x256:l8:kv2:qg:pf
  Q=$Q,coop:128x32x256:l8:qg:pf,coop:64x32x128:l8:kv2:qg:pf,coop:64x16x128:l8:kv2:qg:pf:db
  run q 35 bench/wgsl/run.mjs --no-decode --only causal,full --dims 128 --n 16384 --reps 3 --engines "$Q"
  R=coop:64x32x128:l8:kv2:qg:pf:db,coop:64x32x128:l8:kv2:qg:pf,coop:128x32x256:l8:kv2:qg:pf
  R=$R,coop:128x32x256:l8:qg:pf:db,coop:128x32x256:l8:qg:pf
  run r 25 bench/wgsl/run.mjs --no-decode --only causal --dims 64 --n 16384 --reps 3 --engines "$R"
} 2>&1 | tee "$OUT/round7-log.txt"
node bench/wgsl/round7-summary.mjs "$OUT" | tee "$OUT/round7.txt"
