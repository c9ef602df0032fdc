"""Prefill over quantized K/V caches on the tensor-core engines (src/codegen/cuda/dequant-tile.ts)
on the GPU: builds the artifacts of bench/cuda/quant-prefill-emit.mjs, checks every one against a
PyTorch reference over the dequantized K/V (small ragged GQA shapes in float32, then the timed
shape against SDPA over the same values in bf16), then times bf16 vs int8 / e4m3 / int4 K/V at
Nq = Nk = 16384, B 2, H 16, D 128, full and causal (target: int8 within 10% of bf16), each
quantized format on wgmma-ws with the pipelined producer (default) and the serial one.

    npx tsc -p tsconfig.json && node bench/cuda/quant-prefill-emit.mjs          # here
    python3 bench/cuda/quant-prefill.py --build bench/build/cuda-quant-prefill  # on the GPU (< 240 s)

Results: $OUT/quant-prefill.json (checks, timings, ratio to bf16 of the same mask).
"""
import argparse
import ctypes
import json
import math
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import torch

sys.path.insert(0, os.path.dirname(__file__))
from artifact import Kernel  # noqa: E402

QMAX = {'int8': 127.0, 'int4': 7.0, 'e4m3': 448.0}


def build(d, e):
    so = os.path.join(d, e['variant'] + '.so')
    nvcc = shutil.which('nvcc') or '/usr/local/cuda/bin/nvcc'
    cmd = [nvcc, '-O3', '-arch=sm_90a', '-std=c++17', '--shared', '-Xcompiler', '-fPIC', '-o', so,
           os.path.join(d, e['variant'] + '.cu')]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode:
        raise SystemExit(f'nvcc failed for {e["name"]}:\n{r.stderr[-3000:]}')


