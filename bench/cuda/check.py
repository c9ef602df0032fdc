#!/usr/bin/env python3
"""Correctness check (then rough timings) of attnc's CUDA artifacts on a GPU machine.

Reads bench/build/cuda/index.json (written by bench/cuda/emit.mjs), compiles each .cu into a shared
library with nvcc, loads it with ctypes and runs it on random inputs; compares against a PyTorch
float64 reference that evaluates the kernel's own score/mask graph (the manifest's "expr") densely.
Outputs are poisoned (NaN) before every run, so an unwritten element fails. Each variant runs in a
child process, so a kernel that faults cannot take the others down. Results: $OUT/cuda-check.json,
$OUT/cuda-check.txt, $OUT/build.log.

  python3 bench/cuda/check.py [--build bench/build/cuda] [--out $OUT] [--only SUBSTR] [--no-perf]
                              [--sanitize VARIANT,...]   # also run those under compute-sanitizer
  python3 bench/cuda/check.py --dry-run ...   # no GPU: builds and calls the real launchers on
                                              # the CPU (they must fail for want of a device) and
                                              # checks the harness itself on small sizes
"""
import argparse
import concurrent.futures
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True  # no __pycache__ beside the sources
sys.path.insert(0, HERE)
from artifact import Kernel, setup  # noqa: E402
from reference import Evaluator, reference_attention  # noqa: E402

TOL = {'f32': 1e-4, 'f16': 3e-3, 'bf16': 2e-2}  # relative L2 error of out
LSE_TOL = 1e-3  # max abs error of lse (computed in f32 for every storage dtype)
CASES = [
    dict(label='prefill 1000x1337', B=2, H=4, Hkv=2, Nq=1000, Nk=1337),
    dict(label='square 1337', B=2, H=4, Hkv=2, Nq=1337, Nk=1337),
    dict(label='decode 3x1337', B=2, H=4, Hkv=2, Nq=3, Nk=1337),
    dict(label='offsets -200/+50', B=2, H=4, Hkv=2, Nq=1000, Nk=1337, q_offset=-200, k_offset=50),
]
PERF_SIZES = [4096, 16384]


def nvcc():
    for c in (shutil.which('nvcc'), '/usr/local/cuda/bin/nvcc'):
        if c and os.path.exists(c):
            return c
    raise SystemExit('nvcc not found')


def build(build_dir, entry):
    cu = os.path.join(build_dir, entry['cu'])
    so = os.path.join(build_dir, entry['variant'] + '.so')
    cmd = [nvcc(), '-O3', '-arch=sm_90a', '--shared', '-Xcompiler', '-fPIC', '-Xptxas', '-v', '-o', so, cu]
    t0 = time.time()
    r = subprocess.run(cmd, capture_output=True, text=True)
    return dict(variant=entry['variant'], ok=r.returncode == 0, so=so, seconds=round(time.time() - t0, 1),
                log=' '.join(cmd) + '\n' + r.stdout + r.stderr)


def check_case(k, entry, case, device, seed, dry_run):
    t, args, params, tensors, _ = setup(k, entry, case, device, seed)
    stream = torch.cuda.current_stream().cuda_stream if device == 'cuda' else None
    code, msg = k.launch(args, stream)
    ev = Evaluator(k.m, device)
    ref_out, ref_lse = reference_attention(ev, k.m, t['q'], t['k'], t['v'], args, params, tensors)
    res = dict(case=case['label'], launch=code, message=msg)
    if dry_run:  # no device: the launcher must refuse for that reason; stand in the reference
        res['dry_run'] = True
        t['out'].copy_(ref_out.to(t['out'].dtype))
        t['lse'].copy_(ref_lse.float())
    elif code != 0:
        res['ok'] = False
        return res
    else:
        torch.cuda.synchronize()
    out, lse = t['out'].double(), t['lse'].double()
    empty = torch.isinf(ref_lse) & (ref_lse < 0)
    written = not (torch.isnan(out).any() or torch.isnan(lse).any())
    err = (out - ref_out).norm() / ref_out.norm().clamp_min(1e-30)
    finite = ~empty
    lse_err = (lse[finite] - ref_lse[finite]).abs().max().item() if finite.any() else 0.0
    empty_ok = bool((lse[empty] == float('-inf')).all() and (out[empty] == 0).all())
    res.update(
        written=bool(written),
        out_rel_l2=err.item(),
        out_max_abs=(out - ref_out).abs().max().item(),
        lse_max_abs=lse_err,
        empty_rows=int(empty.sum()),
        empty_rows_ok=empty_ok,
    )
    res['ok'] = bool(written and res['out_rel_l2'] < TOL[k.m['schedule']['dtype']] and lse_err < LSE_TOL and empty_ok)
    return res


