#!/usr/bin/env bash
# Where Node is (after `npm run build`): compiles the benchmark's kernels and their ring variants
# into bench/cp/.artifacts/cache (carry that folder to the GPU machine; bench_cp.py reads it).
set -euo pipefail
cd "$(dirname "$0")/../.."
python3 - <<'PY'
import sys
sys.path.insert(0, 'python')
from attnc.build import BuildOptions
from attnc.distributed_build import compile_cp
for dim in (64, 128):
    for path in ('stdlib/causal.attn', 'stdlib/document.attn'):
        print(*compile_cp(path, BuildOptions(dtype='bf16', head_dim=dim), cache='bench/cp/.artifacts/cache'))
PY
