#!/bin/bash
# Device call 27 (round 22, ≤ 330 s): where the dense backward's instructions go now. Round 9's
# profile (H200, full 16K) counted 12.6 G warp instructions in bwd_dkdv against cuDNN's 6.1 G; the
# kernel has changed since (producer warpgroup, ping-pong, 8-byte dQ atomics) and the backward is
# 0.77–0.80× SDPA on full, 0.70–0.77× on causal (target 0.8). Nsight Compute (--set full) on one
# launch of attnc's bwd_dkdv (full and causal, the default ws engine) and of SDPA's backward
# (full), bf16 B 2 H 16 D 128 S 16K; SASS by opcode with bench/cuda/sass-summary.py.
# Prepare: npm run build; node bench/cuda/backward-emit.mjs --out bench/build/cuda-backward-next --engines ws
# carry bench/build/cuda-backward-next; returns $OUT/c27.tgz.
set -uo pipefail
cd "$(dirname "$0")/../.."
O=/tmp/o27
mkdir -p $O/ncu
export PATH="$PATH:/usr/local/cuda/bin" PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,temperature.gpu --format=csv > $O/gpu.txt
ATTNC_NCU='^(attnc bwd ws (full|causal)|sdpa bwd causal=False) S=16384' timeout 280 \
  ncu --profile-from-start off --set full --import-source yes -f -o $O/ncu/bwd \
  python3 bench/cuda/backward.py --build bench/build/cuda-backward-next --out $O --sizes 16384 \
  --only full,causal --engines ws --budget 260 > $O/run.log 2>&1
echo "ncu rc $?"
grep -E '^\| |ncu:' $O/run.log | tail -n 12
ncu --import $O/ncu/bwd.ncu-rep --page details > $O/ncu/details.txt 2>&1
ncu --import $O/ncu/bwd.ncu-rep --page source --csv --print-source sass > $O/ncu/sass.csv 2>/dev/null
grep -E '^  [a-zA-Z_].*\(|Duration|Compute \(SM\) Throughput|Registers Per|Achieved Occupancy|Warp Cycles Per Issued|No Eligible|Executed Ipc A|Memory Throughput' $O/ncu/details.txt | head -80
for p in full causal; do
  python3 bench/cuda/sass-summary.py $O/ncu/sass.csv "_$p.*bwd_dkdv" --top 20 > $O/ncu/sass-$p.txt 2>&1
  head -n 45 $O/ncu/sass-$p.txt
done
python3 bench/cuda/sass-summary.py $O/ncu/sass.csv "^(?!.*attnc)" --all --top 20 > $O/ncu/sass-sdpa.txt 2>&1
head -n 90 $O/ncu/sass-sdpa.txt
tar czf "$OUT/c27.tgz" -C $O gpu.txt run.log ncu/details.txt ncu/sass.csv $(cd $O && ls ncu/sass-*.txt)
