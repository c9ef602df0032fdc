"""One NSA-style routing call at 64K (as bench/cuda/routing.py times it), for Nsight Compute:
  ncu --kernel-name regex:route_topk_tc --launch-count 1 --section SpeedOfLight ... \\
      python3 bench/cuda/routing-ncu.py --build bench/build/cuda-routing [--S 65536] [--H 16]
(B 1, H query heads over 4 kv heads, random queries as routing.py draws them.)"""
import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
from artifact import Kernel  # noqa: E402
from routing import run_kernel  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument('--build', default='bench/build/cuda-routing')
ap.add_argument('--variant', default='nsa_select_wgmma_bf16_d128')
ap.add_argument('--S', type=int, default=65536)
ap.add_argument('--H', type=int, default=16)
a = ap.parse_args()
with open(os.path.join(a.build, 'index.json')) as f:
    e = next(x for x in json.load(f) if x['variant'] == a.variant)
kern = Kernel(a.build, e)
t = run_kernel(kern, dict(B=1, H=a.H, Hkv=4, Nq=a.S, Nk=a.S), torch.bfloat16, e['headDim'], torch.device('cuda'), seed=7)
code, msg = kern.launch(t['args'], 0)
torch.cuda.synchronize()
print('launch', code, msg)
