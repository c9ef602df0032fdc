#!/bin/bash
# Round 8 of the WGSL coop engine on the GPU machine (issue 11), one command of at most ~170 s:
#   bash bench/gpu-node/run.sh bash bench/wgsl/round8.sh        (carry .carry and dist; see pack.sh)
# Round 7 made 128×32 tiles of 256 invocations (4 query rows an invocation) and 64-invocation
# decode with the wide merge the defaults; this run times the neighbours of both, every set checked
# against the float64 reference first:
#   d: coop decode, f32, D 128, H 32 / Hkv 8, Nk 128K and 32K: the default beside other thread
#      counts, split lengths, prefetch and chunk (round7-decode.mjs);
#   p: prefill defaults (causal + full, N 16384, H 8, D 64 and 128) and the matmul ceiling;
#   q: D 128 (causal + full): 8 rows an invocation, 16-key tiles (also 256 rows × 512 invocations),
#      split K/V buffers, 4 lanes a row;
#   r: D 64 (causal): 256-row tiles of 512 invocations, 8 rows an invocation, 16-key tiles.
# Writes $OUT/round7-{d,p,q,r}.json (the round-7 summary reads them), round8-log.txt, round8.txt.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/round8-out}
mkdir -p "$OUT"
export ATTNC_DAWN_FLAGS=${ATTNC_DAWN_FLAGS:-disable-dawn-features=timestamp_quantization}
run() { # run NAME SECONDS SCRIPT ARGS...
  local name=$1 secs=$2 script=$3
  shift 3
  echo "== $name (limit ${secs}s): $script $*"
  timeout "$secs" node "$script" --out "$OUT/round7-$name.json" "$@" 2>&1 | grep -v '^Warning:'
  echo "== $name exit ${PIPESTATUS[0]}"
}
DEC=default,t32,t128,s128,s512,s1024,pf,c4,s512:pf,t32:s512
{
  run d 60 bench/wgsl/round7-decode.mjs --nk 131072,32768 --rounds 5 --variants "$DEC"
  run p 30 bench/wgsl/run.mjs --no-decode --only causal,full --dims 64,128 --n 16384 --reps 3 --engines coop
  # (256x32x512 needs 53,764 bytes at D 128: more than the H200's 48 KiB.)
  Q=coop:128x32x128:l8:qg:pf,coop:128x16x128:l8:qg:pf,coop:128x16x256:l8:qg:pf,coop:128x16x256:l8:kv2:qg:pf
  Q=$Q,coop:256x16x512:l8:qg:pf,coop:128x32x256:l4:qg:pf
  run q 40 bench/wgsl/run.mjs --no-decode --only causal,full --dims 128 --n 16384 --reps 3 --engines "$Q"
  # (64-key tiles of 128 rows need 52,228 bytes at D 64: more than 48 KiB.)
  R=coop:256x32x512:l8:qg:pf,coop:128x32x128:l8:qg:pf,coop:128x16x256:l8:qg:pf,coop:128x16x128:l8:qg:pf
  run r 25 bench/wgsl/run.mjs --no-decode --only causal --dims 64 --n 16384 --reps 3 --engines "$R"
} 2>&1 | tee "$OUT/round8-log.txt"
node bench/wgsl/round7-summary.mjs "$OUT" | tee "$OUT/round8.txt"