def median_ms(fn, iters, warmup=2):
    for _ in range(warmup):
        fn()
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


def density(k, entry, case, args, params, tensors, device):
    """Fraction of allowed (q, k) pairs of batch 0, head 0, in row chunks."""
    ev = Evaluator(k.m, device)
    allowed = 0
    for i0 in range(0, case['Nq'], 1024):
        rows = min(1024, case['Nq'] - i0)
        m = ev.mask_block(args, params, tensors, dict(case, B=1, H=1), i0, rows)
        allowed += int(m.sum())
    return allowed / (case['Nq'] * case['Nk'])


def perf(k, entry, device):
    """ms and effective TFLOP/s at benchmark sizes, next to SDPA in the same process."""
    out = []
    s = k.m['schedule']
    stream = torch.cuda.current_stream().cuda_stream
    for S in PERF_SIZES:
        case = dict(label=f'perf S={S}', B=2, H=16, Hkv=16, Nq=S, Nk=S)
        t, args, params, tensors, _ = setup(k, entry, case, device, 1234, perf_len=S, params_override=entry.get('perfParams'))
        code, msg = k.launch(args, stream)
        if code != 0:
            out.append(dict(S=S, error=msg))
            continue
        ms = median_ms(lambda: k.launch(args, stream), iters=10 if S <= 4096 else 5)
        dens = density(k, entry, case, args, params, tensors, device)
        flops = 4 * 2 * 16 * S * S * s['headDim'] * dens
        rec = dict(S=S, ms=round(ms, 3), density=round(dens, 4), tflops=round(flops / ms / 1e9, 1))
        if not math.isnan(float(t['out'].float().sum())):
            rec['written'] = True
        out.append(rec)
    return out


def sdpa_baseline(device):
    res = []
    for S in PERF_SIZES:
        q, k, v = (torch.randn(2, 16, S, 128, device=device, dtype=torch.bfloat16) for _ in range(3))
        for causal in (False, True):
            ms = median_ms(lambda: torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=causal), 10)
            flops = 4 * 2 * 16 * S * S * 128 * (0.5 if causal else 1.0)
            res.append(dict(S=S, causal=causal, ms=round(ms, 3), tflops=round(flops / ms / 1e9, 1)))
    return res


