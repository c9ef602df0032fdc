"""Token selection, emit, from and chunks on CUDA, on the GPU machine: loads the artifacts that
bench/cuda/select-emit.mjs built, checks each (its `indices` against a float64 torch
re-implementation of the selection, near-ties tolerated; `from` rows exactly; out/lse against a
float32 torch attention that applies the kernel's own indices), then times TokenSelect
decoding (top-2048 of a 32K and a 128K cache, Nq=1, B=1, H=32, Hkv=8, D=128, bf16; the multi-block
top-k and, as `_onecta`, the one-block top-k) against FlexAttention with the same selection as a
mask (its block-mask build not counted) and dense FlexAttention, and TokenSelect prefill at 32K
(B=1, H=16, Hkv=4) per pass. Writes OUT/select.json.

  python3 bench/cuda/select.py --build bench/build/cuda-select --out OUT [--no-bench]
"""
import argparse
import ctypes
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(__file__))
from artifact import TORCH_DTYPE, Kernel  # noqa: E402

# The stdlib sources' selection (stdlib/{tokenselect,tidaldecode,recycled,dhsa}.attn), restated for
# the reference. All mask causal.
SPECS = {
    'tokenselect': dict(kind='topk', vote='heads', restrict=True),
    'tidal_select': dict(kind='topk', vote='groups', restrict=False),
    'recycled_full': dict(kind='topk', vote='groups', restrict=False),
    'tidal_reuse': dict(kind='from', local=None),
    'recycled_step': dict(kind='from', local='stride'),
    'dhsa': dict(kind='chunks', local=1),
}

CASES = [
    dict(B=2, H=8, Hkv=2, Nq=48, Nk=1500, budget=100, stride=16, top=4),
    dict(B=1, H=8, Hkv=2, Nq=1, Nk=6000, budget=2048, stride=16, top=4),  # decode: split + merge
    dict(B=1, H=4, Hkv=2, Nq=300, Nk=300, budget=100, stride=8, top=3),
    # B·H·Nq·Nk (67M) exceeds the scoring round's budget (2^24 floats): the vote's scoring pass recomputes the affinities.
    dict(B=1, H=8, Hkv=2, Nq=1024, Nk=8200, budget=64, stride=16, top=4, only='topk'),
    # Few rows, many keys: the wide (multi-block) top-k of select-wide.ts ranks them.
    dict(B=1, H=8, Hkv=2, Nq=1, Nk=40000, budget=2048, only='topk'),
    dict(B=2, H=8, Hkv=2, Nq=3, Nk=12345, budget=300, only='topk'),
]


def chunk_ids(Nk, gen):
    ids, cid = [], 0
    while len(ids) < Nk:
        n = int(torch.randint(1, 120, (1,), generator=gen))
        ids += [cid] * n
        cid += 1 + int(torch.randint(0, 2, (1,), generator=gen))
    return torch.tensor(ids[:Nk], dtype=torch.int32)


