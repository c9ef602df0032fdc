"""The `importance` output through the torch op (AttentionOutput.importance, [B, H, Nk] f32): H2O's
heavy_hitter (`importance sum`) and ZipCache (`importance normalized`, over its quantized cache)
against a float64 torch reference of the definition (docs/LANGUAGE.md, Importance: sum_i p_ij
per query head and key; normalized: over the number of rows whose mask allows the key, 0 for a
key no row sees), in prefill and decode, BNHD views, out=, empty calls, torch.compile(fullgraph=True),
and autograd (out has gradients, importance none)."""
import math

import torch
from conftest import qkv
from test_quant_prefill import pack

import attnc
import attnc.torch

B, H, Hkv = 2, 8, 2
IMP_TOL = 2e-3  # relative L2 error of importance, bf16 inputs (the pass reads them exactly, in f32)
QUANT_TOL = 2e-2  # zipcache: the attention's lse comes from bf16 tiles of the dequantized K, the pass from f32 rows


def mass_reference(q, k, v, allowed, mode):
    """Dense float64 (out, lse, importance) for allowed [B, H, Nq, Nk] (bool), default offsets."""
    D, group = q.shape[3], q.shape[1] // k.shape[1]
    scale = float(torch.tensor(1 / math.sqrt(D), dtype=torch.float32))
    kk, vv = (x.double().repeat_interleave(group, dim=1) for x in (k, v))
    s = (scale * (q.double() @ kk.transpose(-1, -2))).masked_fill(~allowed, float('-inf'))
    lse = torch.logsumexp(s, dim=-1)
    p = torch.nan_to_num(torch.exp(s - lse[..., None]), nan=0.0)
    importance = p.sum(dim=2)  # over query rows: [B, H, Nk]
    if mode == 'normalized':
        seen = allowed.sum(dim=2)
        importance = torch.where(seen > 0, importance / seen.clamp_min(1), torch.zeros_like(importance))
    return p @ vv, lse, importance


def positions(Nq, Nk):
    """(query, key) positions [Nq, 1], [1, Nk] with the default offsets (bottom-right aligned)."""
    qp = (torch.arange(Nq, device='cuda') + Nk - Nq).view(Nq, 1)
    return qp, torch.arange(Nk, device='cuda').view(1, Nk)


def heavy_allowed(kept, Nq, Nk, recent=64):
    """stdlib/heavy_hitter.attn's mask: causal && (kept[b, h, k] != 0 || k > q - recent)."""
    qp, kp = positions(Nq, Nk)
    return (qp >= kp) & ((kept[:, :, None, :] != 0) | (kp > qp - recent))


def assert_importance(got, ref, tol):
    assert got.dtype == torch.float32 and got.shape == ref.shape
    assert (got[ref == 0] == 0).all(), 'a key no row sees has importance exactly 0'
    rel = ((got.double() - ref).norm() / ref.norm().clamp_min(1e-30)).item()
    assert rel < tol, f'importance relative L2 error {rel:.2e} >= {tol}'


def assert_out(out, ref_out, tol=2e-2):
    rel = ((out.double() - ref_out).norm() / ref_out.norm().clamp_min(1e-30)).item()
    assert rel < tol, f'out relative L2 error {rel:.2e}'


def heavy():
    return attnc.torch.load('stdlib/heavy_hitter.attn', dtype=torch.bfloat16, head_dim=64)


def test_heavy_hitter_importance_matches_the_reference():
    attn = heavy()
    for Nq, Nk in ((300, 300), (100, 400), (1, 1337), (7, 4000)):  # prefill, short prefill, decode (split KV)
        q, k, v = qkv(B=B, H=H, Hkv=Hkv, Nq=Nq, Nk=Nk)
        kept = (torch.rand(B, H, Nk, device='cuda') < 0.3).int()
        r = attn(q, k, v, kept=kept)
        assert r.indices is None and r.lse is not None
        ref_out, _, ref_imp = mass_reference(q, k, v, heavy_allowed(kept, Nq, Nk), 'sum')
        assert_out(r.out, ref_out)
        assert_importance(r.importance, ref_imp, IMP_TOL)
        assert not r.importance.requires_grad


def test_heavy_hitter_layouts_out_and_empty_calls():
    attn = heavy()
    q, k, v = qkv(B=B, H=H, Hkv=Hkv, Nq=200, Nk=333, bnhd=True)  # BNHD views: k, v copied packed for the pass
    kept = (torch.rand(B, H, 333, device='cuda') < 0.5).int()
    r = attn(q, k, v, kept=kept)
    packed = attn(q.contiguous(), k.contiguous(), v.contiguous(), kept=kept)
    assert torch.equal(r.importance, packed.importance) and torch.equal(r.out, packed.out)
    buf = torch.empty(B, H, 200, 64, device='cuda', dtype=torch.bfloat16)
    into = attn(q, k, v, kept=kept, out=buf)
    assert into.out is buf and torch.equal(into.importance, packed.importance)
    q, k, v = qkv(B=B, H=H, Hkv=Hkv, Nq=0, Nk=50)  # no query row: no key gets mass, nothing launches
    r = attn(q, k, v, kept=torch.ones(B, H, 50, dtype=torch.int32, device='cuda'))
    assert r.importance.shape == (B, H, 50) and (r.importance == 0).all()
    q, k, v = qkv(B=B, H=H, Hkv=Hkv, Nq=5, Nk=0)
    r = attn(q, k, v, kept=torch.ones(B, H, 0, dtype=torch.int32, device='cuda'))
    assert r.importance.shape == (B, H, 0) and (r.lse == float('-inf')).all()


