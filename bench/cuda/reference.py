"""Dense PyTorch reference for attnc kernels: evaluates the manifest's score/mask graph ("expr")
over whole [B, H, Nq, Nk] grids with attnc semantics (docs/LANGUAGE.md: int floor division and
modulo with x/0 = x%0 = 0, out-of-range tensor reads give 0, f32->int truncates), in float64 and
int64 (int wrap-around at 32 bits is not modelled: the checks use small values)."""
import math

import torch

F = torch.float64
I = torch.int64


class Evaluator:
    def __init__(self, manifest, device):
        self.m = manifest
        self.device = device
        self.nodes = manifest['expr']['nodes']  # topologically sorted
        self.params = {p['name']: p for p in manifest['params']}
        self.slots = {t['name']: t for t in manifest['tensors']}

    def const(self, v, dtype):
        return torch.tensor(v, dtype=dtype, device=self.device)

    def eval(self, roots, env, params, tensors, sizes):
        need, stack = set(), list(roots)
        by_id = {n['id']: n for n in self.nodes}
        while stack:
            i = stack.pop()
            if i not in need:
                need.add(i)
                stack.extend(by_id[i]['src'])
        val = {}
        for n in self.nodes:
            if n['id'] not in need:
                continue
            a = [val[s] for s in n['src']]
            val[n['id']] = self.op(n, a, env, params, tensors, sizes)
        return [val[r] for r in roots]

    def op(self, n, a, env, params, tensors, sizes):
        op, dt = n['op'], n['dtype']
        isint = dt == 'i32'
        if op == 'const':
            return self.const(n['arg'], torch.bool if dt == 'bool' else I if isint else F)
        if op == 'var':
            return env[n['arg']]
        if op == 'param':
            p, v = self.params[n['arg']], params[n['arg']]
            return self.const(v != 0, torch.bool) if p['dtype'] == 'bool' else self.const(v, I if p['dtype'] == 'i32' else F)
        if op == 'load':
            slot = self.slots[n['arg']]
            flat = tensors[n['arg']].to(I if slot['dtype'] == 'i32' else F)
            valid, lin = self.const(True, torch.bool), self.const(0, I)
            for idx, d in zip(a, slot['dims']):
                size = d['value'] if d['kind'] == 'literal' else int(params[d['name']]) if d['kind'] == 'param' else sizes[d['name']]
                valid = valid & (idx >= 0) & (idx < size)
                lin = lin * size + idx.clamp(0, max(size - 1, 0))
            if flat.numel() == 0:
                return torch.zeros_like(lin, dtype=flat.dtype)
            return torch.where(valid, flat[lin], self.const(0, flat.dtype))
        if op in ('range_min', 'range_max'):
            raise ValueError('tile summaries do not appear in score or mask expressions')
        if dt == 'f32' and op not in ('cast',):
            a = [x.to(F) if x.dtype != torch.bool else x for x in a]
        if op in ('lt', 'le', 'gt', 'ge', 'eq', 'ne') and a[0].dtype != a[1].dtype:
            a = [x.to(F) for x in a]
        x = a[0] if a else None
        y = a[1] if len(a) > 1 else None
        if op == 'add':
            return x + y
        if op == 'sub':
            return x - y
        if op == 'mul':
            return x * y
        if op == 'div':
            if not isint:
                return x / y
            z = y == 0
            return torch.where(z, self.const(0, I), torch.div(x, torch.where(z, self.const(1, I), y), rounding_mode='floor'))
        if op == 'mod':
            if not isint:
                return x - y * torch.floor(x / y)
            z = y == 0
            return torch.where(z, self.const(0, I), torch.remainder(x, torch.where(z, self.const(1, I), y)))
        if op == 'neg':
            return -x
        if op == 'min':
            return torch.minimum(x, y)
        if op == 'max':
            return torch.maximum(x, y)
        if op == 'abs':
            return x.abs()
        if op in ('lt', 'le', 'gt', 'ge', 'eq', 'ne'):
            return {'lt': x < y, 'le': x <= y, 'gt': x > y, 'ge': x >= y, 'eq': x == y, 'ne': x != y}[op]
        if op == 'and':
            return x & y
        if op == 'or':
            return x | y
        if op == 'not':
            return ~x
        if op == 'select':
            c, p, q = a
            if p.dtype != q.dtype:
                p, q = p.to(F), q.to(F)
            return torch.where(c, p, q)
        fns = {'exp': torch.exp, 'log': torch.log, 'exp2': torch.exp2, 'log2': torch.log2,
               'sqrt': torch.sqrt, 'tanh': torch.tanh, 'floor': torch.floor}
        if op in fns:
            return fns[op](x.to(F))
        if op == 'cast':
            if dt == 'bool':
                return x != 0
            if dt == 'f32':
                return x.to(F)
            if x.dtype == torch.bool:
                return x.to(I)
            if x.dtype == F:
                t = torch.where(torch.isnan(x), self.const(0.0, F), torch.trunc(x))
                return t.clamp(-2.0**31, 2.0**31 - 1).to(I)
            return x
        raise ValueError(f'unknown op {op}')

    def env(self, args, sizes, i0=0, rows=None):
        B, H, Nq, Nk = sizes['B'], sizes['H'], sizes['Nq'], sizes['Nk']
        rows = Nq if rows is None else rows
        ar = lambda n: torch.arange(n, dtype=I, device=self.device)  # noqa: E731
        return dict(
            b=ar(B).view(B, 1, 1, 1), h=ar(H).view(1, H, 1, 1),
            q=(ar(rows) + i0 + args.q_offset).view(1, 1, rows, 1), k=(ar(Nk) + args.k_offset).view(1, 1, 1, Nk),
            B=self.const(B, I), H=self.const(H, I), Hkv=self.const(sizes['Hkv'], I), Nq=self.const(Nq, I),
            Nk=self.const(Nk, I), D=self.const(self.m['schedule']['headDim'], I),
        )

    def mask_block(self, args, params, tensors, sizes, i0, rows):
        env = self.env(args, sizes, i0, rows)
        (mask,) = self.eval([self.m['expr']['mask']], env, params, tensors, sizes)
        return mask.expand(sizes['B'], sizes['H'], rows, sizes['Nk'])


