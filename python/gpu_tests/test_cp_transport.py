"""The torch side of attnc.distributed with a dense stand-in kernel, on CPU: the simulated ring and
Ulysses, and the real ring_attention / ulysses_attention in P processes over gloo (isend/irecv,
all_to_all, as NCCL would run them), against one dense call. Needs torch only (no GPU, no attnc
kernel build); the GPU tests with attnc kernels are in test_cp.py.

The stand-in takes the call of attnc.torch.Attention (q, k, v, q_offset, k_offset, scale, params and
tensors by keyword) and computes it in float64 torch on any device, for the causal and document
masks and the document kernel's ring variant (attnc.distributed_source)."""
import math
import os
import random

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import attnc
import attnc.distributed as cp
from attnc.distributed import CPKernel
from attnc.distributed_source import K0, Q0, RingTensor
from attnc.manifest import TensorSlot
from attnc.torch import AttentionOutput

SEED = 99 if os.environ.get('CI') else random.randrange(1 << 30)
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
        nodes = [{'id': i, 'op': 'var', 'arg': a, 'src': []} for i, a in enumerate(('q', 'k', 'score'))]
        if name == 'document':  # doc[q] and doc[k]
            nodes += [{'id': 3 + i, 'op': 'load', 'arg': 'doc', 'src': [i]} for i in range(2)]
        self.data = {'tiles': TILES[name], 'expr': {'nodes': nodes}}
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
        return AttentionOutput(out.to(q.dtype), lse.float(), None, None)


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


def inputs(N, B=1, H=4, Hkv=2, D=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(B, h, N, D, generator=g) for h in (H, Hkv, Hkv))
    return q, k, v, segments(N, g)


def named_for(name, ids):
    return {'doc': ids} if name == 'document' else {}


def assert_same(out, lse, ref, msg=''):
    ref_out, ref_lse = ref.out, ref.lse
    assert torch.equal(torch.isfinite(lse), torch.isfinite(ref_lse)), msg
    fin = torch.isfinite(ref_lse)
    assert torch.allclose(lse[fin], ref_lse[fin], atol=1e-5, rtol=1e-5), msg
    assert torch.allclose(out, ref_out, atol=1e-5, rtol=1e-4), msg


@pytest.mark.parametrize('trial', range(10))
@pytest.mark.parametrize('name', ['causal', 'document'])
def test_simulated_ring_and_ulysses_match_one_call(name, trial):
    rng = random.Random(f'{SEED}-{name}-{trial}')
    N, P, sharding = rng.randint(1, 150), rng.choice([1, 2, 3, 4, 8]), rng.choice(['zigzag', 'contiguous'])
    q, k, v, ids = inputs(N, seed=trial)
    kern = dense_kernel(name)
    ref = kern.attn(q, k, v, q_offset=0, **named_for(name, ids))
    msg = f'{name} N {N} P {P} {sharding} seed {SEED}'
    out, lse, launches = cp.simulate_ring(kern, q, k, v, P, sharding, **named_for(name, ids))
    assert_same(out, lse, ref, msg)
    if name == 'causal' and sharding == 'zigzag' and N >= 2 * P:
        assert launches == P * (2 * P + 1), msg
    out, lse = cp.simulate_ulysses(kern, q, k, v, P if 4 % P == 0 else 2, sharding=sharding, **named_for(name, ids))
    assert_same(out, lse, ref, msg)


def test_shard_and_unshard_are_inverse():
    x = torch.arange(2 * 3 * 37).view(2, 3, 37)
    for P in (1, 2, 5):
        for sharding in ('zigzag', 'contiguous'):
            shards = [cp.shard(x, P, r, 2, sharding) for r in range(P)]
            assert torch.equal(cp.unshard(shards, 2, sharding), x)


