"""A dense stand-in for attnc kernels in the context-parallel tests: the same call as
attnc.torch.Attention (q, k, v, q_offset, k_offset, scale, params and tensors by keyword) computed
in float64 torch on any device, for the causal and document masks and the document kernel's ring
variant. It lets the torch side of attnc.distributed (sharding, the ring's steps and transfers,
Ulysses' all_to_all, the merge) run on CPU processes over gloo, where no attnc kernel can."""
import math

import torch

from attnc.distributed import CPKernel
from attnc.distributed_source import K0, Q0, RingTensor
from attnc.manifest import TensorSlot
from attnc.torch import AttentionOutput

TILES = {
    'causal': {'kind': 'dynamic', 'canBeTrue': '(ge q_hi k_lo)', 'canBeFalse': '(lt q_lo k_hi)'},
    'document': {
        'kind': 'dynamic',
        'canBeTrue': '(and (and (le (range_min:doc q_lo q_hi) (range_max:doc k_lo k_hi)) '
        '(le (range_min:doc k_lo k_hi) (range_max:doc q_lo q_hi))) (ge q_hi k_lo))',
    },
}


class FakeManifest:
    def __init__(self, name):
        self.name = name
        self.data = {'tiles': TILES[name], 'expr': {'nodes': [{'op': 'var', 'arg': a} for a in ('q', 'k', 'score')]}}
        self.fields = [{'role': r} for r in ('q', 'k', 'v', 'out', 'lse', 'offset', 'scale', 'size', 'tensor', 'summary')]
        self.has_lse = True
        self.params = []
        self.tensors = [TensorSlot('doc', 'i32', [{'kind': 'size', 'name': 'Nk'}])] if name == 'document' else []


class DenseKernel:
    def __init__(self, manifest, mask):
        self.manifest, self.mask, self.calls = manifest, mask, 0

    def __call__(self, q, k, v, *, q_offset=None, k_offset=None, scale=None, **named):
        self.calls += 1
        B, H, Nq, D = q.shape
        Hkv, Nk = k.shape[1], k.shape[2]
        q_offset = Nk - Nq if q_offset is None else q_offset
        k_offset = 0 if k_offset is None else k_offset
        scale = 1 / math.sqrt(D) if scale is None else scale
        kk, vv = (x.double().repeat_interleave(H // Hkv, dim=1) for x in (k, v))
        s = scale * (q.double() @ kk.transpose(-1, -2))
        qp = (torch.arange(Nq, device=q.device) + q_offset).view(Nq, 1)
        kp = (torch.arange(Nk, device=q.device) + k_offset).view(1, Nk)
        s = s.masked_fill(~self.mask(qp, kp, named), float('-inf'))
        lse = torch.logsumexp(s, dim=-1)
        out = torch.nan_to_num(torch.exp(s - lse[..., None]), nan=0.0) @ vv
        return AttentionOutput(out.to(q.dtype), lse.float(), None)


def _at(t, idx):
    ok = (idx >= 0) & (idx < t.numel())
    return torch.where(ok, t[idx.clamp(0, max(t.numel() - 1, 0))], torch.zeros((), dtype=t.dtype, device=t.device))


def causal_mask(qp, kp, named):
    return qp >= kp


def document_mask(qp, kp, named):
    doc = named['doc']
    return (_at(doc, qp) == _at(doc, kp)) & (qp >= kp)


def document_ring_mask(qp, kp, named):
    """The ring variant's mask (attnc.distributed_source): the chunks' slices at shifted positions."""
    same = _at(named['doc_cp_q'], qp - named[Q0]) == _at(named['doc_cp_k'], kp - named[K0])
    return same & (qp >= kp)


def dense_kernel(name):
    m = FakeManifest(name)
    if name == 'causal':
        attn = DenseKernel(m, causal_mask)
        return CPKernel(attn, attn, [])
    return CPKernel(DenseKernel(m, document_mask), DenseKernel(m, document_ring_mask), [RingTensor('doc', 0, 'doc_cp_q', 'doc_cp_k')])


def segments(n, generator, lo=1, hi=40, device='cpu'):
    ids, doc = [], 0
    while len(ids) < n:
        ids += [doc] * int(torch.randint(lo, hi, (1,), generator=generator))
        doc += 1
    return torch.tensor(ids[:n], dtype=torch.int32, device=device)
