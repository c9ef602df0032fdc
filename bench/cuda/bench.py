#!/usr/bin/env python3
"""DESIGN §6 timings of attnc's CUDA kernels beside FlexAttention and SDPA, in one process.

Reads an index.json from bench/cuda/emit.mjs (entries with a `pattern`), builds nothing (run
check.py first: it builds the .so files and checks correctness), and for each pattern and S times
attnc, torch.compile(flex_attention) with a block mask from the same predicate written in Python,
and SDPA (full and causal only: its masked path is not a fair anchor). Median of many runs with
CUDA events, warm-up excluded. Also records FlexAttention's block-mask build and first-call compile
times and the attnc-vs-Flex output difference at every size (a full-size correctness check).

  python3 bench/cuda/bench.py --build bench/build/cuda-mma [--sizes 4096,16384,32768] [--out $OUT]
  python3 bench/cuda/bench.py --build ... --profile VARIANT   # one launch at S=4096, for ncu
"""
import argparse
import json
import os
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True
sys.path.insert(0, HERE)
from artifact import Kernel, setup  # noqa: E402
from profiled import profile_once  # noqa: E402

B, H, D = 2, 16, 128


def params_for(pattern, S):
    """The DESIGN §6 parameters of a pattern at sequence length S."""
    return {
        'sliding_window': dict(window=1024),
        'sink_window': dict(window=1024, sinks=4),
        'prefix_lm': dict(prefix=S // 4),
        'dilated': dict(dilation=2),
        'softcap': dict(cap=30.0),
        # A 128-wide image (S / 128 rows), 15×15 neighbourhoods.
        'neighbourhood': dict(W=128, r=7),
    }.get(pattern, {})


def mask_mod(pattern, p, doc):
    """The pattern's predicate for FlexAttention (q_idx, kv_idx: positions; square, offsets 0)."""
    if pattern == 'full':
        return None
    if pattern == 'causal':
        return lambda b, h, q, k: q >= k
    if pattern == 'sliding_window':
        w = p['window']
        return lambda b, h, q, k: (q >= k) & (q - k < w)
    if pattern == 'sink_window':
        w, s = p['window'], p['sinks']
        return lambda b, h, q, k: (q >= k) & ((q - k < w) | (k < s))
    if pattern == 'prefix_lm':
        n = p['prefix']
        return lambda b, h, q, k: (k < n) | (q >= k)
    if pattern == 'document':
        return lambda b, h, q, k: (doc[q] == doc[k]) & (q >= k)
    if pattern == 'dilated':
        d = p['dilation']
        return lambda b, h, q, k: (q >= k) & ((q - k) % d == 0)
    if pattern == 'softcap':
        return lambda b, h, q, k: q >= k
    if pattern == 'neighbourhood':
        w, r = p['W'], p['r']
        return lambda b, h, q, k: ((q // w - k // w).abs() <= r) & ((q % w - k % w).abs() <= r)
    raise ValueError(pattern)


def score_mod(pattern, p):
    """The pattern's score modifier for FlexAttention, or None."""
    if pattern == 'softcap':
        cap = p['cap']
        return lambda score, b, h, q, k: cap * torch.tanh(score / cap)
    return None


def density(mod, S):
    if mod is None:
        return 1.0
    allowed, k = 0, torch.arange(S, device='cuda')[None, :]
    for q0 in range(0, S, 2048):
        q = torch.arange(q0, min(S, q0 + 2048), device='cuda')[:, None]
        allowed += int(mod(0, 0, q, k).sum())
    return allowed / (S * S)


def block_mask(create, mod, S):
    # Eager construction evaluates all S² pairs at once: a few GB of temporaries at S = 16384, far
    # more at 32768, so compiled construction above 16K. In round 15's backward bench (H100) each row
    # with a compiled mask took ~200 s (13 s without one), so eager where it fits.
    if S <= 16384:
        return create(mod, None, None, S, S, device='cuda')
    try:
        return create(mod, None, None, S, S, device='cuda', _compile=True)
    except TypeError:
        return create(mod, None, None, S, S, device='cuda')


def median_ms(fn, iters, warmup=3, label=''):
    for _ in range(warmup):
        fn()
    profile_once(fn, label)
    torch.cuda.synchronize()
    times = []
    for _ in range(iters):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b))
    times.sort()
    return times[len(times) // 2]


def rel(x, y):
    x, y = x.float(), y.float()
    return ((x - y).norm() / y.norm().clamp_min(1e-30)).item()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--build', default=os.path.join(HERE, '..', 'build', 'cuda-mma'))
    ap.add_argument('--out', default=os.environ.get('OUT', os.path.join(HERE, '..', 'build', 'bench-out')))
    ap.add_argument('--sizes', default='4096,16384')
    ap.add_argument('--only', default='')
    ap.add_argument('--no-flex', action='store_true')
    ap.add_argument('--budget', type=float, default=400, help='seconds; larger sizes are skipped to fit')
    ap.add_argument('--profile', help='launch this variant once at S=4096 and exit (for ncu)')
    args = ap.parse_args()
    index = json.load(open(os.path.join(args.build, 'index.json')))
    stream = torch.cuda.current_stream().cuda_stream
    if args.profile:
        e = next(x for x in index if x['variant'] == args.profile)
        k = Kernel(args.build, e)
        case = dict(label='profile', B=B, H=H, Hkv=H, Nq=4096, Nk=4096)
        _, a, *_ = setup(k, e, case, 'cuda', 7, perf_len=4096, params_override=params_for(e['pattern'], 4096))
        for _ in range(2):
            k.launch(a, stream)
        torch.cuda.synchronize()
        return
    from torch.nn.attention.flex_attention import create_block_mask, flex_attention
    torch._dynamo.config.cache_size_limit = 256
    flex = torch.compile(flex_attention, dynamic=False)
    entries = [e for e in index if e.get('perf') and e.get('pattern') and args.only in e['variant']]
    built = [e for e in entries if os.path.exists(os.path.join(args.build, e['variant'] + '.so'))]
    os.makedirs(args.out, exist_ok=True)
    t0 = time.time()
    rows, sdpa = [], []
    res = dict(date=time.strftime('%Y-%m-%d %H:%M:%S'), device=torch.cuda.get_device_name(), torch=torch.__version__,
               B=B, H=H, D=D, dtype='bf16', rows=rows, sdpa=sdpa)

    def save():
        json.dump(res, open(os.path.join(args.out, 'bench.json'), 'w'), indent=2)

    for S in [int(x) for x in args.sizes.split(',')]:
        if time.time() - t0 > args.budget:
            print(f'budget spent: skipping S={S}', flush=True)
            break
        iters = 30 if S <= 4096 else 10 if S <= 16384 else 5
        q, kk, v = (torch.randn(B, H, S, D, device='cuda', dtype=torch.bfloat16) for _ in range(3))
        for causal in (False, True):
            ms = median_ms(lambda: torch.nn.functional.scaled_dot_product_attention(q, kk, v, is_causal=causal), iters)
            sdpa.append(dict(S=S, pattern='causal' if causal else 'full', ms=round(ms, 4),
                             tflops=round(4 * B * H * S * S * D * (0.5 if causal else 1.0) / ms / 1e9, 1)))
            print('sdpa', sdpa[-1], flush=True)
        del q, kk, v
        for e in built:
            pat, p = e['pattern'], params_for(e['pattern'], S)
            k = Kernel(args.build, e)
            case = dict(label=f'S={S}', B=B, H=H, Hkv=H, Nq=S, Nk=S)
            t, a, _, tensors, _ = setup(k, e, case, 'cuda', 1234, perf_len=S, params_override=p)
            code, msg = k.launch(a, stream)
            torch.cuda.synchronize()
            row = dict(variant=e['variant'], pattern=pat, S=S, params=p, schedule=e.get('schedule'), engine=e.get('engine'))
            if code != 0:
                row['error'] = msg
                rows.append(row)
                continue
            row['written'] = not bool(torch.isnan(t['out']).any())
            mod = mask_mod(pat, p, tensors.get('doc'))
            dens = density(mod, S)
            flops = 4 * B * H * S * S * D * dens
            ms = median_ms(lambda: k.launch(a, stream), iters)
            row.update(density=round(dens, 5), ms=round(ms, 4), tflops=round(flops / ms / 1e9, 1))
            if not args.no_flex and not e.get('alt'):
                qf, kf, vf = t['q'], t['k'], t['v']
                torch.cuda.synchronize()
                c0 = time.time()
                bm = None if mod is None else block_mask(create_block_mask, mod, S)
                torch.cuda.synchronize()
                row['flex_block_mask_first_ms'] = round((time.time() - c0) * 1000, 2)
                if mod is not None:  # again, warm: what a new mask costs once compiled
                    c0 = time.time()
                    bm = block_mask(create_block_mask, mod, S)
                    torch.cuda.synchronize()
                    row['flex_block_mask_ms'] = round((time.time() - c0) * 1000, 2)
                c0 = time.time()
                fo = flex(qf, kf, vf, block_mask=bm)
                torch.cuda.synchronize()
                row['flex_first_call_s'] = round(time.time() - c0, 2)
                row['attnc_vs_flex_rel'] = rel(t['out'], fo)
                fms = median_ms(lambda: flex(qf, kf, vf, block_mask=bm), iters)
                row.update(flex_ms=round(fms, 4), flex_tflops=round(flops / fms / 1e9, 1), vs_flex=round(fms / ms, 3))
                del fo, bm
            anchor = next((x for x in sdpa if x['S'] == S and x['pattern'] == pat), None)
            if anchor:
                row.update(sdpa_ms=anchor['ms'], vs_sdpa=round(anchor['ms'] / ms, 3))
            rows.append(row)
            print(json.dumps(row), flush=True)
            del t, a, tensors
            torch.cuda.empty_cache()
            save()
    save()
    print(table(res))


def table(res):
    engines = sorted({r.get('engine') or 'mma' for r in res['rows']}) or ['mma']
    lines = [f'attnc {"+".join(engines)} vs FlexAttention vs SDPA, {res["device"]}, torch {res["torch"]}, bf16 B={res["B"]} H={res["H"]} D={res["D"]}',
             '', '| pattern | S | attnc ms | attnc TFLOP/s | Flex ms | Flex TFLOP/s | ×Flex | SDPA ms | ×SDPA |',
             '|---|---|---|---|---|---|---|---|---|']
    for r in res['rows']:
        if 'ms' not in r:
            lines.append(f'| {r["variant"]} | {r["S"]} | error: {r.get("error")} |')
            continue
        name = r['pattern'] if r['variant'].startswith('std_' + r['pattern'] + '_bf16') else r['variant']
        lines.append(f'| {name} | {r["S"]} | {r["ms"]:.3f} | {r["tflops"]:.1f} | {r.get("flex_ms", "")} | '
                     f'{r.get("flex_tflops", "")} | {r.get("vs_flex", "")} | {r.get("sdpa_ms", "")} | {r.get("vs_sdpa", "")} |')
    return '\n'.join(lines) + '\n'


if __name__ == '__main__':
    main()
