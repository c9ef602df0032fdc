#!/bin/bash
# Device call 18 (round 19, ≤ 300 s of run time): the Python package's GPU tests of what round 18
# added — gradients through lse (dlse) and the routing kernels' backward (indices saved, passed back)
# — in test_autograd.py, then test_torch.py (forward, layouts, torch.compile) as a regression check.
# Prepare: npm run build && python3 python/gpu_tests/prepare.py; carry python/gpu_tests/.artifacts.
# Everything returns as $OUT/c18.tgz.
set -uo pipefail
cd "$(dirname "$0")/../.."
O=/tmp/o18
mkdir -p $O
T0=$(date +%s)
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm --format=csv > $O/gpu.txt
(OUT=$O/py timeout 280 bash python/gpu_tests/run.sh test_autograd.py test_torch.py > $O/py.log 2>&1; echo "py exit $?" >> $O/py.log)
echo "py done at $(($(date +%s) - T0)) s"
grep -E "passed|failed|error|py exit" $O/py.log | tail -n 12
tar czf "$OUT/c18.tgz" -C $O .