def run_kernel(kern, e, case, dev, seed):
    B, H, Hkv, Nq, Nk, D = case['B'], case['H'], case['Hkv'], case['Nq'], case['Nk'], e['headDim']
    dt = TORCH_DTYPE[e['dtype']]
    gen = torch.Generator().manual_seed(seed)
    q = torch.randn(B, H, Nq, D, generator=gen).to(dev, dt)
    k = torch.randn(B, Hkv, Nk, D, generator=gen).to(dev, dt)
    v = torch.randn(B, Hkv, Nk, D, generator=gen).to(dev, dt)
    out = torch.full((B, H, Nq, D), float('nan'), dtype=dt, device=dev)
    lse = torch.full((B, H, Nq), float('nan'), dtype=torch.float32, device=dev)
    args = kern.Args()
    kern.init(ctypes.byref(args), B, H, Hkv, Nq, Nk)
    params = {}
    for p in kern.m['params']:
        if p['name'] in case:
            params[p['name']] = case[p['name']]
            setattr(args, kern.field('param', p['name']), case[p['name']])
        else:
            params[p['name']] = int(p['default'])
    tensors = {}
    for t in kern.m['tensors']:
        if t['name'] == 'chunk':
            x = chunk_ids(Nk, gen)
        else:  # a reused selection [B, Hkv, Nq, budget]: padding, duplicates, out of range
            x = torch.randint(-3, Nk + 3, (B, Hkv, Nq, params['budget']), generator=gen, dtype=torch.int32)
        tensors[t['name']] = x.to(dev)
        setattr(args, kern.field('tensor', t['name']), tensors[t['name']].data_ptr())
    r = kern.m['routing']
    G = {'H': H, 'Hkv': Hkv, '1': 1}[r['indices']['shape'][1]]
    cap = sum(int(x) if x.isdigit() else params[x] for x in r['indices']['shape'][3].split(' + '))
    idx = torch.full((B, G, Nq, max(cap, 1)), -7, dtype=torch.int32, device=dev)
    fn = kern.lib[kern.m['functions']['routeScratchElems']]
    fn.argtypes = [ctypes.POINTER(kern.Args)]
    fn.restype = ctypes.c_size_t
    scratch = torch.full((max(fn(ctypes.byref(args)), 1),), float('nan'), device=dev)
    for role, t in (('q', q), ('k', k), ('v', v), ('out', out), ('lse', lse), ('indices', idx), ('scratch', scratch)):
        setattr(args, kern.field(role), t.data_ptr())
    return dict(q=q, k=k, v=v, out=out, lse=lse, idx=idx, scratch=scratch, args=args, cap=cap, G=G,
                params=params, tensors=tensors)


