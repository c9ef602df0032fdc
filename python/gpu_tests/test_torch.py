"""attnc.torch on the GPU: stdlib kernels against a float64 torch reference, per call dtypes,
strided (BNHD) inputs, torch.compile(fullgraph=True), routing indices, argument and grad errors."""
import os

import pytest
import torch
from builds import SOFTCAP_F32_DIR, WINDOW_SOURCE
from conftest import assert_close, causal, document_mask, qkv, reference, segments

import attnc
import attnc.torch


def test_document_bf16_gqa_and_offsets():
    attn = attnc.torch.load('stdlib/document.attn', dtype=torch.bfloat16, head_dim=64)
    q, k, v = qkv(Nq=257, Nk=700)
    ids = segments(700)
    r = attn(q, k, v, doc=ids)
    assert isinstance(r, attnc.torch.AttentionOutput) and r.indices is None
    assert_close((r.out, r.lse), reference(q, k, v, document_mask(ids)), torch.bfloat16)
    r = attn(q, k, v, doc=ids, q_offset=-40, k_offset=25)  # some rows see no key: out 0, lse -inf
    ref = reference(q, k, v, document_mask(ids), q_offset=-40, k_offset=25)
    assert (~torch.isfinite(ref[1])).any()
    assert_close((r.out, r.lse), ref, torch.bfloat16)


def test_softcap_param_and_scale():
    attn = attnc.torch.load('stdlib/softcap.attn', dtype='f16', head_dim=64)
    q, k, v = qkv(Nq=130, Nk=130, dtype=torch.float16)
    for cap, scale in ((50.0, None), (2.5, 0.3)):
        r = attn(q, k, v, cap=cap, scale=scale)
        ref = reference(q, k, v, causal, score=lambda s, h, qp, kp: cap * torch.tanh(s / cap), scale=scale)
        assert_close((r.out, r.lse), ref, torch.float16)


def test_f32_tensor_param():
    attn = attnc.torch.load('stdlib/sink_calibration.attn', dtype=torch.bfloat16, head_dim=64)
    q, k, v = qkv(Nq=200, Nk=333)
    gain = (0.5 + torch.rand(8, device='cuda')).float()
    r = attn(q, k, v, gain=gain, sinks=4)
    score = lambda s, h, qp, kp: torch.where(kp < 4, s + torch.log(gain.double()[h]), s)  # noqa: E731
    assert_close((r.out, r.lse), reference(q, k, v, causal, score=score), torch.bfloat16)


@pytest.mark.parametrize('dtype', [torch.bfloat16, torch.float16, torch.float32])
def test_per_call_dtype_and_head_dim(dtype):
    attn = attnc.torch.load('stdlib/causal.attn')  # dtype and head dims from each call
    for D in (64, 128) if dtype == torch.bfloat16 else (64,):
        q, k, v = qkv(B=1, H=4, Hkv=4, Nq=190, Nk=190, D=D, dtype=dtype)
        r = attn(q, k, v)
        assert_close((r.out, r.lse), reference(q, k, v, causal), dtype)


def test_decode_shapes_empty_inputs_and_a_side_stream():
    attn = attnc.torch.load('stdlib/causal.attn', dtype=torch.bfloat16, head_dim=64)
    for Nq, Nk in ((1, 1337), (7, 4000)):  # decode: the split-KV path
        q, k, v = qkv(Nq=Nq, Nk=Nk)
        r = attn(q, k, v)
        assert_close((r.out, r.lse), reference(q, k, v, causal), torch.bfloat16)
    q, k, v = qkv(Nq=0, Nk=50)
    r = attn(q, k, v)
    assert r.out.shape == (2, 8, 0, 64) and r.lse.shape == (2, 8, 0)
    q, k, v = qkv(Nq=5, Nk=0)
    r = attn(q, k, v)  # no key at all: every row is empty
    assert (r.out == 0).all() and (r.lse == float('-inf')).all()
    q, k, v = qkv(Nq=500, Nk=500)
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        r = attn(q, k, v)
    torch.cuda.current_stream().wait_stream(side)
    assert_close((r.out, r.lse), reference(q, k, v, causal), torch.bfloat16)


