#!/bin/bash
# Device call 72 (round 34, ≤ 150 s; after c71 in the same call when both fit): the WGSL coop
# engine's defaults unasked on the H200 (bench/wgsl/defaults.sh: causal and full prefill at D 64 /
# 128, N 16384, with the matmul ceiling of the same process; coop decode at 128K; the emitted
# module's engines) — the H200's prefill figures were last taken in round 7, issue 11's targets are
# the H200's — then the WGSL decode over quantized caches at 128K (issue 10 item 6's WGSL
# row; wide16 code loads, the default). Prepare: npm run build && bash bench/gpu-node/pack.sh;
# carry .carry and dist; returns $OUT/c72/.
set -uo pipefail
cd "$(dirname "$0")/../.."
T0=$(date +%s)
O="$OUT/c72"
mkdir -p "$O"
OUT="$O" timeout 100 bash bench/gpu-node/run.sh bash bench/wgsl/defaults.sh > /dev/null 2>&1
echo "== defaults exit $? at $(($(date +%s) - T0)) s"
grep -v '^Warning:' "$O/defaults.txt" | tail -n 30
OUT="$O" CODES=wide16 timeout 70 bash bench/gpu-node/run.sh node bench/quant-decode-wgsl.mjs 131072 3 \
  > "$O/quant-decode-wgsl.txt" 2>&1
echo "== quant-decode-wgsl exit $? at $(($(date +%s) - T0)) s"
grep -v '^Warning:' "$O/quant-decode-wgsl.txt" | tail -n 20
