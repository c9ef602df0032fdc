"""Paged quantized caches from torch (`cache paged P` with `store`; docs/LANGUAGE.md, "Paged
quantized caches"): the caches of test_quant_prefill.py scattered into pools of pages through a
random block table — codes and per-token scales a row a token, K's per-channel scales of 32 tokens
a row per group, the recent window per sequence — then decode and prefill against the float64
reference over the dequantized (contiguous) caches, kv_len short of the table's capacity."""
import pytest
import torch
from builds import PAGED_INT8_SOURCE, PAGED_KIVI_SOURCE
from test_quant_prefill import B, D, H, call_kwargs, check, int8_cache, kivi_cache

import attnc
import attnc.torch


def pool_of(t, table, pages, rows_per_page):
    """A contiguous [B, Hkv, rows, X] tensor as a pool [pages, Hkv, rows_per_page, X]: row block j
    of batch b in page table[b, j] (unused pages hold NaN bits / garbage: never read)."""
    Bt, max_pages = table.shape
    need = max_pages * rows_per_page
    pad = torch.zeros(t.shape[0], t.shape[1], need, t.shape[3], dtype=t.dtype, device=t.device)
    pad[:, :, : min(need, t.shape[2])] = t[:, :, :need]
    blocks = pad.view(Bt, t.shape[1], max_pages, rows_per_page, t.shape[3]).permute(0, 2, 1, 3, 4)
    pool = torch.full((pages, t.shape[1], rows_per_page, t.shape[3]), -1, dtype=t.dtype, device=t.device)
    pool[table.flatten().long()] = blocks.reshape(Bt * max_pages, t.shape[1], rows_per_page, t.shape[3])
    return pool


def paged(codes, side, table, pages, P, k_groups):
    """codes and the side tensors of one cache in pools; per-sequence tensors (recent) as they are."""
    out = {}
    for name, t in side.items():
        if name == 'recent':
            out[name] = t
        elif name in ('scale', 'zero') and k_groups:  # K's per-channel scales: a row per 32 tokens
            out[name] = pool_of(t, table, pages, P // 32)
        else:
            out[name] = pool_of(t, table, pages, P)
    return pool_of(codes, table, pages, P), out


CASES = [('int8', PAGED_INT8_SOURCE, 16), ('kivi', PAGED_KIVI_SOURCE, 64)]


@pytest.mark.parametrize('fmt,source,P', CASES, ids=[c[0] for c in CASES])
def test_paged_quantized_decode_and_prefill_match_the_reference(fmt, source, P):
    attn = attnc.torch.load(source, dtype=torch.bfloat16, head_dim=D)
    torch.manual_seed(5)
    for Nq, Nk in ((1, 333), (100, 400)):  # decode (tensor-core split kernel), prefill
        q = torch.randn(B, H, Nq, D, device='cuda').bfloat16()
        kc, ks, kv = kivi_cache(Nk, 'k') if fmt == 'kivi' else int8_cache(Nk)
        vc, vs, vv = kivi_cache(Nk, 'v') if fmt == 'kivi' else int8_cache(Nk)
        max_pages = -(-Nk // P) + 1  # one page more than kv_len needs: its id is never read
        pages = B * max_pages + 3
        table = torch.randperm(pages, device='cuda')[: B * max_pages].view(B, max_pages).int()
        kp, ksp = paged(kc, ks, table, pages, P, fmt == 'kivi')
        vp, vsp = paged(vc, vs, table, pages, P, False)
        r = attn(q, kp, vp, block_table=table, kv_len=Nk, **call_kwargs(ksp, vsp))
        check(r, q, kv, vv, 5e-3 if Nq > 1 else 2e-2)


def test_paged_quantized_mistakes_name_the_argument():
    attn = attnc.torch.load(PAGED_KIVI_SOURCE, dtype=torch.bfloat16, head_dim=D)
    Nk, P, pages = 200, 64, 12
    q = torch.randn(B, H, 1, D, device='cuda').bfloat16()
    kc, ks, _ = kivi_cache(Nk, 'k')
    vc, vs, _ = kivi_cache(Nk, 'v')
    table = torch.arange(B * 4, device='cuda', dtype=torch.int32).view(B, 4)
    kp, ksp = paged(kc, ks, table, pages, P, True)
    vp, vsp = paged(vc, vs, table, pages, P, False)
    kw = call_kwargs(ksp, vsp)
    with pytest.raises(attnc.ArgumentError, match=r'^pkivi: this kernel reads a paged quantized cache: pass block_table='):
        attn(q, kp, vp, **kw)
    with pytest.raises(attnc.ArgumentError, match=r'^pkivi: k_scale must have shape \[pages, Hkv, 2, 128\] = \[12, 2, 2, 128\] \(a page pool\)'):
        attn(q, kp, vp, block_table=table, kv_len=Nk, **{**kw, 'k_scale': ks['scale']})
    bad = table.clone()
    bad[1, 0] = pages  # outside the pool
    with pytest.raises(attnc.ArgumentError, match=r'^pkivi: block_table holds page id 12, outside the pool of 12 pages'):
        attn(q, kp, vp, block_table=bad, kv_len=Nk, **kw)
