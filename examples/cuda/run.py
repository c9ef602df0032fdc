#!/usr/bin/env python3
"""Embedding attnc's CUDA output in PyTorch: `attnc compile --target cuda --out DIR` writes a .cu
(an extern "C" launcher), a .h and a JSON manifest; this script loads each with the attnc Python
package (python/attnc: `attnc.torch.load_artifact` builds the .cu with nvcc for this GPU, cached,
and wraps it as a torch custom op launched on PyTorch's current stream) and checks it against a
float64 PyTorch reference written independently here.

  npm run build && bash examples/cuda/emit.sh              # where Node is
  python3 examples/cuda/run.py [--build examples/cuda/build] [--out DIR]   # on the GPU machine
"""
import argparse
import math
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True  # no __pycache__ beside the sources
sys.path.insert(0, os.path.join(HERE, '..', '..', 'python'))
# torch and attnc.torch are imported by main() once the arguments are checked: --help and a
# missing build need no PyTorch, and its absence is one line, not a traceback.
torch = None
TORCH_DTYPE = {}
TOL = {'f32': 1e-4, 'f16': 3e-3, 'bf16': 2e-2}  # relative L2 error of out (as bench/cuda/check.py)
LSE_TOL = 1e-3  # max abs error of lse, computed in f32 for every storage dtype


