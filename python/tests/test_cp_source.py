"""The ring variant's source (attnc.distributed_source): kv-indexed tensors split into the query
chunk's and the key chunk's slices, lookups rewritten, everything else left as written."""
import os

import pytest

from attnc.distributed_plan import Chunk, PairCall
from attnc.distributed_source import ring_call_named, ring_source
from attnc.errors import ArgumentError


class FakeTensor:
    def __init__(self, name, dims):
        self.name, self.dims = name, [{'kind': 'size', 'name': d} if d[0].isupper() else {'kind': 'param', 'name': d} for d in dims]


class FakeManifest:
    def __init__(self, name, tensors):
        self.name, self.tensors = name, [FakeTensor(n, d) for n, d in tensors]


SOURCE = """// two entries; only the chosen one changes
attention other(doc: i32[kv]) { mask doc[q] == 1 }
attention pick(w: int = 3, doc: i32[kv], kept: i32[batch, kv], gain: f32[heads]) {
  let d = doc[k + 1] /* a neighbour's id */
  mask doc[q] == doc[k] && kept[b, k] != 0 && d >= 0
  score score * gain[h]
}
"""


def test_lookups_and_params_are_rewritten():
    m = FakeManifest('pick', [('doc', ['Nk']), ('kept', ['B', 'Nk']), ('gain', ['H'])])
    text, tensors = ring_source(SOURCE, m, entry='pick')
    assert [(t.name, t.kv_dim, t.q_name, t.k_name) for t in tensors] == [('doc', 0, 'doc_cp_q', 'doc_cp_k'), ('kept', 1, 'kept_cp_q', 'kept_cp_k')]
    assert 'attention other(doc: i32[kv]) { mask doc[q] == 1 }' in text
    assert (
        'attention pick(w: int = 3, doc_cp_q: i32[queries], doc_cp_k: i32[kv], kept_cp_q: i32[batch, queries], '
        'kept_cp_k: i32[batch, kv], gain: f32[heads], attnc_cp_q0: int = 0, attnc_cp_k0: int = 0) {'
    ) in text
    assert 'let d = ((k + 1) >= attnc_cp_q0 && (k + 1) < attnc_cp_q0 + Nq ? doc_cp_q[(k + 1) - attnc_cp_q0] : doc_cp_k[(k + 1) - attnc_cp_k0]) /* a neighbour\'s id */' in text
    assert 'mask doc_cp_q[q - attnc_cp_q0] == doc_cp_k[k - attnc_cp_k0] && kept_cp_k[b, k - attnc_cp_k0] != 0 && d >= 0' in text
    assert 'score score * gain[h]' in text


def test_no_kv_tensor_leaves_the_source_alone_and_reserved_names_are_refused():
    src = 'attention c(gain: f32[heads]) { mask causal }'
    assert ring_source(src, FakeManifest('c', [('gain', ['H'])])) == (src, [])
    bad = 'attention c(doc: i32[kv], attnc_cp_q0: int = 1) { mask doc[q] == attnc_cp_q0 }'
    with pytest.raises(ArgumentError, match='c: the name attnc_cp_q0 is reserved'):
        ring_source(bad, FakeManifest('c', [('doc', ['Nk'])]))
    clash = 'attention c(doc: i32[kv], doc_cp_q: int = 1) { mask doc[q] == doc_cp_q }'
    text, tensors = ring_source(clash, FakeManifest('c', [('doc', ['Nk'])]))
    assert tensors[0].q_name == 'doc_cp__q' and 'doc_cp__q[q - attnc_cp_q0] == doc_cp_q' in text


def test_call_arguments_slice_the_shards():
    m = FakeManifest('pick', [('doc', ['Nk'])])
    _, tensors = ring_source('attention pick(doc: i32[kv]) { mask doc[q] == doc[k] }', m)
    call = PairCall(Chunk(40, 43, 2), Chunk(10, 12, 1))
    own, src = {'doc': list(range(100, 110))}, {'doc': list(range(200, 210))}
    named = ring_call_named(tensors, call, own, src, {'w': 1}, lambda x, d, s, n: x[s : s + n])
    assert named == {'w': 1, 'doc_cp_q': [102, 103, 104], 'doc_cp_k': [201, 202], 'attnc_cp_q0': 40, 'attnc_cp_k0': 10}


def test_compile_cp_fills_the_cache_with_the_ring_variant(tmp_path, monkeypatch):
    from conftest import REPO, node

    node()
    from attnc.build import BuildOptions
    from attnc.distributed_build import compile_cp
    from attnc.manifest import Manifest

    monkeypatch.chdir(tmp_path)
    cache = 'cache'  # relative: the CLI runs elsewhere, so compile_cp makes it absolute
    original, ring = compile_cp(os.path.join(REPO, 'stdlib', 'document.attn'), BuildOptions(dtype='bf16', head_dim=64), cache)
    m, r = Manifest.from_file(original), Manifest.from_file(ring)
    assert [t.name for t in m.tensors] == ['doc']
    assert [t.name for t in r.tensors] == ['doc_cp_q', 'doc_cp_k']
    assert [p.name for p in r.params] == ['attnc_cp_q0', 'attnc_cp_k0']
    assert {s['tensor'] for s in r.data['summaries']} == {'doc_cp_q', 'doc_cp_k'}  # tile skipping kept
    assert os.path.isfile(ring) and ring.startswith(str(tmp_path))
    assert compile_cp(os.path.join(REPO, 'stdlib', 'causal.attn'), BuildOptions(dtype='bf16', head_dim=64), cache)[1].endswith('.json')
