#!/bin/bash
# Device call 1 (≤ 470 s of run time): the Python package's GPU tests (the torch op's importance
# output has never run on a GPU), then the backward of all ten DESIGN §6 patterns with the default
# (ws) engine at 16K beside FlexAttention and SDPA (issue 14: only full / causal were timed).
# Prepare and call as bench/device-calls/README.md says; everything comes back as $OUT/c1.tgz.
set -uo pipefail
cd "$(dirname "$0")/../.."
O=/tmp/o
mkdir -p $O
T0=$(date +%s)
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,temperature.gpu --format=csv > $O/gpu.txt
# test_importance.py first: the part never run on a GPU.
(OUT=$O/py timeout 300 bash python/gpu_tests/run.sh test_importance.py test_torch.py test_autograd.py \
  test_autograd_tensor_cores.py test_layouts_paged.py test_quant_prefill.py test_cp.py test_cp_transport.py \
  > $O/py.log 2>&1; echo "py exit $?" >> $O/py.log)
echo "py done at $(($(date +%s) - T0)) s"
tail -n 4 $O/py.log
left=$((470 - ($(date +%s) - T0)))
echo "backward with ${left}s"
OUT=$O/bwd BUILD=bench/build/cuda-backward-next ENGINES=ws BUDGET=$((left - 45)) TIMEOUT=$((left - 15)) \
  bash bench/cuda/backward.sh 16384 > $O/bwd.log 2>&1
echo "bwd done at $(($(date +%s) - T0)) s"
tail -n 30 $O/bwd.log
# One file back (the device returns at most 8): unpack with tar xzf.
tar czf "$OUT/c1.tgz" -C $O .
