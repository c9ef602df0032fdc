"""The torch side of attnc.distributed with a dense stand-in kernel (cp_dense), on CPU: the
simulated ring and Ulysses, and the real ring_attention / ulysses_attention in P processes over
gloo (isend/irecv, all_to_all, all_gather as NCCL would run them), against one dense call.
Needs torch only; the GPU tests with attnc kernels are in test_cp.py."""
import os
import random

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from cp_dense import dense_kernel, segments

import attnc.distributed as cp

SEED = 99 if os.environ.get('CI') else random.randrange(1 << 30)


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
        assert_same(out, lse, type(ref)(want_out, want_lse, None), f'{mode} {name} rank {rank} of {P}, N {N}, {sharding}')
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
    mp.spawn(_worker, args=(P, init, name, N, sharding, mode), nprocs=P, join=True)
