"""Decode mode (split-KV + lse merge, src/codegen/cuda/decode.ts) on the GPU: builds the artifacts
of bench/cuda/decode-emit.mjs, checks them against a float32 PyTorch reference (decode shapes,
GQA, offsets, empty rows), then times Nq=1, Nk=131072, H=32, Hkv=8, D=128 bf16 (B = 1 and 4) beside SDPA and
FlexAttention (decoding), the same artifact with decode mode off (ATTNC_DECODE=0) and, for kernels
with the tensor-core decode kernel (decode-mma.ts: full), with it off (ATTNC_DECODE_MMA=0: the SIMT one).

    npm run build && node bench/cuda/decode-emit.mjs     # here
    python3 bench/cuda/decode.py --build bench/build/cuda-decode   # on the GPU machine
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

DT = {'f32': torch.float32, 'bf16': torch.bfloat16, 'f16': torch.float16}
PARAMS = {'sliding_window': {'window': 1024}, 'softcap': {'cap': 50.0}}


def build(d, e, suffix=''):
    so = os.path.join(d, e['variant'] + suffix + '.so')
    nvcc = shutil.which('nvcc') or '/usr/local/cuda/bin/nvcc'
    cmd = [nvcc, '-O3', '-arch=sm_90a', '-std=c++17', '--shared', '-Xcompiler', '-fPIC', '-o', so,
           os.path.join(d, e['variant'] + '.cu')]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode:
        raise SystemExit(f'nvcc failed for {e["name"]}:\n{r.stderr[-3000:]}')
    if suffix:  # a second copy: its own statics (ATTNC_DECODE is read once per library)
        return so
    return so


def load(d, e, suffix=''):
    entry = dict(e, variant=e['variant'] + suffix)
    return Kernel(d, entry)


def reference(e, q, k, v, q_off, k_off, params):
    B, H, Nq, D = q.shape
    Hkv, Nk = k.shape[1], k.shape[2]
    G = H // Hkv
    kf = k.float().repeat_interleave(G, dim=1)
    vf = v.float().repeat_interleave(G, dim=1)
    s = torch.einsum('bhqd,bhkd->bhqk', q.float(), kf) * (1.0 / math.sqrt(D))
    qp = torch.arange(Nq, device=q.device)[:, None] + q_off
    kp = torch.arange(Nk, device=q.device)[None, :] + k_off
    f = e['file']
    allowed = torch.ones(Nq, Nk, dtype=torch.bool, device=q.device)
    if f in ('causal', 'sliding_window', 'softcap'):
        allowed &= qp >= kp
    if f == 'sliding_window':
        allowed &= (qp - kp) < params['window']
    if f == 'softcap':
        cap = params['cap']
        s = cap * torch.tanh(s / cap)
    s = s.masked_fill(~allowed, float('-inf'))
    lse = torch.logsumexp(s, dim=-1)
    p = torch.exp(s - lse[..., None]).nan_to_num(0.0)
    out = torch.einsum('bhqk,bhkd->bhqd', p, vf)
    return out, lse


def run(kern, e, case, params, dev, seed=0):
    B, H, Hkv, Nq, Nk, D = (case[x] for x in ('B', 'H', 'Hkv', 'Nq', 'Nk', 'D'))
    dt = DT[e['dtype']]
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(B, H, Nq, D, generator=g).to(dev, dt)
    k = torch.randn(B, Hkv, Nk, D, generator=g).to(dev, dt)
    v = torch.randn(B, Hkv, Nk, D, generator=g).to(dev, dt)
    out = torch.full((B, H, Nq, D), float('nan'), dtype=dt, device=dev)
    lse = torch.full((B, H, Nq), float('nan'), dtype=torch.float32, device=dev)
    a = kern.Args()
    kern.init(ctypes.byref(a), B, H, Hkv, Nq, Nk)
    if 'q_offset' in case:
        a.q_offset = case['q_offset']
    if 'k_offset' in case:
        a.k_offset = case['k_offset']
    for n, val in params.items():
        setattr(a, kern.field('param', n), val)
    for role, t in (('q', q), ('k', k), ('v', v), ('out', out), ('lse', lse)):
        setattr(a, kern.field(role), t.data_ptr())
    stream = torch.cuda.current_stream().cuda_stream

    def launch():
        code, msg = kern.launch(a, stream)
        if code:
            raise RuntimeError(msg)
    return q, k, v, out, lse, a, launch


def check(kern, e, case, dev):
    params = PARAMS.get(e['file'], {})
    q, k, v, out, lse, a, launch = run(kern, e, case, params, dev, seed=case['Nk'])
    launch()
    torch.cuda.synchronize()
    ro, rl = reference(e, q, k, v, a.q_offset, a.k_offset, params)
    o = out.float()
    tol = 2e-2 if e['dtype'] != 'f32' else 1e-4
    nan = bool(torch.isnan(o).any() or torch.isnan(lse).any())
    err_o = (o - ro).abs().max().item() / max(ro.abs().max().item(), 1e-6)
    fin = torch.isfinite(rl)
    same_inf = bool(torch.equal(fin, torch.isfinite(lse)))
    err_l = (lse[fin] - rl[fin]).abs().max().item() if fin.any() else 0.0
    ok = not nan and same_inf and err_o <= tol and err_l <= tol * 10
    return ok, f'out rel {err_o:.2e} lse abs {err_l:.2e} nan {nan} inf-match {same_inf}'


def median_ms(fn, iters=50, warmup=5):
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(iters):
        s, t = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record()
        fn()
        t.record()
        t.synchronize()
        ts.append(s.elapsed_time(t))
    ts.sort()
    return ts[len(ts) // 2]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--build', default='bench/build/cuda-decode')
    ap.add_argument('--out', default=os.environ.get('OUT', 'bench/build/decode-out'))
    opt = ap.parse_args()
    os.makedirs(opt.out, exist_ok=True)
    index = json.load(open(os.path.join(opt.build, 'index.json')))
    dev = 'cuda'
    print(torch.cuda.get_device_name(), 'torch', torch.__version__, flush=True)
    with ThreadPoolExecutor(16) as ex:
        list(ex.map(lambda e: build(opt.build, e), index))
    for e in index:  # a copy of the bf16 libraries to time with decode mode off
        if e['dtype'] == 'bf16':
            for suffix in ('_off', '_simt'):
                shutil.copy(os.path.join(opt.build, e['variant'] + '.so'),
                            os.path.join(opt.build, e['variant'] + suffix + '.so'))
    print('built', len(index), flush=True)
    results = {'checks': [], 'timings': []}
    cases = [
        dict(B=1, H=32, Hkv=8, Nq=1, Nk=131072),
        dict(B=2, H=8, Hkv=2, Nq=5, Nk=3001, q_offset=1500),
        dict(B=1, H=4, Hkv=4, Nq=16, Nk=1030),
        dict(B=1, H=6, Hkv=2, Nq=3, Nk=2048, q_offset=-10),  # causal rows before every key: empty
        dict(B=1, H=4, Hkv=1, Nq=2, Nk=4096, q_offset=5000, k_offset=700),
    ]
    kerns = {}
    fails = 0
    for e in index:
        kern = load(opt.build, e)
        kerns[e['name']] = kern
        for c in cases:
            case = dict(c, D=e['D'])
            ok, msg = check(kern, e, case, dev)
            fails += not ok
            line = f'{"OK  " if ok else "FAIL"} {e["name"]} {c}: {msg}'
            print(line, flush=True)
            results['checks'].append({'name': e['name'], 'case': c, 'ok': ok, 'msg': msg})
    # Timings: Nq=1 Nk=131072 H=32 Hkv=8 D=128 bf16.
    from torch.nn.attention.flex_attention import create_block_mask, flex_attention
    flex = torch.compile(flex_attention)
    # B = 1 and the issue 13 shape, B = 4 (H 32 / Hkv 8, D 128, Nk 128K).
    for case in (dict(B=1, H=32, Hkv=8, Nq=1, Nk=131072, D=128), dict(B=4, H=32, Hkv=8, Nq=1, Nk=131072, D=128)):
        Nk = case['Nk']
        bytes_kv = 2 * case['B'] * case['Hkv'] * Nk * case['D'] * 2
        for e in index:
            if e['dtype'] != 'bf16' or e['file'] == 'softcap':
                continue
            params = PARAMS.get(e['file'], {})
            row = {'name': e['name'], 'B': case['B']}
            q, k, v, out, lse, a, launch = run(kerns[e['name']], e, case, params, dev)
            row['attnc_decode_ms'] = median_ms(launch)
            os.environ['ATTNC_DECODE'] = '0'
            off = load(opt.build, e, '_off')
            _, _, _, _, _, _, launch_off = run(off, e, case, params, dev)
            row['attnc_no_decode_ms'] = median_ms(launch_off)
            del os.environ['ATTNC_DECODE']
            # The SIMT split kernel (read once per library, at its first launch: its own copy).
            os.environ['ATTNC_DECODE_MMA'] = '0'
            simt = load(opt.build, e, '_simt')
            _, _, _, _, _, _, launch_simt = run(simt, e, case, params, dev)
            row['attnc_simt_decode_ms'] = median_ms(launch_simt)
            del os.environ['ATTNC_DECODE_MMA']
            off_q = Nk - 1

            def sdpa():
                return torch.nn.functional.scaled_dot_product_attention(q, k, v, enable_gqa=True)
            if e['file'] == 'full' or e['file'] == 'causal':
                row['sdpa_ms'] = median_ms(sdpa)  # at Nq=1 bottom-right causal = full
            try:
                if e['file'] == 'sliding_window':
                    W = params['window']
                    mm = lambda b, h, qi, ki: (qi + off_q >= ki) & (qi + off_q - ki < W)  # noqa: E731
                    bm = create_block_mask(mm, None, None, 1, Nk, device=dev)
                elif e['file'] == 'causal':
                    bm = create_block_mask(lambda b, h, qi, ki: qi + off_q >= ki, None, None, 1, Nk, device=dev)
                else:
                    bm = None
                row['flex_ms'] = median_ms(lambda: flex(q, k, v, block_mask=bm, enable_gqa=True), iters=30)
                fo = flex(q, k, v, block_mask=bm, enable_gqa=True)
                launch()
                torch.cuda.synchronize()
                row['flex_vs_attnc_max_abs'] = (fo.float() - out.float()).abs().max().item()
            except Exception as ex:  # report, keep going
                row['flex_error'] = str(ex)[:300]
            row['attnc_GBps'] = bytes_kv / row['attnc_decode_ms'] / 1e6
            print(json.dumps(row), flush=True)
            results['timings'].append(row)
    json.dump(results, open(os.path.join(opt.out, 'decode.json'), 'w'), indent=2)
    print('checks failed:', fails)


if __name__ == '__main__':
    main()
