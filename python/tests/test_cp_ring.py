"""The ring, played in pure Python against real manifests (no torch, no GPU): every rank's launches
(attnc.distributed_plan), the pairs the tile classification skips (attnc.distributed_tiles), the
ring variant of kernels that read document ids (attnc.distributed_source, compiled by the CLI) and
the lse merge give the single call's rows. A launch is computed by evaluating the manifest's mask
and score (attnc.distributed_reference) over scores and values that are functions of position."""
import math
import os
import random
import subprocess

import pytest
from conftest import CLI, REPO, node

from attnc.distributed_check import check_cp_kernel
from attnc.distributed_merge import NEG_INF, merge_rows
from attnc.distributed_plan import ring_source, shard_chunks, step_calls
from attnc.distributed_reference import Expr, lookup_list
from attnc.distributed_source import ring_call_named
from attnc.distributed_source import ring_source as ring_variant
from attnc.distributed_tiles import ChunkStats, PairFilter
from attnc.errors import ArgumentError
from attnc.manifest import Manifest

SEED = 777 if os.environ.get('CI') else random.randrange(1 << 30)
# A pseudo-random mask (a hash of per-position tags) with a position-dependent score.
SCATTER = """attention scatter(tag: i32[kv]) {
  score score - 0.001 * float(q - k)
  mask causal && (tag[q] * 7 + tag[k] * 3) % 5 != 0
}
"""
# Lookups written through a let and parentheses (still at q and k: the ring takes them), and one at
# k + 1 (outside a launch's chunks at their ends: the ring refuses it, Ulysses takes it).
SOURCES = {
    'scatter': SCATTER,
    'letq': 'attention letq(doc: i32[kv]) {\n  let p = q\n  mask doc[p] == doc[(k)] && causal\n}\n',
    'neighbour': 'attention neighbour(doc: i32[kv]) {\n  mask doc[q] == doc[k + 1] && causal\n}\n',
}
KERNELS = ['scatter', 'letq', 'neighbour', 'causal', 'document', 'modality', 'sliding_window', 'prefix_lm', 'softcap', 'alibi', 'nsa_select', 'heavy_hitter']


