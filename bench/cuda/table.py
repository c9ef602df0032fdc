#!/usr/bin/env python3
"""The autotuned DESIGN §6 table: for each pattern and S, every candidate schedule of the pattern
(bench/cuda/tune-list.mjs) is timed, the fastest is the pattern's row, and FlexAttention
(torch.compile'd, block mask from the same predicate) and SDPA (full/causal) are timed beside it
in the same process. Only variants that passed check.py (all cases) and compute-sanitizer
(memcheck and racecheck, exit 0) are timed. Writes $OUT/table.json, $OUT/tuned.json (the winners)
and $OUT/table.md.

  python3 bench/cuda/table.py --build bench/build/cuda-table --check $OUT/cuda-check.json \
      [--sizes 4096,16384,32768] [--out $OUT] [--budget 400]
  python3 bench/cuda/table.py --merge RUN1/table.json RUN2/table.json OUTDIR   # no GPU needed
"""
import argparse
import json
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True
sys.path.insert(0, HERE)

PATTERNS = ['full', 'causal', 'sliding_window', 'sink_window', 'prefix_lm', 'document', 'dilated', 'softcap',
            'neighbourhood']
LABEL = {'sliding_window': 'sliding_window (1024)', 'sink_window': 'sink_window (4 + 1024)',
         'prefix_lm': 'prefix_lm (S/4)', 'document': 'document (S/16..S/4)', 'dilated': 'dilated (2)',
         'softcap': 'softcap (30, causal)', 'neighbourhood': 'neighbourhood 15x15 on a 128-wide image'}


def candidate_of(e):
    return e['kernel'].split('__', 1)[1] if '__' in e['kernel'] else 'default'


def sched_text(s):
    return f'{s.get("engine")} q{s["blockQ"]} k{s["blockK"]} s{s["stages"]} w{s["threads"] // 32}'


def verified(check):
    """Variants that passed every check case, and the sanitizer verdicts per variant."""
    ok = {r['variant'] for r in check['results'] if not r.get('crashed') and all(c['ok'] for c in r['cases'])}
    san = {}
    for z in check.get('sanitizer', []):
        san.setdefault(z['variant'], {})[z['tool']] = z['exit']
    clean = {v for v, t in san.items() if t.get('memcheck') == 0 and t.get('racecheck') == 0}
    nvcc = {b['variant']: b['seconds'] for b in check['builds']}
    return ok, clean, san, nvcc


def save_all(res, out):
    """table.json, tuned.json (the winner per pattern and S) and table.md of `res`."""
    json.dump(res, open(os.path.join(out, 'table.json'), 'w'), indent=2)
    tuned = {}
    for r in res['rows']:
        if 'ms' in r:
            tuned.setdefault(r['pattern'], {})[str(r['S'])] = dict(candidate=r['winner'], schedule=r['schedule'], ms=r['ms'])
    json.dump(dict(date=res['date'], device=res['device'], winners=tuned), open(os.path.join(out, 'tuned.json'), 'w'), indent=2)
    open(os.path.join(out, 'table.md'), 'w').write(table(res))


def merge(paths, out):
    """One table from several runs' table.json (e.g. sizes timed in separate device calls)."""
    runs = [json.load(open(p)) for p in paths]
    res = dict(runs[0])
    res['date'] = ' / '.join(r['date'] for r in runs)
    for key in ('rows', 'sdpa', 'skipped'):
        res[key] = [x for r in runs for x in r[key]]
    os.makedirs(out, exist_ok=True)
    save_all(res, out)
    print(table(res))