def affinities(q, k, scale):
    """[B, H, Nq, Nk] float64 scale * q.k with GQA."""
    H, Hkv = q.shape[1], k.shape[1]
    kk = k.double().repeat_interleave(H // Hkv, dim=1)
    return scale * torch.einsum('bhid,bhjd->bhij', q.double(), kk)


def selected_mask(idx, Nk):
    """[B, G, Nq, Nk] bool of the ids in idx (>= 0 and < Nk)."""
    B, G, Nq, K = idx.shape
    m = torch.zeros(B, G, Nq, Nk + 1, dtype=torch.bool, device=idx.device)
    i = idx.long().clone()
    i[(i < 0) | (i >= Nk)] = Nk
    m.scatter_(3, i, True)
    return m[..., :Nk]


def check_rows_sorted(idx):
    """Every row: ascending valid ids, then -1 padding."""
    valid = idx >= 0
    # padding only after the valid prefix
    pad_ok = bool((valid[..., 1:] <= valid[..., :-1]).all()) if idx.shape[-1] > 1 else True
    big = torch.where(valid, idx.long(), torch.full_like(idx.long(), 1 << 40))
    asc = bool((big[..., 1:] > big[..., :-1]).logical_or(~valid[..., 1:]).all()) if idx.shape[-1] > 1 else True
    return pad_ok and asc


def check_topk(metric, cand, sel, k, forced=None):
    """metric/cand/sel [B, G, Nq, N]; forced ids must be selected and do not count against k."""
    forced = torch.zeros_like(cand) if forced is None else (forced & cand)
    bad = []
    if bool((sel & ~cand).any()):
        bad.append('selected non-candidates')
    if bool((forced & ~sel).any()):
        bad.append('forced ids missing')
    ranked_c = cand & ~forced
    ranked_s = sel & ~forced
    want = torch.clamp(ranked_c.sum(-1), max=k)
    if not bool((ranked_s.sum(-1) == want).all()):
        bad.append(f'count: {int((ranked_s.sum(-1) != want).sum())} rows take the wrong number')
    mag = metric.masked_fill(~cand, 0).abs().amax(-1, keepdim=True)
    tol = 1e-4 * mag + 1e-7
    inf = torch.tensor(float('inf'), dtype=metric.dtype, device=metric.device)
    mins = torch.where(ranked_s, metric, inf).amin(-1, keepdim=True)
    maxu = torch.where(ranked_c & ~sel, metric, -inf).amax(-1, keepdim=True)
    worse = (mins < maxu - tol) & (want.unsqueeze(-1) > 0)
    if bool(worse.any()):
        bad.append(f'{int(worse.sum())} rows rank an unselected id above a selected one')
    return bad


def reference_selection(spec, t, case, scale, qo):
    """The selection check (list of problems) and the [B, H, Nq, Nk] keys the kernel selected."""
    q, k, idx = t['q'], t['k'], t['idx']
    B, H, Hkv, Nq, Nk = case['B'], case['H'], case['Hkv'], case['Nq'], case['Nk']
    dev = q.device
    qpos = torch.arange(Nq, device=dev) + qo
    kpos = torch.arange(Nk, device=dev)
    allowed = qpos[:, None] >= kpos[None, :]  # [Nq, Nk] causal
    bad = [] if check_rows_sorted(idx) else ['rows not ascending / padded']
    G = t['G']
    if spec['kind'] == 'topk':
        aff = affinities(q, k, scale).masked_fill(~allowed, float('-inf'))
        p = torch.softmax(aff, dim=-1).nan_to_num(0.0)
        metric = p.reshape(B, G, H // G, Nq, Nk).sum(2)
        cand = allowed.expand(B, G, Nq, Nk)
        sel = selected_mask(idx, Nk)
        bad += check_topk(metric, cand, sel, t['params']['budget'])
        keys = sel.repeat_interleave(H // G, dim=1)
    elif spec['kind'] == 'from':
        given = selected_mask(t['tensors']['idx'], Nk)  # present ids of the tensor
        L = t['params'][spec['local']] if spec['local'] else 0
        own = qpos[:, None]
        forced = (kpos[None, :] > own - L) & (kpos[None, :] <= own) & allowed
        want = given | forced.expand_as(given)
        sel = selected_mask(idx, Nk)
        if not torch.equal(sel, want):
            bad.append(f'from: {int((sel != want).any(-1).sum())} rows differ')
        keys = sel.repeat_interleave(H // G, dim=1)
    else:  # dhsa: chunks, lnmean both sides, top + local(1), per head
        ch = t['tensors']['chunk'].long()
        ids = torch.unique(ch)
        nC = int(ids.numel())
        onehot = (ch[None, :] == ids[:, None]).double()  # [C, Nk]
        lens = onehot.sum(1)
        kp = torch.einsum('cj,bhjd->bhcd', onehot, k.double()) / lens[:, None] * lens.sqrt()[:, None]
        qch = ch[qpos]  # chunk id of each query row
        first_key = torch.stack([kpos[ch == c].min() for c in ids])  # [C]
        metric = torch.zeros(B, H, Nq, nC, dtype=torch.float64, device=dev)
        cand = torch.zeros(B, H, Nq, nC, dtype=torch.bool, device=dev)
        forced = torch.zeros_like(cand)
        for c in torch.unique(qch):
            rows = (qch == c).nonzero().flatten()
            qv = q.double()[:, :, rows].mean(2) * rows.numel() ** 0.5  # lnmean
            kk = kp.repeat_interleave(H // Hkv, dim=1)
            m = scale * torch.einsum('bhd,bhcd->bhc', qv, kk)
            cnd = first_key <= qpos[rows].max()
            metric[:, :, rows] = m[:, :, None, :]
            cand[:, :, rows] = cnd[None, None, None, :]
            forced[:, :, rows] = (ids == c)[None, None, None, :]
        selc = torch.zeros(B, H, Nq, nC + 1, dtype=torch.bool, device=dev)
        pos = torch.searchsorted(ids, idx.long().clamp(min=0))
        hit = (idx >= 0) & (pos < nC) & (ids[pos.clamp(max=nC - 1)] == idx.long())
        selc.scatter_(3, torch.where(hit, pos, torch.full_like(pos, nC)), True)
        selc = selc[..., :nC]
        bad += check_topk(metric, cand, selc, t['params']['top'], forced)
        keys = selc.gather(3, torch.searchsorted(ids, ch).expand(B, H, Nq, Nk))
    return bad, keys & allowed, allowed


def attention_reference(q, k, v, keys, scale):
    H, Hkv = q.shape[1], k.shape[1]
    kk = k.float().repeat_interleave(H // Hkv, dim=1)
    vv = v.float().repeat_interleave(H // Hkv, dim=1)
    s = scale * torch.einsum('bhid,bhjd->bhij', q.float(), kk)
    s = s.masked_fill(~keys, float('-inf'))
    lse = torch.logsumexp(s, -1)
    p = torch.exp(s - lse[..., None]).nan_to_num(0.0)
    return torch.einsum('bhij,bhjd->bhid', p, vv), lse


def check_variant(build_dir, e, dev):
    kern = Kernel(build_dir, e)
    spec = SPECS[e['kernel']]
    res = dict(variant=e['variant'], ok=True, cases=[])
    for ci, case in enumerate(CASES):
        if case.get('only', spec['kind']) != spec['kind']:
            continue
        t = run_kernel(kern, e, case, dev, seed=ci + 11)
        code, msg = kern.launch(t['args'], 0)
        torch.cuda.synchronize()
        if code != 0:
            res['ok'] = False
            res['cases'].append(dict(case=ci, error=msg))
            continue
        a = t['args']
        bad, keys, allowed = reference_selection(spec, t, case, a.scale, a.q_offset)
        mask = keys if spec.get('restrict', True) else allowed.expand_as(keys)
        ro, rl = attention_reference(t['q'], t['k'], t['v'], mask, a.scale)
        o = t['out'].float()
        tol = 2e-2 if e['dtype'] != 'f32' else 1e-4
        err_o = (o - ro).abs().max().item()
        fin = torch.isfinite(rl)
        err_l = (t['lse'][fin] - rl[fin]).abs().max().item() if bool(fin.any()) else 0.0
        nan = bool(torch.isnan(o).any())
        if nan or err_o > tol or err_l > 1e-3 or not torch.equal(fin, torch.isfinite(t['lse'])):
            bad.append(f'attention: out max abs {err_o:.2e}, lse max abs {err_l:.2e}, nan {nan}')
        res['cases'].append(dict(case=ci, problems=bad, out_max_abs=err_o, lse_max_abs=err_l))
        res['ok'] = res['ok'] and not bad
    return res


def median_ms(fn, iters=30, warmup=5):
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


def pass_ms(launch, n):
    """Per-pass device ms of the attnc launch (CUPTI sees the ctypes launches too)."""
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(n):
            launch()
        torch.cuda.synchronize()
    per = {}
    for ev in prof.key_averages():
        if '_sel_' in ev.key:
            per[ev.key.split('_sel_')[-1]] = round(ev.device_time_total / max(ev.count, 1) / 1000.0, 4)
        elif 'attnc_' in ev.key:
            per[ev.key.split('attnc_')[-1][:40]] = round(ev.device_time_total / max(ev.count, 1) / 1000.0, 4)
    return per


def bench_case(build_dir, entries, dev, variant, case, iters, flex=True):
    e = next(x for x in entries if x['variant'] == variant)
    kern = Kernel(build_dir, e)
    t = run_kernel(kern, e, case, dev, seed=7)
    launch = lambda: kern.launch(t['args'], 0)  # noqa: E731
    code, msg = launch()
    torch.cuda.synchronize()
    row = dict(variant=variant, case=case, attnc_status=msg or 'ok')
    if code != 0:
        return row
    if case['Nq'] == 1:  # the selection is checked first (decode shapes: the reference is cheap)
        bad, _, _ = reference_selection(SPECS['tokenselect'], t, case, t['args'].scale, t['args'].q_offset)
        row['selection_problems'] = bad[:5]
    row['attnc_ms'] = median_ms(launch, iters=iters, warmup=max(1, iters // 5))
    try:
        row['attnc_pass_ms'] = pass_ms(launch, max(1, min(5, iters)))
    except Exception as ex:  # noqa: BLE001
        row['profile_error'] = str(ex)[:200]
    if not flex:
        return row
    q, k, v = t['q'], t['k'], t['v']
    sel = selected_mask(t['idx'], case['Nk'])[0, 0]  # [1, Nk]: vote heads, one selection for all heads
    row['selected_keys'] = int(sel.sum())
    row['selected_kv_blocks_of_128'] = int(sel.reshape(-1, 128).any(-1).sum())
    try:
        from torch.nn.attention.flex_attention import create_block_mask, flex_attention
        flex = torch.compile(flex_attention)
        selq = sel  # [Nq=1, Nk]
        bm = create_block_mask(lambda b, h, qi, ki: selq[qi, ki], None, None, 1, case['Nk'], device=dev)
        t0 = time.time()
        fo = flex(q, k, v, block_mask=bm, enable_gqa=True)
        torch.cuda.synchronize()
        row['flex_compile_s'] = round(time.time() - t0, 1)
        row['flex_select_ms'] = median_ms(lambda: flex(q, k, v, block_mask=bm, enable_gqa=True))
        row['flex_vs_attnc_max_abs'] = (fo.float() - t['out'].float()).abs().max().item()
        dense = create_block_mask(lambda b, h, qi, ki: qi + case['Nk'] - 1 >= ki, None, None, 1, case['Nk'], device=dev)
        row['flex_dense_ms'] = median_ms(lambda: flex(q, k, v, block_mask=dense, enable_gqa=True))
        row['attnc_vs_flex_select'] = round(row['flex_select_ms'] / row['attnc_ms'], 3)
    except Exception as ex:  # noqa: BLE001
        row['flex_error'] = str(ex)[:300]
    return row


def bench(build_dir, entries, dev, prefill=True):
    """TokenSelect decode at 32K and 128K (wide top-k and one-block top-k, Flex with the selection
    as a block mask and dense Flex), then TokenSelect prefill at 32K (per pass, attnc only)."""
    rows = []
    base = 'tokenselect_wgmma_bf16_d128'
    for Nk in (32768, 131072):
        case = dict(B=1, H=32, Hkv=8, Nq=1, Nk=Nk, budget=2048)
        rows.append(bench_case(build_dir, entries, dev, base, case, 30))
        print(json.dumps(rows[-1]), flush=True)
        if any(x['variant'] == base + '_onecta' for x in entries):
            rows.append(bench_case(build_dir, entries, dev, base + '_onecta', case, 30, flex=False))
            print(json.dumps(rows[-1]), flush=True)
    if not prefill:
        return rows
    case = dict(B=1, H=16, Hkv=4, Nq=32768, Nk=32768, budget=2048)
    rows.append(bench_case(build_dir, entries, dev, base, case, 3, flex=False))
    print(json.dumps(rows[-1]), flush=True)
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--build', default='bench/build/cuda-select')
    ap.add_argument('--out', default='.')
    ap.add_argument('--no-bench', action='store_true')
    ap.add_argument('--decode-only', action='store_true', help='skip the 32K prefill timing (a short call)')
    a = ap.parse_args()
    dev = torch.device('cuda')
    with open(os.path.join(a.build, 'index.json')) as f:
        entries = json.load(f)
    t0 = time.time()
    checks = []
    for e in entries:
        try:
            checks.append(check_variant(a.build, e, dev))
        except Exception as ex:  # noqa: BLE001
            checks.append(dict(variant=e['variant'], ok=False, error=repr(ex)[:500]))
        print(json.dumps(checks[-1])[:600], flush=True)
    result = dict(gpu=torch.cuda.get_device_name(), torch=torch.__version__, check_s=round(time.time() - t0, 1),
                  checks=checks, all_ok=all(c['ok'] for c in checks))
    if not a.no_bench and result['all_ok']:  # no timing of a kernel that fails its checks
        result['bench'] = bench(a.build, entries, dev, prefill=not a.decode_only)
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, 'select.json'), 'w') as f:
        json.dump(result, f, indent=1)
    sys.exit(0 if result['all_ok'] else 1)


if __name__ == '__main__':
    main()
