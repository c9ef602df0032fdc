"""Context-parallel plans (attnc.distributed_plan), pure Python: shards partition the sequence,
zig-zag balances causal work, the ring visits every (query, key) chunk pair exactly once with the
offsets of their global positions, and Ulysses' head groups."""
import os
import random

import pytest

from attnc.distributed_plan import (
    head_groups,
    ring_schedule,
    ring_source,
    shard_chunks,
    shard_length,
    shard_positions,
    step_calls,
)
from attnc.errors import ArgumentError

SEED = 4321 if os.environ.get('CI') else random.randrange(1 << 30)


def cases(count):
    rng = random.Random(SEED)
    return [(rng.randint(0, 300), rng.randint(1, 9), rng.choice(['zigzag', 'contiguous'])) for _ in range(count)]


@pytest.mark.parametrize('N,P,sharding', cases(30))
def test_shards_partition_the_sequence(N, P, sharding):
    seen = []
    for r in range(P):
        chunks = shard_chunks(N, P, r, sharding)
        local = 0
        for c in chunks:
            assert c.local == local and 0 <= c.start <= c.stop <= N
            local += c.length
        assert shard_length(N, P, r, sharding) == local
        seen += shard_positions(N, P, r, sharding)
    assert sorted(seen) == list(range(N)), f'seed {SEED}'
    lengths = [shard_length(N, P, r, sharding) for r in range(P)]
    assert max(lengths) - min(lengths) <= 2  # as even as ints allow


def causal_work(N, P, r, sharding):
    return sum(p + 1 for p in shard_positions(N, P, r, sharding))


@pytest.mark.parametrize('P', [2, 3, 4, 8])
def test_zigzag_gives_every_rank_the_same_causal_work(P):
    N = 2 * P * 37
    work = {causal_work(N, P, r, 'zigzag') for r in range(P)}
    assert len(work) == 1
    contiguous = [causal_work(N, P, r, 'contiguous') for r in range(P)]
    assert max(contiguous) > 2 * min(contiguous)
    rng = random.Random(SEED + P)
    n = rng.randint(8 * P, 500)  # not a multiple of 2P: off by at most a few rows' work
    zig = [causal_work(n, P, r, 'zigzag') for r in range(P)]
    assert max(zig) - min(zig) <= 4 * n, f'seed {SEED}'


@pytest.mark.parametrize('N,P,sharding', cases(25))
def test_the_ring_covers_every_pair_once(N, P, sharding):
    schedule = ring_schedule(N, P, sharding)
    pairs = set()
    area = 0
    for r in range(P):
        assert sorted(ring_source(r, s, P) for s in range(P)) == list(range(P))
        for s in range(P):
            own = shard_chunks(N, P, r, sharding)
            theirs = shard_chunks(N, P, ring_source(r, s, P), sharding)
            for call in schedule[(r, s)]:
                assert call.q in own and call.k in theirs
                assert (call.q_offset, call.k_offset) == (call.q.start, call.k.start)
                key = (call.q.start, call.k.start)
                assert key not in pairs
                pairs.add(key)
                area += call.q.length * call.k.length
    assert area == N * N, f'seed {SEED}'


@pytest.mark.parametrize('N,P,sharding', cases(15))
def test_a_pair_filter_drops_exactly_its_pairs(N, P, sharding):
    causal = lambda qc, kc: kc.start <= qc.stop - 1  # noqa: E731
    for r in range(P):
        for s in range(P):
            every = step_calls(N, P, r, s, sharding)
            kept = step_calls(N, P, r, s, sharding, causal)
            assert [(c.q, c.k) for c in kept] == [(c.q, c.k) for c in every if causal(c.q, c.k)]


def test_zigzag_causal_skips_balance_the_launches():
    N, P = 4096, 4
    causal = lambda qc, kc: kc.start <= qc.stop - 1  # noqa: E731
    counts = [sum(len(step_calls(N, P, r, s, 'zigzag', causal)) for s in range(P)) for r in range(P)]
    assert len(set(counts)) == 1  # every rank: 2P + 1 launches of its 4P possible
    assert counts[0] == 2 * P + 1


def test_head_groups_and_errors():
    assert head_groups(32, 8, 4) == (8, 2, 1)
    assert head_groups(32, 2, 4) == (8, 8, 16)  # kv heads repeated to H: none is split
    with pytest.raises(ArgumentError, match='H = 6 must be a multiple of the world size 4'):
        head_groups(6, 2, 4)
    with pytest.raises(ArgumentError, match='rank 3 is outside'):
        shard_chunks(10, 3, 3)
    with pytest.raises(ArgumentError, match="sharding 'rows'"):
        shard_chunks(10, 2, 0, 'rows')
    with pytest.raises(ArgumentError, match='world_size must be at least 1'):
        shard_chunks(10, 0, 0)