def test_strided_bnhd_inputs_are_copied_to_bhnd():
    attn = attnc.torch.load('stdlib/document.attn', dtype=torch.bfloat16, head_dim=64)
    q, k, v = qkv(Nq=300, Nk=300, bnhd=True)
    assert not q.is_contiguous() and q.stride(-1) == 1
    ids = segments(300)
    r = attn(q, k, v, doc=ids)
    assert_close((r.out, r.lse), reference(q, k, v, document_mask(ids)), torch.bfloat16)
    assert torch.equal(r.out, attn(q.contiguous(), k.contiguous(), v.contiguous(), doc=ids).out)


def test_kv_views_are_read_in_place_through_strides(monkeypatch):
    """BNHD k/v views and slices of a preallocated cache (capacity > Nk) reach the kernel without
    a copy (K/V strides, attnc.layout.kv_strides): prefill (mma/wgmma engines) and decode."""
    from attnc import _ops

    copied = []
    readable = _ops._readable
    monkeypatch.setattr(_ops, '_readable', lambda t, a: copied.append(t.data_ptr()) or readable(t, a))
    attn = attnc.torch.load('stdlib/causal.attn', dtype=torch.bfloat16, head_dim=128)
    for Nq, Nk in ((300, 300), (1, 3000), (5, 1500)):
        q = qkv(Nq=Nq, Nk=Nk, D=128)[0]
        _, k, v = qkv(Nq=Nq, Nk=Nk, D=128, bnhd=True)
        cache_k, cache_v = (torch.randn(2, 2, Nk + 777, 128, device='cuda').to(torch.bfloat16) for _ in range(2))
        ck, cv = cache_k[:, :, :Nk], cache_v[:, :, :Nk]  # a preallocated cache, Nk tokens filled
        for kk, vv in ((k, v), (ck, cv)):
            copied.clear()
            r = attn(q, kk, vv)
            assert kk.data_ptr() not in copied and vv.data_ptr() not in copied
            assert_close((r.out, r.lse), reference(q, kk, vv, causal), torch.bfloat16)
            if Nq == Nk:  # prefill: the same kernel over the same values, bit for bit
                assert torch.equal(r.out, attn(q, kk.contiguous(), vv.contiguous()).out)
            # Decode combines its lane groups by shared-memory atomicAdd (cuda/decode.ts): the
            # order, so the last bits, vary from run to run; the reference check above covers it.


def test_other_layouts_agree_with_their_contiguous_copies():
    attn = attnc.torch.load('stdlib/causal.attn', dtype=torch.bfloat16, head_dim=64)
    q, k, v = qkv(Nq=300, Nk=300)
    want = attn(q, k, v)
    longer = qkv(Nq=400, Nk=400)[0]
    q_slice = longer[:, :, 50:350]  # a slice along tokens: not contiguous
    assert not q_slice.is_contiguous()
    assert torch.equal(attn(q_slice, k, v).out, attn(q_slice.contiguous(), k, v).out)
    ke, ve = k[:, :1].expand(2, 2, 300, 64), v[:, :1].expand(2, 2, 300, 64)  # stride 0 over kv heads
    assert ke.stride(1) == 0
    assert torch.equal(attn(q, ke, ve).out, attn(q, ke.contiguous(), ve.contiguous()).out)
    flat = torch.empty(q.numel() + 1, dtype=q.dtype, device='cuda')
    shifted = flat[1:].view_as(q)  # contiguous, but 2 bytes off the kernel's alignment
    shifted.copy_(q)
    assert shifted.is_contiguous() and shifted.data_ptr() % 16
    r = attn(shifted, k, v)
    assert torch.equal(r.out, want.out) and torch.equal(r.lse, want.lse)


def test_bnhd_views_under_torch_compile():
    attn = attnc.torch.load('stdlib/document.attn', dtype=torch.bfloat16, head_dim=64)
    q, k, v = qkv(Nq=200, Nk=200, bnhd=True)
    ids = segments(200)
    compiled = torch.compile(lambda q, k, v, ids: attn(q, k, v, doc=ids).out, fullgraph=True)
    eager = attn(q.contiguous(), k.contiguous(), v.contiguous(), doc=ids).out
    assert torch.equal(compiled(q, k, v, ids), eager)


