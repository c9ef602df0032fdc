#!/bin/bash
# Device call 71 (round 33/34, ≤ 420 s; written in round 33, which got no device for it): the key-major
# quantized decode kernel (decode-mma-km.ts: keys as the MMA's M, the GQA group's queries as N;
# -DATTNC_DEC_MMA_KM=1, off by default until this call checks and times it) as lean3_km (KIVI int4 /
# int2, int8, e4m3), capped for two blocks an SM (lean3_km_b2: KIVI at QMIN_BLOCKS 2, 128 registers,
# the K scale words read from shared memory at each use; lean3_km_k16b2: int8 / e4m3 with 16-key
# warps, 108 registers), beside the query-major default (lean3) and round 32's code (int4_r32,
# int2_r32, from 8b36327), all at LEAN 3; the default's KIVI fields are round 33's (one hsub2 of a
# per-field magic; call 70 timed the hfma2 form). Outputs checked first; B 4, H 32 / Hkv 8, D 128,
# one query, 32K and 128K, SDPA bf16 in the same process; then Nsight Compute on the key-major int4
# split kernel at 128K. If the key-major rows are right and faster, make ATTNC_DEC_MMA_KM 1 the
# default (decode-mma-km.ts kmSwitch) with the best cap per format.
# Prepare: npm run build; node bench/cuda/quant-decode-emit.mjs --only
#   lean3,lean3_km,lean3_km_b2,lean3_km_k16b2 --cases 2 --formats bf16,int8,e4m3,int4,int2; int4 /
#   int2 from a worktree of 8b36327 copied in as <format>_r32 and added to index.json (variants and
#   lean3's formats); round 34 added three index.json-only knob points (not in DECODE_KNOB_VARIANTS,
#   to keep the nvcc tests' builds down): lean3_km_s4 (QSTAGES 4), lean3_km_b2_s3 (KIVI, QSTAGES 3),
#   lean3_km_k16b2_s3 (int8 / e4m3, QSTAGES 3). Carry bench/build/cuda-quant-decode; returns $OUT/c71/ and $OUT/c71.tar.xz.
set -uo pipefail
cd "$(dirname "$0")/../.."
T0=$(date +%s)
O="$OUT/c71"
mkdir -p "$O/ncu"
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,temperature.gpu --format=csv > "$O/gpu.txt"
cat "$O/gpu.txt"
export PATH="$PATH:/usr/local/cuda/bin" PYTHONUNBUFFERED=1
B=bench/build/cuda-quant-decode
timeout 280 python3 bench/cuda/quant-decode.py --build $B --out "$O" --budget 250 > "$O/quant.log" 2>&1
echo "quant exit $? at $(($(date +%s) - T0)) s"
grep -E "^\| (32768|131072)|FAIL|fail" "$O/quant.log" | head -40
ATTNC_NCU='int4 lean3_km Nk=131072' timeout 90 ncu --profile-from-start off --kernel-name regex:mma_split \
  --launch-count 1 --section SpeedOfLight --section Occupancy --section LaunchStats --section WarpStateStats \
  --section SchedulerStats --section SourceCounters -f -o "$O/ncu/new" \
  python3 bench/cuda/quant-decode.py --build $B --out "$O/ncu" --formats int4 --knobs lean3_km --reuse > "$O/ncu/run.log" 2>&1
echo "ncu exit $? at $(($(date +%s) - T0)) s"
if [ -f "$O/ncu/new.ncu-rep" ]; then
  ncu -i "$O/ncu/new.ncu-rep" --page details > "$O/ncu/details.txt" 2>&1
  ncu -i "$O/ncu/new.ncu-rep" --page source --csv --print-source sass > "$O/ncu/sass.csv" 2>&1
  python3 bench/cuda/ncu-sass-summary.py "$O/ncu/sass.csv" --per 131072 > "$O/ncu-sass-summary.txt" 2>&1
  head -30 "$O/ncu-sass-summary.txt"
  grep -E "Registers Per|Issued Warp|Duration|Grid Size|Achieved Occ" "$O/ncu/details.txt"
  rm -f "$O/ncu/sass.csv"
fi
tar -C "$OUT" -cJf "$OUT/c71.tar.xz" c71
echo "done at $(($(date +%s) - T0)) s"
