#!/usr/bin/env python3
"""The 2-D neighbourhood candidates (bench/cuda/nbhd-list.mjs) timed side by side with
FlexAttention, in one process, on the same inputs: 15x15 neighbourhoods on a 128-wide image, bf16,
B=2, H=16, D=128. Only variants that passed check.py (every case) are timed. At every size each
variant's output is also compared with FlexAttention's (a full-size correctness check; Flex's own
error against float32 is about 2e-3). Writes $OUT/nbhd.json and prints a table.

  python3 bench/cuda/neighbourhood.py --build bench/build/nbhd --check $OUT/cuda-check.json \
      [--sizes 16384,4096] [--out $OUT] [--budget 60]
"""
import argparse
import ctypes
import json
import os
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True
sys.path.insert(0, HERE)
from artifact import Kernel  # noqa: E402
from bench import B, D, H, block_mask, density, mask_mod, median_ms, params_for, rel  # noqa: E402

REL_TOL = 2e-2  # attnc vs Flex, both bf16 (each ~2e-3 from float32)


def candidate_of(e):
    return e['kernel'].split('__', 1)[1] if '__' in e['kernel'] else 'default'


def passed(check):
    return {r['variant'] for r in check['results'] if not r.get('crashed') and all(c['ok'] for c in r['cases'])}


def args_for(k, S, params, t):
    """The launch arguments over shared inputs (the neighbourhood kernel reads no tensors)."""
    assert not k.m['tensors'] and not k.summary_elems, 'a kernel with tensors: use artifact.setup'
    a = k.Args()
    k.init(ctypes.byref(a), B, H, H, S, S)
    for p in k.m['params']:
        setattr(a, k.field('param', p['name']), params[p['name']])
    for role in ('q', 'k', 'v', 'out', 'lse'):
        if role in k.by_role:
            setattr(a, k.field(role), t[role].data_ptr())
    return a


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--build', default=os.path.join(HERE, '..', 'build', 'nbhd'))
    ap.add_argument('--check', required=True)
    ap.add_argument('--out', default=os.environ.get('OUT', os.path.join(HERE, '..', 'build', 'nbhd-out')))
    ap.add_argument('--sizes', default='16384,4096')
    ap.add_argument('--budget', type=float, default=60, help='seconds; later sizes are skipped')
    args = ap.parse_args()
    index = json.load(open(os.path.join(args.build, 'index.json')))
    ok = passed(json.load(open(args.check)))
    entries = [e for e in index if e.get('perf') and e['variant'] in ok]
    failed = [e['variant'] for e in index if e.get('perf') and e['variant'] not in ok]
    from torch.nn.attention.flex_attention import create_block_mask, flex_attention
    flex = torch.compile(flex_attention, dynamic=False)
    stream = torch.cuda.current_stream().cuda_stream
    os.makedirs(args.out, exist_ok=True)
    res = dict(date=time.strftime('%Y-%m-%d %H:%M:%S'), device=torch.cuda.get_device_name(), torch=torch.__version__,
               B=B, H=H, D=D, not_timed=failed, sizes=[])
    t0 = time.time()
    for S in [int(x) for x in args.sizes.split(',')]:
        if time.time() - t0 > args.budget:
            print(f'budget spent: skipping S={S}', flush=True)
            break
        prm = params_for('neighbourhood', S)
        gen = torch.Generator(device='cuda').manual_seed(1234)
        t = {r: torch.randn(B, H, S, D, generator=gen, device='cuda').to(torch.bfloat16) for r in ('q', 'k', 'v')}
        t['out'] = torch.empty(B, H, S, D, dtype=torch.bfloat16, device='cuda')
        t['lse'] = torch.empty(B, H, S, dtype=torch.float32, device='cuda')
        mod = mask_mod('neighbourhood', prm, None)
        dens = density(mod, S)
        flops = 4 * B * H * S * S * D * dens
        iters = 30 if S <= 4096 else 20
        row = dict(S=S, params=prm, density=round(dens, 5), variants=[])
        res['sizes'].append(row)
        print(f'S={S}: density {dens:.4f}', flush=True)
        # attnc first, each output kept: Flex's block mask and compile for this mask took minutes on
        # the H200 (two runs printed nothing in 65 s and 110 s), so its figures come last.
        outs = []
        # The first candidate (the default) once more at the end: the clocks' drift over the run.
        for n, e in enumerate(entries + entries[:1]):
            k = Kernel(args.build, e)
            a = args_for(k, S, prm, t)
            t['out'].fill_(float('nan'))
            code, msg = k.launch(a, stream)
            torch.cuda.synchronize()
            if code != 0:
                row['variants'].append(dict(variant=e['variant'], error=msg))
                continue
            outs.append(t['out'].clone())
            ms = median_ms(lambda: k.launch(a, stream), iters)
            label = candidate_of(e) + (' (again)' if n == len(entries) else '')
            row['variants'].append(dict(variant=e['variant'], candidate=label, ms=round(ms, 4),
                                        tflops=round(flops / ms / 1e9, 1)))
            print(json.dumps(row['variants'][-1]), flush=True)
            json.dump(res, open(os.path.join(args.out, 'nbhd.json'), 'w'), indent=1)
        c0 = time.time()
        bm = block_mask(create_block_mask, mod, S)
        fo = flex(t['q'], t['k'], t['v'], block_mask=bm)
        torch.cuda.synchronize()
        print(f'S={S}: Flex block mask + first call {time.time() - c0:.1f} s', flush=True)
        fms = median_ms(lambda: flex(t['q'], t['k'], t['v'], block_mask=bm), iters)
        row.update(flex_ms=round(fms, 4), flex_tflops=round(flops / fms / 1e9, 1))
        for v, out in zip((v for v in row['variants'] if 'ms' in v), outs):
            r = rel(out, fo)
            v.update(vs_flex=round(fms / v['ms'], 3), rel_vs_flex=round(r, 5), ok=bool(r < REL_TOL))
        json.dump(res, open(os.path.join(args.out, 'nbhd.json'), 'w'), indent=1)
        del t, fo, bm, outs
        torch.cuda.empty_cache()
    print(table(res))