def reference_attention(ev, m, q, k, v, args, params, tensors):
    """out [B,H,Nq,Dv] and lse [B,H,Nq] in float64 from the (already rounded) storage inputs."""
    B, H, Nq, _ = q.shape
    Hkv, Nk = k.shape[1], k.shape[2]
    sizes = dict(B=B, H=H, Hkv=Hkv, Nq=Nq, Nk=Nk)
    kd = k.to(F).repeat_interleave(H // Hkv, dim=1)
    vd = v.to(F).repeat_interleave(H // Hkv, dim=1)
    s = float(args.scale) * (q.to(F) @ kd.transpose(-1, -2))
    env = ev.env(args, sizes)
    env['score'] = s
    score, mask = ev.eval([m['expr']['score'], m['expr']['mask']], env, params, tensors, sizes)
    score = torch.where(mask.expand(s.shape), score.expand(s.shape), torch.tensor(-math.inf, dtype=F, device=s.device))
    mx = score.amax(-1, keepdim=True) if Nk > 0 else torch.full((B, H, Nq, 1), -math.inf, dtype=F, device=s.device)
    empty = torch.isinf(mx) & (mx < 0)
    p = torch.exp(score - torch.where(empty, torch.zeros_like(mx), mx))
    l = p.sum(-1, keepdim=True)
    out = (p @ vd) / torch.where(empty, torch.ones_like(l), l)
    lse = torch.where(empty, mx, mx + torch.log(l)).squeeze(-1)
    return out, lse