def pack(codes, bits):
    """[..., D] integer codes (low `bits` bits used) → [..., D·bits/32] int32 words, channel c at
    bits (c % per)·bits of word c / per (docs/LANGUAGE.md, Layout)."""
    per = 32 // bits
    c = (codes.to(torch.int64) & ((1 << bits) - 1)).reshape(*codes.shape[:-1], codes.shape[-1] // per, per)
    shifts = torch.arange(per, device=codes.device, dtype=torch.int64) * bits
    w = (c << shifts).sum(-1)
    return torch.where(w >= 2 ** 31, w - 2 ** 32, w).to(torch.int32).contiguous()


def quantize(x, fmt):
    """x: [B, Hkv, N, D] float32. Returns (codes int32 words, per-token f32 scale [B, Hkv, N],
    the dequantized values in the language's order: code · scale, in f32)."""
    s = (x.abs().amax(-1) / QMAX[fmt]).clamp_min(1e-30).float().contiguous()
    y = x / s[..., None]
    if fmt == 'e4m3':
        f = y.to(torch.float8_e4m3fn)
        return f.view(torch.uint8).contiguous().view(torch.int32), s, f.float() * s[..., None]
    bits = 8 if fmt == 'int8' else 4
    q = torch.round(y).clamp(-QMAX[fmt], QMAX[fmt])
    return pack(q.to(torch.int32), bits), s, q * s[..., None]


class Run:
    """One kernel's inputs and args for one shape; `launch()` runs it on the current stream."""

    def __init__(self, kern, e, case, seed):
        B, H, Hkv, Nq, Nk, D = (case[x] for x in ('B', 'H', 'Hkv', 'Nq', 'Nk', 'D'))
        g = torch.Generator(device='cuda').manual_seed(seed)
        self.q = torch.randn(B, H, Nq, D, generator=g, device='cuda').to(torch.bfloat16)
        raw = {w: torch.randn(B, Hkv, Nk, D, generator=g, device='cuda') for w in ('k', 'v')}
        self.out = torch.full((B, H, Nq, D), float('nan'), dtype=torch.bfloat16, device='cuda')
        self.lse = torch.full((B, H, Nq), float('nan'), dtype=torch.float32, device='cuda')
        a = kern.Args()
        kern.init(ctypes.byref(a), B, H, Hkv, Nq, Nk)
        self.keep = []
        self.kv = {}  # the values the kernel attends over (f32)
        for w in ('k', 'v'):
            if e['fmt'] == 'bf16':
                t = raw[w].to(torch.bfloat16)
                self.kv[w] = t.float()
                setattr(a, kern.field(w), t.data_ptr())
                self.keep.append(t)
            else:
                words, scale, deq = quantize(raw[w], e['fmt'])
                self.kv[w] = deq
                setattr(a, kern.field(w), words.data_ptr())
                setattr(a, kern.field('cache', f'{w}_scale'), scale.data_ptr())
                self.keep += [words, scale]
        setattr(a, kern.field('q'), self.q.data_ptr())
        setattr(a, kern.field('out'), self.out.data_ptr())
        setattr(a, kern.field('lse'), self.lse.data_ptr())
        self.a, self.kern, self.case = a, kern, case

    def launch(self):
        code, msg = self.kern.launch(self.a, torch.cuda.current_stream().cuda_stream)
        if code:
            raise RuntimeError(msg)


def reference_f32(r, causal):
    """out and lse in float32 over the dequantized K/V (the kernel's own values)."""
    q = r.q.float()
    B, H, Nq, D = q.shape
    G = H // r.kv['k'].shape[1]
    k = r.kv['k'].repeat_interleave(G, dim=1)
    v = r.kv['v'].repeat_interleave(G, dim=1)
    s = torch.einsum('bhqd,bhkd->bhqk', q, k) / math.sqrt(D)
    if causal:
        Nk = k.shape[2]
        qp = torch.arange(Nq, device='cuda')[:, None] + r.a.q_offset
        kp = torch.arange(Nk, device='cuda')[None, :] + r.a.k_offset
        s = s.masked_fill(~(qp >= kp), float('-inf'))
    lse = torch.logsumexp(s, dim=-1)
    p = torch.exp(s - lse[..., None]).nan_to_num(0.0)
    return torch.einsum('bhqk,bhkd->bhqd', p, v), lse


def rel(a, b):
    return (a.float() - b.float()).abs().max().item() / max(b.float().abs().max().item(), 1e-6)


def check_small(kern, e, case):
    r = Run(kern, e, case, seed=case['Nk'])
    r.launch()
    torch.cuda.synchronize()
    ro, rl = reference_f32(r, e['mask'] == 'causal')
    nan = bool(torch.isnan(r.out).any())
    fin = torch.isfinite(rl)
    err_l = (r.lse[fin] - rl[fin]).abs().max().item()
    err_o = rel(r.out, ro)
    ok = not nan and err_o <= 2e-2 and err_l <= 2e-1
    return ok, f'out rel {err_o:.2e} lse abs {err_l:.2e} nan {nan}'


def check_big(r, e):
    """The timed shape against SDPA over the same K/V values (rounded to bf16, as the tiles are)."""
    r.launch()
    torch.cuda.synchronize()
    k, v = (r.kv[w].to(torch.bfloat16) for w in ('k', 'v'))
    ro = torch.nn.functional.scaled_dot_product_attention(r.q, k, v, is_causal=e['mask'] == 'causal')
    err = rel(r.out, ro)
    nan = bool(torch.isnan(r.out).any())
    return (not nan and err <= 2e-2), f'vs SDPA rel {err:.2e} nan {nan}'


def median_ms(fn, iters=15, warmup=3):
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
    ap.add_argument('--build', default='bench/build/cuda-quant-prefill')
    ap.add_argument('--out', default=os.environ.get('OUT', 'bench/build/quant-prefill-out'))
    opt = ap.parse_args()
    os.makedirs(opt.out, exist_ok=True)
    t0 = time.time()
    index = json.load(open(os.path.join(opt.build, 'index.json')))
    print(torch.cuda.get_device_name(), 'torch', torch.__version__, flush=True)
    with ThreadPoolExecutor(16) as ex:
        list(ex.map(lambda e: build(opt.build, e), index))
    print(f'built {len(index)} in {time.time() - t0:.0f} s', flush=True)
    results = {'checks': [], 'timings': []}
    small = [
        dict(B=1, H=4, Hkv=2, Nq=300, Nk=777, D=128),  # GQA, ragged tiles, bottom-right causal
        dict(B=2, H=2, Hkv=2, Nq=129, Nk=129, D=128),
    ]
    big = dict(B=2, H=16, Hkv=16, Nq=16384, Nk=16384, D=128)
    flops = 4 * big['B'] * big['H'] * big['Nq'] * big['Nk'] * big['D']
    fails = 0
    kerns = {e['name']: Kernel(opt.build, e) for e in index}
    for e in index:
        for c in small:
            ok, msg = check_small(kerns[e['name']], e, c)
            fails += not ok
            print(f'{"OK  " if ok else "FAIL"} {e["name"]} {c}: {msg}', flush=True)
            results['checks'].append({'name': e['name'], 'case': c, 'ok': ok, 'msg': msg})
    for e in index:
        r = Run(kerns[e['name']], e, big, seed=1)
        ok, msg = check_big(r, e)
        fails += not ok
        print(f'{"OK  " if ok else "FAIL"} {e["name"]} 16K: {msg}', flush=True)
        results['checks'].append({'name': e['name'], 'case': big, 'ok': ok, 'msg': msg})
        ms = median_ms(r.launch)
        f = flops / (2 if e['mask'] == 'causal' else 1)
        row = {'name': e['name'], 'fmt': e['fmt'], 'mask': e['mask'], 'engine': e['engine'],
               'dequant': e.get('dequant'), 'blockK': e['blockK'], 'ms': ms, 'TFLOPs': f / ms / 1e9,
               'ok': ok}
        results['timings'].append(row)
        del r
        torch.cuda.empty_cache()
    base = {(t['mask'], t['engine']): t['ms'] for t in results['timings'] if t['fmt'] == 'bf16'}
    for t in results['timings']:
        b = base.get((t['mask'], t['engine']))
        t['vs_bf16'] = t['ms'] / b if b else None
        print(json.dumps(t), flush=True)
    print('\nfmt    mask    engine    producer   blockK      ms   TFLOP/s  x bf16')
    for t in results['timings']:
        vs = f"{t['vs_bf16']:.2f}" if t['vs_bf16'] else '-'
        print(f"{t['fmt']:6} {t['mask']:7} {t['engine']:9} {str(t['dequant'] or '-'):10} {t['blockK']:6} "
              f"{t['ms']:7.2f} {t['TFLOPs']:8.0f}  {vs}")
    results['seconds'] = time.time() - t0
    json.dump(results, open(os.path.join(opt.out, 'quant-prefill.json'), 'w'), indent=2)
    print('checks failed:', fails, f'({results["seconds"]:.0f} s)')
    sys.exit(1 if fails else 0)


if __name__ == '__main__':
    main()