def main():
    if len(sys.argv) > 1 and sys.argv[1] == '--merge':
        return merge(sys.argv[2:-1], sys.argv[-1])
    import torch
    from artifact import Kernel, setup
    from bench import B, D, H, block_mask, density, mask_mod, median_ms, params_for, rel, score_mod
    ap = argparse.ArgumentParser()
    ap.add_argument('--build', default=os.path.join(HERE, '..', 'build', 'cuda-table'))
    ap.add_argument('--check', required=True, help="check.py's cuda-check.json for this build")
    ap.add_argument('--out', default=os.environ.get('OUT', os.path.join(HERE, '..', 'build', 'table-out')))
    ap.add_argument('--sizes', default='4096,16384,32768')
    ap.add_argument('--only', default='')
    ap.add_argument('--no-flex', action='store_true')
    ap.add_argument('--budget', type=float, default=400, help='seconds; larger sizes are skipped to fit')
    args = ap.parse_args()
    index = json.load(open(os.path.join(args.build, 'index.json')))
    ok, clean, san, nvcc = verified(json.load(open(args.check)))
    stream = torch.cuda.current_stream().cuda_stream
    from torch.nn.attention.flex_attention import create_block_mask, flex_attention
    torch._dynamo.config.cache_size_limit = 256
    flex = torch.compile(flex_attention, dynamic=False)
    os.makedirs(args.out, exist_ok=True)
    by_pattern = {p: [e for e in index if e.get('perf') and e.get('pattern') == p and any(o in e['variant'] for o in args.only.split(','))]
                  for p in PATTERNS}
    rows, sdpa, skipped = [], [], []
    res = dict(date=time.strftime('%Y-%m-%d %H:%M:%S'), device=torch.cuda.get_device_name(), torch=torch.__version__,
               B=B, H=H, D=D, dtype='bf16', rows=rows, sdpa=sdpa, skipped=skipped,
               render_ms={e['variant']: e['renderMs'] for e in index}, nvcc_s=nvcc, sanitizer=san)
    for p, es in by_pattern.items():
        for e in es:
            if e['variant'] not in ok or e['variant'] not in clean:
                skipped.append(dict(variant=e['variant'], checked=e['variant'] in ok, sanitized=san.get(e['variant'])))

    def save():
        save_all(res, args.out)

    t0 = time.time()
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
        for pat in PATTERNS:
            es = [e for e in by_pattern[pat] if e['variant'] in ok and e['variant'] in clean]
            if not es:
                continue
            prm = params_for(pat, S)
            case = dict(label=f'S={S}', B=B, H=H, Hkv=H, Nq=S, Nk=S)
            times, dens, mod = {}, None, None
            for e in es:
                k = Kernel(args.build, e)
                t, a, _, tensors, _ = setup(k, e, case, 'cuda', 1234, perf_len=S, params_override=prm)
                code, msg = k.launch(a, stream)
                torch.cuda.synchronize()
                if code != 0 or bool(torch.isnan(t['out']).any()):
                    times[candidate_of(e)] = dict(error=msg if code else 'output not written')
                    continue
                if dens is None:
                    mod = mask_mod(pat, prm, tensors.get('doc'))
                    dens = density(mod, S)
                times[candidate_of(e)] = dict(ms=round(median_ms(lambda: k.launch(a, stream), iters), 4))
                del t, a, tensors
                torch.cuda.empty_cache()
            timed = {c: x['ms'] for c, x in times.items() if 'ms' in x}
            if not timed:
                rows.append(dict(pattern=pat, S=S, candidates=times, error='no candidate ran'))
                continue
            win = min(timed, key=timed.get)
            e = next(x for x in es if candidate_of(x) == win)
            flops = 4 * B * H * S * S * D * dens
            ms = timed[win]
            row = dict(pattern=pat, S=S, params=prm, density=round(dens, 5), winner=win, schedule=e['schedule'],
                       variant=e['variant'], ms=ms, tflops=round(flops / ms / 1e9, 1), candidates=times,
                       render_ms=e['renderMs'], nvcc_s=nvcc.get(e['variant']))
            if not args.no_flex:
                # The winner again on the same inputs (same seed) for the output comparison with Flex.
                k = Kernel(args.build, e)
                t, a, _, tensors, _ = setup(k, e, case, 'cuda', 1234, perf_len=S, params_override=prm)
                k.launch(a, stream)
                mod = mask_mod(pat, prm, tensors.get('doc'))
                torch.cuda.synchronize()
                c0 = time.time()
                bm = None if mod is None else block_mask(create_block_mask, mod, S)
                torch.cuda.synchronize()
                row['flex_block_mask_first_ms'] = round((time.time() - c0) * 1000, 2)
                c0 = time.time()
                sm = score_mod(pat, prm)
                fo = flex(t['q'], t['k'], t['v'], score_mod=sm, block_mask=bm)
                torch.cuda.synchronize()
                row['flex_first_call_s'] = round(time.time() - c0, 2)
                row['attnc_vs_flex_rel'] = rel(t['out'], fo)
                fms = median_ms(lambda: flex(t['q'], t['k'], t['v'], score_mod=sm, block_mask=bm), iters)
                row.update(flex_ms=round(fms, 4), flex_tflops=round(flops / fms / 1e9, 1), vs_flex=round(fms / ms, 3))
                del fo, bm, t, a, tensors
            anchor = next((x for x in sdpa if x['S'] == S and x['pattern'] == pat), None)
            if anchor:
                row.update(sdpa_ms=anchor['ms'], vs_sdpa=round(anchor['ms'] / ms, 3))
            rows.append(row)
            print(json.dumps({k: v for k, v in row.items() if k != 'schedule'}), flush=True)
            torch.cuda.empty_cache()
            save()
    save()
    print(table(res))


