#!/usr/bin/env bash
# Context-parallel benchmark on a machine with several GPUs: bench_cp.py under torchrun for each
# world size in WORLD_SIZES (default "2 4 8", those the machine has), each bounded: no new
# configuration past BUDGET seconds (default 300, shared by the masks), killed at BUDGET + 240.
# Results in $OUT/cp-P<world>.json, logs beside them; the 2-GPU run measures the one-GPU baseline
# and later runs into the same $OUT reuse it. One world size per command keeps a command < 10 min:
#   WORLD_SIZES=2 bash bench/cp/run.sh; WORLD_SIZES=4 bash bench/cp/run.sh; WORLD_SIZES=8 bash bench/cp/run.sh
# Where Node is, first: npm run build && bash bench/cp/prepare.sh   (carry bench/cp/.artifacts)
set -uo pipefail
cd "$(dirname "$0")/../.."
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1 # NVLink multicast off
export PATH="$PATH:/usr/local/cuda/bin"
out="${OUT:-$(mktemp -d)}"
mkdir -p "$out"
gpus=$(nvidia-smi -L | wc -l)
budget="${BUDGET:-300}"
status=0
for p in ${WORLD_SIZES:-2 4 8}; do
  if [[ $p -gt $gpus ]]; then
    echo "P=$p: this machine has $gpus GPUs, skipped"
    continue
  fi
  timeout $((budget + 240)) torchrun --standalone --nproc-per-node "$p" bench/cp/bench_cp.py --out "$out" --budget-s "$budget" "$@" \
    >"$out/cp-P$p.log" 2>&1
  rc=$?
  [[ $rc -eq 0 ]] || status=$rc
  echo "P=$p exit $rc: $(tail -n 1 "$out/cp-P$p.log")"
done
exit $status
