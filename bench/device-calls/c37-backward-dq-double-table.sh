#!/bin/bash
# Device call 37 (round 23, ≤ 560 s): the new backward default (dqDouble: the pingPong dQ block
# double-buffered) under compute-sanitizer — memcheck and racecheck over bench/cuda/backward.py's
# check (small ragged shapes, atomic and deterministic, full and causal; --budget 0 skips the
# timings) — then all ten patterns at 16K beside Flex and SDPA (call 14's table).
# Prepare: npm run build; node bench/cuda/backward-emit.mjs --out bench/build/cuda-backward-next --engines ws
# carry bench/build/cuda-backward-next; returns $OUT/c37.tgz.
set -uo pipefail
cd "$(dirname "$0")/../.."
O=/tmp/o37
mkdir -p $O
export PATH="$PATH:/usr/local/cuda/bin" PYTHONUNBUFFERED=1
B=bench/build/cuda-backward-next
python3 bench/cuda/backward.py --build $B --engines ws --only full --sizes 4096 --budget 0 --out $O/prebuild > $O/prebuild.log 2>&1
for tool in memcheck racecheck; do
  timeout ${SAN_S:-150} compute-sanitizer --tool $tool --error-exitcode 9 python3 bench/cuda/backward.py --build $B --engines ws \
    --only full,causal --sizes 4096 --budget 0 --out $O/san-$tool > $O/sanitize-$tool.txt 2>&1
  echo "$tool exit $?: $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY|check (full|causal)' $O/sanitize-$tool.txt | tr '\n' ' ' | cut -c1-400)"
done
OUT=$O/bwd BUILD=$B ENGINES=ws BUDGET=${BUDGET:-260} TIMEOUT=${TIMEOUT:-280} bash bench/cuda/backward.sh 16384 > $O/bwd.log 2>&1
grep -E '^\|' $O/bwd.log | tail -n 14
tar czf "$OUT/c37.tgz" -C $O .
