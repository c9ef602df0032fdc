#!/usr/bin/env python3
"""attnc's tensor-core CUDA backwards beside FlexAttention and SDPA, in one process, correctness first
(issue 14 item 5; DESIGN §6). Engines (--engines / ENGINES, each atomic and deterministic):
  mma  codegen/cuda/backward-mma.ts (mma.sync);
  wg   codegen/cuda/backward-wgmma.ts (wgmma, sm_90a; every thread streams Q/dO);
  ws   the same with a producer warpgroup and 16-byte dQ atomics (backward-wgmma-ws.ts);
  ws_* ws with opt-in instruction cuts (backward-wgmma-tune.ts TUNE_ENGINES: ws_exp ws_mask ws_pack
       ws_dqu ws_desc ws_dq8 ws_n128, one knob each; ws_all every knob but dq8, ws_all8 with it;
       ws_dqb the default (= ws_all8's knobs) + dqBulk, ws_pp that + pingPong; ws_nosplit the
       default without splitMask).

Reads bench/build/cuda-backward/index.json (bench/cuda/backward-emit.mjs), builds every forward
(.cu, with lse) and the asked engines' backwards with nvcc in parallel, then
  1. correctness on small shapes (B 2, H 4, S 300: ragged tails), per pattern: attnc's forward out
     and every engine's dq dk dv (and d cap for softcap) against torch autograd of a float32
     reference (error <= 2e-2, or 2x Flex's own error with --check-flex, which costs a Flex compile
     per pattern); the deterministic mode must repeat bit for bit;
  2. forward and backward times (CUDA events, median) at each S of --sizes, bf16 B 2 H 16 D 128,
     beside torch.compile(flex_attention)'s forward/backward and SDPA's (full, causal), TFLOP/s
     (backward = 2.5 x the forward's FLOPs) and ratios; each engine's grads against Flex's at full
     size (<e>_vs_flex_d*_rel: two bf16 backwards on the same inputs). An engine whose check failed
     is not timed.
Results go to $OUT/backward.json (rewritten after every row) and a table on stdout.

  python3 bench/cuda/backward.py --build bench/build/cuda-backward [--sizes 4096,16384] [--budget 230]
      [--only full,causal] [--engines mma,wg,ws] [--dim 64]
"""
import argparse
import ctypes
import json
import math
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import torch
import torch._functorch.config

# The timing loops call backward repeatedly on one graph (retain_graph=True); compiled Flex graphs
# donate their saved buffers unless told not to, and then refuse the second call (seen on the H200).
torch._functorch.config.donated_buffer = False

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True
sys.path.insert(0, HERE)
from artifact import Kernel, setup  # noqa: E402
from bench import block_mask, density, mask_mod, median_ms, params_for, rel  # noqa: E402

B, H, D = 2, 16, 128
CHECK = dict(B=2, H=4, S=300)


def nvcc():
    for c in (shutil.which('nvcc'), '/usr/local/cuda/bin/nvcc'):
        if c and os.path.exists(c):
            return c
    raise SystemExit('nvcc not found')


