#!/bin/bash
# Device call 61 (round 30, ≤ 200 s): round 30's WGSL coop defaults unasked (engine spec 'coop':
# heads inner where tiles are classified per tile, P in registers at D ≤ 64) — bench/wgsl/defaults.sh
# (causal + full at D 64 and 128, 16K, the matmul ceiling, decode at 128K, an emitted module's
# choice), then sliding window and document one process per kernel (16K, f32, H 8). Every kernel is
# checked against the float64 reference first. Prepare: npm run build && bash bench/gpu-node/pack.sh;
# carry .carry and dist; returns $OUT/c61/.
set -uo pipefail
cd "$(dirname "$0")/../.."
T0=$(date +%s)
O="$OUT/c61"
mkdir -p "$O"
export ATTNC_DAWN_FLAGS=${ATTNC_DAWN_FLAGS:-disable-dawn-features=timestamp_quantization}
OUT="$O" timeout 100 bash bench/gpu-node/run.sh bash bench/wgsl/defaults.sh > /dev/null 2>&1
echo "== defaults exit $? at $(($(date +%s) - T0)) s"
grep -v '^Warning:' "$O/defaults.txt" | sed 's/  ready/ ready/' | tail -n 30
for p in sliding_window document; do
  for d in 64 128; do
    timeout 60 bash bench/gpu-node/run.sh node bench/wgsl/run.mjs --out "$O/$p$d.json" --no-decode \
      --only "$p" --dims "$d" --n 16384 --reps 3 --engines coop > "$O/$p$d.txt" 2>&1
    echo "== $p D=$d exit $? at $(($(date +%s) - T0)) s"
    grep '^prefill' "$O/$p$d.txt"
  done
done
