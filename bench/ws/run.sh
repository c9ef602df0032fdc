#!/bin/bash
# perf-tma's device call (carry bench/build/cuda-ws, built here first):
#   npm run build && node bench/cuda/emit.mjs --engine wgmma-ws --list bench/ws/ws-list.mjs \
#     --out bench/build/cuda-ws && bash bench/ws/prebuild.sh bench/build/cuda-ws
# then on the GPU machine: bash bench/ws/run.sh. Checks every variant (prebuilt libraries),
# compute-sanitizer memcheck + racecheck on two, SASS facts of full/causal, then timings of the
# wgmma-ws variants beside the wgmma ones (`_wg`) from the same build, in the same call.
set -o pipefail
export PYTHONUNBUFFERED=1
B=${B:-bench/build/cuda-ws}
OUT=${OUT:-/tmp/ws-out}
CHECK_S=${CHECK_S:-200}
BENCH_S=${BENCH_S:-120}
mkdir -p $OUT
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,temperature.gpu --format=csv
if [ -z "$NO_CHECK" ]; then
  timeout $((CHECK_S + 40)) python3 bench/ws/check-prebuilt.py --build $B --out $OUT --no-perf --budget $CHECK_S \
    --only "${ONLY:-}" --sanitize ${SANITIZE-std_causal_bf16_d128,std_document_f16_d64} 2>&1 | tail -72
fi
for v in ${SASS-std_full_bf16_d128 std_causal_bf16_d128}; do
  cuobjdump -sass $B/$v.so > $OUT/$v.sass 2>&1
  echo "$v: HGMMA $(grep -c HGMMA $OUT/$v.sass) UTMALDG $(grep -c UTMALDG $OUT/$v.sass) STL $(grep -c STL $OUT/$v.sass)" \
    "LDL $(grep -c LDL $OUT/$v.sass) max R$(grep -o 'R[0-9]\+' $OUT/$v.sass | tr -d R | sort -n | tail -1)" \
    "SETMAXNREG $(grep -ci 'SETMAXNREG\|SETMAXREG' $OUT/$v.sass)"
done
timeout $((BENCH_S + 60)) python3 bench/cuda/bench.py --build $B --out $OUT --sizes ${SIZES:-16384} --no-flex \
  --only "${BONLY:-}" --budget $BENCH_S > $OUT/bench.log 2>&1
tail -${BTAIL:-25} $OUT/bench.log
