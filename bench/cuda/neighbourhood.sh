#!/bin/bash
# Issue 13 item 4 in one GPU-machine call: the 2-D neighbourhood candidates of
# bench/cuda/nbhd-list.mjs (Schedule.patchTweaks beside the default) built with nvcc in parallel,
# checked against the float64 reference (check.py: 4 cases each, W = 37, r = 3, offsets, a
# decode-shaped case; one check-only variant whose grid falls back to plain q-tiles), then timed
# side by side with FlexAttention at S = 16384 and 4096 (15x15 on a 128-wide image), each output
# compared with Flex's. About 110 s. Emit first, here:
#   npm run build && node bench/cuda/emit.mjs --engine wgmma --list bench/cuda/nbhd-list.mjs --out bench/build/nbhd
# then on the GPU machine, from a directory holding bench/, python/ and bench/build/nbhd:
#   bash bench/cuda/neighbourhood.sh
# A second call for compute-sanitizer (memcheck + racecheck, small launch) of chosen variants
# only (build + check of those, then the sanitizer; about 60 s a variant):
#   SAN=std_neighbourhood__box_va_bf16_d128 bash bench/cuda/neighbourhood.sh
# Everything lands in $OUT.
set -o pipefail
export PYTHONUNBUFFERED=1
OUT=${OUT:-bench/build/nbhd-out}
B=${BUILD:-bench/build/nbhd}
SIZES=${SIZES:-16384,4096}
mkdir -p $OUT
T0=$(date +%s)
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,temperature.gpu --format=csv,noheader | tee $OUT/gpu.txt
if [ -n "$SAN" ]; then
  timeout 60 python3 bench/cuda/check.py --build $B --out $OUT --only "$SAN" --no-perf --budget 30 2>&1 | tail -8
  for v in ${SAN//,/ }; do
    for tool in memcheck racecheck; do
      timeout 45 compute-sanitizer --tool $tool --error-exitcode 9 python3 bench/cuda/check.py --build $B \
        --worker $v --launch-only > $OUT/san-$tool-$v.log 2>&1
      echo "$tool $v: exit $? ($(grep -c 'ERROR\|Race' $OUT/san-$tool-$v.log) error lines)"
    done
  done
  echo "total: $(($(date +%s) - T0)) s"
  exit 0
fi
# Build (all nvcc at once) and check; on this budget check.py skips its own timings.
timeout 80 python3 bench/cuda/check.py --build $B --out $OUT --no-perf --budget 60 2>&1 | tail -25
echo "build + check: $(($(date +%s) - T0)) s"
timeout ${TIME_S:-65} python3 bench/cuda/neighbourhood.py --build $B --check $OUT/cuda-check.json --out $OUT --sizes $SIZES \
  --budget ${BUDGET:-30} 2>&1 | tee $OUT/nbhd.log | grep -v '^{'
echo "total: $(($(date +%s) - T0)) s"
