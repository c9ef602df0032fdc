"""q read and out written through their strides (no copy of a BNHD q; out in BNHD or into a given
tensor) on every engine the tests build, and paged K/V caches through block_table= and kv_len=,
against the float64 reference over the gathered cache."""
import pytest
import torch
from conftest import assert_close, causal, document_mask, qkv, reference, segments

import attnc
import attnc.torch


def test_bnhd_q_is_read_in_place_and_out_comes_back_bnhd(monkeypatch):
    from attnc import _ops

    copied = []
    readable = _ops._readable
    monkeypatch.setattr(_ops, '_readable', lambda t, a: copied.append(t.data_ptr()) or readable(t, a))
    for path, D, extra in (('stdlib/document.attn', 64, True), ('stdlib/causal.attn', 128, False)):
        attn = attnc.torch.load(path, dtype=torch.bfloat16, head_dim=D)
        for Nq, Nk in ((300, 300), (3, 2000)):  # prefill (tensor-core engines) and decode
            q, k, v = qkv(Nq=Nq, Nk=Nk, D=D, bnhd=True)
            kw = dict(doc=segments(Nk)) if extra else {}
            copied.clear()
            r = attn(q, k, v, layout='bnhd', **kw)
            assert q.data_ptr() not in copied, 'a BNHD q is read through its strides'
            assert r.out.shape == (2, 8, Nq, D) and r.out.transpose(1, 2).is_contiguous()
            mask = document_mask(kw['doc']) if extra else causal
            assert_close((r.out, r.lse), reference(q, k, v, mask), torch.bfloat16)
            if Nq == Nk:  # prefill: the same kernel over the same values, bit for bit
                assert torch.equal(r.out, attn(q.contiguous(), k, v, **kw).out)


def test_out_is_written_into_a_given_tensor():
    attn = attnc.torch.load('stdlib/causal.attn', dtype=torch.bfloat16, head_dim=64)
    q, k, v = qkv(Nq=200, Nk=200)
    want = attn(q, k, v).out
    big = torch.full((2, 200, 8, 80), 7.0, dtype=torch.bfloat16, device='cuda')  # BNHD rows padded to 80
    out = big[..., :64].transpose(1, 2)
    r = attn(q, k, v, out=out)
    assert r.out is out and torch.equal(out, want)
    assert (big[..., 64:] == 7).all(), 'the padding is not written'
    with pytest.raises(attnc.ArgumentError, match=r'causal: out \(shape \[2, 8, 200, 64\], strides .*\) cannot be written in place'):
        attn(q, k, v, out=torch.empty(2, 1, 200, 64, dtype=torch.bfloat16, device='cuda').expand(2, 8, 200, 64))
    with pytest.raises(attnc.ArgumentError, match=r'causal: out must have shape \[B, H, Nq, Dv\] = \[2, 8, 200, 64\]'):
        attn(q, k, v, out=torch.empty(2, 8, 199, 64, dtype=torch.bfloat16, device='cuda'))
    compiled = torch.compile(lambda q, k, v, o: attn(q, k, v, out=o).lse, fullgraph=True)
    fresh = torch.empty_like(want)
    compiled(q, k, v, fresh)
    assert torch.equal(fresh, want)


def gathered(pool, table, kv_len, P):
    """[B, Hkv, kv_len, D] keys of each sequence: row j of batch b is row j % P of page table[b, j // P]."""
    j = torch.arange(kv_len, device=pool.device)
    pages = table[:, j // P].long()  # [B, kv_len]
    return pool[pages, :, j % P].permute(0, 2, 1, 3)  # pool[pages, :, rows] -> [B, kv_len, Hkv, D]


@pytest.mark.parametrize('pool_layout', ['hnd', 'nhd'])
def test_paged_cache_through_block_table(pool_layout):
    attn = attnc.torch.load('stdlib/paged-decode.attn', dtype=torch.bfloat16, head_dim=64)
    P, pages, B, H, Hkv = 16, 64, 2, 8, 2
    if pool_layout == 'hnd':
        k_pool, v_pool = (torch.randn(pages, Hkv, P, 64, device='cuda').to(torch.bfloat16) for _ in range(2))
    else:  # vLLM's NHD pages [pages, P, Hkv, D], passed as a view
        k_pool, v_pool = (torch.randn(pages, P, Hkv, 64, device='cuda').to(torch.bfloat16).transpose(1, 2) for _ in range(2))
    table = torch.randperm(pages, device='cuda')[: B * 13].view(B, 13).to(torch.int32)
    for Nq, kv_len in ((1, 200), (5, 193), (40, 208)):
        q = torch.randn(B, H, Nq, 64, device='cuda').to(torch.bfloat16)
        r = attn(q, k_pool, v_pool, block_table=table, kv_len=kv_len)
        k, v = gathered(k_pool, table, kv_len, P), gathered(v_pool, table, kv_len, P)
        assert_close((r.out, r.lse), reference(q, k, v, causal), torch.bfloat16)
        # A table made for a larger batch (rows past B hold ids outside the pool): same answer.
        longer = torch.cat([table, torch.full((3, 13), -1, dtype=torch.int32, device='cuda')])
        r2 = attn(q, k_pool, v_pool, block_table=longer, kv_len=kv_len)
        assert torch.equal(r2.out, r.out) and torch.equal(r2.lse, r.lse)


def test_paged_errors_name_the_argument():
    attn = attnc.torch.load('stdlib/paged-decode.attn', dtype=torch.bfloat16, head_dim=64)
    k_pool, v_pool = (torch.randn(8, 2, 16, 64, device='cuda').to(torch.bfloat16) for _ in range(2))
    q = torch.randn(1, 8, 1, 64, device='cuda').to(torch.bfloat16)
    table = torch.tensor([[0, 3, 9]], dtype=torch.int32, device='cuda')
    with pytest.raises(attnc.ArgumentError, match=r'paged_decode: block_table holds page id 9, outside the pool of 8 pages'):
        attn(q, k_pool, v_pool, block_table=table, kv_len=40)
    assert attn(q, k_pool, v_pool, block_table=table, kv_len=32).out.isfinite().all()  # page 9 not read
    with pytest.raises(attnc.ArgumentError, match=r'paged_decode: block_table must be i32'):
        attn(q, k_pool, v_pool, block_table=table.long(), kv_len=32)
    with pytest.raises(attnc.ArgumentError, match=r'this kernel reads a paged cache: pass block_table='):
        attn(q, k_pool, v_pool)
    with pytest.raises(attnc.NoBackwardError, match=r'paged cache'):
        attn(q.clone().requires_grad_(), k_pool, v_pool, block_table=table, kv_len=32)
