"""Context parallelism on one GPU: P simulated ranks (attnc.distributed.simulate_ring and
simulate_ulysses: each rank's own code, run one after another, the transfers replaced by handing
tensors over) give the single kernel's result within the kernel tests' tolerance, for causal,
document (ids sharded with the sequence), modality, sliding-window and prefix-LM masks, random
lengths, shard counts and shardings; pairs the tile classification rules out are not launched."""
import os
import random

import pytest
import torch
from builds import NEIGHBOUR_SOURCE, SCATTER_SOURCE
from conftest import assert_close, causal, document_mask, lookup, qkv, reference, segments

import attnc
import attnc.distributed as cp

SEED = int(os.environ.get('ATTNC_TEST_SEED', random.randrange(1 << 30)))


def spans(n):
    """Modality spans: 0 for text, an image id > 0 for each image's positions."""
    ids, image = [], 1
    while len(ids) < n:
        length = int(torch.randint(1, 150, (1,)))
        ids += [image if torch.rand(()) < 0.5 else 0] * length
        image += 1
    return torch.tensor(ids[:n], dtype=torch.int32, device='cuda')


def problem(name, N, rng):
    """(path, named args, reference mask) of a random problem of N positions."""
    if name == 'document':
        ids = segments(N, 5, 400)
        return 'stdlib/document.attn', dict(doc=ids), document_mask(ids)
    if name == 'modality':
        span = spans(N)
        return 'stdlib/modality.attn', dict(span=span), lambda h, q, k: (q >= k) | ((lookup(span, q) == lookup(span, k)) & (lookup(span, q) > 0))
    if name == 'sliding_window':
        w = rng.randint(1, N + 10)
        return 'stdlib/sliding_window.attn', dict(window=w), lambda h, q, k: (q >= k) & (q - k < w)
    if name == 'prefix_lm':
        p = rng.randint(0, N)
        return 'stdlib/prefix_lm.attn', dict(prefix=p), lambda h, q, k: (k < p) | (q >= k)
    if name == 'scatter':  # a pseudo-random mask and a score that reads positions
        tag = torch.randint(-50, 50, (N,), dtype=torch.int32, device='cuda')
        return SCATTER_SOURCE, dict(tag=tag), lambda h, q, k: (q >= k) & ((lookup(tag, q) * 7 + lookup(tag, k) * 3) % 5 != 0)
    return 'stdlib/causal.attn', {}, causal


def scatter_score(s, h, qp, kp):
    return s - 0.001 * (qp - kp).double()


_loaded = {}


def kernel(path, dtype, D):
    if (path, dtype, D) not in _loaded:
        _loaded[(path, dtype, D)] = cp.load(path, dtype=dtype, head_dim=D)
    return _loaded[(path, dtype, D)]


CASES = [(name, i) for name in ('causal', 'document', 'modality', 'sliding_window', 'prefix_lm', 'scatter') for i in range(4)]


@pytest.mark.parametrize('name,trial', CASES)
def test_ring_matches_the_single_kernel(name, trial):
    rng = random.Random(f'{SEED}-{name}-{trial}')
    N, P, sharding = rng.randint(1, 2500), rng.choice([1, 2, 3, 4, 8]), rng.choice(['zigzag', 'contiguous'])
    dtype = torch.float16 if name == 'prefix_lm' else torch.bfloat16
    path, named, mask = problem(name, N, rng)
    kern = kernel(path, dtype, 64)
    q, k, v = qkv(B=1, H=4, Hkv=2, Nq=N, Nk=N, dtype=dtype)
    out, lse, launches = cp.simulate_ring(kern, q, k, v, P, sharding, **named)
    msg = f'{name}: N {N}, P {P}, {sharding} (ATTNC_TEST_SEED={SEED})'
    assert out.shape == (1, 4, N, 64) and lse.shape == (1, 4, N), msg
    try:
        assert_close((out, lse), reference(q, k, v, mask, score=scatter_score if name == 'scatter' else None), dtype)
        single = kern.attn(q, k, v, q_offset=0, **named)
        assert_close((out, lse), (single.out.double(), single.lse.double()), dtype)
    except AssertionError as e:
        raise AssertionError(f'{msg}: {e}') from None
    assert launches <= 4 * P * P