def table(res):
    rm = [v for v in res['render_ms'].values()]
    nv = [v for v in res['nvcc_s'].values()]
    lines = [f'attnc (autotuned) vs FlexAttention vs SDPA, {res["device"]}, torch {res["torch"]}, bf16 B={res["B"]} '
             f'H={res["H"]} D={res["D"]}, {res["date"]}', '',
             '| pattern | S | winner (engine q k stages warps) | attnc ms | attnc TFLOP/s | Flex ms | Flex TFLOP/s | × Flex '
             '| SDPA ms | × SDPA | Flex 1st call s | attnc gen ms | nvcc s |',
             '| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |']
    for r in res['rows']:
        if 'ms' not in r:
            lines.append(f'| {r["pattern"]} | {r["S"]} | error: {r.get("error")} |')
            continue
        f = lambda k, fmt='{}': fmt.format(r[k]) if k in r and r[k] is not None else ''  # noqa: E731
        lines.append(f'| {LABEL.get(r["pattern"], r["pattern"])} | {r["S"]} | {r["winner"]}: {sched_text(r["schedule"])} '
                     f'| {r["ms"]:.3f} | {r["tflops"]:.1f} | {f("flex_ms", "{:.3f}")} | {f("flex_tflops")} | '
                     f'{f("vs_flex", "{:.2f}")} | {f("sdpa_ms", "{:.3f}")} | {f("vs_sdpa", "{:.2f}")} | '
                     f'{f("flex_first_call_s")} | {f("render_ms")} | {f("nvcc_s")} |')
    if rm:
        lines += ['', f'attnc source generation (frontend + passes + CUDA text) per variant: median '
                  f'{statistics.median(rm):.1f} ms, max {max(rm):.1f} ms (the first includes module loading); '
                  f'nvcc -O3 per variant: median {statistics.median(nv):.1f} s, max {max(nv):.1f} s.' if nv else '']
    san = res['sanitizer']
    bad = {v: t for v, t in san.items() if t.get('memcheck') != 0 or t.get('racecheck') != 0}
    lines += ['', f'compute-sanitizer: {len(san)} variants under memcheck and racecheck, '
              f'{len(san) - len(bad)} clean' + (f'; not clean: {json.dumps(bad)}' if bad else '') + '.']
    if res['skipped']:
        lines.append(f'not timed (failed the check or the sanitizer): {", ".join(s["variant"] for s in res["skipped"])}')
    return '\n'.join(lines) + '\n'


if __name__ == '__main__':
    main()
