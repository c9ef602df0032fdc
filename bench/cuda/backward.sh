#!/bin/bash
# One device call: build, check and time the tensor-core CUDA backwards (ENGINES, each atomic and
# deterministic: mma = mma.sync, wg = wgmma, ws = wgmma with a producer warpgroup) beside
# FlexAttention and SDPA (bench/cuda/backward.py). Emit first, here:
#   npx tsc -p tsconfig.json && node bench/cuda/backward-emit.mjs
# then on the GPU machine (carry bench/build/cuda-backward): bash bench/cuda/backward.sh [sizes]
# BUDGET (s, default 235) caps build + check + timings; rows past it are skipped, not cut off.
# ONLY=<a,b> keeps the patterns whose name contains one of them; ENGINES (default mma,wg,ws);
# BUILD the artifact folder (default bench/build/cuda-backward).
# The producer-warpgroup decision (≤ 200 s):
#   ONLY=full,causal BUDGET=150 bash bench/cuda/backward.sh 16384
# The tile-body knobs (backward-wgmma-tune.ts; ≤ 150 s, summary table last):
#   ONLY=full,causal ENGINES=ws,ws_exp,ws_mask,ws_pack,ws_dqu,ws_desc,ws_dq8,ws_n128,ws_all,ws_all8 BUDGET=120 TIMEOUT=145 \
#     bash bench/cuda/backward.sh 16384
# dQ by the producer's bulk reductions, consumers out of lockstep (round 10: ws_dqb = the default
# + dqBulk, ws_pp = ws_dqb + pingPong; ≤ 150 s):
#   node bench/cuda/backward-emit.mjs --out bench/build/cuda-backward-10 --only full,causal --engines ws,ws_dqb,ws_pp
#   BUILD=bench/build/cuda-backward-10 ONLY=full,causal ENGINES=ws,ws_dqb,ws_pp BUDGET=120 TIMEOUT=145 \
#     bash bench/cuda/backward.sh 16384
# The default without splitMask where ptxas serialises the wgmmas with it (C7512; ≤ 150 s):
#   node bench/cuda/backward-emit.mjs --out bench/build/cuda-backward-10d --only document,dilated --engines ws,ws_nosplit
#   BUILD=bench/build/cuda-backward-10d ONLY=document,dilated ENGINES=ws,ws_nosplit BUDGET=120 TIMEOUT=145 \
#     bash bench/cuda/backward.sh 16384
set -o pipefail
export PYTHONUNBUFFERED=1
OUT=${OUT:-bench/build/backward-out}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,temperature.gpu --format=csv | tee "$OUT/gpu.txt"
timeout "${TIMEOUT:-285}" python3 bench/cuda/backward.py --build "${BUILD:-bench/build/cuda-backward}" --out "$OUT" \
  --sizes "${1:-4096,16384}" --budget "${BUDGET:-235}" --only "${ONLY:-}" --engines "${ENGINES:-mma,wg,ws}" 2>&1 |
  tee "$OUT/backward.log" | tail -70