@pytest.mark.parametrize('D', [64, 128])
def test_zigzag_causal_launches_only_the_live_pairs(D):
    kern = kernel('stdlib/causal.attn', torch.bfloat16, D)
    N, P = 4096, 4
    q, k, v = qkv(B=1, H=8, Hkv=2, Nq=N, Nk=N, D=D)
    out, lse, launches = cp.simulate_ring(kern, q, k, v, P)
    assert launches == P * (2 * P + 1)  # of 4 P^2 chunk pairs: the diagonal ones and those below it
    assert_close((out, lse), reference(q, k, v, causal), torch.bfloat16)


def test_document_pairs_of_other_documents_are_skipped():
    kern = kernel('stdlib/document.attn', torch.bfloat16, 128)
    N, P = 3000, 4
    ids = segments(N, 50, 120)  # short documents: most chunk pairs share none
    q, k, v = qkv(B=1, H=4, Hkv=4, Nq=N, Nk=N, D=128)
    out, lse, launches = cp.simulate_ring(kern, q, k, v, P, doc=ids)
    assert launches < P * (2 * P + 1)
    assert_close((out, lse), reference(q, k, v, document_mask(ids)), torch.bfloat16)
    out2, lse2, all_launches = cp.simulate_ring(kern, q, k, v, P, doc=ids, skip=False)
    assert all_launches == 4 * P * P and torch.equal(lse2.isfinite(), lse.isfinite())


@pytest.mark.parametrize('name,P,Hkv', [('causal', 2, 2), ('document', 4, 2), ('document', 2, 4), ('sliding_window', 4, 4), ('modality', 2, 1)])
def test_ulysses_matches_the_single_kernel(name, P, Hkv):
    rng = random.Random(f'{SEED}-ulysses-{name}-{P}')
    N, sharding = rng.randint(P, 2000), rng.choice(['zigzag', 'contiguous'])
    path, named, mask = problem(name, N, rng)
    kern = kernel(path, torch.bfloat16, 64)
    q, k, v = qkv(B=2, H=8, Hkv=Hkv, Nq=N, Nk=N)
    out, lse = cp.simulate_ulysses(kern, q, k, v, P, sharding=sharding, **named)
    try:
        assert_close((out, lse), reference(q, k, v, mask), torch.bfloat16)
    except AssertionError as e:
        raise AssertionError(f'{name}: N {N}, P {P}, {sharding} (ATTNC_TEST_SEED={SEED}): {e}') from None


def test_kernels_context_parallelism_cannot_split_are_refused():
    kern = cp.load('stdlib/nsa_select.attn', dtype=torch.bfloat16, head_dim=64)
    q, k, v = qkv(B=1, H=4, Hkv=2, Nq=256, Nk=256)
    with pytest.raises(attnc.ArgumentError, match='nsa_select: context parallelism merges plain attention by lse'):
        cp.simulate_ring(kern, q, k, v, 2, top=4)
    causal_kern = kernel('stdlib/causal.attn', torch.bfloat16, 64)
    with pytest.raises(attnc.ArgumentError, match='rank 0 holds 100 query rows'):
        cp.RingRank(causal_kern, q[:, :, :100], 64, 256, 2, 0, 'zigzag', {}, None, None)


def test_a_lookup_off_q_and_k_is_refused_by_the_ring_and_computed_by_ulysses():
    kern = cp.load(NEIGHBOUR_SOURCE, dtype=torch.bfloat16, head_dim=64)
    assert kern.ring is None
    q, k, v = qkv(B=1, H=4, Hkv=2, Nq=700, Nk=700)
    ids = segments(700, 5, 100)
    with pytest.raises(attnc.ArgumentError, match='neighbour: the mask or score reads doc at a position other than q or k'):
        cp.simulate_ring(kern, q, k, v, 2, doc=ids)
    out, lse = cp.simulate_ulysses(kern, q, k, v, 2, doc=ids)
    ref = reference(q, k, v, lambda h, qp, kp: (lookup(ids, qp) == lookup(ids, kp + 1)) & (qp >= kp))
    assert_close((out, lse), ref, torch.bfloat16)
