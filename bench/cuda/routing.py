"""Block routing on CUDA, on the GPU machine: builds the artifacts of bench/cuda/routing-emit.mjs,
checks each one (its `indices` against a float64 torch re-implementation of the routing, near-ties
tolerated; out/lse against a float32 torch attention that applies the kernel's own indices), runs
compute-sanitizer on a few, then times routing end to end (pool + top-k + attention) against
FlexAttention with a block mask built in torch from the same routing (build time counted).

  python3 bench/cuda/routing.py --build bench/build/cuda-routing --out OUT [--no-bench] [--only V]
"""
import argparse
import ctypes
import json
import math
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import torch

sys.path.insert(0, os.path.dirname(__file__))
from artifact import TORCH_DTYPE, Kernel  # noqa: E402

# The stdlib sources' routing (stdlib/{biformer,landmark,nsa_select,cca}.attn), restated for
# the reference.
ROUTES = {
    'biformer': dict(n=64, q='mean', k='mean', top=8, first=0, local=0, vote=None),
    'biformer128': dict(n=128, q='mean', k='mean', top=8, first=0, local=0, vote=None),
    'biformer128c': dict(n=128, q='mean', k='mean', top=8, first=0, local=0, vote=None),
    'landmark': dict(n=64, q='raw', k='first', top=4, first=0, local=1, vote=None),
    'nsa_select': dict(n=64, q='raw', k='mean', top=13, first=1, local=2, vote='groups'),
    'cca': dict(n=32, q='raw', k='max', top=16, first=0, local=2, vote=None),
}


def nvcc():
    for c in ('/usr/local/cuda/bin/nvcc', 'nvcc'):
        if os.path.exists(c) or c == 'nvcc':
            return c


def build(build_dir, e):
    so = os.path.join(build_dir, e['variant'] + '.so')
    cu = os.path.join(build_dir, e['variant'] + '.cu')
    if os.path.exists(so) and os.path.getmtime(so) > os.path.getmtime(cu):
        return None
    r = subprocess.run([nvcc(), '-O3', '-arch=sm_90a', '--shared', '-Xcompiler', '-fPIC', '-o', so, cu],
                       capture_output=True, text=True)
    return None if r.returncode == 0 else f'{e["variant"]}: nvcc failed\n{r.stderr[-2000:]}'


def floor_div(a, b):
    return a // b


def pool(x, off, n, red):
    """x: [B, heads, N, D] (float64) at positions off..off+N-1 -> ([B, heads, nb, D], id0)."""
    N = x.shape[2]
    id0, id1 = floor_div(off, n), floor_div(off + N - 1, n)
    outs = []
    for i in range(id0, id1 + 1):
        lo, hi = max(i * n, off) - off, min(i * n + n, off + N) - off
        rows = x[:, :, lo:hi]
        if red == 'mean':
            outs.append(rows.mean(2))
        elif red == 'max':
            outs.append(rows.amax(2))
        elif red == 'first':
            outs.append(rows[:, :, 0])
        elif red == 'lnmean':
            outs.append(rows.mean(2) * math.sqrt(hi - lo))
    return torch.stack(outs, 2), id0


def static_mask(kind, Nq, Nk, qo, ko, dev):
    qp = torch.arange(Nq, device=dev)[:, None] + qo
    kp = torch.arange(Nk, device=dev)[None, :] + ko
    return (qp >= kp) if kind == 'causal' else torch.ones(Nq, Nk, dtype=torch.bool, device=dev)


