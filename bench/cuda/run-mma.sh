#!/bin/bash
# One device call: build + check every mma variant (compute-sanitizer on two), one ncu profile,
# then the DESIGN §6 timings beside FlexAttention and SDPA. Emit first, here:
#   npm run build && node bench/cuda/emit.mjs --engine mma --list bench/cuda/mma-list.mjs --out bench/build/cuda-mma
# then on the GPU machine (carry bench/build): bash bench/cuda/run-mma.sh [sizes]
# ENGINE=wgmma runs the Hopper core instead (emit with --engine wgmma --list
# bench/cuda/wgmma-list.mjs --out bench/build/cuda-wgmma); CHECK_S / BENCH_S cap the two phases.
set -o pipefail
export PYTHONUNBUFFERED=1
OUT=${OUT:-bench/build/mma-out}
SIZES=${1:-4096,16384,32768}
ENGINE=${ENGINE:-mma}
B=bench/build/cuda-$ENGINE
CHECK_S=${CHECK_S:-270}
BENCH_S=${BENCH_S:-150}
mkdir -p $OUT
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,temperature.gpu --format=csv | tee $OUT/gpu.txt
timeout $((CHECK_S + 30)) python3 bench/cuda/check.py --build $B --out $OUT --no-perf --budget $CHECK_S \
  --sanitize ${SANITIZE-std_causal_bf16_d128,std_document_f16_d64} 2>&1 | tail -75
if [ -z "$NO_NCU" ] && command -v ncu >/dev/null; then
  timeout 45 ncu --kernel-name regex:attention --launch-skip 1 --launch-count 1 --metrics \
sm__pipe_tensor_op_hmma_cycles_active.avg.pct_of_peak_sustained_active,sm__pipe_tensor_op_gmma_cycles_active.avg.pct_of_peak_sustained_active,sm__throughput.avg.pct_of_peak_sustained_elapsed,\
smsp__average_warp_latency_issue_stalled_barrier.ratio,smsp__average_warp_latency_issue_stalled_long_scoreboard.ratio,\
smsp__average_warp_latency_issue_stalled_short_scoreboard.ratio,smsp__average_warp_latency_issue_stalled_mio_throttle.ratio,\
smsp__average_warp_latency_issue_stalled_math_pipe_throttle.ratio,smsp__average_warp_latency_issue_stalled_wait.ratio,\
smsp__average_warp_latency_issue_stalled_not_selected.ratio,smsp__average_warp_latency_issue_stalled_selected.ratio,\
l1tex__data_bank_conflicts_pipe_lsu_mem_shared_op_ld.sum,smsp__inst_executed_pipe_xu.avg.pct_of_peak_sustained_active,\
launch__registers_per_thread,sm__warps_active.avg.pct_of_peak_sustained_active \
    python3 bench/cuda/bench.py --build $B --profile std_full_bf16_d128 > $OUT/ncu.txt 2>&1
  grep -E "attention|pct|ratio|sum|registers" $OUT/ncu.txt | head -30
fi
timeout $((BENCH_S + 85)) python3 bench/cuda/bench.py --build $B --out $OUT --sizes $SIZES --budget $BENCH_S > $OUT/bench.log 2>&1
tail -45 $OUT/bench.log
