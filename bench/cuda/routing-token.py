"""Token-granular routing on the GPU (issue #16): NSA-style selection (stdlib/nsa_select.attn:
raw queries · mean-pooled 64-key blocks, vote per GQA group, top-13 + first 1 + local 2, causal)
run by the token attention of src/codegen/cuda/token-attn.ts, and TokenSelect prefill.

1. Correctness first (the process exits 1 if any check fails): every nsa_select artifact against
   routing.py's float64 routing reference and float32 attention on the kernel's own indices, on
   routing.py's ragged cases plus GQA cases (16 and 64 query heads over 4 kv heads).
2. Timings, bf16, D = 128, B = 1: NSA-style at 16K, 64K, 128K with 16 and 64 query heads / 4 kv
   heads — end to end (pool + top-k + attention), per pass (CUDA profiler), TFLOP/s over the
   attended pairs (counted exactly from the indices), the ranking's share; beside FlexAttention
   with the same selection (a block mask of the union of each 128-row q-block's selected blocks,
   with a mask_mod that applies each row's own blocks and causality) and causal SDPA for scale.
   TokenSelect (select topk(2048) by q . k vote heads, causal) prefill at 32K.
   Beside them (separate rows, never instead): the same shapes with slowly drifting queries
   (--local-q: neighbouring tokens' selections overlap, as a trained model's do), and the tensor-core
   ranking's variants (routing-token-emit.mjs: other ROUTE_* constants) at --rank-sizes.

  node bench/cuda/routing-token-emit.mjs   (here: emits and builds bench/build/cuda-token)
  python3 bench/cuda/routing-token.py --build bench/build/cuda-token --out OUT [--quick]
"""
import argparse
import importlib.util
import json
import math
import os
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import routing as R  # noqa: E402  (routing.py: reference routing, checks, run_kernel)
from artifact import Kernel  # noqa: E402

_spec = importlib.util.spec_from_file_location('attnc_select_bench', os.path.join(HERE, 'select.py'))
SEL = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(SEL)

GQA_CASES = [
    dict(B=1, H=16, Hkv=4, Nq=2048, Nk=2048),
    dict(B=1, H=64, Hkv=4, Nq=1000, Nk=1000),
    dict(B=2, H=8, Hkv=4, Nq=333, Nk=1500),  # decode-like tail: q_offset = Nk - Nq
]
PASSES = ('route_pool_k', 'route_topk_tc', 'route_topk', 'token_attn',
          'tkm_count', 'tkm_scan', 'tkm_scatter', 'tkm_attn', 'tkm_merge', 'attention')


def attention_ms(passes):
    """The attention part: the query-major kernel, or the key-major passes (inversion, attention
    per key block, merge), or the core attention."""
    tkm = sum(v for k_, v in passes.items() if k_.startswith('tkm_'))
    return passes.get('token_attn') or tkm or passes.get('attention')


def per_pass_ms(fn, iters):
    from torch.profiler import ProfilerActivity, profile
    fn()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(iters):
            fn()
        torch.cuda.synchronize()
    out = {}
    for ev in prof.key_averages():
        us = getattr(ev, 'device_time_total', None) or getattr(ev, 'cuda_time_total', 0)
        for tag in PASSES:
            if ev.key.endswith(tag):
                out[tag] = round(out.get(tag, 0.0) + us / iters / 1000.0, 4)
                break
    return out


def attended_pairs(idx, n, qo, ko, Nk, heads_per_group):
    """Exact (row, key) pairs the attention visits: keys of selected blocks with key <= query."""
    B, G, Nq, K = idx.shape
    q = torch.arange(Nq, device=idx.device)[None, None, :, None] + qo
    ids = idx.long()
    lo = torch.clamp(ids * n, min=ko)
    hi = torch.minimum(torch.minimum(ids * n + n, torch.full_like(ids, ko + Nk)), q + 1)
    keys = torch.where(ids >= 0, (hi - lo).clamp(min=0), torch.zeros_like(ids))
    return int(keys.sum()) * heads_per_group