def reference_routing(rt, mask_kind, q, k, scale, qo, ko):
    """float64 routing: per (b, group, unit) the metric of every candidate block and the forced
    set. Returns (metric [B,G,U,nkb] with NaN = no candidate, forced bool, unit rows, kb0)."""
    B, H, Nq, D = q.shape
    Hkv, Nk = k.shape[1], k.shape[2]
    n = rt['n']
    pk, kb0 = pool(k.double(), ko, n, rt['k'])                    # [B,Hkv,nkb,D]
    nkb = pk.shape[2]
    if rt['q'] == 'raw':
        qs = q.double()
        units = [(i, i + 1) for i in range(Nq)]
        owns = [floor_div(i + qo, n) for i in range(Nq)]
    else:
        qs, qb0 = pool(q.double(), qo, n, rt['q'])
        units, owns = [], []
        for u in range(qs.shape[2]):
            i = qb0 + u
            units.append((max(i * n, qo) - qo, min(i * n + n, qo + Nq) - qo))
            owns.append(i)
    rep = H // Hkv
    aff = scale * torch.einsum('bhud,bhkd->bhuk', qs, pk.repeat_interleave(rep, 1))  # [B,H,U,nkb]
    aff = torch.nan_to_num(aff, nan=-math.inf)
    m = static_mask(mask_kind, Nq, Nk, qo, ko, q.device)
    # candidate[u, j]: some allowed (row of u, key of block kb0+j) pair
    kid = (torch.arange(Nk, device=q.device) + ko) // n - kb0
    blk = torch.zeros(Nq, nkb, dtype=torch.float32, device=q.device).index_add_(1, kid, m.float()) > 0
    cand = torch.stack([blk[lo:hi].any(0) for lo, hi in units])  # [U, nkb] (mask is head-free here)
    if rt['vote'] is None:
        G = H
        metric = aff.masked_fill(~cand, math.nan)
    else:
        G = Hkv if rt['vote'] == 'groups' else 1
        per = H // G
        sm = torch.softmax(aff.masked_fill(~cand, -math.inf), -1)
        sm = torch.nan_to_num(sm, nan=0.0)
        metric = sm.view(B, G, per, *sm.shape[2:]).sum(2).masked_fill(~cand, math.nan)
    ids = torch.arange(nkb, device=q.device) + kb0
    own = torch.tensor(owns, device=q.device)[:, None]
    forced = (ids[None] < rt['first']) | ((ids[None] > own - rt['local']) & (ids[None] <= own))
    return metric, forced & cand, units, kb0


def check_indices(rt, metric, forced, units, kb0, idx, cap):
    """Every unit row of the kernel's indices is a valid selection: forced candidates, then the
    top-k of the rest, where near-ties (relative 1e-4 of the metric scale) may swap. Rows equal to
    the float64 selection pass at once; the others are checked one by one."""
    B, G, U, nkb = metric.shape
    bad = 0
    idx = idx[..., :cap].cpu()
    metric, forced = metric.cpu(), forced.cpu()
    firsts = torch.tensor([lo for lo, _ in units])
    row_unit = torch.cat([torch.full((hi - lo,), u) for u, (lo, hi) in enumerate(units)])
    ksel = idx[:, :, firsts]                                       # [B,G,U,cap]
    same_rows = (idx == ksel[:, :, row_unit]).all(-1)               # [B,G,Nq]
    cand = ~torch.isnan(metric)
    rank = cand & ~forced
    score = metric.masked_fill(~rank, -math.inf)
    take = rank.sum(-1).clamp(max=rt['top'])
    kk = min(rt['top'], nkb)
    top = score.topk(kk, -1).indices if kk > 0 else torch.zeros(B, G, U, 0, dtype=torch.long)
    chosen = torch.zeros(B, G, U, nkb, dtype=torch.bool)
    keep = torch.arange(kk)[None, None, None] < take[..., None]
    chosen.scatter_(-1, top, keep)
    want = chosen | (forced & cand)
    got = torch.zeros(B, G, U, nkb + 1, dtype=torch.bool)
    pos = (ksel - kb0).clamp(-1, nkb - 1).long()
    pos = torch.where(ksel >= 0, pos, torch.full_like(pos, nkb))
    got.scatter_(-1, pos, torch.ones_like(pos, dtype=torch.bool))
    nsel = (ksel >= 0).sum(-1)
    sorted_ok = (ksel[..., 1:] > ksel[..., :-1]) | (ksel[..., 1:] < 0)
    fast_ok = (got[..., :nkb] == want).all(-1) & (nsel == want.sum(-1)) & sorted_ok.all(-1)
    fast_ok &= (ksel >= 0).cumprod(-1).sum(-1) == nsel             # -1 padding only at the end
    bad += int((~same_rows).any(-1).sum())
    for b, g, u in torch.nonzero(~fast_ok).tolist():
        lo, hi = units[u]
        if True:
            if True:
                rows = idx[b, g, lo:hi]
                sel = [int(x) for x in rows[0] if x >= 0]
                mu = metric[b, g, u]
                f = forced[u]
                fset = set((torch.nonzero(f).flatten() + kb0).tolist())
                cands = ~torch.isnan(mu)
                rank = cands & ~f
                nr = int(rank.sum())
                want = len(fset) + min(rt['top'], nr)
                ok = len(sel) == want and sorted(sel) == sel and fset <= set(sel)
                ok = ok and all(0 <= s - kb0 < nkb and bool(cands[s - kb0]) for s in sel)
                if ok and nr > 0:
                    ranked = [s - kb0 for s in sel if s not in fset]
                    chosen = torch.zeros(nkb, dtype=torch.bool)
                    chosen[ranked] = True
                    rest = rank & ~chosen
                    if ranked and bool(rest.any()):
                        lo_sel = float(mu[ranked].min())
                        hi_rest = float(mu[rest].max())
                        scale = max(1.0, abs(lo_sel), abs(hi_rest))
                        ok = lo_sel >= hi_rest - 1e-4 * scale or (lo_sel == -math.inf and hi_rest == -math.inf)
                bad += not ok
    return bad