def reference(q, k, v, scale, q_offset, k_offset, mask_fn, score_fn=None):
    """Dense float64 attention: positions are row + offset; rows with no allowed key give 0 / -inf."""
    B, H, Nq, D = q.shape
    Hkv, Nk = k.shape[1], k.shape[2]
    kk, vv = (x.double().repeat_interleave(H // Hkv, dim=1) for x in (k, v))  # GQA: head h reads h // (H/Hkv)
    s = scale * (q.double() @ kk.transpose(-1, -2))
    h = torch.arange(H, device=q.device).view(H, 1, 1)
    qp = (torch.arange(Nq, device=q.device) + q_offset).view(Nq, 1)
    kp = (torch.arange(Nk, device=q.device) + k_offset).view(1, Nk)
    if score_fn is not None:
        s = score_fn(s, h, qp, kp)
    s = s.masked_fill(~mask_fn(h, qp, kp).expand(B, H, Nq, Nk), float('-inf'))
    lse = torch.logsumexp(s, dim=-1)
    p = torch.nan_to_num(torch.exp(s - lse[..., None]), nan=0.0)
    return p @ vv, lse


def lookup(t, pos):
    """t[pos] with out-of-range positions reading 0 (the language's rule)."""
    ok = (pos >= 0) & (pos < t.numel())
    return torch.where(ok, t[pos.clamp(0, t.numel() - 1)], torch.zeros((), dtype=t.dtype, device=t.device))


def segments(n, gen, lo=40, hi=400):
    ids, doc = [], 0
    while len(ids) < n:
        ids += [doc] * int(torch.randint(lo, hi, (1,), generator=gen))
        doc += 1
    return torch.tensor(ids[:n], dtype=torch.int32)


# Per kernel: inputs for its tensors/params, and the semantics of its .attn, written in PyTorch.
KERNELS = {
    'document': dict(
        named=lambda N, H, gen: dict(doc=segments(N, gen).cuda()),
        mask=lambda a: lambda h, q, k: (lookup(a['doc'], q) == lookup(a['doc'], k)) & (q >= k),
    ),
    'softcap': dict(
        named=lambda N, H, gen: dict(cap=5.0),
        mask=lambda a: lambda h, q, k: q >= k,
        score=lambda a: lambda s, h, q, k: a['cap'] * torch.tanh(s / a['cap']),
    ),
    'sink_calibration': dict(
        named=lambda N, H, gen: dict(sinks=4, gain=(0.5 + torch.rand(H, generator=gen)).cuda()),
        mask=lambda a: lambda h, q, k: q >= k,
        score=lambda a: lambda s, h, q, k: torch.where(k < a['sinks'], s + torch.log(a['gain'].double()[h]), s),
    ),
}
CASES = [
    dict(label='prefill 1000x1000', B=2, H=8, Hkv=2, Nq=1000, Nk=1000),
    dict(label='decode 7x1337', B=2, H=8, Hkv=2, Nq=7, Nk=1337),
    dict(label='offsets -100/+30', B=1, H=4, Hkv=4, Nq=600, Nk=777, q_offset=-100, k_offset=30),
]


def check(attn, spec, case, seed):
    gen = torch.Generator().manual_seed(seed)
    m, dtype = attn.manifest.data, TORCH_DTYPE[attn.dtype]
    D, Dv = m['schedule']['headDim'], m['schedule']['valueDim']
    B, H, Hkv, Nq, Nk = (case[x] for x in ('B', 'H', 'Hkv', 'Nq', 'Nk'))
    q = torch.randn(B, H, Nq, D, generator=gen).to('cuda', dtype)
    k = torch.randn(B, Hkv, Nk, D, generator=gen).to('cuda', dtype)
    v = torch.randn(B, Hkv, Nk, Dv, generator=gen).to('cuda', dtype)
    named = spec['named'](Nk, H, gen)
    q_off, k_off = case.get('q_offset', Nk - Nq), case.get('k_offset', 0)
    out, lse, _ = attn(q, k, v, q_offset=q_off, k_offset=k_off, **named)
    torch.cuda.synchronize()
    scale = float(torch.tensor(1 / math.sqrt(D), dtype=torch.float32))  # kernels get it rounded to f32
    score = spec['score'](named) if 'score' in spec else None
    ref_out, ref_lse = reference(q, k, v, scale, q_off, k_off, spec['mask'](named), score)
    rel = ((out.double() - ref_out).norm() / ref_out.norm().clamp_min(1e-30)).item()
    finite = torch.isfinite(ref_lse)
    lse_err = (lse.double()[finite] - ref_lse[finite]).abs().max().item() if finite.any() else 0.0
    empty_ok = bool((lse[~finite] == float('-inf')).all() and (out[~finite] == 0).all())
    ok = rel < TOL[m['schedule']['dtype']] and lse_err < LSE_TOL and empty_ok and not out.isnan().any()
    return ok, f'{case["label"]:<18} out rel L2 {rel:.2e}  lse max abs {lse_err:.2e}  empty rows {int((~finite).sum())}'


def time_ms(attn, spec, N=4096, H=16, Hkv=4, iters=20):
    """Mean ms per call, CUDA-event timed: the wrapper's per-call Python/ctypes work included."""
    gen = torch.Generator().manual_seed(0)
    D, dtype = attn.head_dim, TORCH_DTYPE[attn.dtype]
    q = torch.randn(1, H, N, D, generator=gen).to('cuda', dtype)
    k, v = (torch.randn(1, Hkv, N, D, generator=gen).to('cuda', dtype) for _ in range(2))
    named = spec['named'](N, H, gen)
    for _ in range(3):
        attn(q, k, v, **named)
    a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    a.record()
    for _ in range(iters):
        attn(q, k, v, **named)
    b.record()
    b.synchronize()
    return a.elapsed_time(b) / iters


def usage_error(message):
    print(f'run.py: {message}', file=sys.stderr)
    sys.exit(2)


def import_torch():
    """torch (and attnc.torch) for the checks, or a one-line error when PyTorch or CUDA is missing."""
    global torch
    try:
        import torch as imported
    except ImportError as e:
        usage_error(f'needs PyTorch with CUDA (import torch failed: {e})')
    if not imported.cuda.is_available():
        usage_error('needs a CUDA GPU: torch.cuda.is_available() is False')
    torch = imported
    TORCH_DTYPE.update(f32=torch.float32, f16=torch.float16, bf16=torch.bfloat16)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--build', default=os.path.join(HERE, 'build'), help='the folder emit.sh wrote (default examples/cuda/build)')
    ap.add_argument('--out', default=os.environ.get('OUT'), help='also write RESULT.txt there')
    args = ap.parse_args()
    for name in KERNELS:
        path = os.path.join(args.build, name + '.json')
        if not os.path.isfile(path):
            usage_error(f'{path} is missing: run `bash examples/cuda/emit.sh` where Node is and bring examples/cuda/build here (or pass --build DIR)')
    import_torch()
    import attnc.torch

    lines = [f'attnc CUDA embedding example: {torch.cuda.get_device_name()}, torch {torch.__version__}', '']
    all_ok = True
    for name, spec in KERNELS.items():
        t0 = time.time()
        attn = attnc.torch.load_artifact(os.path.join(args.build, name + '.json'))  # nvcc on first use, then cached
        s = attn.manifest.data['schedule']
        lines.append(f'{name}: {s["dtype"]}, D={s["headDim"]}, engine {s.get("engine", "simt")}; load {time.time() - t0:.1f} s')
        for i, case in enumerate(CASES):
            ok, text = check(attn, spec, case, 100 + i)
            all_ok &= ok
            lines.append(f'  {"ok  " if ok else "FAIL"} {text}')
        lines.append(f'  time: {time_ms(attn, spec):.3f} ms per launch at B=1 H=16 Hkv=4 N=4096 (mean of 20)')
        lines.append('')
        print('\n'.join(lines[-len(CASES) - 3:]), flush=True)
    lines.append('PASS: every kernel agrees with the PyTorch reference' if all_ok else 'FAIL')
    print(lines[-1])
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        with open(os.path.join(args.out, 'RESULT.txt'), 'w') as f:
            f.write('\n'.join(lines) + '\n')
    sys.exit(0 if all_ok else 1)


if __name__ == '__main__':
    main()
