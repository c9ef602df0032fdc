#!/bin/bash
# Device call 65 (round 32, ≤ 300 s): call 64 (the paged decode's untimed options, BASE and AHEAD,
# beside the default and each other; bench/device-calls/c64-paged-once-base.sh), then Nsight
# Compute on one launch each of the int8 and KIVI int4 tensor-core decode split kernels at 128K
# (B 4, H 32 / Hkv 8, D 128; built with -lineinfo): why they run at 1.1-3 TB/s when their
# instruction counts allow ~4x more (the full section set plus per-line stall reasons).
# Prepare: npm run build && node bench/cuda/paged-decode-emit.mjs &&
#   node bench/cuda/quant-decode-emit.mjs --only default --cases 2 --formats int8,int4
# carry bench/build/cuda-paged, bench/build/cuda-quant-decode; returns $OUT/c65/ and $OUT/c65.tar.xz.
set -uo pipefail
cd "$(dirname "$0")/../.."
T0=$(date +%s)
O="$OUT/c65"
mkdir -p "$O/ncu"
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,temperature.gpu --format=csv > "$O/gpu.txt"
export PATH="$PATH:/usr/local/cuda/bin" PYTHONUNBUFFERED=1
timeout 190 python3 bench/cuda/paged-decode.py --build bench/build/cuda-paged --out "$O" > "$O/paged.log" 2>&1
echo "paged exit $? at $(($(date +%s) - T0)) s"
tail -n 30 "$O/paged.log"
NVCC_EXTRA=-lineinfo ATTNC_NCU='(int8|int4) default Nk=131072' timeout 240 ncu --profile-from-start off \
  --kernel-name regex:mma_split --launch-count 2 --set full --import-source yes -f -o "$O/ncu/quant" \
  python3 bench/cuda/quant-decode.py --build bench/build/cuda-quant-decode --out "$O/ncu" \
  --formats int8,int4 --knobs default > "$O/ncu/run.log" 2>&1
echo "ncu exit $? at $(($(date +%s) - T0)) s"
tail -n 12 "$O/ncu/run.log"
if [ -f "$O/ncu/quant.ncu-rep" ]; then
  ncu -i "$O/ncu/quant.ncu-rep" --page details > "$O/ncu/details.txt" 2>&1
  ncu -i "$O/ncu/quant.ncu-rep" --page source --csv --print-source sass > "$O/ncu/source-sass.csv" 2>&1
  grep -E "Duration|Registers|Achieved Occupancy|Theoretical Occupancy|Issued Ipc|Issue Slots Busy|Memory Throughput|DRAM Throughput|No Eligible|Active Warps Per|Eligible Warps|Warp Cycles Per Issued|Block Limit" "$O/ncu/details.txt" | head -60
  grep -E "^ +Stall|stall" "$O/ncu/details.txt" | head -20
fi
echo "done at $(($(date +%s) - T0)) s"
tar -C "$OUT" -cJf "$OUT/c65.tar.xz" c65
