#!/bin/bash
# Issue 13 item 5 in one GPU-machine call (carry bench/build/cuda-dense, emitted by
#   npm run build && node bench/cuda/emit.mjs --engine wgmma --list bench/cuda/dense-list.mjs --out bench/build/cuda-dense):
# builds every dense variant (ptxas -v logs in $OUT/ptxas/), checks each against SDPA (S = 1000,
# tail tiles, and 16384) and times the correct ones at $SIZES beside SDPA in one process
# ($OUT/dense-times.json, a table at the end of $OUT/dense-times.log), then runs Nsight Compute
# (--set full) on one launch of each of $NCU (pattern:candidate, space-separated; NCU= for none)
# and writes each report plus its summary, details and SASS-source pages as text.
# About 1.5 min to build 48 variants, 3–4 to check and time them (inputs are drawn on the CPU),
# 40 s per profile: SIZES=16384 or NCU= to stay well inside a 10-minute call.
#   SIZES=16384,32768 NCU='full:default full:ws_fa3_tw' ONLY=a,b bash bench/cuda/dense-ncu.sh
# (the default profiles the two tweaked candidates; full:default was profiled on 2026-12-04)
set -o pipefail
export PYTHONUNBUFFERED=1
OUT=${OUT:-bench/build/dense-out}
SIZES=${SIZES:-16384,32768}
B=bench/build/cuda-dense
NCU=${NCU-full:ws_k176_tw_fold full:ws_fa3_tw_fold}
ONLY=${ONLY:-}
mkdir -p $OUT/ptxas $OUT/ncu
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,temperature.gpu --format=csv | tee $OUT/gpu.txt
timeout 300 python3 - "$B" "$OUT/ptxas" <<'PY'
import json, os, sys, concurrent.futures
sys.path.insert(0, 'bench/cuda')
from check import build
b, logs = sys.argv[1], sys.argv[2]
ix = json.load(open(f'{b}/index.json'))
with concurrent.futures.ThreadPoolExecutor(os.cpu_count() or 8) as pool:
    for r in pool.map(lambda e: build(b, e), ix):
        open(os.path.join(logs, r['variant'] + '.txt'), 'w').write(r['log'])
        lines = r['log'].splitlines()
        spill = next((lines[i + 1].strip() for i, l in enumerate(lines)
                      if 'Function properties' in l and l.rstrip().endswith('_attention')), '?')
        print(r['variant'], 'ok' if r['ok'] else 'BUILD FAILED', r['seconds'], 's |', spill)
PY
timeout 360 python3 bench/cuda/dense-ncu.py --build $B --all --only "$ONLY" --sizes $SIZES --iters 10 \
  --out $OUT/dense-times.json > $OUT/dense-times.log 2>&1
tail -45 $OUT/dense-times.log
which ncu >/dev/null || { echo 'no ncu on this machine'; exit 0; }
for pc in $NCU; do
  p=${pc%%:*}; c=${pc#*:}
  timeout 120 ncu --kernel-name regex:attnc --launch-count 1 --set full --import-source yes -f -o $OUT/ncu/${p}_$c \
    python3 bench/cuda/dense-ncu.py --build $B --pattern $p --candidate $c --S 16384 > $OUT/ncu/${p}_$c.log 2>&1
  tail -1 $OUT/ncu/${p}_$c.log
  ncu --import $OUT/ncu/${p}_$c.ncu-rep --print-summary per-kernel > $OUT/ncu/${p}_$c.summary.txt 2>&1
  ncu --import $OUT/ncu/${p}_$c.ncu-rep --page details > $OUT/ncu/${p}_$c.details.txt 2>&1
  ncu --import $OUT/ncu/${p}_$c.ncu-rep --page source --csv --print-source sass > $OUT/ncu/${p}_$c.sass.csv 2>/dev/null
done
ls -la $OUT/ncu
