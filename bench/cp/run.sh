#!/usr/bin/env bash
# Context-parallel benchmark on a machine with several GPUs: bench_cp.py under torchrun on 2, 4
# and 8 GPUs (as many as the machine has), each run bounded (BUDGET seconds of new configurations,
# then a hard timeout), results in $OUT/cp-P{2,4,8}.json and the logs beside them.
# Where Node is, first: npm run build && bash bench/cp/prepare.sh   (carry bench/cp/.artifacts)
set -uo pipefail
cd "$(dirname "$0")/../.."
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1  # NVLink multicast off
export PATH="$PATH:/usr/local/cuda/bin"
out="${OUT:-$(mktemp -d)}"
mkdir -p "$out"
gpus=$(nvidia-smi -L | wc -l)
budget="${BUDGET:-150}"
for p in 2 4 8; do
  [[ $p -le $gpus ]] || continue
  timeout $((budget + 240)) torchrun --standalone --nproc-per-node "$p" bench/cp/bench_cp.py --out "$out" --budget-s "$budget" "$@" \
    > "$out/cp-P$p.log" 2>&1
  echo "P=$p exit $? ($(tail -n 1 "$out/cp-P$p.log"))"
done