def attention_reference(rt, mask_kind, q, k, v, idx, scale, qo, ko):
    """float32 attention of the bf16/f16-rounded inputs over the pairs the kernel's indices allow."""
    B, H, Nq, D = q.shape
    Hkv, Nk = k.shape[1], k.shape[2]
    n = rt['n']
    G = idx.shape[1]
    grp = torch.arange(H, device=q.device) // (H // G) if G > 1 else torch.zeros(H, dtype=torch.long, device=q.device)
    kid = (torch.arange(Nk, device=q.device) + ko) // n
    sel = idx[:, grp][..., :max(1, idx.shape[-1])]                # [B,H,Nq,K]
    allowed = (sel[..., None] == kid[None, None, None, None, :]).any(3)  # [B,H,Nq,Nk]
    allowed &= static_mask(mask_kind, Nq, Nk, qo, ko, q.device)
    rep = H // Hkv
    kf, vf = k.float().repeat_interleave(rep, 1), v.float().repeat_interleave(rep, 1)
    s = scale * torch.einsum('bhqd,bhkd->bhqk', q.float(), kf)
    s = s.masked_fill(~allowed, -math.inf)
    lse = torch.logsumexp(s, -1)
    p = torch.exp(s - lse[..., None]).nan_to_num(0.0)
    out = torch.einsum('bhqk,bhkd->bhqd', p, vf)
    return out, lse


def run_kernel(kern, case, dt, D, dev, seed):
    B, H, Hkv, Nq, Nk = (case[x] for x in ('B', 'H', 'Hkv', 'Nq', 'Nk'))
    gen = torch.Generator().manual_seed(seed)
    q = torch.randn(B, H, Nq, D, generator=gen).to(dev, dt)
    k = torch.randn(B, Hkv, Nk, D, generator=gen).to(dev, dt)
    v = torch.randn(B, Hkv, Nk, D, generator=gen).to(dev, dt)
    out = torch.full((B, H, Nq, D), float('nan'), dtype=dt, device=dev)
    lse = torch.full((B, H, Nq), float('nan'), dtype=torch.float32, device=dev)
    args = kern.Args()
    kern.init(ctypes.byref(args), B, H, Hkv, Nq, Nk)
    if 'q_offset' in case:
        args.q_offset = case['q_offset']
    if 'k_offset' in case:
        args.k_offset = case['k_offset']
    r = kern.m['routing']
    G = {'H': H, 'Hkv': Hkv, '1': 1}[r['indices']['shape'][1]]
    cap = sum(int(x) if x.isdigit() else p_default(kern, x) for x in r['indices']['shape'][3].split(' + '))
    idx = torch.full((B, G, Nq, max(cap, 1)), -7, dtype=torch.int32, device=dev)
    fn = kern.lib[kern.m['functions']['routeScratchElems']]
    fn.argtypes = [ctypes.POINTER(kern.Args)]
    fn.restype = ctypes.c_size_t
    scratch = torch.full((max(fn(ctypes.byref(args)), 1),), float('nan'), device=dev)
    for role, t in (('q', q), ('k', k), ('v', v), ('out', out), ('lse', lse), ('indices', idx), ('scratch', scratch)):
        setattr(args, kern.field(role), t.data_ptr())
    return dict(q=q, k=k, v=v, out=out, lse=lse, idx=idx, scratch=scratch, args=args, cap=cap)