def test_per_call_dtype_casts_and_keyword_inputs():
    attn = attnc.torch.load('stdlib/causal.attn', dtype=torch.bfloat16, head_dim=64)
    q, k, v = qkv(Nq=128, Nk=128, dtype=torch.float32)
    r = attn(q=q, k=k, v=v, dtype=torch.bfloat16)
    assert r.out.dtype == torch.bfloat16
    rounded = [t.to(torch.bfloat16) for t in (q, k, v)]
    assert_close((r.out, r.lse), reference(*rounded, causal), torch.bfloat16)
    with pytest.raises(attnc.ArgumentError, match="pass dtype='bf16' to cast them"):
        attn(q, k, v)
    with pytest.raises(attnc.ArgumentError, match="dtype='f16' asked of a kernel built for bf16"):
        attn(q, k, v, dtype='f16')
    lazy = attnc.torch.load('stdlib/causal.attn')  # dtype per call: the cast picks the build
    r = lazy(q, k, v, dtype='half')
    assert r.out.dtype == torch.float16
    assert_close((r.out, r.lse), reference(*(t.half() for t in (q, k, v)), causal), torch.float16)
    compiled = torch.compile(lambda q, k, v: attn(q, k, v, dtype=torch.bfloat16).out, fullgraph=True)
    assert torch.equal(compiled(q, k, v), attn(*rounded).out)


def test_source_text_and_lse_off():
    attn = attnc.torch.load(WINDOW_SOURCE, dtype=torch.float16, head_dim=64)
    q, k, v = qkv(Nq=100, Nk=400, dtype=torch.float16)
    r = attn(q, k, v, window=30)
    assert_close((r.out, r.lse), reference(q, k, v, lambda h, qp, kp: (qp >= kp) & (qp - kp < 30)), torch.float16)
    nolse = attnc.torch.load('stdlib/document.attn', dtype=torch.bfloat16, head_dim=64, lse=False)
    q, k, v = qkv(Nq=64, Nk=64)
    ids = segments(64)
    r = nolse(q, k, v, doc=ids)
    assert r.lse is None
    assert_close((r.out, None), reference(q, k, v, document_mask(ids)), torch.bfloat16)


def test_load_artifact():
    attn = attnc.torch.load_artifact(SOFTCAP_F32_DIR)
    q, k, v = qkv(Nq=77, Nk=200, dtype=torch.float32)
    r = attn(q, k, v, cap=8.0)
    assert_close((r.out, r.lse), reference(q, k, v, causal, score=lambda s, h, qp, kp: 8.0 * torch.tanh(s / 8.0)), torch.float32)


