#!/usr/bin/env python3
"""attnc's tensor-core CUDA backwards (codegen/cuda/backward-mma.ts, mma.sync; backward-wgmma.ts, sm_90a) beside FlexAttention and SDPA,
in one process, correctness first (issue 14 item 5; DESIGN §6).

Reads bench/build/cuda-backward/index.json (bench/cuda/backward-emit.mjs), builds every forward
(.cu, with lse) and backward (_backward.cu) with nvcc in parallel, then
  (every backward twice: the atomic dq mode and the deterministic one, backward-mma-dq.ts)
  1. correctness on small shapes (B 2, H 4, S 300: ragged tails), per pattern: attnc's forward out
     and dq dk dv (and d cap for softcap) against torch autograd of a float32 reference (error ≤ 2e-2,
     or 2·Flex's own error with --check-flex, which costs a Flex compile per pattern);
  2. forward and backward times (CUDA events, median) at each S of --sizes, bf16 B 2 H 16 D 128,
     beside torch.compile(flex_attention)'s forward/backward and SDPA's (full, causal), TFLOP/s
     (backward = 2.5 × the forward's FLOPs) and ratios; attnc's grads against Flex's at full size
     (vs_flex_d*_rel: the two bf16 backwards on the same inputs).
Results go to $OUT/backward.json (rewritten after every row) and a table on stdout.

  python3 bench/cuda/backward.py --build bench/build/cuda-backward [--sizes 4096,16384] [--budget 230]
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

    def __init__(self, build, e, key='backward'):
        meta = e[key]
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


def check(e, k, bk, bdet, flex, create, stream, with_flex, wg=None):
    """Small-shape correctness of one pattern: attnc and Flex against the float32 reference."""
    pat, p = e['pattern'], e['params']
    S = CHECK['S']
    sizes = dict(B=CHECK['B'], H=CHECK['H'], Hkv=CHECK['H'], Nq=S, Nk=S)
    t, a, params, tensors, _ = setup(k, e, dict(label='check', **sizes), 'cuda', 5)
    code, msg = k.launch(a, stream)
    if code != 0:
        return dict(error=f'forward: {msg}')
    gen = torch.Generator(device='cuda').manual_seed(9)
    dout = torch.randn(t['out'].shape, generator=gen, device='cuda').to(torch.bfloat16)
    ba, buf = bk.prepare(t, dout, tensors, params, sizes)
    bk.launch(ba, stream)
    torch.cuda.synchronize()
    doc = tensors.get('doc')
    ref_out, (rq, rk, rv, rcap) = reference(pat, params, doc, t['q'], t['k'], t['v'], dout)
    row = dict(out=rel(t['out'], ref_out), dq=rel(buf['dq'], rq), dk=rel(buf['dk'], rk), dv=rel(buf['dv'], rv))
    da, dbuf = bdet.prepare(t, dout, tensors, params, sizes)
    bdet.launch(da, stream)
    bdet.launch(da, stream)
    torch.cuda.synchronize()
    first = dbuf['dq'].clone()
    bdet.launch(da, stream)
    torch.cuda.synchronize()
    row.update(det_dq=rel(dbuf['dq'], rq), det_dk=rel(dbuf['dk'], rk), det_dv=rel(dbuf['dv'], rv),
               det_repeatable=bool(torch.equal(first, dbuf['dq'])))
    if pat == 'softcap':
        row['dcap'] = abs(buf['grads'][0].item() - rcap.item()) / max(abs(rcap.item()), 1e-6)
        row['det_dcap'] = abs(dbuf['grads'][0].item() - rcap.item()) / max(abs(rcap.item()), 1e-6)
    if wg is not None:  # the wgmma backward (sm_90a), atomic and deterministic: same checks
        for prefix, b in (('wg_', wg[0]), ('wg_det_', wg[1])):
            wa, wbuf = b.prepare(t, dout, tensors, params, sizes)
            b.launch(wa, stream)
            torch.cuda.synchronize()
            first = wbuf['dq'].clone()
            b.launch(wa, stream)
            torch.cuda.synchronize()
            row.update({prefix + n: rel(wbuf[n], r) for n, r in (('dq', rq), ('dk', rk), ('dv', rv))})
            row[prefix + 'repeatable'] = bool(torch.equal(first, wbuf['dq']))
            if pat == 'softcap':
                row[prefix + 'dcap'] = abs(wbuf['grads'][0].item() - rcap.item()) / max(abs(rcap.item()), 1e-6)
            del wa, wbuf
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
    row['ok'] = all(row[x] <= max(2 * row.get('flex_' + x, 0), 2e-2) for x in ('dq', 'dk', 'dv', 'det_dq', 'det_dk', 'det_dv')) \
        and row['det_repeatable'] \
        and row['out'] <= 2e-2 and row.get('dcap', 0) <= 5e-2
    if wg is not None:
        row['wg_ok'] = all(row[p + x] <= max(2 * row.get('flex_' + x, 0), 2e-2) for p in ('wg_', 'wg_det_') for x in ('dq', 'dk', 'dv')) \
            and row['wg_det_repeatable'] and row.get('wg_dcap', 0) <= 5e-2 and row.get('wg_det_dcap', 0) <= 5e-2
    return {x: (round(y, 5) if isinstance(y, float) else y) for x, y in row.items()}


def timings(e, k, bk, bdet, flex, create, stream, S, iters, wg=None):
    pat = e['pattern']
    p = params_for(pat, S)
    sizes = dict(B=B, H=H, Hkv=H, Nq=S, Nk=S)
    t, a, params, tensors, _ = setup(k, e, dict(label=f'S={S}', **sizes), 'cuda', 1234, perf_len=S, params_override=p)
    code, msg = k.launch(a, stream)
    if code != 0:
        return dict(error=f'forward: {msg}')
    dout = torch.randn_like(t['out'])
    ba, buf = bk.prepare(t, dout, tensors, params, sizes)
    doc = tensors.get('doc')
    mod, sm = mask_of(pat, params, doc), score_of(pat, params, H)
    dens = density(mod, S)
    flops = 4 * B * H * S * S * D * dens
    row = dict(density=round(dens, 5))
    row['fwd_ms'] = median_ms(lambda: k.launch(a, stream), iters)
    row['bwd_ms'] = median_ms(lambda: bk.launch(ba, stream), iters)
    da, dbuf = bdet.prepare(t, dout, tensors, params, sizes)
    row['bwd_det_ms'] = median_ms(lambda: bdet.launch(da, stream), iters)
    row['det_vs_atomic_dq_rel'] = rel(dbuf['dq'], buf['dq'])
    del da, dbuf
    if wg is not None:
        wa, wbuf = wg[0].prepare(t, dout, tensors, params, sizes)
        row['bwd_wg_ms'] = median_ms(lambda: wg[0].launch(wa, stream), iters)
        row['wg_vs_mma_dq_rel'] = rel(wbuf['dq'], buf['dq'])
        wda, wdbuf = wg[1].prepare(t, dout, tensors, params, sizes)
        row['bwd_wg_det_ms'] = median_ms(lambda: wg[1].launch(wda, stream), iters)
        del wda, wdbuf
    bm = None if mod is None else block_mask(create, mod, S)
    qf, kf, vf = (x.detach().requires_grad_() for x in (t['q'], t['k'], t['v']))
    c0 = time.time()
    fo = flex(qf, kf, vf, score_mod=sm, block_mask=bm)
    fg = torch.autograd.grad(fo, (qf, kf, vf), dout, retain_graph=True)
    torch.cuda.synchronize()
    row['flex_first_call_s'] = round(time.time() - c0, 2)
    row.update({f'vs_flex_{n}_rel': round(rel(buf[n], g), 5) for n, g in zip(('dq', 'dk', 'dv'), fg)})
    if wg is not None:
        row.update({f'wg_vs_flex_{n}_rel': round(rel(wbuf[n], g), 5) for n, g in zip(('dq', 'dk', 'dv'), fg)})
        del wa, wbuf
    del fg
    row['flex_fwd_ms'] = median_ms(lambda: flex(qf, kf, vf, score_mod=sm, block_mask=bm), iters)
    row['flex_bwd_ms'] = median_ms(lambda: torch.autograd.grad(fo, (qf, kf, vf), dout, retain_graph=True), iters)
    for x in ('', 'flex_'):
        row[x + 'fwd_tflops'] = round(flops / row[x + 'fwd_ms'] / 1e9, 1)
        row[x + 'bwd_tflops'] = round(2.5 * flops / row[x + 'bwd_ms'] / 1e9, 1)
    row['bwd_det_tflops'] = round(2.5 * flops / row['bwd_det_ms'] / 1e9, 1)
    if wg is not None:
        row['bwd_wg_tflops'] = round(2.5 * flops / row['bwd_wg_ms'] / 1e9, 1)
        row['bwd_wg_det_tflops'] = round(2.5 * flops / row['bwd_wg_det_ms'] / 1e9, 1)
        row['bwd_wg_vs_flex'] = round(row['flex_bwd_ms'] / row['bwd_wg_ms'], 3)
    row['bwd_vs_flex'] = round(row['flex_bwd_ms'] / row['bwd_ms'], 3)
    row['fwd_bwd_vs_flex'] = round((row['flex_fwd_ms'] + row['flex_bwd_ms']) / (row['fwd_ms'] + row['bwd_ms']), 3)
    return {x: (round(y, 4) if isinstance(y, float) else y) for x, y in row.items()}


def sdpa_times(S, iters):
    q, k, v = (torch.randn(B, H, S, D, device='cuda', dtype=torch.bfloat16, requires_grad=True) for _ in range(3))
    rows = []
    for causal in (False, True):
        f = lambda: torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=causal)  # noqa: E731
        o = f()
        dout = torch.randn_like(o)
        fwd = median_ms(f, iters)
        bwd = median_ms(lambda: torch.autograd.grad(o, (q, k, v), dout, retain_graph=True), iters)
        flops = 4 * B * H * S * S * D * (0.5 if causal else 1.0)
        rows.append(dict(S=S, pattern='causal' if causal else 'full', fwd_ms=round(fwd, 4), bwd_ms=round(bwd, 4),
                         fwd_tflops=round(flops / fwd / 1e9, 1), bwd_tflops=round(2.5 * flops / bwd / 1e9, 1)))
        del o
    return rows


def table(res):
    lines = [f'attnc backward (mma.sync; wgmma) vs FlexAttention vs SDPA, {res["device"]}, torch {res["torch"]}, bf16 B={B} H={H} D={D}', '',
             '| pattern | check dq/dk/dv (Flex) | ok |', '|---|---|---|']
    for pat, c in res['check'].items():
        if 'error' in c:
            lines.append(f'| {pat} | error: {c["error"]} | no |')
        else:
            flex = '/'.join(str(c.get('flex_' + x, '-')) for x in ('dq', 'dk', 'dv'))
            wg = f' wgmma {c["wg_dq"]}/{c["wg_dk"]}/{c["wg_dv"]} det {c["wg_det_dq"]}/{c["wg_det_dk"]}/{c["wg_det_dv"]}' if 'wg_dq' in c else ''
            lines.append(f'| {pat} | {c["dq"]}/{c["dk"]}/{c["dv"]} ({flex}){wg} | {c["ok"]} wgmma {c.get("wg_ok", "-")} |')
    lines += ['', '| pattern | S | fwd ms | bwd ms | bwd TFLOP/s | det bwd ms | wgmma bwd ms | wgmma TFLOP/s | wgmma det ms | Flex fwd | Flex bwd | Flex bwd TFLOP/s | bwd ×Flex | wgmma ×Flex | fwd+bwd ×Flex | bwd ×SDPA | wgmma ×SDPA |',
              '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|']
    for r in res['rows']:
        if 'bwd_ms' not in r:
            lines.append(f'| {r["pattern"]} | {r["S"]} | error: {r.get("error")} |')
            continue
        sd = next((x for x in res['sdpa'] if x['S'] == r['S'] and x['pattern'] == r['pattern']), None)
        vs = round(sd['bwd_ms'] / r['bwd_ms'], 3) if sd else ''
        wvs = round(sd['bwd_ms'] / r['bwd_wg_ms'], 3) if sd and 'bwd_wg_ms' in r else ''
        lines.append(f'| {r["pattern"]} | {r["S"]} | {r["fwd_ms"]} | {r["bwd_ms"]} | {r["bwd_tflops"]} | {r["bwd_det_ms"]} | '
                     f'{r.get("bwd_wg_ms", "-")} | {r.get("bwd_wg_tflops", "-")} | {r.get("bwd_wg_det_ms", "-")} | {r["flex_fwd_ms"]} | '
                     f'{r["flex_bwd_ms"]} | {r["flex_bwd_tflops"]} | {r["bwd_vs_flex"]} | {r.get("bwd_wg_vs_flex", "-")} | {r["fwd_bwd_vs_flex"]} | {vs} | {wvs} |')
    return '\n'.join(lines) + '\n'


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--build', default=os.path.join(HERE, '..', 'build', 'cuda-backward'))
    ap.add_argument('--out', default=os.environ.get('OUT', os.path.join(HERE, '..', 'build', 'backward-out')))
    ap.add_argument('--sizes', default='4096,16384')
    ap.add_argument('--only', default='')
    ap.add_argument('--budget', type=float, default=245, help='seconds from the start; later rows are skipped to fit')
    ap.add_argument('--check-flex', action='store_true', help="also run Flex's backward on the small shapes (compiles)")
    args = ap.parse_args()
    t0 = time.time()
    os.makedirs(args.out, exist_ok=True)
    index = [e for e in json.load(open(os.path.join(args.build, 'index.json'))) if args.only in e['pattern']]
    res = dict(date=time.strftime('%Y-%m-%d %H:%M:%S'), device=torch.cuda.get_device_name(), torch=torch.__version__,
               build={}, check={}, rows=[], sdpa=[])

    def save():
        json.dump(res, open(os.path.join(args.out, 'backward.json'), 'w'), indent=2)

    WG = ('backwardWgmma', 'backwardWgmmaDet')
    cus = [e[x]['cu'] for e in index for x in ('backward', 'backwardDet') + WG if x in e] + [e['cu'] for e in index]
    with ThreadPoolExecutor(max_workers=min(16, os.cpu_count() or 4)) as pool:
        for cu, code, log in pool.map(lambda c: build_one(args.build, c), cus):
            res['build'][cu] = dict(ok=code == 0, log=log)
            if code:
                print(f'build {cu} failed:\n{log}', flush=True)
    res['build_s'] = round(time.time() - t0, 1)
    print(f'built {len(cus)} libraries in {res["build_s"]} s', flush=True)
    save()
    from torch.nn.attention.flex_attention import create_block_mask, flex_attention
    torch._dynamo.config.cache_size_limit = 256
    flex = torch.compile(flex_attention, dynamic=False)
    stream = torch.cuda.current_stream().cuda_stream
    built = [e for e in index if all(res['build'][e[x]['cu'] if x else e['cu']]['ok'] for x in ('', 'backward', 'backwardDet'))]
    kernels = {e['variant']: (Kernel(args.build, e), Backward(args.build, e), Backward(args.build, e, 'backwardDet'))
               for e in built}
    # The wgmma backwards where they were emitted and built (a failed build is reported, not fatal).
    wgmma = {e['variant']: tuple(Backward(args.build, e, x) for x in WG) for e in built
             if all(x in e and res['build'][e[x]['cu']]['ok'] for x in WG)}
    for e in built:
        try:
            res['check'][e['pattern']] = check(e, *kernels[e['variant']], flex, create_block_mask, stream, args.check_flex,
                                               wgmma.get(e['variant']))
        except Exception as x:  # one pattern's failure must not hide the others
            res['check'][e['pattern']] = dict(error=repr(x)[:500])
        print('check', e['pattern'], json.dumps(res['check'][e['pattern']]), flush=True)
        save()
    for S in [int(x) for x in args.sizes.split(',')]:
        iters = 15 if S <= 4096 else 6
        if time.time() - t0 > args.budget:
            print(f'budget spent: skipping S={S}', flush=True)
            break
        res['sdpa'] += sdpa_times(S, iters)
        for e in built:
            if time.time() - t0 > args.budget:
                print(f'budget spent: skipping {e["pattern"]} at S={S}', flush=True)
                continue
            try:
                row = timings(e, *kernels[e['variant']], flex, create_block_mask, stream, S, iters, wgmma.get(e['variant']))
            except Exception as x:
                row = dict(error=repr(x)[:500])
            res['rows'].append(dict(pattern=e['pattern'], S=S, engine_fwd=e['engine'], **row))
            print(json.dumps(res['rows'][-1]), flush=True)
            torch.cuda.empty_cache()
            save()
    res['total_s'] = round(time.time() - t0, 1)
    save()
    print(table(res))


if __name__ == '__main__':
    main()