def p_default(kern, name):
    for p in kern.m['params']:
        if p['name'] == name:
            return int(p['default'])
    raise KeyError(name)


CASES = [
    dict(B=2, H=4, Hkv=2, Nq=777, Nk=777),
    dict(B=1, H=4, Hkv=4, Nq=200, Nk=1100),               # decode-like: q_offset = Nk - Nq
    dict(B=1, H=2, Hkv=1, Nq=300, Nk=700, q_offset=450, k_offset=37),  # ragged, offset blocks
    dict(B=1, H=4, Hkv=2, Nq=300, Nk=5000, q_offset=4700),  # > 64 key blocks: several top-k chunks
]


def check_variant(build_dir, e, dev):
    kern = Kernel(build_dir, e)
    rt = ROUTES[e['kernel']]
    dt = TORCH_DTYPE[e['dtype']]
    res = dict(variant=e['variant'], ok=True, cases=[])
    for ci, case in enumerate(CASES):
        t = run_kernel(kern, case, dt, e['headDim'], dev, seed=ci + 1)
        code, msg = kern.launch(t['args'], 0)
        torch.cuda.synchronize()
        if code != 0:
            res['ok'] = False
            res['cases'].append(dict(case=ci, error=msg))
            continue
        a = t['args']
        scale, qo, ko = a.scale, a.q_offset, a.k_offset
        metric, forced, units, kb0 = reference_routing(rt, e['mask'], t['q'], t['k'], scale, qo, ko)
        bad = check_indices(rt, metric, forced, units, kb0, t['idx'], t['cap'])
        ro, rl = attention_reference(rt, e['mask'], t['q'], t['k'], t['v'], t['idx'].long(), scale, qo, ko)
        o = t['out'].float()
        rel = float((o - ro).norm() / ro.norm().clamp_min(1e-30))
        fin = torch.isfinite(rl)
        lse_err = float((t['lse'][fin] - rl[fin]).abs().max()) if bool(fin.any()) else 0.0
        inf_ok = bool((t['lse'][~fin] == -math.inf).all()) and bool((o[~fin.unsqueeze(-1).expand_as(o)] == 0).all())
        tol = 1e-5 if e['dtype'] == 'f32' else 1e-2
        ok = bad == 0 and rel <= tol and lse_err <= 1e-3 and inf_ok and not bool(torch.isnan(o).any())
        res['ok'] &= ok
        res['cases'].append(dict(case=ci, bad_rows=bad, out_rel_l2=rel, lse_max_abs=lse_err, empty_rows_ok=inf_ok,
                                 density=float((t['idx'] >= 0).float().mean())))
    return res


def sanitize(build_dir, variant, tool):
    cmd = ['compute-sanitizer', '--tool', tool, '--error-exitcode', '9', sys.executable, __file__,
           '--build', build_dir, '--only', variant, '--no-bench', '--no-build', '--cases', '1']
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=240)
    tail = (r.stdout + r.stderr)[-600:]
    return dict(variant=variant, tool=tool, rc=r.returncode, tail=tail)


PASSES = ('route_pool_k', 'route_pool_q', 'route_topk_tc', 'route_topk', 'attention')


