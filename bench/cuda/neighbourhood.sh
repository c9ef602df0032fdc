#!/bin/bash
# Issue 13 item 4 in one GPU-machine call: the 2-D neighbourhood candidates of
# bench/cuda/nbhd-list.mjs (Schedule.patchTweaks beside the default) built with nvcc in parallel,
# checked against the float64 reference (check.py: 4 cases each, W = 37, r = 3, offsets, a
# decode-shaped case; one check-only variant whose grid falls back to plain q-tiles), then timed
# side by side with FlexAttention at S = 16384 and 4096 (15x15 on a 128-wide image), each output
# compared with Flex's. Emit first, here:
#   npm run build && node bench/cuda/emit.mjs --engine wgmma --list bench/cuda/nbhd-list.mjs --out bench/build/nbhd
# then on the GPU machine, from a directory holding bench/, python/ and bench/build/nbhd:
#   bash bench/cuda/neighbourhood.sh
# SAN=v1,v2 adds compute-sanitizer memcheck + racecheck of those variants (small launch) at the
# end, if the budget allows. Everything lands in $OUT.
set -o pipefail
export PYTHONUNBUFFERED=1
OUT=${OUT:-bench/build/nbhd-out}
B=${BUILD:-bench/build/nbhd}
SIZES=${SIZES:-16384,4096}
mkdir -p $OUT
T0=$(date +%s)
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,temperature.gpu --format=csv,noheader | tee $OUT/gpu.txt
# Build (16 nvcc at once) and check; check.py skips its own timings on this budget.
timeout 100 python3 bench/cuda/check.py --build $B --out $OUT --no-perf --budget 70 2>&1 | tail -25
echo "build + check: $(($(date +%s) - T0)) s"
timeout 75 python3 bench/cuda/neighbourhood.py --build $B --check $OUT/cuda-check.json --out $OUT --sizes $SIZES \
  --budget 35 2>&1 | tee $OUT/nbhd.log | grep -v '^{'
echo "total: $(($(date +%s) - T0)) s"
if [ -n "$SAN" ] && command -v compute-sanitizer >/dev/null; then
  for v in ${SAN//,/ }; do
    for tool in memcheck racecheck; do
      timeout 60 compute-sanitizer --tool $tool --error-exitcode 9 python3 bench/cuda/check.py --build $B \
        --worker $v --launch-only > $OUT/san-$tool-$v.log 2>&1
      echo "$tool $v: exit $?"
    done
  done
  echo "with sanitizer: $(($(date +%s) - T0)) s"
fi