def compile_source(source_path, out):
    cmd = [node(), CLI, 'compile', source_path, '--target', 'cuda', '--dtype', 'bf16', '--dim', '64', '--out', str(out)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, f'{" ".join(cmd)}\n{r.stderr}'
    (json_file,) = [f for f in os.listdir(out) if f.endswith('.json')]
    return Manifest.from_file(os.path.join(out, json_file))


@pytest.fixture(scope='session')
def kernels(tmp_path_factory):
    """name -> (manifest, ring variant's manifest, its ring tensors); the CLI runs concurrently."""
    from concurrent.futures import ThreadPoolExecutor

    root = tmp_path_factory.mktemp('cp')
    for name, text in SOURCES.items():
        (root / f'{name}.attn').write_text(text)
    paths = {n: str(root / f'{n}.attn') if n in SOURCES else os.path.join(REPO, 'stdlib', f'{n}.attn') for n in KERNELS}
    with ThreadPoolExecutor(max_workers=4) as pool:
        manifests = dict(zip(KERNELS, pool.map(lambda n: compile_source(paths[n], root / n), KERNELS)))
        variants = {}
        for name in KERNELS:
            with open(paths[name]) as f:
                text, tensors = ring_variant(f.read(), manifests[name])
            if tensors:
                (root / f'{name}_ring.attn').write_text(text)
                variants[name] = (pool.submit(compile_source, str(root / f'{name}_ring.attn'), root / f'{name}_ring'), tensors)
        return {n: (m, variants[n][0].result() if n in variants else m, variants[n][1] if n in variants else []) for n, m in manifests.items()}


def score_of(qp, kp):
    return ((qp * 7919 + kp * 104729) % 1009) / 100.0 - 5.0


def value_of(kp):
    return [math.sin(kp), math.cos(0.7 * kp)]


def launch(expr, q_off, nq, k_off, nk, tensors, params):
    """(out rows, lse list) of one kernel call: positions q_off + i and k_off + j."""
    env = {'b': 0, 'h': 0, 'B': 1, 'H': 1, 'Hkv': 1, 'Nq': nq, 'Nk': nk, 'D': 64}
    env.update({f'${n}': v for n, v in params.items()})
    env['tensors'] = {n: lookup_list(t) for n, t in tensors.items()}
    outs, lses = [], []
    for i in range(nq):
        scores, values = [], []
        for j in range(nk):
            e = dict(env, q=q_off + i, k=k_off + j, score=score_of(q_off + i, k_off + j))
            if expr.mask(e):
                scores.append(expr.score(e))
                values.append(value_of(k_off + j))
        if not scores:
            outs.append([0.0, 0.0])
            lses.append(NEG_INF)
            continue
        m = max(scores)
        w = [math.exp(s - m) for s in scores]
        outs.append([sum(wi * v[c] for wi, v in zip(w, values)) / sum(w) for c in range(2)])
        lses.append(m + math.log(sum(w)))
    return outs, lses


def narrow_list(x, dim, start, length):
    assert dim == 0
    return x[start : start + length]


def play_ring(manifest, ring, ring_tensors, N, P, sharding, full, params):
    """Every position's (out, lse) from the ring's launches, and the number of launches."""
    shards = {r: {n: [full[n][p] for c in shard_chunks(N, P, r, sharding) for p in range(c.start, c.stop)] for n in full} for r in range(P)}
    stats = {}
    for n in full:
        stats[n] = ChunkStats(N, [(c.start, c.stop, min(full[n][c.start : c.stop]), max(full[n][c.start : c.stop])) for r in range(P) for c in shard_chunks(N, P, r, sharding) if c.length])
    may_touch = PairFilter(manifest.data['tiles'], params, stats)
    expr = Expr(ring)
    out, lse = {p: [0.0, 0.0] for p in range(N)}, {p: NEG_INF for p in range(N)}
    launches = 0
    for r in range(P):
        for s in range(P):
            for call in step_calls(N, P, r, s, sharding, may_touch):
                named = ring_call_named(ring_tensors, call, shards[r], shards[ring_source(r, s, P)], params, narrow_list)
                tensors = {n: v for n, v in named.items() if isinstance(v, list)}
                scalars = {n: v for n, v in named.items() if not isinstance(v, list)}
                rows, lses = launch(expr, call.q_offset, call.q.length, call.k_offset, call.k.length, tensors, scalars)
                launches += 1
                for i, p in enumerate(range(call.q.start, call.q.stop)):
                    out[p], lse[p] = merge_rows(out[p], lse[p], rows[i], lses[i])
    return out, lse, launches


def segments(rng, n, lo, hi, zero_odds=0.0):
    ids, doc = [], 1
    while len(ids) < n:
        ids += [0 if rng.random() < zero_odds else doc] * rng.randint(lo, hi)
        doc += 1
    return ids[:n]


def problem(name, rng, N):
    if name in ('document', 'letq'):
        return {'doc': segments(rng, N, 1, 25)}, {}
    if name == 'modality':
        return {'span': segments(rng, N, 1, 12, zero_odds=0.5)}, {}
    if name == 'sliding_window':
        return {}, {'window': rng.randint(1, 40)}
    if name == 'prefix_lm':
        return {}, {'prefix': rng.randint(0, N)}
    if name == 'softcap':
        return {}, {'cap': 2.5}
    if name == 'scatter':
        return {'tag': [rng.randint(-50, 50) for _ in range(N)]}, {}
    return {}, {}


@pytest.mark.parametrize('trial', range(8))
@pytest.mark.parametrize('name', ['causal', 'document', 'modality', 'sliding_window', 'prefix_lm', 'softcap', 'scatter', 'letq'])
def test_the_ring_gives_the_single_call(kernels, name, trial):
    rng = random.Random(f'{SEED}-{name}-{trial}')
    N, P, sharding = rng.randint(1, 70), rng.randint(1, 5), rng.choice(['zigzag', 'contiguous'])
    manifest, ring, ring_tensors = kernels[name]
    full, params = problem(name, rng, N)
    want_out, want_lse = launch(Expr(manifest), 0, N, 0, N, full, params)
    out, lse, launches = play_ring(manifest, ring, ring_tensors, N, P, sharding, full, params)
    msg = f'{name}: N {N}, P {P}, {sharding}, seed {SEED}'
    for p in range(N):
        if want_lse[p] == NEG_INF:
            assert lse[p] == NEG_INF and out[p] == [0.0, 0.0], msg
        else:
            assert lse[p] == pytest.approx(want_lse[p], rel=1e-12), msg
            assert out[p] == pytest.approx(want_out[p], rel=1e-9, abs=1e-12), msg
    if name == 'causal' and sharding == 'zigzag' and N >= 4 * P:
        assert launches == P * (2 * P + 1), msg  # the pairs above the diagonal were skipped


@pytest.mark.parametrize('trial', range(20))
def test_the_pair_filter_is_sound_and_exact_for_causal(kernels, trial):
    rng = random.Random(f'{SEED}-filter-{trial}')
    N = rng.randint(2, 120)
    ids = segments(rng, N, 1, 30)
    chunks = [(0, N, min(ids), max(ids))]
    doc = PairFilter(kernels['document'][0].data['tiles'], {}, {'doc': ChunkStats(N, chunks)})
    causal = PairFilter(kernels['causal'][0].data['tiles'])
    from attnc.distributed_plan import Chunk

    for _ in range(20):
        a, b = sorted(rng.sample(range(N + 1), 2))
        c, d = sorted(rng.sample(range(N + 1), 2))
        qc, kc = Chunk(a, b, 0), Chunk(c, d, 0)
        any_causal = any(q >= k for q in range(a, b) for k in range(c, d))
        assert causal(qc, kc) == any_causal
        # with exact per-chunk statistics the document filter is sound (never skips a live pair)
        stats = ChunkStats(N, [(a, b, min(ids[a:b]), max(ids[a:b])), (c, d, min(ids[c:d]), max(ids[c:d]))] + ([] if (a, b) == (0, N) else [(0, N, min(ids), max(ids))]))
        exact = PairFilter(kernels['document'][0].data['tiles'], {}, {'doc': stats})
        live = any(q >= k and ids[q] == ids[k] for q in range(a, b) for k in range(c, d))
        assert not live or (doc(qc, kc) and exact(qc, kc)), f'seed {SEED}'


def test_which_kernels_each_mode_computes(kernels):
    for name in ('causal', 'document', 'modality', 'softcap'):
        check_cp_kernel(kernels[name][0], 'ring')
        check_cp_kernel(kernels[name][0], 'ulysses')
    check_cp_kernel(kernels['alibi'][0], 'ring')
    with pytest.raises(ArgumentError, match='alibi: the mask or score reads H, h; ulysses cannot compute it exactly'):
        check_cp_kernel(kernels['alibi'][0], 'ulysses')
    with pytest.raises(ArgumentError, match='nsa_select: context parallelism merges plain attention by lse; this kernel has indices, scratch'):
        check_cp_kernel(kernels['nsa_select'][0], 'ring')
    with pytest.raises(ArgumentError, match='heavy_hitter: .* this kernel has importance'):
        check_cp_kernel(kernels['heavy_hitter'][0], 'ring')
    check_cp_kernel(kernels['letq'][0], 'ring')
    check_cp_kernel(kernels['neighbour'][0], 'ulysses')
    with pytest.raises(ArgumentError, match='neighbour: the mask or score reads doc at a position other than q or k; .*ulysses_attention'):
        check_cp_kernel(kernels['neighbour'][0], 'ring')
    with pytest.raises(ArgumentError, match="mode 'tree'"):
        check_cp_kernel(kernels['causal'][0], 'tree')
