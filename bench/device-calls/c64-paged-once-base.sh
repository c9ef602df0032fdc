#!/bin/bash
# Device call 64 (round 31, ≤ 200 s): call 63 again after a run inside one page takes its rows from
# one base (kv-pages-once.ts runCopies: an add a row instead of the page select and 64-bit
# multiply; -DATTNC_KV_PAGE_BASE=0 beside it for int8; -DATTNC_KV_PAGE_AHEAD=1: a tile's page ids read
# during the previous fetch). Paged decode with a tile's K, V (and
# scale) page ids read in one pass beside each fetch looking its own up (-DATTNC_KV_PAGE_ONCE=0,
# before round 31), bf16 and int8 per-token caches in pages of 16 / 64 / 256, each beside the
# contiguous kernel; B 4, H 32 / Hkv 8, D 128, one query, 32K and 128K, random page order, outputs
# checked first (paged bit-equal to contiguous). Prepare: npm run build && node
# bench/cuda/paged-decode-emit.mjs; carry bench/build/cuda-paged; returns $OUT/c64/.
set -uo pipefail
cd "$(dirname "$0")/../.."
T0=$(date +%s)
O="$OUT/c64"
mkdir -p "$O"
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,temperature.gpu --format=csv > "$O/gpu.txt"
export PATH="$PATH:/usr/local/cuda/bin" PYTHONUNBUFFERED=1
timeout 190 python3 bench/cuda/paged-decode.py --build bench/build/cuda-paged --out "$O" > "$O/paged.log" 2>&1
echo "paged exit $? at $(($(date +%s) - T0)) s"
tail -n 30 "$O/paged.log"
