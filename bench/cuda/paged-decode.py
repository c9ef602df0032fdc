"""Paged vs contiguous bf16 decode on the GPU (issue #10: paged within 5% of contiguous).

Builds the artifacts of bench/cuda/paged-decode-emit.mjs (contiguous causal decode, and the paged
kernel with pages of 16 and of 64 rows), then per Nk in (32K, 128K), B = 4, H = 32, Hkv = 8,
D = 128, one query: fills a page pool in a random page order (HND pages [pages, Hkv, P, D]) with
the contiguous cache's rows, checks first (contiguous against a float32 torch reference at 32K;
every paged output against the contiguous one, same splits so bit for bit, and within bf16
tolerance), then times each (CUDA events, median of 50 after 10 warm-ups) and reports ms, GB/s
of the K/V bytes read, and paged / contiguous. About 60 s (nvcc builds in parallel, ~20 s).

    npm run build && node bench/cuda/paged-decode-emit.mjs           # here
    python3 bench/cuda/paged-decode.py --build bench/build/cuda-paged --out $OUT   # on the GPU
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from artifact import Kernel  # noqa: E402

B, H, HKV, D = 4, 32, 8, 128


def build(d, e):
    so = os.path.join(d, e['variant'] + '.so')
    nvcc = shutil.which('nvcc') or '/usr/local/cuda/bin/nvcc'
    cmd = [nvcc, '-O3', '-arch=sm_90a', '-std=c++17', '--shared', '-Xcompiler', '-fPIC', '-o', so, os.path.join(d, e['variant'] + '.cu')]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode:
        raise SystemExit(f'nvcc failed for {e["name"]}:\n{r.stderr[-3000:]}')


def paged_pools(k, v, P, gen):
    """k and v [B, Hkv, Nk, D] as pools of HND pages [pages, Hkv, P, D] in one random page order
    (NaN in the spare pages and past Nk), and their [B, max_pages] block table."""
    Bk, Hkv, Nk, Dk = k.shape
    n_pages = (Nk + P - 1) // P
    pool_size = Bk * n_pages + 3  # spare pages: ids need not be dense
    ids = torch.randperm(pool_size, generator=gen)[: Bk * n_pages].to(k.device)

    def pool(x):
        padded = torch.full((Bk, Hkv, n_pages * P, Dk), float('nan'), dtype=x.dtype, device=x.device)
        padded[:, :, :Nk] = x
        pages = padded.view(Bk, Hkv, n_pages, P, Dk).permute(0, 2, 1, 3, 4).reshape(Bk * n_pages, Hkv, P, Dk)
        out = torch.full((pool_size, Hkv, P, Dk), float('nan'), dtype=x.dtype, device=x.device)
        out[ids] = pages
        return out

    return pool(k), pool(v), ids.view(Bk, n_pages).to(torch.int32).contiguous()


def run(kern, q, k, v, out, lse, Nk, table=None):
    args = kern.new_args(dict(B=B, H=H, Hkv=HKV, Nq=1, Nk=Nk))
    for role, t in (('q', q), ('k', k), ('v', v), ('out', out), ('lse', lse)):
        kern.set_pointer(args, role, t.data_ptr())
    if table is not None:
        setattr(args, kern.field('block_table'), table.data_ptr())
    stream = torch.cuda.current_stream().cuda_stream
    return lambda: kern.launch_or_raise(args, stream)


def time_ms(fn, warm=10, reps=50):
    for _ in range(warm):
        fn()
    times = []
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b))
    return sorted(times)[len(times) // 2]


def reference(q, k, v):
    kk, vv = (x.float().repeat_interleave(H // HKV, dim=1) for x in (k, v))
    s = (q.float() @ kk.transpose(-1, -2)) / D**0.5  # one query at the last position: causal = full
    return torch.softmax(s, dim=-1) @ vv


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--build', default='bench/build/cuda-paged')
    ap.add_argument('--out', default=os.environ.get('OUT', '.'))
    a = ap.parse_args()
    t0 = time.time()
    index = json.load(open(os.path.join(a.build, 'index.json')))
    with ThreadPoolExecutor(len(index)) as pool:
        list(pool.map(lambda e: build(a.build, e), index))
    kernels = {e['name']: (e, Kernel(a.build, e)) for e in index}
    gen = torch.Generator().manual_seed(0)
    rows = []
    for Nk in (32768, 131072):
        torch.manual_seed(Nk)
        q = torch.randn(B, H, 1, D, device='cuda').to(torch.bfloat16)
        k, v = (torch.randn(B, HKV, Nk, D, device='cuda').to(torch.bfloat16) for _ in range(2))
        bytes_read = 2 * B * HKV * Nk * D * 2
        outs, fns = {}, {}
        for name, (e, kern) in kernels.items():
            out = torch.empty(B, H, 1, D, dtype=torch.bfloat16, device='cuda')
            lse = torch.empty(B, H, 1, dtype=torch.float32, device='cuda')
            if e['page']:
                kp, vp, table = paged_pools(k, v, e['page'], gen)
                fns[name] = run(kern, q, kp, vp, out, lse, Nk, table)
                keep = (kp, vp, table)
            else:
                fns[name] = run(kern, q, k, v, out, lse, Nk)
                keep = ()
            fns[name]()
            torch.cuda.synchronize()
            outs[name] = (out, lse, keep)
        base = outs['contiguous'][0]
        if Nk == 32768:
            err = ((base.float() - reference(q, k, v)).norm() / reference(q, k, v).norm()).item()
            assert err < 2e-2, f'contiguous decode disagrees with the torch reference: rel L2 {err}'
        for name, (out, _, _) in outs.items():
            assert torch.isfinite(out).all(), f'{name} Nk={Nk}: non-finite output (a read outside the pages?)'
            rel = ((out.float() - base.float()).norm() / base.float().norm()).item()
            assert rel < 1e-2, f'{name} Nk={Nk}: rel L2 {rel} from contiguous'
        ms = {name: time_ms(fn) for name, fn in fns.items()}
        for name in kernels:
            row = dict(kernel=name, Nk=Nk, B=B, H=H, Hkv=HKV, D=D, ms=ms[name], gbps=bytes_read / ms[name] / 1e6,
                       ratio_to_contiguous=ms[name] / ms['contiguous'], bitwise_equal_to_contiguous=bool(torch.equal(outs[name][0], base)))
            rows.append(row)
            print(json.dumps(row))
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, 'paged-decode.json'), 'w') as f:
        json.dump(dict(gpu=torch.cuda.get_device_name(), seconds=time.time() - t0, rows=rows), f, indent=2)
    print(f'wrote {os.path.join(a.out, "paged-decode.json")} in {time.time() - t0:.0f} s')


if __name__ == '__main__':
    main()
