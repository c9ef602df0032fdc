"""The harness side of an attnc CUDA artifact: its shared library loaded with ctypes (the args
struct built from the manifest's layout, by the attnc Python package in python/attnc), and random
inputs, poisoned outputs and a filled args struct for one run."""
import ctypes
import math
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'python'))
from attnc.kernel import Kernel as _Kernel  # noqa: E402
from attnc.manifest import Manifest  # noqa: E402

TORCH_DTYPE = {'f32': torch.float32, 'f16': torch.float16, 'bf16': torch.bfloat16}


class Kernel(_Kernel):
    """A compiled artifact as the harnesses use it: the raw manifest (m), its fields grouped by
    role, and attnc.kernel.Kernel's ctypes struct (Args) and functions (init, launch, ...)."""

    def __init__(self, build_dir, entry):
        manifest = Manifest.from_file(os.path.join(build_dir, entry['manifest']))
        super().__init__(manifest, os.path.join(build_dir, entry['variant'] + '.so'))
        self.m = manifest.data
        self.fields = manifest.fields
        self.by_role = {}
        for f in self.fields:
            self.by_role.setdefault(f['role'], []).append(f)

    def field(self, role, name=None):
        for f in self.by_role.get(role, []):
            if name is None or f['name'] == name:
                return f['field']
        raise KeyError((role, name))


def dim_value(d, sizes, params):
    if d['kind'] == 'literal':
        return d['value']
    if d['kind'] == 'param':
        return int(params[d['name']])
    return sizes[d['name']]


def make_tensor(slot, spec, n, gen, device, perf_len=None):
    """User tensor data: 'segments' (sorted document ids), 'ints' or 'uniform'."""
    kind = spec.get('kind', 'segments' if slot['dtype'] == 'i32' else 'uniform')
    if kind == 'segments':
        lo, hi = (perf_len // 16, perf_len // 4) if perf_len else (1, spec.get('maxLen', 200))
        ids, doc, left = [], 0, 0
        while len(ids) < n:
            if left <= 0:
                doc, left = doc + 1, int(torch.randint(lo, hi + 1, (1,), generator=gen))
            take = min(left, n - len(ids))
            ids += [doc] * take
            left -= take
        t = torch.tensor(ids, dtype=torch.int32)
    elif kind == 'ints':
        t = torch.randint(spec.get('lo', 0), spec.get('hi', 4) + 1, (n,), generator=gen, dtype=torch.int32)
    else:
        lo, hi = spec.get('lo', -0.5), spec.get('hi', 0.5)
        t = lo + (hi - lo) * torch.rand(n, generator=gen)
        t = t.float() if slot['dtype'] == 'f32' else t.round().int()
    return t.to(device)


def setup(k, entry, case, device, seed, perf_len=None, params_override=None):
    """Inputs, poisoned outputs and the filled args struct for one run."""
    s = k.m['schedule']
    gen = torch.Generator().manual_seed(seed)
    B, H, Hkv, Nq, Nk = (case[x] for x in ('B', 'H', 'Hkv', 'Nq', 'Nk'))
    dt = TORCH_DTYPE[s['dtype']]
    t = dict(
        q=torch.randn(B, H, Nq, s['headDim'], generator=gen).to(device, dt),
        k=torch.randn(B, Hkv, Nk, s['headDim'], generator=gen).to(device, dt),
        v=torch.randn(B, Hkv, Nk, s['valueDim'], generator=gen).to(device, dt),
        out=torch.full((B, H, Nq, s['valueDim']), float('nan'), dtype=dt, device=device),
        lse=torch.full((B, H, Nq), float('nan'), dtype=torch.float32, device=device),
    )
    args = k.Args()
    k.init(ctypes.byref(args), B, H, Hkv, Nq, Nk)
    if 'q_offset' in case:
        args.q_offset = case['q_offset']
    if 'k_offset' in case:
        args.k_offset = case['k_offset']
    params = {p['name']: p['default'] for p in k.m['params'] if p['default'] is not None}
    params.update(entry.get('params', {}))
    params.update(params_override or {})
    for p in k.m['params']:
        if p['name'] not in params:
            raise SystemExit(f'{entry["variant"]}: param {p["name"]} has no default; give one in the emit list')
        setattr(args, k.field('param', p['name']), params[p['name']])
    sizes = dict(B=B, H=H, Hkv=Hkv, Nq=Nq, Nk=Nk)
    tensors = {}
    for slot in k.m['tensors']:
        n = math.prod(dim_value(d, sizes, params) for d in slot['dims'])
        tensors[slot['name']] = make_tensor(slot, entry.get('tensors', {}).get(slot['name'], {}), n, gen, device, perf_len)
        setattr(args, k.field('tensor', slot['name']), tensors[slot['name']].data_ptr())
    scratch = {}
    for name, f in k.summary_elems.items():
        slot = next(x for x in k.m['tensors'] if x['name'] == name)
        n = f(ctypes.byref(args))
        dtype = torch.int32 if slot['dtype'] == 'i32' else torch.float32
        scratch[name] = torch.full((max(n, 1),), -7, dtype=dtype, device=device)  # poison
        setattr(args, k.field('summary', name + '_summary'), scratch[name].data_ptr())
    for role in ('q', 'k', 'v', 'out', 'lse'):
        if role in k.by_role:
            setattr(args, k.field(role), t[role].data_ptr())
    return t, args, params, tensors, scratch