def worker(args):
    """Child process: every check case of one variant."""
    index = json.load(open(os.path.join(args.build, 'index.json')))
    entry = next(e for e in index if e['variant'] == args.worker)
    device = 'cpu' if args.dry_run else 'cuda'
    k = Kernel(args.build, entry)
    if args.launch_only:  # one small launch, for compute-sanitizer
        case = dict(label='small', B=1, H=2, Hkv=1, Nq=77, Nk=131, q_offset=-20)
        t, a, *_ = setup(k, entry, case, device, 5)
        code, msg = k.launch(a, torch.cuda.current_stream().cuda_stream)
        torch.cuda.synchronize()
        print('launch', code, msg, 'nan in out:', bool(torch.isnan(t['out'].float()).any()))
        return
    cases = CASES
    if args.dry_run:
        cases = [dict(c, B=1, H=2, Hkv=1, Nq=max(1, c['Nq'] // 10), Nk=c['Nk'] // 10) for c in CASES]
    res = dict(variant=entry['variant'], mapping=k.m['mapping'], cases=[])
    for i, c in enumerate(cases):
        res['cases'].append(check_case(k, entry, c, device, 1000 + i, args.dry_run))
    json.dump(res, open(args.result, 'w'))


def timer(args):
    """Child process, alone on the GPU: timings of the given (already checked) variants."""
    index = {e['variant']: e for e in json.load(open(os.path.join(args.build, 'index.json')))}
    stream = torch.cuda.current_stream().cuda_stream
    res = {}
    for v in args.time.split(','):
        entry, k = index[v], Kernel(args.build, index[v])
        t, a, *_ = setup(k, entry, CASES[0], 'cuda', 99)
        res[v] = dict(ms_check=round(median_ms(lambda: k.launch(a, stream), 20), 4))
        if entry.get('perf') and not args.no_perf:
            res[v]['perf'] = perf(k, entry, 'cuda')
        print('timed', v, res[v], flush=True)
        json.dump(res, open(args.result, 'w'))  # partial results survive a crash


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--build', default=os.path.join(HERE, '..', 'build', 'cuda'))
    ap.add_argument('--out', default=os.environ.get('OUT', os.path.join(HERE, '..', 'build', 'cuda-out')))
    ap.add_argument('--only', default='')
    ap.add_argument('--jobs', type=int, default=min(16, os.cpu_count() or 1))
    ap.add_argument('--dry-run', action='store_true')
    ap.add_argument('--no-perf', action='store_true')
    ap.add_argument('--worker')
    ap.add_argument('--result')
    ap.add_argument('--time', help='comma-separated variants to time (child process)')
    ap.add_argument('--launch-only', action='store_true')
    ap.add_argument('--sanitize', default='', help='comma-separated variants to run under compute-sanitizer ("perf": all benchmark variants)')
    ap.add_argument('--sanitize-jobs', type=int, default=6, help='compute-sanitizer runs at once')
    ap.add_argument('--budget', type=float, default=540, help='seconds; later phases are cut to fit')
    args = ap.parse_args()
    if args.worker:
        return worker(args)
    if args.time:
        return timer(args)
    os.makedirs(args.out, exist_ok=True)
    index = [e for e in json.load(open(os.path.join(args.build, 'index.json')))
             if any(o in e['variant'] for o in args.only.split(','))]  # comma-separated substrings
    t0 = time.time()
    with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        builds = list(pool.map(lambda e: build(args.build, e), index))
    with open(os.path.join(args.out, 'build.log'), 'w') as f:
        for b in builds:
            f.write(f'==== {b["variant"]} ({"ok" if b["ok"] else "FAILED"}, {b["seconds"]} s)\n{b["log"]}\n')
    print(f'built {sum(b["ok"] for b in builds)}/{len(builds)} in {time.time() - t0:.0f} s', flush=True)
    ok_builds = {b['variant'] for b in builds if b['ok']}

    def child(entry):
        result = os.path.join(tempfile.gettempdir(), f'attnc-check-{os.getpid()}-{entry["variant"]}.json')
        cmd = [sys.executable, __file__, '--build', args.build, '--worker', entry['variant'], '--result', result]
        cmd += ['--dry-run'] if args.dry_run else []
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        except subprocess.TimeoutExpired:
            return dict(variant=entry['variant'], crashed=True, stderr='timed out after 300 s')
        if r.returncode != 0 or not os.path.exists(result):
            return dict(variant=entry['variant'], crashed=True, stderr=r.stderr[-3000:])
        res = json.load(open(result))
        os.remove(result)
        return res

    summary = dict(
        date=time.strftime('%Y-%m-%d %H:%M:%S'),
        device=torch.cuda.get_device_name() if torch.cuda.is_available() else 'cpu (dry run)',
        torch=torch.__version__,
        dry_run=args.dry_run,
        builds=[{k: b[k] for k in ('variant', 'ok', 'seconds')} for b in builds],
        results=[],
        sanitizer=[],
        sdpa=[],
    )

    def save():  # after every phase, so that a run cut short still reports what it did
        with open(os.path.join(args.out, 'cuda-check.json'), 'w') as f:
            json.dump(summary, f, indent=2)
        text = report(summary, index)
        with open(os.path.join(args.out, 'cuda-check.txt'), 'w') as f:
            f.write(text)
        return text

    left = lambda: args.budget - (time.time() - t0)  # noqa: E731
    todo = [e for e in index if e['variant'] in ok_builds]
    # Correctness in parallel (4 processes share the GPU), compute-sanitizer on a few variants, then
    # timings in one process alone on the GPU.
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        results = list(pool.map(child, todo))
    summary['results'] = results
    save()
    print(f'checked {len(results)} variants in {time.time() - t0:.0f} s', flush=True)
    sanitized = summary['sanitizer']
    # `--sanitize perf` means every benchmark (perf) variant; several run at once (small launches).
    wanted = [x for x in args.sanitize.split(',') if x]
    if 'perf' in wanted:
        wanted = [e['variant'] for e in index if e.get('perf')] + [x for x in wanted if x != 'perf']
    wanted = [v for v in wanted if v in ok_builds]

    def sanitize(job):
        v, tool = job
        cmd = ['compute-sanitizer', '--tool', tool, '--error-exitcode', '9', sys.executable, __file__,
               '--build', args.build, '--worker', v, '--launch-only']
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=max(10, min(150, left() - 120)))
            res = dict(variant=v, tool=tool, exit=r.returncode, tail=(r.stdout + r.stderr)[-1500:])
        except subprocess.TimeoutExpired:
            res = dict(variant=v, tool=tool, exit=None, tail='timed out')
        print(f'{tool} {v}: exit {res["exit"]}', flush=True)
        return res

    if wanted and shutil.which('compute-sanitizer') and left() > 60:
        jobs = [(v, tool) for v in wanted for tool in ('memcheck', 'racecheck')]
        with concurrent.futures.ThreadPoolExecutor(args.sanitize_jobs) as pool:
            sanitized.extend(pool.map(sanitize, jobs))
    save()
    passed = [r['variant'] for r in results if not r.get('crashed') and all(c['ok'] for c in r['cases'])]
    if passed and not args.dry_run and left() > 90:
        result = os.path.join(tempfile.gettempdir(), f'attnc-time-{os.getpid()}.json')
        cmd = [sys.executable, __file__, '--build', args.build, '--time', ','.join(passed), '--result', result]
        cmd += ['--no-perf'] if args.no_perf else []
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=max(30, left() - 60))
            print(r.stdout[-2000:], r.stderr[-2000:], flush=True)
        except subprocess.TimeoutExpired:
            print('timings timed out', flush=True)
        timed = json.load(open(result)) if os.path.exists(result) else {}
        for r in results:
            r.update(timed.get(r['variant'], {}))
        print(f'timed in {time.time() - t0:.0f} s', flush=True)
        if torch.cuda.is_available() and not args.no_perf and left() > 60:
            summary['sdpa'] = sdpa_baseline('cuda')
        save()
    print(save())


def report(summary, index):
    lines = [f'attnc CUDA check, {summary["date"]}, {summary["device"]}, torch {summary["torch"]}', '']
    lines.append(f'{"variant":34} {"cases":>5} {"worst out rel":>13} {"worst lse":>10} {"empty":>6} {"ms@1000x1337":>12}')
    by_dtype = {}
    for r in summary['results']:
        if r.get('crashed'):
            lines.append(f'{r["variant"]:34} CRASHED: {r["stderr"].strip().splitlines()[-1:]}')
            continue
        cs = r['cases']
        ok = sum(c['ok'] for c in cs)
        rel = max(c.get('out_rel_l2', float('inf')) for c in cs)
        lse = max(c.get('lse_max_abs', float('inf')) for c in cs)
        empt = sum(c.get('empty_rows', 0) for c in cs)
        ms = r.get('ms_check', '')
        lines.append(f'{r["variant"]:34} {ok:>2}/{len(cs):<2} {rel:13.2e} {lse:10.2e} {empt:6d} {ms:>12}')
        for c in cs:
            if not c['ok']:
                lines.append(f'    FAIL {c["case"]}: {json.dumps(c)}')
        dt = next(e['dtype'] for e in index if e['variant'] == r['variant'])
        d = by_dtype.setdefault(dt, dict(rel=0.0, absmax=0.0, lse=0.0))
        d['rel'] = max(d['rel'], rel)
        d['absmax'] = max(d['absmax'], max(c.get('out_max_abs', float('inf')) for c in cs))
        d['lse'] = max(d['lse'], lse)
    lines += ['', 'worst errors per dtype:']
    for dt, d in sorted(by_dtype.items()):
        lines.append(f'  {dt:5} out rel L2 {d["rel"]:.2e}  out max abs {d["absmax"]:.2e}  lse max abs {d["lse"]:.2e}')
    perf_rows = [(r['variant'], p) for r in summary['results'] for p in r.get('perf', [])]
    if perf_rows or summary['sdpa']:
        lines += ['', 'timings (bf16, B=2, H=16, D=128, median ms, effective TFLOP/s = 4·B·H·S²·D·density / t):']
        for v, p in perf_rows:
            lines.append(f'  {v:30} S={p["S"]:6}  ' + (f'{p["ms"]:9.3f} ms  {p["tflops"]:6.1f} TFLOP/s  density {p["density"]}' if 'ms' in p else p.get('error', '')))
        for p in summary['sdpa']:
            lines.append(f'  {"SDPA " + ("causal" if p["causal"] else "full"):30} S={p["S"]:6}  {p["ms"]:9.3f} ms  {p["tflops"]:6.1f} TFLOP/s')
    for z in summary.get('sanitizer', []):
        lines.append(f'compute-sanitizer {z["tool"]} {z["variant"]}: exit {z["exit"]} '
                     + ' | '.join(l for l in z['tail'].splitlines() if 'SUMMARY' in l or 'launch' in l))
    return '\n'.join(lines) + '\n'


if __name__ == '__main__':
    main()