# The range check: q · 2^qe and k · 2^ke with qe = -ke (exact in bf16: q · k, the metric and the
# attention are the unscaled draw's), so |q| or |k| passes f16's 65504 while the other side is ~1e-6:
# the ranking's 16-bit key parts must keep f32's range (round 9's f16 ranking without its scaling
# failed it; that ranking was removed in round 11). RANGE_CHECK=1 runs it on every nsa_select variant.
RANGE_SHIFTS = ((17, -17), (-20, 20))


def check_range(build, e, dev):
    orig = R.run_kernel
    out = dict(variant=e['variant'], range=True, ok=True, shifts=[])
    try:
        for qe, ke in RANGE_SHIFTS:
            def scaled(*a, qm=2.0 ** qe, km=2.0 ** ke, **kw):
                t = orig(*a, **kw)
                t['q'].mul_(qm)  # in place: the launch arguments keep their pointers
                t['k'].mul_(km)
                return t
            R.run_kernel = scaled
            try:
                r = R.check_variant(build, e, dev)
            except Exception as ex:  # noqa: BLE001
                r = dict(ok=False, error=repr(ex)[:300])
            out['shifts'].append(dict(q=qe, k=ke, ok=r['ok'],
                                      bad_rows=[c.get('bad_rows') for c in r.get('cases', [])]))
            out['ok'] &= r['ok']
    finally:
        R.run_kernel = orig
    return out


def check(build, index, dev):
    results = []
    R.CASES[:] = R.CASES + GQA_CASES
    for e in [x for x in index if x['kernel'] == 'nsa_select']:
        try:
            r = R.check_variant(build, e, dev)
        except Exception as ex:  # noqa: BLE001
            r = dict(variant=e['variant'], ok=False, error=repr(ex)[:500])
        results.append(r)
        print(('OK  ' if r['ok'] else 'FAIL') + ' ' + json.dumps(r), flush=True)
        if os.environ.get('RANGE_CHECK') == '1':
            rr = check_range(build, e, dev)
            print(('OK  ' if rr['ok'] else 'FAIL') + ' range ' + json.dumps(rr), flush=True)
            results.append(rr)
    return results


