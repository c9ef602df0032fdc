#!/bin/bash
# The committed table in one GPU-machine call (carry bench/build): build every variant of
# bench/cuda/tune-list.mjs, check each against the PyTorch reference, run compute-sanitizer
# memcheck + racecheck on every benchmark variant (and the residue-permutation checks), then the
# autotuned timings beside FlexAttention and SDPA. Emit first, here:
#   npm run build && node bench/cuda/emit.mjs --engine wgmma --list bench/cuda/tune-list.mjs --out bench/build/cuda-table
# then on the GPU machine: bash bench/cuda/run-table.sh [sizes]   (default 4096,16384,32768;
# BUILD=dir times another emitted list, e.g. bench/cuda/doc-list.mjs's)
# PHASE=check runs only build + check + sanitizer; PHASE=table only the timings, reading the
# check result from $CHECK_JSON (default $OUT/cuda-check.json). ONLY=a,b restricts both to the
# variants whose names contain a or b, e.g. the issue-13 rows:
#   ONLY=std_softcap,std_neighbourhood bash bench/cuda/run-table.sh 4096,16384
# or ONLY=round2 (below) for issue 13's second round, in two calls (check, then table).
set -o pipefail
export PYTHONUNBUFFERED=1
OUT=${OUT:-bench/build/table-out}
SIZES=${1:-4096,16384,32768}
B=${BUILD:-bench/build/cuda-table}
PHASE=${PHASE:-all}
ONLY=${ONLY:-}
# ONLY=round2: issue 13's second round, the wgmma-ws variants of tune-list.mjs (ballot scans,
# FlashAttention-3 consumers, the producer's tile walk) beside the default (33 variants; the
# sink_window default is wg_q64_k64_ballot now).
if [ "$ONLY" = round2 ]; then
  ONLY=
  for p in full causal sliding_window sink_window prefix_lm document softcap; do ONLY=$ONLY,std_${p}__ws_,std_${p}__default; done
  ONLY=${ONLY#,}
fi
CHECK_S=${CHECK_S:-300}
TABLE_S=${TABLE_S:-240}
mkdir -p $OUT
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,temperature.gpu --format=csv | tee $OUT/gpu.txt
if [ "$PHASE" != table ]; then
  timeout $((CHECK_S + 40)) python3 bench/cuda/check.py --build $B --out $OUT --no-perf --budget $CHECK_S --only "$ONLY" \
    --sanitize perf,res_dilated3_bf16_d128,res_dilated3_mma_f16_d128,res_dilated_window_bf16_d64 --sanitize-jobs 8 2>&1 \
    | grep -v "^memcheck\|^racecheck" | tail -70
fi
if [ "$PHASE" != check ]; then
  CHECK_JSON=${CHECK_JSON:-$OUT/cuda-check.json}
  # Without a build here (a table-only call on a fresh machine), build the timed variants again.
  ls $B/*.so >/dev/null 2>&1 || python3 - "$B" <<'PY'
import json, sys, concurrent.futures
sys.path.insert(0, 'bench/cuda')
from check import build
b = sys.argv[1]
ix = [e for e in json.load(open(f'{b}/index.json')) if e.get('perf')]
with concurrent.futures.ThreadPoolExecutor(16) as pool:
    print(sum(r['ok'] for r in pool.map(lambda e: build(b, e), ix)), 'of', len(ix), 'built')
PY
  timeout $((TABLE_S + 120)) python3 bench/cuda/table.py --build $B --check $CHECK_JSON --out $OUT --sizes $SIZES --only "$ONLY" \
    --budget $TABLE_S > $OUT/table.log 2>&1
  tail -30 $OUT/table.log
fi
