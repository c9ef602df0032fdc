#!/bin/bash
# Device call 64 (round 31, ≤ 200 s; prepared, got no machine): call 63 again with two untimed
# options beside the default (one pass over the block table, rows through row()): a run inside one
# page addressed from one base (-DATTNC_KV_PAGE_BASE=1, int8: an add a row instead of the page
# select and 64-bit multiply) and a tile's page ids read during the previous fetch
# (-DATTNC_KV_PAGE_AHEAD=1), and each fetch looking its own ids up (-DATTNC_KV_PAGE_ONCE=0, before
# round 31); bf16 and int8 per-token caches in pages of 16 / 64 / 256, each beside the contiguous
# kernel; B 4, H 32 / Hkv 8, D 128, one query, 32K and 128K, random page order, outputs checked
# first (paged bit-equal to contiguous). Prepare: npm run build && node
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
