#!/usr/bin/env python3
"""Dense prefill (full or causal, bf16, B 2, H 16, D 128, as bench/cuda/table.py times it) of the
wgmma-ws variants in bench/cuda/dense-list.mjs. Emit them first (on a machine with Node):
  npm run build && node bench/cuda/emit.mjs --engine wgmma --list bench/cuda/dense-list.mjs --out bench/build/cuda-dense
One call of one variant, for Nsight Compute (the .so is built with nvcc when missing):
  ncu --kernel-name regex:attnc --launch-count 1 --set full --import-source yes -o $OUT/full_default \\
      python3 bench/cuda/dense-ncu.py --pattern full --candidate default [--S 16384]
Every variant in one process (--all): each is checked against SDPA at --check-sizes (an odd size
gives tail tiles), then timed at --sizes beside SDPA; a variant whose check fails is not timed.
  python3 bench/cuda/dense-ncu.py --all --out $OUT/dense-times.json [--sizes 16384,32768]
The output is compared with SDPA after the launch (outside the profiled kernel's regex), so a
report of a wrong kernel is flagged. --iters N also times N launches with CUDA events."""
import argparse
import json
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from artifact import Kernel, setup  # noqa: E402
from check import build  # noqa: E402

B, H, D = 2, 16, 128
TOL = 2e-2  # bf16 output against SDPA's bf16 output (both ~4e-3 from the exact result)


def load(build_dir, entry):
    if not os.path.exists(os.path.join(build_dir, entry['variant'] + '.so')):
        b = build(build_dir, entry)
        if not b['ok']:
            raise RuntimeError(b['log'][-3000:])
    return Kernel(build_dir, entry)


def pattern_of(entry):
    return 'causal' if entry['variant'].startswith('std_causal') else 'full'


