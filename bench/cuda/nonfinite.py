#!/usr/bin/env python3
"""The "Non-finite values" contract of docs/LANGUAGE.md on a GPU, for every CUDA engine: plants
NaN/Inf in q, k, v (allowed and masked keys) or drives a score expression to +inf/NaN/-inf, runs
each emitted variant (prefill, and decode shapes the launcher sends to split-KV decode), and
compares with a float64 reference of the contract written here (independent of the kernels).

  node bench/cuda/emit.mjs --engine E --list bench/cuda/nonfinite-list.mjs --out bench/build/nf-E
  python3 bench/cuda/nonfinite.py bench/build/nf-simt bench/build/nf-mma ...   (exit 1 on a failure)
"""
import concurrent.futures
import json
import math
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from artifact import Kernel, setup  # noqa: E402
from check import build  # noqa: E402
from reference import Evaluator  # noqa: E402

F = torch.float64
NAN, INF = float('nan'), float('inf')

# (label, sizes, plants [tensor, b, head, row, dim, value], params)
CASES = {
    'nf_causal': [
        ('prefill', dict(B=1, H=2, Hkv=1, Nq=300, Nk=300),
         [('k', 0, 0, 6, 3, NAN), ('q', 0, 1, 100, 0, NAN), ('v', 0, 0, 1, 2, NAN), ('v', 0, 0, 3, 5, INF),
          ('v', 0, 0, 299, 7, NAN)], {}),
        ('decode', dict(B=1, H=2, Hkv=2, Nq=3, Nk=1500),
         [('k', 0, 0, 700, 1, NAN), ('v', 0, 1, 1499, 2, NAN)], {}),
    ],
    'nf_scored': [
        ('prefill', dict(B=1, H=2, Hkv=1, Nq=300, Nk=300), [('v', 0, 0, 0, 1, NAN)],
         dict(ninf=0, pinf=150, nan=250)),
        ('decode', dict(B=1, H=2, Hkv=1, Nq=3, Nk=1500), [], dict(pinf=900, ninf=1498)),
    ],
}


def contract_reference(ev, m, q, k, v, args, params, tensors):
    """out, lse and out_nan_allowed under the contract, in float64."""
    B, H, Nq, _ = q.shape
    Hkv, Nk = k.shape[1], k.shape[2]
    sizes = dict(B=B, H=H, Hkv=Hkv, Nq=Nq, Nk=Nk)
    kd = k.to(F).repeat_interleave(H // Hkv, dim=1)
    vd = v.to(F).repeat_interleave(H // Hkv, dim=1)
    s = float(args.scale) * (q.to(F) @ kd.transpose(-1, -2))
    env = ev.env(args, sizes)
    env['score'] = s
    score, mask = ev.eval([m['expr']['score'], m['expr']['mask']], env, params, tensors, sizes)
    allowed = mask.expand(s.shape)
    score = score.expand(s.shape)
    poisoned = (allowed & (torch.isnan(s) | torch.isnan(score) | (score == INF))).any(-1)
    weighed = allowed & torch.isfinite(score)
    mx = torch.where(weighed, score, torch.tensor(-INF, dtype=F, device=s.device)).amax(-1, keepdim=True)
    empty = ~weighed.any(-1)
    p = torch.where(weighed, torch.exp(score - torch.where(empty.unsqueeze(-1), 0.0, mx)), 0.0)
    l = p.sum(-1, keepdim=True)
    terms = torch.where(weighed.unsqueeze(-1), p.unsqueeze(-1) * vd.unsqueeze(-3), 0.0)
    out = terms.sum(-2) / torch.where(empty.unsqueeze(-1), 1.0, l)
    lse = torch.where(empty, -INF, (mx + torch.log(l)).squeeze(-1))
    nan_ok = ((~weighed).unsqueeze(-1) & ~torch.isfinite(vd).unsqueeze(-3)).any(-2) | torch.isinf(out)
    out[poisoned] = NAN
    lse[poisoned] = NAN
    return out, lse, nan_ok


def judge(out, lse, ref_out, ref_lse, nan_ok, tol):
    """A list of what disagrees with the contract (empty: agrees)."""
    bad = []
    if not torch.equal(torch.isnan(lse), torch.isnan(ref_lse)):
        bad.append(f'lse NaN rows differ: {int((torch.isnan(lse) != torch.isnan(ref_lse)).sum())}')
    empty = ref_lse == -INF
    if not bool((lse[empty] == -INF).all()):
        bad.append('an empty row has lse != -inf')
    fin = torch.isfinite(ref_lse)
    if fin.any() and (lse[fin] - ref_lse[fin]).abs().max().item() > 1e-2:
        bad.append(f'lse error {(lse[fin] - ref_lse[fin]).abs().max().item():.3g}')
    on, rn = torch.isnan(out), torch.isnan(ref_out)
    if (rn & ~on).any():
        bad.append(f'out: {int((rn & ~on).sum())} finite where the reference is NaN')
    if (on & ~rn & ~nan_ok).any():
        bad.append(f'out: {int((on & ~rn & ~nan_ok).sum())} NaN where the reference is finite')
    rinf = torch.isinf(ref_out)
    if (rinf & ~on & (out != ref_out)).any():
        bad.append('out: an infinite reference value is neither itself nor NaN')
    both = torch.isfinite(ref_out) & ~on
    if both.any():
        err = (out[both] - ref_out[both]).abs().max().item()
        scale = max(ref_out[both].abs().max().item(), 1e-30)
        if not math.isfinite(err) or err / scale > tol:
            bad.append(f'out error {err:.3g} (scale {scale:.3g})')
    return bad


def run_case(k, entry, label, sizes, plants, params):
    case = dict(label=label, **sizes)
    entry = dict(entry, params={**entry.get('params', {}), **params})
    t, args, params_, tensors, _ = setup(k, entry, case, 'cuda', seed=11)
    for name, b, h, row, d, value in plants:
        t[name][b, h, row, d] = value
    code, msg = k.launch(args, torch.cuda.current_stream().cuda_stream)
    if code != 0:
        return [f'launch failed: {msg}']
    torch.cuda.synchronize()
    ref_out, ref_lse, nan_ok = contract_reference(Evaluator(k.m, 'cuda'), k.m, t['q'], t['k'], t['v'], args,
                                                  params_, tensors)
    if not torch.isnan(ref_out).any():
        return ['the case plants no NaN the reference sees']
    tol = 2e-2 if k.m['schedule']['dtype'] != 'f32' else 1e-4
    return judge(t['out'].double(), t['lse'].double(), ref_out, ref_lse, nan_ok, tol)


def main():
    failures = 0
    jobs = []
    for build_dir in sys.argv[1:]:
        with open(os.path.join(build_dir, 'index.json')) as f:
            jobs += [(build_dir, entry) for entry in json.load(f)]
    with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 4) as pool:  # nvcc runs in parallel
        builds = list(pool.map(lambda j: build(*j), jobs))
    for (build_dir, entry), b in zip(jobs, builds):
        if not b['ok']:
            print(f'FAIL {entry["variant"]} ({entry["engine"]}): build\n{b["log"][-3000:]}')
            failures += 1
            continue
        k = Kernel(build_dir, entry)
        for label, sizes, plants, params in CASES[entry['kernel']]:
            bad = run_case(k, entry, label, sizes, plants, params)
            failures += bool(bad)
            print(f'{"FAIL" if bad else "ok  "} {entry["variant"]} ({entry["engine"]}) {label}: {"; ".join(bad)}')
    print(f'{failures} failure(s)')
    sys.exit(1 if failures else 0)


if __name__ == '__main__':
    main()
