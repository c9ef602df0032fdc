#!/bin/bash
# Device call 19 (round 19, ≤ 480 s of run time; round 20 added step 5): the two defaults round 19 changed from calls 16
# and 17, checked and timed as main now emits them, plus call 18's Python tests after their fix.
#  1. document and modality (both tensor-summary masks) at their new default (wgmma-ws 128 × 96,
#     three stages, the producer's walk): checked against the reference, memcheck + racecheck;
#  2. document's new default beside round 17's (walk_fa3_tw: 128-key tiles, two stages) and Flex
#     at 16K / 32K;
#  3. neighbourhood's backward, default (bwd_dkdv in 2-D patch order now) beside ws_plain (the old
#     order) at 4K / 16K, gradients checked against Flex's first;
#  4. python/gpu_tests test_autograd.py (dlse, the routing backward; setup_context dropped indices).
#  5. (round 20) the dilated backward, atomic and deterministic (bwd_dq in residue order now), 16K.
# Run in the order 1, 4, 3, 5, 2: correctness first.
# Prepare: npm run build
#   node bench/cuda/emit.mjs --list bench/cuda/default-list.mjs --out bench/build/cuda-default
#   node bench/cuda/emit.mjs --engine wgmma --list bench/cuda/doc-list.mjs --out bench/build/cuda-doc
#   node bench/cuda/backward-emit.mjs --out bench/build/cuda-backward-nb --only neighbourhood --engines ws,ws_pp,ws_plain
#   python3 python/gpu_tests/prepare.py
#   node bench/cuda/backward-emit.mjs --out bench/build/cuda-backward-dil --only dilated --engines ws
# carry bench/build/cuda-default, bench/build/cuda-doc, bench/build/cuda-backward-nb,
# bench/build/cuda-backward-dil, python/gpu_tests/.artifacts; each step returns as its own $OUT/c19-*.tgz (in order of need: a
# short device lease still brings back the correctness parts).
set -uo pipefail
cd "$(dirname "$0")/../.."
O=/tmp/o19
mkdir -p $O
T0=$(date +%s)
export PATH="$PATH:/usr/local/cuda/bin" PYTHONUNBUFFERED=1
PHASE=check ONLY=std_document__default,std_modality__default BUILD=bench/build/cuda-default OUT=$O/check \
  CHECK_S=80 bash bench/cuda/run-table.sh 16384 > $O/check.log 2>&1
echo "check exit $? at $(($(date +%s) - T0)) s"
grep -E "PASS|FAIL|clean|error|hazard" $O/check.log | tail -n 8
tar czf "$OUT/c19-check.tgz" -C $O check check.log
(OUT=$O/py timeout 120 bash python/gpu_tests/run.sh test_autograd.py > $O/py.log 2>&1; echo "py exit $?" >> $O/py.log)
echo "py done at $(($(date +%s) - T0)) s"
grep -E "passed|failed|py exit" $O/py.log | tail -n 4
tar czf "$OUT/c19-py.tgz" -C $O py py.log
OUT=$O/bwd BUILD=bench/build/cuda-backward-nb ONLY=neighbourhood ENGINES=ws,ws_pp,ws_plain \
  BUDGET=90 TIMEOUT=110 bash bench/cuda/backward.sh 4096,16384 > $O/bwd.log 2>&1
echo "bwd exit $? at $(($(date +%s) - T0)) s"
grep -E '^\|' $O/bwd.log | tail -n 6
tar czf "$OUT/c19-bwd.tgz" -C $O bwd bwd.log
# Round 20: the deterministic dilated backward with bwd_dq in residue order (round 17: 55.3 ms det.)
OUT=$O/dil BUILD=bench/build/cuda-backward-dil ONLY=dilated ENGINES=ws \
  BUDGET=45 TIMEOUT=60 bash bench/cuda/backward.sh 16384 > $O/dil.log 2>&1
echo "dil exit $? at $(($(date +%s) - T0)) s"
grep -E '^\|' $O/dil.log | tail -n 4
tar czf "$OUT/c19-dil.tgz" -C $O dil dil.log
ONLY=std_document__default,std_document__walk_fa3_tw_bf16 BUILD=bench/build/cuda-doc OUT=$O/table \
  CHECK_S=80 TABLE_S=90 bash bench/cuda/run-table.sh 16384,32768 > $O/table.log 2>&1
echo "table exit $? at $(($(date +%s) - T0)) s"
grep -E '^\| document|"candidates"' $O/table.log | tail -n 4
tar czf "$OUT/c19-table.tgz" -C $O table table.log
