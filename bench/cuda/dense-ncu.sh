#!/bin/bash
# Issue 13 item 5 in one GPU-machine call (carry bench/build/cuda-dense, emitted by
#   npm run build && node bench/cuda/emit.mjs --engine wgmma --list bench/cuda/dense-list.mjs --out bench/build/cuda-dense):
# builds every dense variant (ptxas -v logs to $OUT/ptxas/), checks and times each one at S
# against SDPA (bench/cuda/dense-ncu.py --iters; $OUT/dense-times.jsonl), then runs Nsight Compute
# (--set full) on one launch of each of $NCU (pattern:candidate, space-separated) and writes the
# report plus its per-kernel summary and details pages as text. About 3–5 minutes.
#   bash bench/cuda/dense-ncu.sh [S]      NCU='full:default causal:default' to profile fewer, NCU= for none
set -o pipefail
export PYTHONUNBUFFERED=1
OUT=${OUT:-bench/build/dense-out}
S=${1:-16384}
B=bench/build/cuda-dense
NCU=${NCU-full:default full:ws_fa3 full:ws_overlap full:ws_pingpong causal:default causal:ws_fa3}
mkdir -p $OUT/ptxas $OUT/ncu
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,temperature.gpu --format=csv | tee $OUT/gpu.txt
python3 - "$B" "$OUT/ptxas" <<'PY'
import json, os, sys, concurrent.futures
sys.path.insert(0, 'bench/cuda')
from check import build
b, logs = sys.argv[1], sys.argv[2]
ix = json.load(open(f'{b}/index.json'))
with concurrent.futures.ThreadPoolExecutor(16) as pool:
    for r in pool.map(lambda e: build(b, e), ix):
        open(os.path.join(logs, r['variant'] + '.txt'), 'w').write(r['log'])
        spills = [l.strip() for l in r['log'].splitlines() if 'spill' in l or 'Used' in l]
        print(r['variant'], 'ok' if r['ok'] else 'BUILD FAILED', r['seconds'], 's', '|', ' '.join(spills[-4:]))
PY
for v in $(python3 -c "import json; print(' '.join(e['variant'] for e in json.load(open('$B/index.json'))))"); do
  v=${v#std_}; v=${v%_bf16_d128}
  timeout 120 python3 bench/cuda/dense-ncu.py --build $B --pattern ${v%%__*} --candidate ${v#*__} --S $S --iters 20 \
    --json $OUT/dense-times.jsonl
done
which ncu >/dev/null || { echo 'no ncu on this machine'; exit 0; }
for pc in $NCU; do
  p=${pc%%:*}; c=${pc#*:}
  timeout 240 ncu --kernel-name regex:attnc --launch-count 1 --set full --import-source yes -f -o $OUT/ncu/${p}_$c \
    python3 bench/cuda/dense-ncu.py --build $B --pattern $p --candidate $c --S $S > $OUT/ncu/${p}_$c.log 2>&1
  tail -2 $OUT/ncu/${p}_$c.log
  ncu --import $OUT/ncu/${p}_$c.ncu-rep --print-summary per-kernel > $OUT/ncu/${p}_$c.summary.txt 2>&1
  ncu --import $OUT/ncu/${p}_$c.ncu-rep --page details > $OUT/ncu/${p}_$c.details.txt 2>&1
  ncu --import $OUT/ncu/${p}_$c.ncu-rep --page source --csv --print-source sass > $OUT/ncu/${p}_$c.sass.csv 2>/dev/null
done
ls -la $OUT/ncu
