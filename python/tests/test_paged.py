"""Paged K/V caches from Python (`cache paged P`, stdlib/paged-decode.attn): the manifest's page
size, block_table= and kv_len= mapped to sizes, and the message for each mistake. Pure Python."""
import re

import pytest

from attnc.call import TensorInfo, bind_call
from attnc.errors import ArgumentError

GPU = 'cuda:0'
P = 16


def pools(B=2, H=8, Hkv=2, Nq=1, pages=40, D=64, dtype='bf16'):
    return dict(
        q=TensorInfo((B, H, Nq, D), dtype, GPU),
        k=TensorInfo((pages, Hkv, P, D), dtype, GPU),
        v=TensorInfo((pages, Hkv, P, D), dtype, GPU),
    )


def table(B=2, max_pages=8, dtype='i32', device=GPU):
    return TensorInfo((B, max_pages), dtype, device)


def bind(m, infos=None, block_table=None, kv_len=None):
    return bind_call(m, infos or pools(), {}, lambda _: None, None, None, None, block_table, kv_len)


def fails(message, m, **kw):
    with pytest.raises(ArgumentError, match='^' + re.escape(message) + '$'):
        bind(m, **kw)


def test_manifest_names_the_page_size(manifests):
    m = manifests['paged_decode']
    assert m.page_size == P
    assert manifests['document'].page_size is None
    assert 'paged cache' in m.no_backward_reason()
    assert m.backward is not None and not m.backward.available and 'paged' in m.backward.reason


def test_block_table_and_kv_len_give_the_sizes(manifests):
    m = manifests['paged_decode']
    b = bind(m, block_table=table(), kv_len=100)
    assert b.sizes == dict(B=2, H=8, Hkv=2, Nq=1, Nk=100) and b.max_pages == 8
    assert bind(m, block_table=table()).sizes['Nk'] == 8 * P  # default: every page of the row full
    assert bind(m, block_table=table(), kv_len=0).sizes['Nk'] == 0
    # A table made for a larger batch: its rows past B are never read.
    assert bind(m, block_table=table(B=3), kv_len=100).sizes == b.sizes


def test_paged_mistakes_name_the_argument(manifests):
    m = manifests['paged_decode']
    fails('paged_decode: this kernel reads a paged cache: pass block_table= (i32 [B, max_pages] page ids, pages of 16 rows)', m)
    fails('paged_decode: block_table must be i32 (torch.int32), got i64', m, block_table=table(dtype='i64'))
    fails('paged_decode: block_table must be [B, max_pages] = [2, >= 1] (more rows than B are unused), got [1, 8]', m, block_table=table(B=1))
    fails('paged_decode: block_table is on cuda:1, q on cuda:0; they must share a device', m, block_table=table(device='cuda:1'))
    fails('paged_decode: kv_len must be an int in [0, max_pages * P] = [0, 128], got 129', m, block_table=table(), kv_len=129)
    fails("paged_decode: kv_len must be an int in [0, max_pages * P] = [0, 128], got '5'", m, block_table=table(), kv_len='5')
    bad = pools()
    bad['k'] = TensorInfo((40, 2, 32, 64), 'bf16', GPU)
    fails("paged_decode: k must be a page pool [pages, Hkv, P, D] with P = 16 (the kernel's page size), got shape [40, 2, 32, 64]", m, infos=bad, block_table=table())
    bad = pools()
    bad['v'] = TensorInfo((39, 2, 16, 64), 'bf16', GPU)
    fails('paged_decode: k [40, 2, 16, 64] and v [39, 2, 16, 64] must agree on [pages, Hkv]', m, infos=bad, block_table=table())
    fails('paged_decode: q heads H = 8 must be a multiple of k/v heads Hkv = 3 (GQA)', m, infos=pools(Hkv=3), block_table=table())


def test_block_table_is_refused_by_other_kernels(manifests):
    infos = dict(q=TensorInfo((1, 8, 4, 64), 'bf16', GPU), k=TensorInfo((1, 8, 4, 64), 'bf16', GPU), v=TensorInfo((1, 8, 4, 64), 'bf16', GPU))
    with pytest.raises(ArgumentError, match=r'document: block_table= and kv_len= are for kernels over a paged cache'):
        bind_call(manifests['document'], infos, {}, lambda _: None, None, None, None, table(B=1), None)