def test_routing_kernel_returns_indices():
    attn = attnc.torch.load('stdlib/nsa_select.attn', dtype=torch.bfloat16, head_dim=64)
    q, k, v = qkv(B=1, H=4, Hkv=2, Nq=512, Nk=1024)
    r = attn(q, k, v, top=4)
    assert r.indices.dtype == torch.int32 and r.indices.shape == (1, 2, 512, 4 + 1 + 2)
    idx = r.indices.long()
    assert ((idx >= -1) & (idx < 1024 // 64)).all()
    chosen = idx.masked_fill(idx < 0, 1 << 20)
    assert (chosen.diff(dim=-1) > 0).all(), 'selected blocks are ascending, -1 padded'
    group = torch.arange(4, device='cuda') // 2
    sel = idx[:, group]  # [B, H, Nq, K]: each query head reads its kv group's selection
    block = (torch.arange(1024, device='cuda') // 64).view(1, 1, 1, 1, -1)
    allowed = (sel[..., None] == block).any(3)
    ref = reference(q, k, v, lambda h, qp, kp: allowed[0] & (qp >= kp))
    assert_close((r.out, r.lse), ref, torch.bfloat16)


def test_torch_compile_fullgraph_matches_eager():
    attn = attnc.torch.load('stdlib/document.attn', dtype=torch.bfloat16, head_dim=64)
    q, k, v = qkv(Nq=200, Nk=200)
    ids = segments(200)

    def layer(q, k, v, ids):
        r = attn(q * 2, k, v, doc=ids)
        return r.out.float().sum(-1) + r.lse

    compiled = torch.compile(layer, fullgraph=True)
    lazy = attnc.torch.load('stdlib/causal.attn')  # dtype and dims per call: built inside the compiled graph's op
    out = torch.compile(lambda q, k, v: lazy(q, k, v).out, fullgraph=True)(*qkv(Nq=100, Nk=100, dtype=torch.float16))
    assert out.dtype == torch.float16 and out.isfinite().all()
    torch.testing.assert_close(compiled(q, k, v, ids), layer(q, k, v, ids), rtol=1e-5, atol=1e-5)
    q2, k2, v2 = qkv(Nq=300, Nk=310)  # new sizes: a recompile, still no graph break
    ids2 = segments(310)
    torch.testing.assert_close(compiled(q2, k2, v2, ids2), layer(q2, k2, v2, ids2), rtol=1e-5, atol=1e-5)


def test_the_op_is_a_registered_custom_op():
    attn = attnc.torch.load('stdlib/document.attn', dtype=torch.bfloat16, head_dim=64)
    assert str(attn.op).startswith('attnc.document_')
    q, k, v = qkv(Nq=64, Nk=64)
    ids = segments(64)
    torch.library.opcheck(attn.op, (q, k, v, [ids], [], [], None, None, None, None))


def test_grad_inputs_raise_unless_grad_is_off():
    attn = attnc.torch.load('stdlib/document.attn', dtype=torch.bfloat16, head_dim=64, lse=False)  # no lse: no backward
    q, k, v = qkv(B=1, H=4, Hkv=2, Nq=64, Nk=256)
    ids = segments(256)
    q.requires_grad_()
    with pytest.raises(attnc.NoBackwardError, match='document: q requires grad, and this kernel has no backward'):
        attn(q, k, v, doc=ids)
    with torch.no_grad():
        assert attn(q, k, v, doc=ids).out.shape == (1, 4, 64, 64)
    with torch.inference_mode():
        assert attn(q, k, v, doc=ids).out.shape == (1, 4, 64, 64)


def test_argument_errors_name_the_argument():
    attn = attnc.torch.load('stdlib/document.attn', dtype=torch.bfloat16, head_dim=64)
    q, k, v = qkv(Nq=64, Nk=64)
    ids = segments(64)
    cases = [
        (dict(doc=ids, dox=ids), "document: unknown argument 'dox'"),
        (dict(), 'document: missing tensor doc: i32 [Nk]'),
        (dict(doc=ids.long()), 'document: tensor doc must be i32, got int64'),
        (dict(doc=ids[:50]), 'document: tensor doc must have shape [Nk] = [64], got [50]'),
        (dict(doc=ids.cpu()), 'document: tensor doc is on cpu, q on cuda:0'),
    ]
    for named, message in cases:
        with pytest.raises(attnc.ArgumentError) as e:
            attn(q, k, v, **named)
        assert message in str(e.value)
    with pytest.raises(attnc.ArgumentError, match='built for bf16, q/k/v are f16'):
        attn(q.half(), k.half(), v.half(), doc=ids)
    with pytest.raises(attnc.ArgumentError, match='q must be on a CUDA device, got cpu'):
        attn(q.cpu(), k, v, doc=ids)
    with pytest.raises(attnc.ArgumentError, match='built for head dim 64, q/k have 128'):
        attn(*qkv(Nq=64, Nk=64, D=128), doc=ids)
    # head_dim=0 was read as "not given" and built for 64.
    with pytest.raises(attnc.BuildError, match='head_dim must be a positive int, got 0'):
        attnc.torch.load('stdlib/document.attn', dtype=torch.bfloat16, head_dim=0)


def test_cache_holds_the_built_library():
    cache = os.environ['ATTNC_CACHE']
    libs = os.listdir(os.path.join(cache, 'lib'))
    assert any(n.startswith('document-') and n.endswith('.so') for n in libs)