def flex_same_selection(t, n, H, Hkv, S, dev):
    """FlexAttention on the kernel's selection: kv blocks of 128 = union over each 128-row q-block,
    all partial, with a mask_mod reading the per-row selection table (built here, timed apart)."""
    from torch.nn.attention.flex_attention import BlockMask, flex_attention
    idx = t['idx']
    B, G, Nq, K = idx.shape
    nkb = (S + n - 1) // n
    t0 = time.time()
    slot = torch.where(idx >= 0, idx.long(), torch.full_like(idx.long(), nkb))
    table = torch.zeros(B, G, Nq, nkb + 1, dtype=torch.uint8, device=dev)
    table.scatter_(-1, slot, torch.ones_like(slot, dtype=torch.uint8))
    table = table[..., :nkb].contiguous()
    QB = KB = 128
    nqb, nkb128 = (Nq + QB - 1) // QB, (S + KB - 1) // KB
    pad = nqb * QB - Nq
    tb = torch.nn.functional.pad(table, (0, 0, 0, pad)).view(B, G, nqb, QB, nkb).amax(3)  # [B,G,nqb,nkb]
    tb = torch.nn.functional.pad(tb, (0, nkb128 * (KB // n) - nkb)).view(B, G, nqb, nkb128, KB // n).amax(-1)
    rep = H // G
    tb = tb.repeat_interleave(rep, 1)                                                       # [B,H,nqb,nkb128]
    cnt = tb.sum(-1, dtype=torch.int32)
    order = torch.argsort(1 - tb.int(), dim=-1, stable=True).int()  # selected blocks first, ascending
    table = table.bool()
    torch.cuda.synchronize()
    mask_build_s = time.time() - t0

    def mask_mod(b, h, qi, ki):
        return (qi >= ki) & table[b, h // rep, qi, ki // n]
    bm = BlockMask.from_kv_blocks(cnt, order, None, None, BLOCK_SIZE=(QB, KB), mask_mod=mask_mod)
    flex = torch.compile(flex_attention, dynamic=False)
    q, k, v = t['q'], t['k'], t['v']
    t1 = time.time()
    fo = flex(q, k, v, block_mask=bm, enable_gqa=True)
    torch.cuda.synchronize()
    row = dict(flex_compile_s=round(time.time() - t1, 1), flex_table_s=round(mask_build_s, 3))
    row['flex_ms'] = round(R.median_ms(lambda: flex(q, k, v, block_mask=bm, enable_gqa=True), 3), 3)
    row['flex_vs_attnc_rel'] = float((fo.float() - t['out'].float()).norm() / fo.float().norm())
    row['flex_kv_block_density'] = round(float(tb.float().mean()), 4)
    return row


def bench_nsa(build, e, dev, sizes, heads, flex_at, sdpa, save, rows, local_at=()):
    """Appends a row per (S, H) to `rows` (and a drifting-query row per (S, H) in local_at) and
    calls save() after each."""
    kern = Kernel(build, e)
    n, D = 64, 128
    for S in sizes:
        for H in heads:
            Hkv = 4
            t = R.run_kernel(kern, dict(B=1, H=H, Hkv=Hkv, Nq=S, Nk=S), torch.bfloat16, D, dev, seed=7)
            code, msg = kern.launch(t['args'], 0)
            torch.cuda.synchronize()
            row = dict(pattern='nsa_select_top13_first1_local2_causal', kernel=e['variant'], S=S, B=1, H=H, Hkv=Hkv, D=D)
            if code != 0:
                row['error'] = msg
                rows.append(row)
                print(json.dumps(row), flush=True)
                continue
            iters = 10 if S * H <= 65536 * 16 else 3
            ms = R.median_ms(lambda: kern.launch(t['args'], 0), iters)
            passes = per_pass_ms(lambda: kern.launch(t['args'], 0), 3)
            a = t['args']
            pairs = attended_pairs(t['idx'], n, a.q_offset, a.k_offset, S, H // Hkv)
            flops = 4.0 * pairs * D
            attn = attention_ms(passes)
            rank = sum(v for k_, v in passes.items() if k_.startswith('route_'))
            row.update(ms=round(ms, 3), passes_ms=passes, attended_pairs=pairs,
                       mean_keys_per_row=round(pairs / (S * H), 1),
                       end_to_end_tflops=round(flops / ms / 1e9, 1),
                       ranking_share=round(rank / max(ms, 1e-9), 3))
            if attn:
                row['attention_tflops'] = round(flops / attn / 1e9, 1)
            if sdpa:
                rep = H // Hkv
                q, k, v = t['q'], t['k'].repeat_interleave(rep, 1), t['v'].repeat_interleave(rep, 1)
                f = lambda: torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)  # noqa: E731
                try:
                    row['sdpa_causal_ms'] = round(R.median_ms(f, 3), 3)
                    row['sdpa_causal_tflops'] = round(4.0 * H * S * (S + 1) / 2 * D / row['sdpa_causal_ms'] / 1e9, 1)
                except Exception as ex:  # noqa: BLE001
                    row['sdpa_error'] = repr(ex)[:200]
                del q, k, v
            print(json.dumps(row), flush=True)
            rows.append(row)
            save()
            if (S, H) in local_at:
                rows.append(time_local_q(kern, t, row, n, D, S, H, Hkv))
                print('local-q', json.dumps(rows[-1]), flush=True)
                save()
            del t
            torch.cuda.empty_cache()
    # FlexAttention last: its compile (tens of seconds per shape) must not crowd out our timings.
    for row in rows:
        if (row['S'], row['H']) not in flex_at or 'error' in row or 'drifting' in row['pattern']:
            continue
        S, H = row['S'], row['H']
        t = R.run_kernel(kern, dict(B=1, H=H, Hkv=4, Nq=S, Nk=S), torch.bfloat16, D, dev, seed=7)
        kern.launch(t['args'], 0)
        torch.cuda.synchronize()
        try:
            row.update(flex_same_selection(t, n, H, 4, S, dev))
        except Exception as ex:  # noqa: BLE001
            row['flex_error'] = repr(ex)[:300]
        print('flex', json.dumps(row), flush=True)
        save()
        del t
        torch.cuda.empty_cache()
    return rows


def time_local_q(kern, t, base, n, D, S, H, Hkv):
    """The same shape with queries that drift slowly along the sequence (runs of 64 tokens share a
    direction, plus noise), as trained models' queries do: neighbouring tokens then pick overlapping
    blocks. A separate row: the random-query row above stays the headline (every token gathers its
    own ~16 blocks there)."""
    q = t['q']
    gen = torch.Generator(device=q.device).manual_seed(11)
    B, Hq, Nq, _ = q.shape
    runs = torch.randn(B, Hq, (Nq + 63) // 64, D, device=q.device, generator=gen).repeat_interleave(64, 2)[:, :, :Nq]
    q.copy_((runs + 0.5 * q.float()).to(q.dtype))
    row = dict(base, pattern=base['pattern'] + '_slowly_drifting_q')
    for k_ in ('sdpa_causal_ms', 'sdpa_causal_tflops'):
        row.pop(k_, None)
    code, msg = kern.launch(t['args'], 0)
    torch.cuda.synchronize()
    if code != 0:
        row['error'] = msg
        return row
    iters = 10 if S * H <= 65536 * 16 else 3
    ms = R.median_ms(lambda: kern.launch(t['args'], 0), iters)
    passes = per_pass_ms(lambda: kern.launch(t['args'], 0), 3)
    a = t['args']
    pairs = attended_pairs(t['idx'], n, a.q_offset, a.k_offset, S, H // Hkv)
    flops = 4.0 * pairs * D
    attn = attention_ms(passes)
    rank = sum(v for k_, v in passes.items() if k_.startswith('route_'))
    row.update(ms=round(ms, 3), passes_ms=passes, attended_pairs=pairs,
               mean_keys_per_row=round(pairs / (S * H), 1),
               end_to_end_tflops=round(flops / ms / 1e9, 1),
               ranking_share=round(rank / max(ms, 1e-9), 3))
    if attn:
        row['attention_tflops'] = round(flops / attn / 1e9, 1)
    # How much neighbouring tokens' selections overlap: distinct blocks per 4 consecutive tokens.
    idx = t['idx'][0, 0, : (Nq // 4) * 4].long().view(-1, 4 * t['idx'].shape[-1])
    srt = idx.sort(-1).values
    distinct = ((srt[:, 1:] != srt[:, :-1]) & (srt[:, 1:] >= 0)).sum(-1) + (srt[:, :1] >= 0).sum(-1)
    row['distinct_blocks_per_4_tokens'] = round(float(distinct.float().mean()), 1)
    return row


def bench_tokenselect(build, index, dev, seq):
    e = next((x for x in index if x['variant'] == 'tokenselect_wgmma_bf16_d128'), None)
    if e is None:
        return None
    kern = Kernel(build, e)
    case = dict(B=1, H=16, Hkv=4, Nq=seq, Nk=seq, budget=2048)
    row = dict(pattern='tokenselect_budget2048_vote_heads_causal_prefill', kernel=e['variant'], case=case)
    try:
        t = SEL.run_kernel(kern, e, case, dev, seed=9)
    except Exception as ex:  # noqa: BLE001 (scratch too large for the device, …)
        row['error'] = repr(ex)[:300]
        return row
    code, msg = kern.launch(t['args'], 0)
    torch.cuda.synchronize()
    row['status'] = msg or 'ok'
    if code == 0:
        row['ms'] = round(SEL.median_ms(lambda: kern.launch(t['args'], 0), iters=3, warmup=1), 3)
        row['passes_ms'] = per_pass_sel(lambda: kern.launch(t['args'], 0))
    return row


def per_pass_sel(fn):
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        fn()
        torch.cuda.synchronize()
    return {ev.key.split('_sel_')[-1]: round(ev.device_time_total / max(ev.count, 1) / 1000.0, 3)
            for ev in prof.key_averages() if '_sel_' in ev.key or ev.key.endswith('_attention')}


def summary(res):
    """A short table on stdout: every timed row, default first, ranking and attention apart."""
    rows = res.get('nsa', []) + res.get('variants', []) + res.get('rank_variants', [])
    print(f"{'variant':<44} {'S':>6} {'H':>3} {'e2e ms':>8} {'rank ms':>8} {'attn ms':>8} {'rank share':>10}")
    for r in rows:
        if 'ms' not in r:
            continue
        p = r.get('passes_ms', {})
        rank = sum(v for k_, v in p.items() if k_.startswith('route_'))
        attn = attention_ms(p) or 0.0
        tag = r['kernel'] + ('  (drifting q)' if 'drifting' in r['pattern'] else '')
        print(f"{tag:<44} {r['S']:>6} {r['H']:>3} {r['ms']:>8.3f} {rank:>8.3f} {attn:>8.3f} {r['ranking_share']:>10.3f}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--build', default='bench/build/cuda-token')
    ap.add_argument('--out', default=None)
    ap.add_argument('--sizes', default='16384,65536,131072')
    ap.add_argument('--heads', default='16,64')
    ap.add_argument('--flex', default='16384x16', help='SxH pairs for FlexAttention (each compiles once)')
    ap.add_argument('--local-q', default='65536x16,65536x64',
                    help='SxH pairs also timed with slowly drifting queries (overlapping selections)')
    ap.add_argument('--rank-sizes', default='65536', help='sizes for the ranking variants')
    ap.add_argument('--variants', default='',
                    help='order variants (routing-token-emit.mjs tags: keymajor, keymajor_t2, ...) timed at '
                         '--sizes x --heads (and --local-q) beside the default, rows under "variants"')
    ap.add_argument('--no-sdpa', action='store_true')
    ap.add_argument('--no-tokenselect', action='store_true')
    ap.add_argument('--check-only', action='store_true')
    args = ap.parse_args()
    with open(os.path.join(args.build, 'index.json')) as f:
        index = json.load(f)
    dev = torch.device('cuda')
    t0 = time.time()
    res = dict(gpu=torch.cuda.get_device_name(), checks=[], nsa=[], tokenselect=None)

    def save():  # after every step: a timeout still leaves what was measured
        res['seconds'] = round(time.time() - t0, 1)
        if args.out:
            os.makedirs(args.out, exist_ok=True)
            with open(os.path.join(args.out, 'routing-token-results.json'), 'w') as f:
                json.dump(res, f, indent=1)

    res['checks'] = check(args.build, index, dev)
    print(f'checks: {time.time() - t0:.1f}s', flush=True)
    save()
    ok = all(r['ok'] for r in res['checks'])
    if ok and not args.check_only:
        sizes = [int(x) for x in args.sizes.split(',') if x]
        heads = [int(x) for x in args.heads.split(',') if x]
        flex_at = {tuple(int(y) for y in x.split('x')) for x in args.flex.split(',') if x}
        local_at = {tuple(int(y) for y in x.split('x')) for x in args.local_q.split(',') if x}
        main = next((x for x in index if x['variant'] == 'nsa_select_wgmma_bf16_d128'), None)
        if main is not None:
            bench_nsa(args.build, main, dev, sizes, heads, flex_at, not args.no_sdpa, save, res['nsa'], local_at)
        # Key-major and its unit shapes (routing-token-emit.mjs orderVariants), same shapes as the default.
        for tag in [x for x in args.variants.split(',') if x]:
            e = next((x for x in index if x.get('order') == tag), None)
            res.setdefault('variants', [])
            if e is None:
                res['variants'].append(dict(variant=tag, error='not in index.json'))
                continue
            bench_nsa(args.build, e, dev, sizes, heads, set(), False, save, res['variants'], local_at)
        # The ranking's variants (routing-token-emit.mjs: other constants), at the rank sizes only.
        rank_sizes = [int(x) for x in args.rank_sizes.split(',') if x]
        for e in [x for x in index if x.get('rank')]:
            res.setdefault('rank_variants', [])
            bench_nsa(args.build, e, dev, rank_sizes, heads, set(), False, save, res['rank_variants'])
        if not args.no_tokenselect:
            res['tokenselect'] = bench_tokenselect(args.build, index, dev, 32768)
            print('tokenselect', json.dumps(res['tokenselect']), flush=True)
        save()
        summary(res)
    sys.exit(0 if ok else 1)


if __name__ == '__main__':
    main()