def median_ms(fn, iters, warmup=3):
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(iters):
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return sorted(times)[len(times) // 2]


def one(kern, entry, S, iters, negate=False):
    """Launch once, compare with SDPA, then (iters > 0, correct) time. negate: the scale's sign
    flipped (wsTweaks foldScale negates Q in shared memory for it), checked only."""
    case = dict(label=f'S={S}', B=B, H=H, Hkv=H, Nq=S, Nk=S)
    t, args, *_ = setup(kern, entry, case, 'cuda', 1234, perf_len=S)
    if negate:
        args.scale = -args.scale
    stream = torch.cuda.current_stream().cuda_stream
    code, msg = kern.launch(args, stream)
    torch.cuda.synchronize()
    causal = pattern_of(entry) == 'causal'
    if negate:  # SDPA's flash kernels take the row max of the unscaled q·k: a negative scale overflows
        with torch.nn.attention.sdpa_kernel(torch.nn.attention.SDPBackend.MATH):
            ref = torch.nn.functional.scaled_dot_product_attention(t['q'].float(), t['k'].float(), t['v'].float(),
                                                                   is_causal=causal, scale=args.scale)
    else:
        ref = torch.nn.functional.scaled_dot_product_attention(t['q'], t['k'], t['v'], is_causal=causal,
                                                               scale=args.scale)
    err = ((t['out'].float() - ref.float()).norm() / ref.float().norm()).item() if code == 0 else None
    res = dict(variant=entry['variant'], S=S, launch=code, message=msg, rel_vs_sdpa=err,
               ok=code == 0 and err is not None and err < TOL, **({'scale': args.scale} if negate else {}))
    if iters and res['ok']:
        ms = median_ms(lambda: kern.launch(args, stream), iters)
        flops = 4 * B * H * S * S * D * (0.5 if causal else 1.0)
        res.update(ms=round(ms, 4), tflops=round(flops / ms / 1e9, 1))
    del t, args
    return res


def run_all(a, index):
    sizes = [int(x) for x in a.sizes.split(',')]
    checks = [int(x) for x in a.check_sizes.split(',')]
    res = dict(gpu=torch.cuda.get_device_name(), sdpa=[], variants=[])
    for S in sizes:
        q, k, v = (torch.randn(B, H, S, D, device='cuda', dtype=torch.bfloat16) for _ in range(3))
        for causal in (False, True):
            ms = median_ms(lambda: torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=causal), a.iters)
            flops = 4 * B * H * S * S * D * (0.5 if causal else 1.0)
            res['sdpa'].append(dict(S=S, pattern='causal' if causal else 'full', ms=round(ms, 4),
                                    tflops=round(flops / ms / 1e9, 1)))
            print('sdpa', res['sdpa'][-1], flush=True)
        del q, k, v
    sdpa = {(x['pattern'], x['S']): x['ms'] for x in res['sdpa']}
    for e in index:
        if a.only and not any(o in e['variant'] for o in a.only.split(',')):
            continue
        row = dict(variant=e['variant'], schedule=e['schedule'], checks=[], times=[])
        try:
            kern = load(a.build, e)
            # A check size that is also a timed size is checked by its timing run (one setup less).
            row['checks'] = [one(kern, e, S, 0) for S in checks if S not in sizes]
            row['checks'].append(one(kern, e, checks[0], 0, negate=True))  # a negative scale
            if all(c['ok'] for c in row['checks']):
                for S in sizes:
                    r = one(kern, e, S, a.iters)
                    if 'ms' in r:
                        r['vs_sdpa'] = round(sdpa[(pattern_of(e), S)] / r['ms'], 3)
                    row['times'].append(r)
                    if not r['ok']:
                        break
        except Exception as x:  # a build or launch failure is this variant's result, not the run's
            row['error'] = str(x)[-2000:]
        res['variants'].append(row)
        print(json.dumps({k: v for k, v in row.items() if k != 'schedule'}), flush=True)
        torch.cuda.empty_cache()
        with open(a.out, 'w') as f:
            json.dump(res, f, indent=1)
    print('\n| variant | ' + ' | '.join(f'S={S} ms (× SDPA)' for S in sizes) + ' |')
    for row in res['variants']:
        cells = [f"{t['ms']} ({t.get('vs_sdpa')})" if 'ms' in t else f"check failed (rel {t['rel_vs_sdpa']})"
                 for t in row['times']]
        if not row['times']:
            cells = ['check failed: ' + ', '.join(f"S={c['S']} rel {c['rel_vs_sdpa']}" for c in row['checks'])
                     if row['checks'] else row.get('error', '?')[:80]]
        print(f"| {row['variant']} | " + ' | '.join(cells) + ' |')


ap = argparse.ArgumentParser()
ap.add_argument('--build', default='bench/build/cuda-dense')
ap.add_argument('--pattern', choices=['full', 'causal'], default='full')
ap.add_argument('--candidate', default='default', help='tune-list candidate id: default, ws_fa3, ws_overlap, ...')
ap.add_argument('--S', type=int, default=16384)
ap.add_argument('--iters', type=int, default=0)
ap.add_argument('--json', default=None, help='append the result line (JSON) to this file')
ap.add_argument('--all', action='store_true', help='check and time every variant of the build')
ap.add_argument('--only', default='', help='with --all: variants whose names contain one of these (comma-separated)')
ap.add_argument('--sizes', default='16384,32768')
ap.add_argument('--check-sizes', default='1000,16384')
ap.add_argument('--out', default='dense-times.json')
a = ap.parse_args()

with open(os.path.join(a.build, 'index.json')) as f:
    index = json.load(f)
if a.all:
    a.iters = a.iters or 10
    run_all(a, index)
    sys.exit(0)
variant = f'std_{a.pattern}__{a.candidate}_bf16_d128'
entry = next((x for x in index if x['variant'] == variant), None)
if entry is None:
    sys.exit(f'{variant}: not in {a.build}/index.json; have ' + ', '.join(x['variant'] for x in index))
res = one(load(a.build, entry), entry, a.S, a.iters)
print(json.dumps(res), flush=True)
if a.json:
    with open(a.json, 'a') as f:
        f.write(json.dumps(res) + '\n')
sys.exit(0 if res['ok'] else 1)