def build_one(build, cu):
    so = os.path.join(build, cu[:-3] + '.so')
    if os.path.exists(so) and os.path.getmtime(so) > os.path.getmtime(os.path.join(build, cu)):
        return cu, 0, ''
    cmd = [nvcc(), '-O3', '-arch=sm_90a', '--shared', '-Xcompiler', '-fPIC', '-Xptxas', '-v', '-o', so,
           os.path.join(build, cu)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    spills = [l.strip() for l in r.stderr.splitlines() if 'spill' in l and not l.strip().startswith('0 bytes stack frame, 0 bytes spill')]
    return cu, r.returncode, (r.stderr[-3000:] if r.returncode else '; '.join(spills))


CTYPES = {'int': ctypes.c_int, 'float': ctypes.c_float, 'bool': ctypes.c_bool}


class Backward:
    """A built backward artifact: its Args struct from the emitted field list, launch and slots."""

    def __init__(self, build, meta):
        self.meta = meta
        lib = ctypes.CDLL(os.path.join(build, meta['cu'][:-3] + '.so'))

        class Args(ctypes.Structure):
            _fields_ = [(f['name'], ctypes.c_void_p if f['ctype'].endswith('*') else CTYPES[f['ctype']])
                        for f in meta['fields']]
        self.Args = Args
        ns = meta['namespace']
        self.launch_fn = lib[ns + '_launch']
        self.launch_fn.argtypes, self.launch_fn.restype = [ctypes.POINTER(Args), ctypes.c_void_p], ctypes.c_int
        self.slots_fn = lib[ns + '_slots']
        self.slots_fn.argtypes, self.slots_fn.restype = [ctypes.POINTER(Args)], ctypes.c_int
        self.partials_fn = lib[ns + '_partials']
        self.partials_fn.argtypes, self.partials_fn.restype = [ctypes.POINTER(Args)], ctypes.c_longlong

    def prepare(self, t, dout, tensors, params, sizes):
        """Args and buffers for one backward of the forward run `t` (q k v out lse) with dout."""
        a = self.Args()
        for n in ('B', 'H', 'Hkv', 'Nq', 'Nk'):
            setattr(a, n, sizes[n])
        a.q_offset, a.k_offset, a.scale = sizes['Nk'] - sizes['Nq'], 0, 1 / math.sqrt(t['q'].shape[-1])
        rows = sizes['B'] * sizes['H'] * sizes['Nq']
        buf = dict(dq=torch.empty_like(t['q']), dk=torch.empty_like(t['k']), dv=torch.empty_like(t['v']),
                   delta=torch.empty(rows, device='cuda'), dq_acc=torch.empty(rows * t['q'].shape[-1], device='cuda'),
                   dout=dout)
        for name in ('q', 'k', 'v', 'out', 'lse'):
            setattr(a, name, t[name].data_ptr())
        for name, x in buf.items():
            setattr(a, name, x.data_ptr())
        for name, x in tensors.items():
            setattr(a, 't_' + name, x.data_ptr())
            if hasattr(a, 's_' + name):  # per-block [min, max]: at most one block per position
                buf['s_' + name] = torch.empty(2 * x.numel() + 2, dtype=x.dtype, device='cuda')
                setattr(a, 's_' + name, buf['s_' + name].data_ptr())
        types = dict(self.Args._fields_)
        for name, v in params.items():
            if 'p_' + name in types:
                setattr(a, 'p_' + name, float(v) if types['p_' + name] is ctypes.c_float else int(v))
        buf['grads'] = torch.zeros(max(1, self.slots_fn(ctypes.byref(a))), device='cuda')
        a.grads = buf['grads'].data_ptr()
        buf['partials'] = torch.zeros(max(1, self.partials_fn(ctypes.byref(a))), device='cuda')
        a.partials = buf['partials'].data_ptr()
        return a, buf

    def launch(self, a, stream):
        code = self.launch_fn(ctypes.byref(a), stream)
        if code != 0:
            raise RuntimeError(f'backward launch failed: cudaError {code}')


def mask_of(pattern, p, doc):
    return mask_mod('causal' if pattern == 'alibi' else pattern, p, doc)


def score_of(pattern, p, heads):
    """The score modifier as FlexAttention takes it (score, b, h, q, k), or None."""
    if pattern == 'softcap':
        return lambda s, b, h, q, k: p['cap'] * torch.tanh(s / p['cap'])
    if pattern == 'alibi':
        return lambda s, b, h, q, k: s - torch.exp2(-8.0 * (h + 1) / heads) * (q - k)
    return None


def reference(pattern, p, doc, q, k, v, dout):
    """float32 dense attention with torch autograd: out and dq dk dv (and d cap for softcap)."""
    qf, kf, vf = (x.detach().float().requires_grad_() for x in (q, k, v))
    S, heads = q.shape[2], q.shape[1]
    cap = torch.tensor(float(p.get('cap', 1.0)), device='cuda', requires_grad=True)
    s = qf @ kf.transpose(-1, -2) / math.sqrt(q.shape[-1])
    qi = torch.arange(S, device='cuda')[:, None]
    ki = torch.arange(S, device='cuda')[None, :]
    hi = torch.arange(heads, device='cuda')[:, None, None]
    if pattern == 'softcap':
        s = cap * torch.tanh(s / cap)
    elif pattern == 'alibi':
        s = s - torch.exp2(-8.0 * (hi + 1) / heads) * (qi - ki)
    mod = mask_of(pattern, p, doc)
    if mod is not None:
        s = s.masked_fill(~mod(0, 0, qi, ki), float('-inf'))
    out = torch.softmax(s, dim=-1) @ vf
    grads = torch.autograd.grad(out, (qf, kf, vf, cap), dout.float(), allow_unused=True)
    return out, grads


def run_engine(b, t, dout, tensors, params, sizes, stream, times):
    """Launches backward b `times` times on one set of buffers: its buffers, and whether the last two dq agree bit for bit."""
    ba, buf = b.prepare(t, dout, tensors, params, sizes)
    dqs = []
    for _ in range(times):
        b.launch(ba, stream)
        torch.cuda.synchronize()
        dqs.append(buf['dq'].clone())
    return buf, len(dqs) < 2 or bool(torch.equal(dqs[-2], dqs[-1]))


def check(e, k, engines, flex, create, stream, with_flex):
    """Small-shape correctness of one pattern: every engine (atomic, deterministic) and Flex against the float32 reference."""
    pat, p = e['pattern'], e['params']
    S = CHECK['S']
    sizes = dict(B=CHECK['B'], H=CHECK['H'], Hkv=CHECK['H'], Nq=S, Nk=S)
    t, a, params, tensors, _ = setup(k, e, dict(label='check', **sizes), 'cuda', 5)
    code, msg = k.launch(a, stream)
    if code != 0:
        return dict(error=f'forward: {msg}')
    gen = torch.Generator(device='cuda').manual_seed(9)
    dout = torch.randn(t['out'].shape, generator=gen, device='cuda').to(torch.bfloat16)
    torch.cuda.synchronize()
    doc = tensors.get('doc')
    ref_out, (rq, rk, rv, rcap) = reference(pat, params, doc, t['q'], t['k'], t['v'], dout)
    row = dict(out=rel(t['out'], ref_out))
    try:  # Flex's own error on the same inputs: the bar for attnc's (bf16 P and dS in both)
        if not with_flex:
            raise RuntimeError('skipped (--check-flex): each new shape costs Flex a compile')
        mod, sm = mask_of(pat, params, doc), score_of(pat, params, sizes['H'])
        bm = None if mod is None else create(mod, None, None, S, S, device='cuda')
        qf, kf, vf = (x.detach().requires_grad_() for x in (t['q'], t['k'], t['v']))
        fo = flex(qf, kf, vf, score_mod=sm, block_mask=bm)
        fq, fk, fv = torch.autograd.grad(fo, (qf, kf, vf), dout)
        row.update(flex_dq=rel(fq, rq), flex_dk=rel(fk, rk), flex_dv=rel(fv, rv))
    except Exception as x:
        row['flex_error'] = repr(x)[:300]
    bar = {x: max(2 * row.get('flex_' + x, 0), 2e-2) for x in ('dq', 'dk', 'dv')}
    for name, (atomic, det) in engines.items():
        ok = row['out'] <= 2e-2
        for prefix, b, times in ((name + '_', atomic, 2), (name + '_det_', det, 3)):
            try:
                buf, same = run_engine(b, t, dout, tensors, params, sizes, stream, times)
            except Exception as x:
                row[prefix + 'error'] = repr(x)[:300]
                ok = False
                continue
            row.update({prefix + n: rel(buf[n], r) for n, r in (('dq', rq), ('dk', rk), ('dv', rv))})
            row[prefix + 'repeatable'] = same
            ok = ok and all(row[prefix + x] <= bar[x] for x in ('dq', 'dk', 'dv'))
            if prefix.endswith('det_'):
                ok = ok and same
            if pat == 'softcap':
                row[prefix + 'dcap'] = abs(buf['grads'][0].item() - rcap.item()) / max(abs(rcap.item()), 1e-6)
                ok = ok and row[prefix + 'dcap'] <= 5e-2
            del buf
        row[name + '_ok'] = ok
        print(f'  check {pat} {name}: ok={ok}', flush=True)  # a hung kernel shows where it hung
    return {x: (round(y, 5) if isinstance(y, float) else y) for x, y in row.items()}


def timings(e, k, engines, flex, create, stream, S, iters):
    pat = e['pattern']
    p = params_for(pat, S)
    sizes = dict(B=B, H=H, Hkv=H, Nq=S, Nk=S)
    t, a, params, tensors, _ = setup(k, e, dict(label=f'S={S}', **sizes), 'cuda', 1234, perf_len=S, params_override=p)
    code, msg = k.launch(a, stream)
    if code != 0:
        return dict(error=f'forward: {msg}')
    dout = torch.randn_like(t['out'])
    doc = tensors.get('doc')
    mod, sm = mask_of(pat, params, doc), score_of(pat, params, H)
    dens = density(mod, S)
    flops = 4 * B * H * S * S * D * dens
    row = dict(density=round(dens, 5))
    row['fwd_ms'] = median_ms(lambda: k.launch(a, stream), iters, label=f'attnc fwd {pat} S={S}')
    grads = {}
    for name, (atomic, det) in engines.items():
        for suffix, b in (('', atomic), ('_det', det)):
            ba, buf = b.prepare(t, dout, tensors, params, sizes)
            row[f'{name}{suffix}_bwd_ms'] = median_ms(lambda: b.launch(ba, stream), iters,
                                                     label=f'attnc bwd {name}{suffix} {pat} S={S}')
            print(f'  {pat} S={S} {name}{suffix}: {row[f"{name}{suffix}_bwd_ms"]:.3f} ms', flush=True)
            if not suffix:
                grads[name] = {n: buf[n] for n in ('dq', 'dk', 'dv')}
            del ba, buf
            torch.cuda.empty_cache()
    first = next(iter(grads), None)
    for name in grads:
        if name != first:
            row[f'{name}_vs_{first}_dq_rel'] = rel(grads[name]['dq'], grads[first]['dq'])
    m0 = time.time()
    bm = None if mod is None else block_mask(create, mod, S)
    torch.cuda.synchronize()
    row['flex_mask_s'] = round(time.time() - m0, 2)
    qf, kf, vf = (x.detach().requires_grad_() for x in (t['q'], t['k'], t['v']))
    c0 = time.time()
    fo = flex(qf, kf, vf, score_mod=sm, block_mask=bm)
    fg = torch.autograd.grad(fo, (qf, kf, vf), dout, retain_graph=True)
    torch.cuda.synchronize()
    row['flex_first_call_s'] = round(time.time() - c0, 2)
    for name, g in grads.items():
        row.update({f'{name}_vs_flex_{n}_rel': round(rel(g[n], f), 5) for n, f in zip(('dq', 'dk', 'dv'), fg)})
    del fg, grads
    row['flex_fwd_ms'] = median_ms(lambda: flex(qf, kf, vf, score_mod=sm, block_mask=bm), iters,
                                  label=f'flex fwd {pat} S={S}')
    row['flex_bwd_ms'] = median_ms(lambda: torch.autograd.grad(fo, (qf, kf, vf), dout, retain_graph=True), iters,
                                  label=f'flex bwd {pat} S={S}')
    row['fwd_tflops'] = round(flops / row['fwd_ms'] / 1e9, 1)
    row['flex_fwd_tflops'] = round(flops / row['flex_fwd_ms'] / 1e9, 1)
    row['flex_bwd_tflops'] = round(2.5 * flops / row['flex_bwd_ms'] / 1e9, 1)
    for name in engines:
        for suffix in ('', '_det'):
            ms = row[f'{name}{suffix}_bwd_ms']
            row[f'{name}{suffix}_bwd_tflops'] = round(2.5 * flops / ms / 1e9, 1)
            row[f'{name}{suffix}_vs_flex'] = round(row['flex_bwd_ms'] / ms, 3)
        row[f'{name}_fwd_bwd_vs_flex'] = round((row['flex_fwd_ms'] + row['flex_bwd_ms']) / (row['fwd_ms'] + row[f'{name}_bwd_ms']), 3)
    return {x: (round(y, 4) if isinstance(y, float) else y) for x, y in row.items()}


def sdpa_times(S, iters):
    q, k, v = (torch.randn(B, H, S, D, device='cuda', dtype=torch.bfloat16, requires_grad=True) for _ in range(3))
    rows = []
    for causal in (False, True):
        f = lambda: torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=causal)  # noqa: E731
        o = f()
        dout = torch.randn_like(o)
        fwd = median_ms(f, iters, label=f'sdpa fwd causal={causal} S={S}')
        bwd = median_ms(lambda: torch.autograd.grad(o, (q, k, v), dout, retain_graph=True), iters,
                        label=f'sdpa bwd causal={causal} S={S}')
        flops = 4 * B * H * S * S * D * (0.5 if causal else 1.0)
        rows.append(dict(S=S, pattern='causal' if causal else 'full', fwd_ms=round(fwd, 4), bwd_ms=round(bwd, 4),
                         fwd_tflops=round(flops / fwd / 1e9, 1), bwd_tflops=round(2.5 * flops / bwd / 1e9, 1)))
        del o
    return rows