def per_pass_ms(fn, iters=10):
    """Device time of each routing pass (and the attention) per call, from the CUDA profiler."""
    from torch.profiler import ProfilerActivity, profile
    fn()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(iters):
            fn()
        torch.cuda.synchronize()
    out = {}
    for ev in prof.key_averages():
        us = getattr(ev, 'device_time_total', None)
        if us is None:
            us = getattr(ev, 'cuda_time_total', 0)
        for tag in PASSES:
            if ev.key.endswith(tag):
                out[tag] = round(out.get(tag, 0.0) + us / iters / 1000.0, 4)
                break
    return out


def median_ms(fn, iters):
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(iters):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        torch.cuda.synchronize()
        times.append(a.elapsed_time(b))
    times.sort()
    return times[len(times) // 2]


def torch_block_routing(q, k, n, top):
    """The same routing in torch (mean-pooled q and k blocks, top-k per q block): [B,H,nqb,top]."""
    B, H, S, D = q.shape
    pq = q.view(B, H, S // n, n, D).float().mean(3)
    pk = k.view(B, k.shape[1], S // n, n, D).float().mean(3)
    aff = torch.einsum('bhqd,bhkd->bhqk', pq, pk)
    return aff.topk(top, -1).indices.sort(-1).values.int()


def bench(build_dir, index, dev, out_rows, sizes):
    from torch.nn.attention.flex_attention import BlockMask, flex_attention
    flex = torch.compile(flex_attention, dynamic=False)
    B, H, D = 2, 16, 128
    for variant in ('biformer128_default_bf16_d128', 'biformer128_wgmma_bf16_d128', 'biformer128_wgmma-ws_bf16_d128',
                    'biformer128_wgmma-ws_bf16_d128_fa3',
                    'biformer_wgmma_bf16_d128_q64k64', 'biformer_wgmma_bf16_d128', 'biformer_wgmma-ws_bf16_d128_q64k64',
                    'biformer_wgmma-ws_bf16_d128'):
        e = next((x for x in index if x['variant'] == variant), None)
        if e is None:  # filtered out by --only
            continue
        name = e['kernel']
        kern = Kernel(build_dir, e)
        n = ROUTES[name]['n']
        for S in sizes:
            t = run_kernel(kern, dict(B=B, H=H, Hkv=H, Nq=S, Nk=S), torch.bfloat16, D, dev, seed=5)
            ms = median_ms(lambda: kern.launch(t['args'], 0), 20)
            flops = 4 * B * H * S * (8 * n) * D
            passes = per_pass_ms(lambda: kern.launch(t['args'], 0))
            row = dict(pattern=f'routing_top8_blocks{n}', kernel=e['variant'], S=S, B=B, H=H, D=D,
                       ms=round(ms, 4), tflops=round(flops / ms / 1e9, 1), passes_ms=passes)
            if passes.get('attention'):
                row['attention_tflops'] = round(flops / passes['attention'] / 1e9, 1)
            if n % 128 != 0:  # Flex needs 128-blocks
                print(json.dumps(row), flush=True)
                out_rows.append(row)
                continue
            try:
                q, k, v = t['q'], t['k'], t['v']
                nb = S // n

                def build_mask():
                    sel = torch_block_routing(q, k, n, 8)
                    full = torch.zeros(B, H, nb, nb, dtype=torch.int32, device=dev)
                    full[..., :8] = sel
                    cnt = torch.full((B, H, nb), 8, dtype=torch.int32, device=dev)
                    zero = torch.zeros_like(cnt)
                    return BlockMask.from_kv_blocks(zero, torch.zeros_like(full), cnt, full, BLOCK_SIZE=(n, n))
                bm = build_mask()
                fo = flex(q, k, v, block_mask=bm)
                row['attnc_vs_flex_rel'] = float((t['out'].float() - fo.float()).norm() / fo.float().norm())
                row['flex_mask_ms'] = round(median_ms(build_mask, 10), 4)
                row['flex_attn_ms'] = round(median_ms(lambda: flex(q, k, v, block_mask=bm), 20), 4)
                row['flex_attn_tflops'] = round(flops / row['flex_attn_ms'] / 1e9, 1)
                fe = median_ms(lambda: flex(q, k, v, block_mask=build_mask()), 20)
                row['flex_end_to_end_ms'] = round(fe, 4)
                row['flex_tflops'] = round(flops / fe / 1e9, 1)
                row['vs_flex'] = round(fe / ms, 3)
            except Exception as ex:  # noqa: BLE001 (report, keep timing the rest)
                row['flex_error'] = repr(ex)[:300]
            print(json.dumps(row), flush=True)
            out_rows.append(row)
    # NSA-style selection at 64K: raw queries, vote per GQA group, first 1 + local 2 + top 13.
    e = next((x for x in index if x['variant'] == 'nsa_select_wgmma_bf16_d128'), None)
    if e is None:
        return
    kern = Kernel(build_dir, e)
    for S in (65536,):
        t = run_kernel(kern, dict(B=1, H=16, Hkv=4, Nq=S, Nk=S), torch.bfloat16, D, dev, seed=7)
        code, msg = kern.launch(t['args'], 0)
        if code != 0:
            out_rows.append(dict(pattern='nsa_select', S=S, error=msg))
            continue
        ms = median_ms(lambda: kern.launch(t['args'], 0), 5)
        passes = per_pass_ms(lambda: kern.launch(t['args'], 0), 3)
        sel = (t['idx'] >= 0).sum(-1).float().mean().item()
        flops = 4 * 1 * 16 * S * sel * 64 * D / 2  # causal-ish: about half the selected keys' pairs
        row = dict(pattern='nsa_select_top13_first1_local2_causal', kernel=e['variant'], S=S, B=1, H=16, Hkv=4,
                   D=D, ms=round(ms, 3), mean_selected_blocks=round(sel, 2), approx_tflops=round(flops / ms / 1e9, 1),
                   passes_ms=passes)
        # attention alone (indices reused): the routing passes' share
        print(json.dumps(row), flush=True)
        out_rows.append(row)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--build', default='bench/build/cuda-routing')
    ap.add_argument('--out', default=None)
    ap.add_argument('--only', default=None)
    ap.add_argument('--no-bench', action='store_true')
    ap.add_argument('--no-build', action='store_true')
    ap.add_argument('--cases', type=int, default=len(CASES))
    ap.add_argument('--sanitize', default='')
    ap.add_argument('--sizes', default='16384,32768')
    args = ap.parse_args()
    del CASES[args.cases:]
    with open(os.path.join(args.build, 'index.json')) as f:
        index = json.load(f)
    if args.only:
        only = args.only.split(',')
        index = [e for e in index if e['variant'] in only or e['kernel'] in only]
    dev = torch.device('cuda')
    if not args.no_build:
        t0 = time.time()
        with ThreadPoolExecutor(16) as ex:
            errs = [x for x in ex.map(lambda e: build(args.build, e), index) if x]
        print(f'built {len(index)} in {time.time() - t0:.1f}s; {len(errs)} failed', flush=True)
        for x in errs:
            print(x)
    results = []
    # The tensor-core top-k (raw query sides, 16-bit) last: a fault there cannot hide the others.
    tc_last = sorted(index, key=lambda e: ROUTES[e['kernel']]['q'] == 'raw' and e['dtype'] != 'f32')
    for e in tc_last:
        try:
            r = check_variant(args.build, e, dev)
        except Exception as ex:  # noqa: BLE001
            r = dict(variant=e['variant'], ok=False, error=repr(ex)[:500])
        results.append(r)
        print(('OK  ' if r['ok'] else 'FAIL') + ' ' + json.dumps(r), flush=True)
    with ThreadPoolExecutor(4) as ex:  # independent processes; sanitizers are slow, not the GPU
        san = list(ex.map(lambda x: sanitize(args.build, *x.split(':')), [x for x in args.sanitize.split(',') if x]))
    for s in san:
        print('sanitize', json.dumps(s), flush=True)
    rows = []
    if not args.no_bench:
        bench(args.build, index, dev, rows, [int(x) for x in args.sizes.split(',')])
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        with open(os.path.join(args.out, 'routing-results.json'), 'w') as f:
            json.dump(dict(gpu=torch.cuda.get_device_name(), checks=results, sanitize=san, bench=rows), f, indent=1)
    if not all(r['ok'] for r in results):
        sys.exit(1)


if __name__ == '__main__':
    main()
