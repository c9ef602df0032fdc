"""The importance output (src/codegen/cuda/importance.ts) on the GPU: builds the artifacts of
bench/cuda/importance-emit.mjs, checks `importance` against a float32 PyTorch reference (decode
and prefill shapes, GQA, offsets, rows before every key), then times decode (B=4, H=32, Hkv=8,
D=128 bf16, Nq=1, Nk=32K and 128K) and a 4K prefill with and without the importance pass.

    npm run build && node bench/cuda/importance-emit.mjs                 # here
    python3 bench/cuda/importance.py --build bench/build/cuda-importance  # on the GPU machine
Results: $OUT/importance.json (default bench/build/importance-out).
"""
import argparse
import ctypes
import json
import math
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import torch

sys.path.insert(0, os.path.dirname(__file__))
from artifact import Kernel  # noqa: E402
from decode import median_ms  # noqa: E402

DT = {'f32': torch.float32, 'bf16': torch.bfloat16}
WINDOW = 1024


def build(d, e):
    so = os.path.join(d, e['variant'] + '.so')
    nvcc = shutil.which('nvcc') or '/usr/local/cuda/bin/nvcc'
    cmd = [nvcc, '-O3', '-arch=sm_90a', '-std=c++17', '--shared', '-Xcompiler', '-fPIC', '-o', so,
           os.path.join(d, e['variant'] + '.cu')]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode:
        raise SystemExit(f'nvcc failed for {e["name"]}:\n{r.stderr[-3000:]}')


def reference(e, q, k, q_off, k_off):
    """[B, H, Nk] importance in float32: sum (or mean over the rows that may see the key) of p."""
    B, H, Nq, D = q.shape
    Hkv, Nk = k.shape[1], k.shape[2]
    kf = k.float().repeat_interleave(H // Hkv, dim=1)
    s = torch.einsum('bhqd,bhkd->bhqk', q.float(), kf) * (1.0 / math.sqrt(D))
    qp = torch.arange(Nq, device=q.device)[:, None] + q_off
    kp = torch.arange(Nk, device=q.device)[None, :] + k_off
    allowed = qp >= kp
    if e['file'] == 'sliding_window':
        allowed &= (qp - kp) < WINDOW
    s = s.masked_fill(~allowed, float('-inf'))
    lse = torch.logsumexp(s, dim=-1)
    p = torch.exp(s - lse[..., None]).nan_to_num(0.0)
    imp = p.sum(dim=2)
    if e['importance'] == 'normalized':
        seen = allowed.sum(dim=0).float()
        imp = torch.where(seen > 0, imp / seen.clamp(min=1), torch.zeros_like(imp))
    return imp


def run(kern, e, case, dev, seed=0):
    B, H, Hkv, Nq, Nk, D = (case[x] for x in ('B', 'H', 'Hkv', 'Nq', 'Nk', 'D'))
    dt = DT[e['dtype']]
    g = torch.Generator().manual_seed(seed)
    t = dict(
        q=torch.randn(B, H, Nq, D, generator=g).to(dev, dt),
        k=torch.randn(B, Hkv, Nk, D, generator=g).to(dev, dt),
        v=torch.randn(B, Hkv, Nk, D, generator=g).to(dev, dt),
        out=torch.full((B, H, Nq, D), float('nan'), dtype=dt, device=dev),
        lse=torch.full((B, H, Nq), float('nan'), dtype=torch.float32, device=dev),
        importance=torch.full((B, H, Nk), float('nan'), dtype=torch.float32, device=dev),
    )
    a = kern.Args()
    kern.init(ctypes.byref(a), B, H, Hkv, Nq, Nk)
    for x in ('q_offset', 'k_offset'):
        if x in case:
            setattr(a, x, case[x])
    if e['file'] == 'sliding_window':
        setattr(a, kern.field('param', 'window'), WINDOW)
    for role, x in t.items():
        if role in kern.by_role:
            setattr(a, kern.field(role), x.data_ptr())
    stream = torch.cuda.current_stream().cuda_stream

    def launch():
        code, msg = kern.launch(a, stream)
        if code:
            raise RuntimeError(msg)
    return t, a, launch


def check(kern, e, case, dev):
    t, a, launch = run(kern, e, case, dev, seed=case['Nk'])
    launch()
    torch.cuda.synchronize()
    ref = reference(e, t['q'], t['k'], a.q_offset, a.k_offset)
    got = t['importance']
    nan = bool(torch.isnan(got).any())
    err = (got - ref).abs().max().item() / max(ref.abs().max().item(), 1e-30)
    tol = 1e-5 if e['dtype'] == 'f32' else 2e-2
    return (not nan and err <= tol), f'importance rel {err:.2e} nan {nan}'


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--build', default='bench/build/cuda-importance')
    ap.add_argument('--out', default=os.environ.get('OUT', 'bench/build/importance-out'))
    opt = ap.parse_args()
    os.makedirs(opt.out, exist_ok=True)
    index = json.load(open(os.path.join(opt.build, 'index.json')))
    dev = 'cuda'
    print(torch.cuda.get_device_name(), 'torch', torch.__version__, flush=True)
    with ThreadPoolExecutor(16) as ex:
        list(ex.map(lambda e: build(opt.build, e), index))
    kerns = {e['name']: Kernel(opt.build, e) for e in index}
    results = {'device': torch.cuda.get_device_name(), 'checks': [], 'timings': []}
    cases = [
        dict(B=2, H=8, Hkv=2, Nq=1, Nk=40000),
        dict(B=1, H=6, Hkv=2, Nq=5, Nk=3001, q_offset=1500),
        dict(B=1, H=4, Hkv=4, Nq=300, Nk=1030),
        dict(B=1, H=6, Hkv=2, Nq=3, Nk=2048, q_offset=-10),  # rows before every key: empty
        dict(B=1, H=4, Hkv=1, Nq=2, Nk=4096, q_offset=5000, k_offset=700),
    ]
    fails = 0
    for e in index:
        if e['importance'] == 'none':
            continue
        for c in cases:
            ok, msg = check(kerns[e['name']], e, dict(c, D=e['D']), dev)
            fails += not ok
            print(f'{"OK  " if ok else "FAIL"} {e["name"]} {c}: {msg}', flush=True)
            results['checks'].append({'name': e['name'], 'case': c, 'ok': ok, 'msg': msg})
    timed = [dict(B=4, H=32, Hkv=8, Nq=1, Nk=32768, D=128), dict(B=4, H=32, Hkv=8, Nq=1, Nk=131072, D=128),
             dict(B=1, H=32, Hkv=8, Nq=4096, Nk=4096, D=128)]
    for case in timed:
        for e in index:
            if e['dtype'] != 'bf16':
                continue
            _, _, launch = run(kerns[e['name']], e, case, dev)
            ms = median_ms(launch, iters=30)
            row = {'name': e['name'], 'case': case, 'ms': ms}
            results['timings'].append(row)
            print(f'{e["name"]:40s} {case}: {ms:.3f} ms', flush=True)
    with open(os.path.join(opt.out, 'importance.json'), 'w') as f:
        json.dump(results, f, indent=2)
    print('FAILED checks:', fails if fails else 'none')
    sys.exit(1 if fails else 0)


if __name__ == '__main__':
    main()
