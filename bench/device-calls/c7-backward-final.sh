#!/bin/bash
# Device call 7 (≤ 330 s of run time; round 16): the backward as committed after call 6 (the
# mask's one-sided parts read at constant offsets from Ls; dilated and neighbourhood on the cheap
# masks' knobs): all ten DESIGN §6 patterns plus softcap and ALiBi at 16K beside FlexAttention,
# gradients checked first; then the Python GPU tests of the tensor-core autograd and of
# test_cp_transport.py (both fake-kernel fixes). Comes back as $OUT/c7.tgz.
# Carry: bench/build/cuda-backward-next, python/gpu_tests/.artifacts.
set -uo pipefail
cd "$(dirname "$0")/../.."
O=/tmp/o7
mkdir -p $O
T0=$(date +%s)
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,temperature.gpu --format=csv > $O/gpu.txt
export PATH="$PATH:/usr/local/cuda/bin" PYTHONUNBUFFERED=1
(OUT=$O/py timeout 110 bash python/gpu_tests/run.sh test_autograd_tensor_cores.py test_cp_transport.py > $O/py.log 2>&1
 echo "py exit $?" >> $O/py.log)
echo "py done at $(($(date +%s) - T0)) s"
grep -E 'passed|failed|FAILED|py exit' $O/py.log | tail -n 8
left=$((320 - ($(date +%s) - T0)))
OUT=$O/bwd BUILD=bench/build/cuda-backward-next ENGINES=ws BUDGET=$((left - 25)) TIMEOUT=$((left - 8)) \
  bash bench/cuda/backward.sh 16384 > $O/bwd.log 2>&1
echo "bwd done at $(($(date +%s) - T0)) s"
grep -E '^\{' $O/bwd.log | cut -c1-260
tar czf "$OUT/c7.tgz" -C $O .