def _worker(rank, P, init, name, N, sharding, mode):
    dist.init_process_group('gloo', init_method=init, rank=rank, world_size=P)
    try:
        q, k, v, ids = inputs(N, seed=N)
        kern = dense_kernel(name)
        ref = kern.attn(q, k, v, q_offset=0, **named_for(name, ids))
        local = [cp.shard(x, P, rank, 2, sharding) for x in (q, k, v)]
        named = {'doc': cp.shard(ids, P, rank, 0, sharding)} if name == 'document' else {}
        run = cp.ring_attention if mode == 'ring' else cp.ulysses_attention
        out, lse = run(kern, *local, sharding=sharding, **named)
        want_out, want_lse = cp.shard(ref.out, P, rank, 2, sharding), cp.shard(ref.lse, P, rank, 2, sharding)
        assert_same(out, lse, ref._replace(out=want_out, lse=want_lse), f'{mode} {name} rank {rank} of {P}, N {N}, {sharding}')
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize(
    'mode,name,P,N,sharding',
    [
        ('ring', 'causal', 2, 64, 'zigzag'),
        ('ring', 'document', 3, 101, 'zigzag'),
        ('ring', 'document', 4, 77, 'contiguous'),
        ('ulysses', 'causal', 2, 50, 'zigzag'),
        ('ulysses', 'document', 4, 93, 'zigzag'),
    ],
)
def test_real_transfers_over_gloo(tmp_path, mode, name, P, N, sharding):
    init = f'file://{tmp_path}/rendezvous'
    os.environ.setdefault('GLOO_SOCKET_IFNAME', 'lo')  # loopback: the processes share this machine
    mp.spawn(_worker, args=(P, init, name, N, sharding, mode), nprocs=P, join=True)


def test_missing_or_unsharded_tensors_are_named():
    q, k, v, ids = inputs(40)
    kern = dense_kernel('document')
    with pytest.raises(attnc.ArgumentError, match=r'document: missing tensor doc: i32 \[Nk\]'):
        cp.simulate_ring(kern, q, k, v, 2)
    with pytest.raises(attnc.ArgumentError, match='document: tensor doc must be this rank.s shard: 40 positions along dim 0, got \\(39,\\)'):
        cp.simulate_ring(kern, q, k, v, 2, doc=ids[:39])
    with pytest.raises(attnc.ArgumentError, match=r'document: missing tensor doc'):
        cp.simulate_ulysses(kern, q, k, v, 2)


def test_rows_that_are_not_one_sequence_are_refused():
    q, k, v, ids = inputs(40)
    kern = dense_kernel('causal')
    with pytest.raises(attnc.ArgumentError, match='causal: context parallelism is self-attention over one sequence: .* got 40, 39 and 39 rows'):
        cp.simulate_ring(kern, q, k[:, :, :39], v[:, :, :39], 2)
    with pytest.raises(attnc.ArgumentError, match='causal: k must be a 4-D tensor'):
        cp.simulate_ulysses(kern, q, k[0], v, 2)


def test_the_torch_merge_matches_the_float_merge_on_empty_and_nan_rows():
    from attnc.distributed import _merge_into
    from attnc.distributed_merge import merge_rows

    inf, nan = float('inf'), float('nan')
    pairs = [(-inf, -inf), (-inf, 2.0), (3.0, -inf), (1.0, 1.0), (80.0, -80.0), (nan, 0.0), (0.5, nan)]
    acc_lse = torch.tensor([[a for a, _ in pairs]])
    lse = torch.tensor([[b for _, b in pairs]])
    acc = torch.tensor([[[0.0, 0.0] if a == -inf else [1.0, -1.0] for a, _ in pairs]])
    out = torch.tensor([[[0.0, 0.0] if b == -inf else [3.0, 5.0] for _, b in pairs]])
    want = [merge_rows(acc[0, i].tolist(), acc_lse[0, i].item(), out[0, i].tolist(), lse[0, i].item()) for i in range(len(pairs))]
    _merge_into(acc, acc_lse, out, lse)
    for i, (w_out, w_lse) in enumerate(want):
        got_out, got_lse = acc[0, i].tolist(), acc_lse[0, i].item()
        assert got_lse == pytest.approx(w_lse, nan_ok=True) and got_out == pytest.approx(w_out, nan_ok=True), pairs[i]
    assert acc_lse[0, 0].item() == -inf and acc[0, 0].tolist() == [0.0, 0.0]
