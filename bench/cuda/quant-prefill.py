"""Prefill over quantized K/V caches on the tensor-core engines on the GPU: builds the artifacts of
bench/cuda/quant-prefill-emit.mjs, checks every entry against a PyTorch reference over the
dequantized K/V (small ragged GQA shapes in float32, then the timed shape against SDPA over the
same values in bf16; the staged path's workspace also bit for bit against torch's dequantized
values rounded to bf16), then times bf16 vs int8 / e4m3 / int4 / int2 K/V at Nq = Nk = 16384 (and
--n 32768), B 2, H 16, D 128, full and causal (target: int8 within 10% of bf16), each quantized
format fused (the wgmma-ws producer converts every tile) and staged (quant-stage.ts: a dequant
pass into a workspace, then the bf16 engine), and the dequant pass alone.

    npx tsc -p tsconfig.json && node bench/cuda/quant-prefill-emit.mjs          # here
    python3 bench/cuda/quant-prefill.py --build bench/build/cuda-quant-prefill  # on the GPU (< 300 s)

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

QMAX = {'int8': 127.0, 'int4': 7.0, 'int2': 1.0, 'e4m3': 448.0}
BITS = {'int8': 8, 'int4': 4, 'int2': 2}


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
    bits = BITS[fmt]
    # + 0.0: torch.round gives -0.0 for small negatives, but the kernel's code 0 times the scale
    # is +0.0 (the H200 run's only workspace mismatch: bf16 0x8000 vs 0x0000, same values).
    q = torch.round(y).clamp(-QMAX[fmt], QMAX[fmt]) + 0.0
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
        self.a, self.kern, self.case, self.mode = a, kern, case, e['mode']
        self.ws = None
        if self.mode == 'staged':
            self.ws = torch.empty(max(kern.workspace_size(a), 16), dtype=torch.uint8, device='cuda')

    def launch(self):
        stream = torch.cuda.current_stream().cuda_stream
        if self.mode == 'staged':
            code, msg = self.kern.launch_staged(self.a, self.ws.data_ptr(), self.ws.numel(), stream)
        else:
            code, msg = self.kern.launch(self.a, stream)
        if code:
            raise RuntimeError(msg)

    def dequantize(self):
        """The staged path's first pass alone (into self.ws)."""
        f = self.kern.lib[self.kern.m['functions']['dequantizeKv']]
        f.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]
        f.restype = ctypes.c_int
        code = f(ctypes.addressof(self.a), self.ws.data_ptr(), self.ws.numel(), torch.cuda.current_stream().cuda_stream)
        if code:
            raise RuntimeError(self.kern.err().decode())

    def workspace_exact(self):
        """Whether the workspace holds torch's dequantized K then V rounded to bf16, bit for bit."""
        B, Hkv, Nk, D = self.kv['k'].shape
        n = B * Hkv * Nk * D
        got = self.ws[: 4 * n].view(torch.bfloat16)
        want = torch.cat([self.kv['k'].to(torch.bfloat16).reshape(-1), self.kv['v'].to(torch.bfloat16).reshape(-1)])
        return bool(torch.equal(got.view(torch.int16), want.view(torch.int16)))


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
    exact = True
    if r.mode == 'staged' and case['Nq'] >= kern.m['staged']['minNq']:  # short launches run fused: no workspace
        exact = r.workspace_exact()
    ok = not nan and err_o <= 2e-2 and err_l <= 2e-1 and exact
    return ok, f'out rel {err_o:.2e} lse abs {err_l:.2e} nan {nan} workspace exact {exact}'


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


