#!/bin/bash
# Device call 38 (round 23, ≤ 560 s): the new backward default through torch (python/gpu_tests:
# test_autograd_tensor_cores.py, test_autograd.py — gradcheck, torch.compile, the tensor-core
# backward against torch autograd — and test_quant_paged.py), then all ten backward patterns at 4K
# and 16K beside Flex and SDPA (issue 14's benchmark sizes; SIZES=4096 for 4K alone).
# Prepare: npm run build; python3 python/gpu_tests/prepare.py;
#   node bench/cuda/backward-emit.mjs --out bench/build/cuda-backward-next --engines ws
# carry python/gpu_tests/.artifacts and bench/build/cuda-backward-next; returns $OUT/c38.tgz.
set -uo pipefail
cd "$(dirname "$0")/../.."
O=/tmp/o38
mkdir -p $O
export PATH="$PATH:/usr/local/cuda/bin" PYTHONUNBUFFERED=1
OUT=$O/py timeout ${PY_S:-200} bash python/gpu_tests/run.sh test_autograd_tensor_cores.py test_autograd.py test_quant_paged.py > $O/py.log 2>&1
echo "python exit $?: $(grep -E '[0-9]+ (passed|failed)' $O/py.log | tail -1)"
OUT=$O/bwd BUILD=bench/build/cuda-backward-next ENGINES=ws BUDGET=${BUDGET:-270} TIMEOUT=${TIMEOUT:-290} bash bench/cuda/backward.sh ${SIZES:-4096,16384} > $O/bwd.log 2>&1
grep -E '^\| [a-z_]+ \| [0-9]+ \|' $O/bwd.log | head -n 20
tar czf "$OUT/c38.tgz" -C $O .