def test_heavy_hitter_under_torch_compile_and_opcheck():
    attn = heavy()
    q, k, v = qkv(B=B, H=H, Hkv=Hkv, Nq=150, Nk=150)
    kept = (torch.rand(B, H, 150, device='cuda') < 0.3).int()
    eager = attn(q, k, v, kept=kept)
    compiled = torch.compile(lambda q, k, v, kept: attn(q, k, v, kept=kept).importance, fullgraph=True)
    assert torch.equal(compiled(q, k, v, kept), eager.importance)
    q2, k2, v2 = qkv(B=B, H=H, Hkv=Hkv, Nq=1, Nk=700)  # new sizes: a recompile, still no graph break
    kept2 = (torch.rand(B, H, 700, device='cuda') < 0.3).int()
    assert torch.equal(compiled(q2, k2, v2, kept2), attn(q2, k2, v2, kept=kept2).importance)
    torch.library.opcheck(attn.op, (q, k, v, [kept], [64], [], None, None, None, None))


def test_heavy_hitter_gradients_flow_through_out_not_importance():
    attn = heavy()
    q, k, v = (t.requires_grad_() for t in qkv(B=B, H=H, Hkv=Hkv, Nq=128, Nk=128))
    kept = (torch.rand(B, H, 128, device='cuda') < 0.3).int()
    with torch.no_grad():
        plain = attn(q, k, v, kept=kept)
    r = attn(q, k, v, kept=kept)
    assert r.out.requires_grad and not r.importance.requires_grad and r.importance.grad_fn is None
    assert torch.equal(r.importance, plain.importance)
    r.out.float().sum().backward()
    grads = [t.grad for t in (q, k, v)]
    assert all(g is not None and g.isfinite().all() and g.abs().sum() > 0 for g in grads)

    def loss(q, k, v, kept):  # importance in the loss adds no gradient
        r = attn(q, k, v, kept=kept)
        return r.out.float().sum() + r.importance.sum()

    for t in (q, k, v):
        t.grad = None
    torch.compile(loss, fullgraph=True)(q, k, v, kept).backward()
    for t, g in zip((q, k, v), grads):  # the tensor-core backward adds dq by atomics: not bit-exact
        rel = ((t.grad.double() - g.double()).norm() / g.double().norm()).item()
        assert rel < 1e-2, f'compiled gradient relative L2 error {rel:.2e}'


def zipcache_cache(Nk, flags, D=128):
    """stdlib/zipcache.attn's cache for one of K, V (docs/LANGUAGE.md, Quantized caches): int2
    asymmetric codes, int4 (in codesHi) for the tokens `flags` marks, f16 scale and zero per token,
    f16 norm per channel. Returns (codes, {keyword suffix: tensor}, f32 values)."""
    salient = (flags != 0)[..., None]
    codes = torch.where(salient, torch.randint(0, 16, (B, Hkv, Nk, D), device='cuda'), torch.randint(0, 4, (B, Hkv, Nk, D), device='cuda'))
    scale = (torch.rand(B, Hkv, Nk, 1, device='cuda') * 0.3 + 0.05).half()
    zero = torch.where(salient, torch.randint(0, 16, (B, Hkv, Nk, 1), device='cuda'), torch.randint(0, 4, (B, Hkv, Nk, 1), device='cuda')).half()
    norm = (torch.rand(B, Hkv, D, device='cuda') + 0.5).half()
    values = ((codes.float() - zero.float()) * scale.float()) * norm.float()[:, :, None, :]
    zeros = torch.zeros_like(codes)
    side = dict(codesHi=pack(torch.where(salient, codes, zeros), 4), scale=scale, zero=zero, norm=norm)
    return pack(torch.where(salient, zeros, codes), 2), side, values


def test_zipcache_normalized_importance_over_its_quantized_cache():
    attn = attnc.torch.load('stdlib/zipcache.attn', dtype=torch.bfloat16, head_dim=128)
    for Nq, Nk in ((300, 300), (64, 200), (1, 333)):  # prefill, short prefill, decode
        q = torch.randn(B, H, Nq, 128, device='cuda').bfloat16()
        flags = (torch.rand(B, Hkv, Nk, device='cuda') < 0.2).int()
        kc, ks, kv = zipcache_cache(Nk, flags)
        vc, vs, vv = zipcache_cache(Nk, flags)
        side = {f'k_{n}': t for n, t in ks.items()} | {f'v_{n}': t for n, t in vs.items()}
        r = attn(q, kc, vc, salient=flags, **side)
        qp, kp = positions(Nq, Nk)
        allowed = (qp >= kp).expand(B, H, Nq, Nk)
        ref_out, _, _ = mass_reference(q, kv.bfloat16(), vv.bfloat16(), allowed, 'normalized')
        assert_out(r.out, ref_out)
        _, _, ref_imp = mass_reference(q, kv, vv, allowed, 'normalized')
        assert_importance(r.importance, ref_imp, QUANT_TOL)
        if Nq == 300:
            compiled = torch.compile(lambda q, k, v, flags, side: attn(q, k, v, salient=flags, **side).importance, fullgraph=True)
            assert torch.equal(compiled(q, kc, vc, flags, side), r.importance)
