"""Kernels over quantized K/V caches from torch: the codes as k / v and the caches' other tensors
by keyword (k_scale=, v_zero=, ...), prefill on the tensor-core engines, staged (the K/V
dequantized once into a workspace the op allocates) and fused (each tile converted), and decode;
against the float64 reference over the dequantized caches (docs/LANGUAGE.md, Dequantization),
rounded to bf16 as the tensor-core tiles hold them."""
import pytest
import torch
from builds import INT8_SOURCE
from conftest import causal, reference

import attnc
import attnc.torch
from attnc import _ops

D, B, H, Hkv = 128, 2, 8, 2
OUT_TOL, LSE_TOL = 2e-2, 5e-3


def pack(codes, bits):
    """[..., D] integer codes (their low `bits` bits) -> int32 words, channel c at bits
    (c % per) * bits of word c // per (docs/LANGUAGE.md, Layout: Packing)."""
    per = 32 // bits
    c = (codes.to(torch.int64) & ((1 << bits) - 1)).reshape(*codes.shape[:-1], codes.shape[-1] // per, per)
    w = (c << (torch.arange(per, device=codes.device, dtype=torch.int64) * bits)).sum(-1)
    return torch.where(w >= 2**31, w - 2**32, w).to(torch.int32).contiguous()


def int8_cache(Nk):
    """store kv int8 scale f32 per token: (codes, {'scale': ...}, f32 values)."""
    codes = torch.randint(-127, 128, (B, Hkv, Nk, D), device='cuda')
    scale = (torch.rand(B, Hkv, Nk, 1, device='cuda') * 0.02 + 0.002).contiguous()
    return pack(codes, 8), dict(scale=scale), codes.float() * scale


def kivi_cache(Nk, which):
    """stdlib/kivi.attn's int2 asymmetric cache: K per channel in groups of 32 tokens, V per token in
    groups of 32 channels, f16 scales and zeros, the last min(128, Nk) tokens in `recent` (f16)."""
    codes = torch.randint(0, 4, (B, Hkv, Nk, D), device='cuda')
    groups = (B, Hkv, -(-Nk // 32), D) if which == 'k' else (B, Hkv, Nk, D // 32)
    scale = (torch.rand(groups, device='cuda') * 0.5 + 0.05).half()
    zero = torch.randint(0, 4, groups, device='cuda').half()
    recent = torch.randn(B, Hkv, 128, D, device='cuda').half()
    axis = 2 if which == 'k' else 3
    expand = lambda t: t.float().repeat_interleave(32, dim=axis)[:, :, :Nk, :D]  # noqa: E731
    values = (codes.float() - expand(zero)) * expand(scale)
    n = min(128, Nk)
    values[:, :, Nk - n :] = recent[:, :, :n].float()
    return pack(codes, 2), dict(scale=scale, zero=zero, recent=recent), values


def call_kwargs(k_side, v_side):
    kw = {f'k_{name}': t for name, t in k_side.items()}
    kw.update({f'v_{name}': t for name, t in v_side.items()})
    return kw


def check(result, q, kv, vv, lse_tol=LSE_TOL):
    ref_out, ref_lse = reference(q, kv.bfloat16(), vv.bfloat16(), causal)
    rel = ((result.out.double() - ref_out).norm() / ref_out.norm()).item()
    assert rel < OUT_TOL, f'out relative L2 error {rel:.2e}'
    err = (result.lse.double() - ref_lse).abs().max().item()
    assert err < lse_tol, f'lse max abs error {err:.2e}'


def spy_workspaces(monkeypatch):
    """The workspaces the op allocates (None: the launch ran fused)."""
    seen = []
    real = _ops._staged_workspace
    monkeypatch.setattr(_ops, '_staged_workspace', lambda *a: seen.append(real(*a)) or seen[-1])
    return seen


CASES = [
    ('int8', 'staged', INT8_SOURCE, int8_cache),
    ('int8', 'fused', INT8_SOURCE, int8_cache),
    ('kivi', 'staged', 'stdlib/kivi.attn', kivi_cache),
]


@pytest.mark.parametrize('fmt,mode,source,cache', CASES, ids=[f'{c[0]}-{c[1]}' for c in CASES])
def test_quantized_prefill_and_decode_match_the_reference(monkeypatch, fmt, mode, source, cache):
    attn = attnc.torch.load(source, dtype=torch.bfloat16, head_dim=D, quant_prefill=mode)
    seen = spy_workspaces(monkeypatch)
    for Nq, Nk in ((300, 300), (100, 400), (1, 333)):  # staged prefill, short prefill (fused), decode
        q = torch.randn(B, H, Nq, D, device='cuda').bfloat16()
        kc, ks, kv = cache(Nk, 'k') if fmt == 'kivi' else cache(Nk)
        vc, vs, vv = cache(Nk, 'v') if fmt == 'kivi' else cache(Nk)
        seen.clear()
        r = attn(q, kc, vc, **call_kwargs(ks, vs))
        # Decode's SIMT path keeps the f32 dequantized values (no bf16 tile): a wider lse bound.
        check(r, q, kv, vv, LSE_TOL if Nq > 1 else 2e-2)
        staged = mode == 'staged' and Nq >= attn.manifest.data['staged']['minNq']
        assert (seen[0] is not None) == staged, f'Nq {Nq}: staged launch {staged}'


def test_staged_and_fused_agree_and_compile(monkeypatch):
    staged = attnc.torch.load(INT8_SOURCE, dtype=torch.bfloat16, head_dim=D, quant_prefill='staged')
    fused = attnc.torch.load(INT8_SOURCE, dtype=torch.bfloat16, head_dim=D, quant_prefill='fused')
    q = torch.randn(B, H, 512, D, device='cuda').bfloat16()
    kc, ks, _ = int8_cache(512)
    vc, vs, _ = int8_cache(512)
    kw = call_kwargs(ks, vs)
    a, b = staged(q, kc, vc, **kw), fused(q, kc, vc, **kw)
    assert ((a.out.float() - b.out.float()).norm() / b.out.float().norm()).item() < 1e-2
    compiled = torch.compile(lambda q, k, v, ks, vs: staged(q, k, v, k_scale=ks, v_scale=vs).out, fullgraph=True)
    assert torch.equal(compiled(q, kc, vc, kw['k_scale'], kw['v_scale']), a.out)
    # uint32 codes are the same words as int32
    assert torch.equal(staged(q, kc.view(torch.uint32), vc, **kw).out, a.out)


def test_quantized_call_mistakes_name_the_argument():
    attn = attnc.torch.load(INT8_SOURCE, dtype=torch.bfloat16, head_dim=D, quant_prefill='staged')
    q = torch.randn(B, H, 300, D, device='cuda').bfloat16()
    kc, ks, _ = int8_cache(300)
    with pytest.raises(attnc.ArgumentError, match=r'^qi8: v_scale must be a tensor f32 \[B, Hkv, Nk, 1\]'):
        attn(q, kc, kc, k_scale=ks['scale'])
    with pytest.raises(attnc.ArgumentError, match=r'^qi8: k_scale must be f32 \(quantized cache scale\), got f16'):
        attn(q, kc, kc, k_scale=ks['scale'].half(), v_scale=ks['scale'])
    with pytest.raises(attnc.ArgumentError, match=r'^qi8: k must be i32 or u32 \(quantized cache codes\), got bf16'):
        attn(q, kc.bfloat16(), kc, k_scale=ks['scale'], v_scale=ks['scale'])
