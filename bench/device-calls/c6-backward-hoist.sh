#!/bin/bash
# Device call 6 (≤ 400 s of run time; round 16): the backward of the masks that divide or read a
# tensor (dilated, neighbourhood, document) before and after their mask's one-sided parts moved
# into shared memory (codegen/cuda/backward-mask-hoists.ts): round 15's build (BUILD_OLD, the
# default ws engine) beside the new one's ws, ws_nosplit and ws_pp, each checked against
# FlexAttention's gradients first; then test_cp_transport.py again (round 16's call 5 found its
# fake kernel built AttentionOutput without `importance`). Comes back as $OUT/c6.tgz.
# Carry: bench/build/cuda-backward-next, bench/build/cuda-backward-hoist, python/gpu_tests/.artifacts.
set -uo pipefail
cd "$(dirname "$0")/../.."
O=/tmp/o6
mkdir -p $O
T0=$(date +%s)
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,temperature.gpu --format=csv > $O/gpu.txt
export PATH="$PATH:/usr/local/cuda/bin" PYTHONUNBUFFERED=1
P=dilated,neighbourhood,document
OUT=$O/old BUILD=bench/build/cuda-backward-next ENGINES=ws BUDGET=80 TIMEOUT=95 ONLY=$P \
  bash bench/cuda/backward.sh 16384 > $O/old.log 2>&1
echo "old done at $(($(date +%s) - T0)) s"
OUT=$O/new BUILD=bench/build/cuda-backward-hoist ENGINES=ws,ws_nosplit,ws_pp BUDGET=150 TIMEOUT=170 ONLY=$P \
  bash bench/cuda/backward.sh 16384 > $O/new.log 2>&1
echo "new done at $(($(date +%s) - T0)) s"
for f in $O/old.log $O/new.log; do grep -E '^\{' $f | cut -c1-400; done
(OUT=$O/py timeout 120 bash python/gpu_tests/run.sh test_cp_transport.py > $O/py.log 2>&1; echo "py exit $?" >> $O/py.log)
grep -E 'passed|failed|FAILED|py exit' $O/py.log | tail -n 6
echo "all done at $(($(date +%s) - T0)) s"
tar czf "$OUT/c6.tgz" -C $O .
