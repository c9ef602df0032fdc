#!/usr/bin/env python3
"""One dense prefill call (full or causal, bf16, B 2, H 16, D 128, as bench/cuda/table.py times it)
of a chosen wgmma-ws variant, for Nsight Compute. Emit the variants first (on a machine with Node):
  npm run build && node bench/cuda/emit.mjs --engine wgmma --list bench/cuda/dense-list.mjs --out bench/build/cuda-dense
then on the GPU machine (the .so is built here with nvcc when missing):
  ncu --kernel-name regex:attnc --launch-count 1 --set full --import-source yes -o $OUT/full_default \\
      python3 bench/cuda/dense-ncu.py --pattern full --candidate default [--S 16384]
The output is compared with SDPA after the launch (outside the profiled kernel's regex), so a
report of a wrong kernel is flagged. --iters N also times N launches with CUDA events (no ncu)."""
import argparse
import json
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from artifact import Kernel, setup  # noqa: E402
from check import build  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument('--build', default='bench/build/cuda-dense')
ap.add_argument('--pattern', choices=['full', 'causal'], default='full')
ap.add_argument('--candidate', default='default', help='tune-list candidate id: default, ws_fa3, ws_overlap, ...')
ap.add_argument('--S', type=int, default=16384)
ap.add_argument('--iters', type=int, default=0)
ap.add_argument('--json', default=None, help='append a result line (JSON) to this file')
a = ap.parse_args()

variant = f'std_{a.pattern}__{a.candidate}_bf16_d128'
with open(os.path.join(a.build, 'index.json')) as f:
    index = json.load(f)
entry = next((x for x in index if x['variant'] == variant), None)
if entry is None:
    sys.exit(f'{variant}: not in {a.build}/index.json; have ' + ', '.join(x['variant'] for x in index))
if not os.path.exists(os.path.join(a.build, variant + '.so')):
    b = build(a.build, entry)
    if not b['ok']:
        sys.exit(b['log'])
kern = Kernel(a.build, entry)
B, H, D, S = 2, 16, 128, a.S
case = dict(label=f'S={S}', B=B, H=H, Hkv=H, Nq=S, Nk=S)
t, args, *_ = setup(kern, entry, case, 'cuda', 1234, perf_len=S)
stream = torch.cuda.current_stream().cuda_stream
code, msg = kern.launch(args, stream)
torch.cuda.synchronize()
ref = torch.nn.functional.scaled_dot_product_attention(t['q'], t['k'], t['v'], is_causal=a.pattern == 'causal')
err = ((t['out'].float() - ref.float()).norm() / ref.float().norm()).item()
res = dict(variant=variant, S=S, launch=code, message=msg, rel_vs_sdpa=err, ok=code == 0 and err < 2e-2)
if a.iters and res['ok']:
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    for _ in range(3):
        kern.launch(args, stream)
    times = []
    for _ in range(a.iters):
        start.record()
        kern.launch(args, stream)
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    ms = sorted(times)[len(times) // 2]
    flops = 4 * B * H * S * S * D * (0.5 if a.pattern == 'causal' else 1.0)
    res.update(ms=round(ms, 4), tflops=round(flops / ms / 1e9, 1))
print(json.dumps(res), flush=True)
if a.json:
    with open(a.json, 'a') as f:
        f.write(json.dumps(res) + '\n')
sys.exit(0 if res['ok'] else 1)