def time_shape(index, kerns, big, results):
    """Checks then times every entry at one shape; returns the number of failed checks."""
    flops = 4 * big['B'] * big['H'] * big['Nq'] * big['Nk'] * big['D']
    fails = 0
    for e in index:
        r = Run(kerns[e['name']], e, big, seed=1)
        ok, msg = check_big(r, e)
        if r.mode == 'staged':
            exact = r.workspace_exact()
            ok, msg = ok and exact, f'{msg} workspace exact {exact}'
        fails += not ok
        print(f'{"OK  " if ok else "FAIL"} {e["name"]} N={big["Nq"]}: {msg}', flush=True)
        results['checks'].append({'name': e['name'], 'case': big, 'ok': ok, 'msg': msg})
        ms = median_ms(r.launch)
        dq = median_ms(r.dequantize) if r.mode == 'staged' else None
        f = flops / (2 if e['mask'] == 'causal' else 1)
        results['timings'].append({'name': e['name'], 'N': big['Nq'], 'fmt': e['fmt'], 'mask': e['mask'],
                                   'mode': e['mode'], 'engine': e['engine'], 'blockK': e['blockK'], 'ms': ms,
                                   'dequant_ms': dq, 'TFLOPs': f / ms / 1e9, 'ok': ok})
        del r
        torch.cuda.empty_cache()
    return fails


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--build', default='bench/build/cuda-quant-prefill')
    ap.add_argument('--out', default=os.environ.get('OUT', 'bench/build/quant-prefill-out'))
    ap.add_argument('--n', default='16384', help='comma-separated Nq = Nk of the timed shapes')
    ap.add_argument('--budget', type=float, default=280.0, help='seconds; later shapes are skipped past it')
    opt = ap.parse_args()
    os.makedirs(opt.out, exist_ok=True)
    t0 = time.time()
    index = json.load(open(os.path.join(opt.build, 'index.json')))
    print(torch.cuda.get_device_name(), 'torch', torch.__version__, flush=True)
    variants = {e['variant']: e for e in index}
    with ThreadPoolExecutor(16) as ex:
        list(ex.map(lambda e: build(opt.build, e), variants.values()))
    print(f'built {len(variants)} in {time.time() - t0:.0f} s', flush=True)
    results = {'checks': [], 'timings': []}
    small = [
        dict(B=1, H=4, Hkv=2, Nq=300, Nk=777, D=128),  # GQA, ragged tiles, bottom-right causal
        dict(B=2, H=2, Hkv=2, Nq=129, Nk=129, D=128),
    ]
    fails = 0
    kerns = {e['name']: Kernel(opt.build, e) for e in index}
    for e in index:
        for c in small:
            ok, msg = check_small(kerns[e['name']], e, c)
            fails += not ok
            print(f'{"OK  " if ok else "FAIL"} {e["name"]} {c}: {msg}', flush=True)
            results['checks'].append({'name': e['name'], 'case': c, 'ok': ok, 'msg': msg})
    for n in (int(x) for x in opt.n.split(',')):
        if time.time() - t0 > opt.budget:
            print(f'skipping N = {n}: past the {opt.budget:.0f} s budget', flush=True)
            continue
        fails += time_shape(index, kerns, dict(B=2, H=16, Hkv=16, Nq=n, Nk=n, D=128), results)
    base = {(t['N'], t['mask']): t['ms'] for t in results['timings'] if t['fmt'] == 'bf16'}
    for t in results['timings']:
        b = base.get((t['N'], t['mask']))
        t['vs_bf16'] = t['ms'] / b if b else None
        print(json.dumps(t), flush=True)
    print('\n    N fmt    mask    mode    blockK      ms  dequant ms  TFLOP/s  x bf16')
    for t in results['timings']:
        vs = f"{t['vs_bf16']:.2f}" if t['vs_bf16'] else '-'
        dq = f"{t['dequant_ms']:.3f}" if t.get('dequant_ms') is not None else '-'
        print(f"{t['N']:5} {t['fmt']:6} {t['mask']:7} {t['mode']:7} {t['blockK']:6} "
              f"{t['ms']:7.2f} {dq:>10} {t['TFLOPs']:8.0f}  {vs}")
    results['seconds'] = time.time() - t0
    json.dump(results, open(os.path.join(opt.out, 'quant-prefill.json'), 'w'), indent=2)
    print('checks failed:', fails, f'({results["seconds"]:.0f} s)')
    sys.exit(1 if fails else 0)


if __name__ == '__main__':
    main()
