#!/bin/bash
# Device call 4 (≤ 290 s of run time; round 15): the WGSL coop decode alone in its process (call 2
# timed it after the prefill sweep and read 436 GB/s at 128K against round 7's 2,150: an order
# effect, or a regression?), then the backward of the eight DESIGN §6 patterns call 1 had no time
# for (16K, ws, beside FlexAttention). Everything comes back as $OUT/c4.tgz.
# Carry: bench/build/cuda-backward-next, .carry, dist (prepare as bench/device-calls/README.md says).
set -uo pipefail
cd "$(dirname "$0")/../.."
O=/tmp/o4
mkdir -p $O
T0=$(date +%s)
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,temperature.gpu --format=csv > $O/gpu.txt
export PATH="$PATH:/usr/local/cuda/bin" PYTHONUNBUFFERED=1
export ATTNC_DAWN_FLAGS=disable-dawn-features=timestamp_quantization
timeout 60 bash bench/gpu-node/run.sh node bench/wgsl/run.mjs --no-prefill --reps 5 --engines coop \
  --decode-threads 32,64 --out $O/wgsl-decode.json > $O/wgsl-decode.log 2>&1
echo "wgsl decode exit $? at $(($(date +%s) - T0)) s"
tail -n 12 $O/wgsl-decode.log
left=$((285 - ($(date +%s) - T0)))
OUT=$O/bwd BUILD=bench/build/cuda-backward-next ENGINES=ws BUDGET=$((left - 30)) TIMEOUT=$((left - 8)) \
  ONLY=sliding,sink,prefix,document,dilated,softcap,alibi,neighbourhood bash bench/cuda/backward.sh 16384 > $O/bwd.log 2>&1
echo "bwd done at $(($(date +%s) - T0)) s"
grep -E '^\{' $O/bwd.log | tail -n 8 | cut -c1-400
tar czf "$OUT/c4.tgz" -C $O .