def table(res):
    names = res['engines']
    lines = [f'attnc backward ({", ".join(names)}; atomic / deterministic) vs FlexAttention vs SDPA, {res["device"]}, '
             f'torch {res["torch"]}, bf16 B={B} H={H} D={D}', '',
             '| pattern | out | ' + ' | '.join(f'{n} dq/dk/dv (det) ok' for n in names) + ' | Flex dq/dk/dv |',
             '|---|---|' + '---|' * (len(names) + 1)]
    for pat, c in res['check'].items():
        if 'error' in c:
            lines.append(f'| {pat} | error: {c["error"]} |')
            continue
        cells = []
        for n in names:
            g = lambda x: c.get(x, '-')  # noqa: E731
            cells.append(f'{g(n + "_dq")}/{g(n + "_dk")}/{g(n + "_dv")} ({g(n + "_det_dq")}/{g(n + "_det_dk")}/{g(n + "_det_dv")}) '
                         f'{c.get(n + "_ok", "-")}')
        flex = '/'.join(str(c.get('flex_' + x, '-')) for x in ('dq', 'dk', 'dv'))
        lines.append(f'| {pat} | {c["out"]} | ' + ' | '.join(cells) + f' | {flex} |')
    head = ['pattern', 'S', 'fwd ms'] + [f'{n} bwd ms (det)' for n in names] + [f'{n} TFLOP/s' for n in names] + \
        ['Flex bwd ms', 'Flex TFLOP/s'] + [f'{n} ×Flex' for n in names] + [f'{n} ×SDPA' for n in names]
    lines += ['', '| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
    for r in res['rows']:
        if 'fwd_ms' not in r or 'flex_bwd_ms' not in r:
            lines.append(f'| {r["pattern"]} | {r["S"]} | error: {r.get("error")} |')
            continue
        sd = next((x for x in res['sdpa'] if x['S'] == r['S'] and x['pattern'] == r['pattern']), None)
        cells = [r['pattern'], r['S'], r['fwd_ms']]
        cells += [f'{r.get(n + "_bwd_ms", "-")} ({r.get(n + "_det_bwd_ms", "-")})' for n in names]
        cells += [r.get(n + '_bwd_tflops', '-') for n in names]
        cells += [r['flex_bwd_ms'], r['flex_bwd_tflops']]
        cells += [r.get(n + '_vs_flex', '-') for n in names]
        cells += [round(sd['bwd_ms'] / r[n + '_bwd_ms'], 3) if sd and n + '_bwd_ms' in r else '-' for n in names]
        lines.append('| ' + ' | '.join(str(x) for x in cells) + ' |')
    return '\n'.join(lines) + '\n'


def summary(res):
    """One line per (pattern, S, engine): atomic and deterministic ms, speed against the first engine
    (the baseline, e.g. ws), Flex and SDPA, and whether its small-shape check passed."""
    names = res['engines']
    lines = ['', '| pattern | S | engine | check | bwd ms | det ms | ×' + names[0] + ' | ×Flex | ×SDPA | dq rel vs ' +
             names[0] + ' |', '|---|---|---|---|---|---|---|---|---|---|']
    for r in res['rows']:
        base = r.get(names[0] + '_bwd_ms')
        sd = next((x for x in res['sdpa'] if x['S'] == r['S'] and x['pattern'] == r['pattern']), None)
        for n in names:
            ms = r.get(n + '_bwd_ms')
            ok = res['check'].get(r['pattern'], {}).get(n + '_ok', '-')
            if ms is None:
                lines.append(f'| {r["pattern"]} | {r["S"]} | {n} | {ok} | - | - | - | - | - | - |')
                continue
            vs = round(base / ms, 3) if base else '-'
            flex = round(r['flex_bwd_ms'] / ms, 3) if 'flex_bwd_ms' in r else '-'
            sdpa = round(sd['bwd_ms'] / ms, 3) if sd else '-'
            dq = r.get(f'{n}_vs_{names[0]}_dq_rel', '-')
            lines.append(f'| {r["pattern"]} | {r["S"]} | {n} | {ok} | {ms} | {r.get(n + "_det_bwd_ms", "-")} | {vs} | '
                         f'{flex} | {sdpa} | {dq} |')
    return '\n'.join(lines) + '\n'


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--build', default=os.path.join(HERE, '..', 'build', 'cuda-backward'))
    ap.add_argument('--out', default=os.environ.get('OUT', os.path.join(HERE, '..', 'build', 'backward-out')))
    ap.add_argument('--sizes', default='4096,16384')
    ap.add_argument('--only', default='', help='comma list: patterns whose name contains one of them')
    ap.add_argument('--dim', type=int, default=128, help='head dim D of the emitted kernels (backward-emit.mjs --dim)')
    ap.add_argument('--engines', default='mma,wg,ws', help='comma list of backward engines (index.json engines)')
    ap.add_argument('--budget', type=float, default=245, help='seconds from the start; later rows are skipped to fit')
    ap.add_argument('--check-flex', action='store_true', help="also run Flex's backward on the small shapes (compiles)")
    args = ap.parse_args()
    global D
    D = args.dim  # FLOPs, SDPA's shapes and the title (the kernels take theirs from the index)
    t0 = time.time()
    os.makedirs(args.out, exist_ok=True)
    only = [x for x in args.only.split(',') if x]
    index = [e for e in json.load(open(os.path.join(args.build, 'index.json')))
             if not only or any(x in e['pattern'] for x in only)]
    names = [x for x in args.engines.split(',') if x]
    res = dict(date=time.strftime('%Y-%m-%d %H:%M:%S'), device=torch.cuda.get_device_name(), torch=torch.__version__,
               engines=names, build={}, check={}, rows=[], sdpa=[])

    def save():
        json.dump(res, open(os.path.join(args.out, 'backward.json'), 'w'), indent=2)

    def metas(e):  # the asked engines' (atomic, det) metadata this pattern has
        return {n: (e['engines'][n]['atomic'], e['engines'][n]['det']) for n in names if n in e['engines']}

    cus = [m['cu'] for e in index for pair in metas(e).values() for m in pair] + [e['cu'] for e in index]
    with ThreadPoolExecutor(max_workers=min(16, os.cpu_count() or 4)) as pool:
        for cu, code, log in pool.map(lambda c: build_one(args.build, c), cus):
            res['build'][cu] = dict(ok=code == 0, log=log)
            if code:
                print(f'build {cu} failed:\n{log}', flush=True)
            elif log:
                print(f'build {cu}: {log}', flush=True)
    res['build_s'] = round(time.time() - t0, 1)
    print(f'built {len(cus)} libraries in {res["build_s"]} s', flush=True)
    save()
    from torch.nn.attention.flex_attention import create_block_mask, flex_attention
    torch._dynamo.config.cache_size_limit = 256
    flex = torch.compile(flex_attention, dynamic=False)
    stream = torch.cuda.current_stream().cuda_stream
    built = [e for e in index if res['build'][e['cu']]['ok']]
    kernels = {e['variant']: Kernel(args.build, e) for e in built}
    # Engines whose two builds succeeded (a failed build is reported, not fatal).
    backs = {e['variant']: {n: (Backward(args.build, a), Backward(args.build, d)) for n, (a, d) in metas(e).items()
                            if res['build'][a['cu']]['ok'] and res['build'][d['cu']]['ok']} for e in built}
    for e in built:
        try:
            res['check'][e['pattern']] = check(e, kernels[e['variant']], backs[e['variant']], flex, create_block_mask,
                                               stream, args.check_flex)
        except Exception as x:  # one pattern's failure must not hide the others
            res['check'][e['pattern']] = dict(error=repr(x)[:500])
        print('check', e['pattern'], json.dumps(res['check'][e['pattern']]), flush=True)
        save()
    res['check_done_s'] = round(time.time() - t0, 1)
    last_row_s = 0.0
    for S in [int(x) for x in args.sizes.split(',')]:
        iters = 15 if S <= 4096 else 6
        if time.time() - t0 > args.budget:
            print(f'budget spent: skipping S={S}', flush=True)
            break
        res['sdpa'] += sdpa_times(S, iters)
        for e in built:
            # A row about as long as the last one must end inside the budget (a row cut by the
            # caller's timeout loses the summary table).
            if time.time() - t0 + last_row_s > args.budget:
                print(f'budget spent: skipping {e["pattern"]} at S={S}', flush=True)
                continue
            row_t0 = time.time()
            checked = res['check'].get(e['pattern'], {})
            good = {n: b for n, b in backs[e['variant']].items() if checked.get(n + '_ok')}
            try:
                row = timings(e, kernels[e['variant']], good, flex, create_block_mask, stream, S, iters)
            except Exception as x:
                row = dict(error=repr(x)[:500])
            res['rows'].append(dict(pattern=e['pattern'], S=S, engine_fwd=e['engine'], timed=list(good), **row,
                                    done_s=round(time.time() - t0, 1)))
            print(json.dumps(res['rows'][-1]), flush=True)
            torch.cuda.empty_cache()
            save()
            last_row_s = time.time() - row_t0
    res['total_s'] = round(time.time() - t0, 1)
    save()
    print(table(res))
    print(summary(res))


if __name__ == '__main__':
    main()