def table(res):
    lines = [f'neighbourhood 15x15 on a 128-wide image, {res["device"]}, torch {res["torch"]}, bf16 B={res["B"]} '
             f'H={res["H"]} D={res["D"]}, {res["date"]}']
    for row in res['sizes']:
        flex = (f'FlexAttention {row["flex_ms"]:.3f} ms ({row["flex_tflops"]} TFLOP/s); target 3x Flex = '
                f'{row["flex_ms"] / 3:.3f} ms' if 'flex_ms' in row else 'FlexAttention not timed')
        lines += ['', f'S={row["S"]}: {flex}',
                  f'{"candidate":28} {"ms":>8} {"TFLOP/s":>8} {"x Flex":>7} {"rel vs Flex":>11}']
        for v in sorted(row['variants'], key=lambda x: x.get('ms', 1e9)):
            if 'ms' not in v:
                lines.append(f'{v["variant"]:28} error: {v["error"]}')
                continue
            if 'vs_flex' not in v:
                lines.append(f'{v["candidate"]:28} {v["ms"]:8.3f} {v["tflops"]:8.1f}')
                continue
            bad = '' if v['ok'] else '  WRONG'
            lines.append(f'{v["candidate"]:28} {v["ms"]:8.3f} {v["tflops"]:8.1f} {v["vs_flex"]:7.2f} '
                         f'{v["rel_vs_flex"]:11.2e}{bad}')
    if res['not_timed']:
        lines += ['', 'not timed (failed check.py): ' + ', '.join(res['not_timed'])]
    return '\n'.join(lines)


if __name__ == '__main__':
    main()
