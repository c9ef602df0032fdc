"""Autograd of attnc ops on the GPU: the compiled backward (f32 SIMT for f32 kernels, the
tensor-core default for bf16 ones, SIMT where asked) against the float64 torch
reference's own autograd, gradients of an f32 param (given as a tensor) and an f32 tensor,
torch.autograd.gradcheck (f32, see python/README.md for the tolerances), torch.compile(fullgraph=True)
over forward and backward, a routing kernel's gradients through its selection (held constant), and
the kernels that still have no backward."""
import pytest
import torch
from builds import SOFTCAP_F32_DIR
from conftest import causal, document_mask, qkv, reference, segments

import attnc
import attnc.torch

GRAD_TOL = {torch.float32: 1e-4, torch.bfloat16: 3e-2}  # relative L2 error of each gradient


def leaves(*ts):
    return [t.detach().clone().requires_grad_() for t in ts]


def rel_err(got, want):
    return ((got.double() - want).norm() / want.norm().clamp_min(1e-30)).item()


def check_grads(attn_fn, ref_fn, inputs, dtype):
    """attn_fn(*leaves) -> out and ref_fn(*float64 leaves) -> out: (out * g).sum()'s gradients agree."""
    ours = leaves(*inputs)
    out = attn_fn(*ours)
    g = torch.randn_like(out, dtype=torch.float32).to(out.dtype)
    (out.float() * g.float()).sum().backward()
    refs = [t.detach().double().requires_grad_() for t in inputs]
    (ref_fn(*refs) * g.double()).sum().backward()
    for i, (a, r) in enumerate(zip(ours, refs)):
        assert a.grad is not None and a.grad.dtype == a.dtype and a.grad.shape == a.shape
        err = rel_err(a.grad, r.grad)
        assert err < GRAD_TOL[dtype], f'input {i}: gradient relative L2 error {err:.2e} >= {GRAD_TOL[dtype]}'
    return ours


def test_causal_f32_gqa_gradients_match_the_reference():
    attn = attnc.torch.load('stdlib/causal.attn', dtype=torch.float32, head_dim=64)
    q, k, v = qkv(B=2, H=4, Hkv=2, Nq=100, Nk=150, dtype=torch.float32)
    check_grads(lambda q, k, v: attn(q, k, v).out, lambda q, k, v: reference(q, k, v, causal)[0], (q, k, v), torch.float32)
    check_grads(  # offsets and scale reach the backward as they reached the forward
        lambda q, k, v: attn(q, k, v, q_offset=70, k_offset=3, scale=0.2).out,
        lambda q, k, v: reference(q, k, v, causal, q_offset=70, k_offset=3, scale=0.2)[0],
        (q, k, v),
        torch.float32,
    )


def test_document_bf16_gradients_with_a_summarized_tensor():
    attn = attnc.torch.load('stdlib/document.attn', dtype=torch.bfloat16, head_dim=64)
    q, k, v = qkv(B=1, H=4, Hkv=2, Nq=180, Nk=180)
    ids = segments(180)
    ours = check_grads(
        lambda q, k, v: attn(q, k, v, doc=ids).out, lambda q, k, v: reference(q, k, v, document_mask(ids))[0], (q, k, v), torch.bfloat16
    )
    assert ours[0].grad.dtype == torch.bfloat16


def test_f32_param_and_tensor_gradients():
    softcap = attnc.torch.load_artifact(SOFTCAP_F32_DIR)
    q, k, v = qkv(B=1, H=2, Hkv=2, Nq=40, Nk=60, dtype=torch.float32)
    cap = torch.tensor(3.0, device='cuda', requires_grad=True)
    (softcap(q, k, v, cap=cap).out.sum()).backward()
    cap64 = torch.tensor(3.0, device='cuda', dtype=torch.float64, requires_grad=True)
    reference(q, k, v, causal, score=lambda s, h, qp, kp: cap64 * torch.tanh(s / cap64))[0].sum().backward()
    assert abs(cap.grad.item() - cap64.grad.item()) <= 1e-4 * max(1.0, abs(cap64.grad.item()))

    sink = attnc.torch.load('stdlib/sink_calibration.attn', dtype=torch.bfloat16, head_dim=64)
    q, k, v = qkv(B=1, H=8, Hkv=2, Nq=90, Nk=120)
    gain = (0.5 + torch.rand(8, device='cuda')).requires_grad_()
    sink(q, k, v, gain=gain, sinks=3).out.float().sum().backward()
    gain64 = gain.detach().double().requires_grad_()
    score = lambda s, h, qp, kp: torch.where(kp < 3, s + torch.log(gain64[h]), s)  # noqa: E731
    reference(q, k, v, causal, score=score)[0].sum().backward()
    assert rel_err(gain.grad, gain64.grad) < 3e-2


def test_gradcheck_f32():
    # The kernels are f32 at most: finite differences in f32 with eps 1e-3 (python/README.md says why).
    softcap = attnc.torch.load_artifact(SOFTCAP_F32_DIR)
    q, k, v = leaves(*qkv(B=1, H=2, Hkv=1, Nq=5, Nk=7, dtype=torch.float32))
    cap = torch.tensor(2.0, device='cuda', requires_grad=True)
    with pytest.warns(UserWarning, match='double precision'):
        assert torch.autograd.gradcheck(lambda q, k, v, cap: softcap(q, k, v, cap=cap).out, (q, k, v, cap), eps=1e-3, atol=5e-3, rtol=5e-3)


def test_torch_compile_fullgraph_forward_and_backward():
    # SIMT: the deterministic backward (bf16's default, wgmma on the H200, adds dq by atomics).
    attn = attnc.torch.load('stdlib/document.attn', dtype=torch.bfloat16, head_dim=64, backward_engine='simt')
    q, k, v = qkv(B=1, H=4, Hkv=2, Nq=128, Nk=128)
    ids = segments(128)

    def loss(q, k, v):
        return attn(q * 2, k, v, doc=ids).out.float().square().sum()

    eager, compiled = leaves(q, k, v), leaves(q, k, v)
    loss(*eager).backward()
    torch.compile(loss, fullgraph=True)(*compiled).backward()
    for a, b in zip(eager, compiled):  # the backward is deterministic: same kernels, same bits
        torch.testing.assert_close(a.grad, b.grad, rtol=0, atol=0)


def test_lse_gradients_match_the_reference():
    # A loss on lse as well as out (merging partial attentions, context-parallel rings): the
    # backward takes dlse (∂lse/∂score′ = P), SIMT (f32) and the tensor-core default (bf16).
    for dtype in (torch.float32, torch.bfloat16):
        attn = attnc.torch.load('stdlib/causal.attn', dtype=dtype, head_dim=64)
        q, k, v = qkv(B=1, H=4, Hkv=2, Nq=90, Nk=120, dtype=dtype)
        ours = leaves(q, k, v)
        r = attn(*ours)
        g, h = torch.randn_like(r.out, dtype=torch.float32), torch.randn_like(r.lse)
        ((r.out.float() * g).sum() + (r.lse * h).sum()).backward()
        refs = [t.detach().double().requires_grad_() for t in (q, k, v)]
        out, lse = reference(*refs, causal)
        ((out * g.double()).sum() + (lse * h.double()).sum()).backward()
        for i, (a, b) in enumerate(zip(ours, refs)):
            err = rel_err(a.grad, b.grad)
            assert err < GRAD_TOL[dtype], f'{dtype} input {i}: gradient relative L2 error {err:.2e}'


def test_routing_gradients_through_the_kernels_own_selection():
    # nsa_select (bf16; SIMT, the one engine that takes routing): the selection is a constant of the
    # backward, so the float64 reference attends exactly the blocks the kernel's indices name.
    attn = attnc.torch.load('stdlib/nsa_select.attn', dtype=torch.bfloat16, head_dim=64)
    q, k, v = qkv(B=1, H=4, Hkv=2, Nq=128, Nk=512)
    ours = leaves(q, k, v)
    r = attn(*ours, top=2)
    B, H, Nq, Nk, Hkv = q.shape[0], q.shape[1], q.shape[2], k.shape[2], k.shape[1]
    assert r.indices.shape == (B, Hkv, Nq, 2 + 1 + 2)  # vote groups; top + first(1) + local(2)
    blocks = torch.arange(Nk, device='cuda') // 64  # k_offset 0: key position = row
    member = (r.indices.long().unsqueeze(-1) == blocks.view(1, 1, 1, 1, Nk)).any(dim=3)
    member = member.repeat_interleave(H // Hkv, dim=1)  # [B, H, Nq, Nk]
    qp, kp = (torch.arange(Nq, device='cuda') + Nk - Nq).view(Nq, 1), torch.arange(Nk, device='cuda').view(1, Nk)
    assert (causal(None, qp, kp) & ~member).any(), 'the selection drops some allowed keys (else the test could not fail)'
    g = torch.randn_like(r.out, dtype=torch.float32)
    (r.out.float() * g).sum().backward()
    refs = [t.detach().double().requires_grad_() for t in (q, k, v)]
    out, _ = reference(*refs, lambda h, qpos, kpos: member & causal(h, qpos, kpos))
    (out * g.double()).sum().backward()
    for i, (a, b) in enumerate(zip(ours, refs)):
        assert a.grad is not None and a.grad.dtype == torch.bfloat16
        err = rel_err(a.grad, b.grad)
        assert err < GRAD_TOL[torch.bfloat16], f'input {i}: gradient relative L2 error {err:.2e}'


def test_kernels_without_a_backward_raise():
    q, k, v = qkv(B=1, H=4, Hkv=2, Nq=128, Nk=256)
    nolse = attnc.torch.load('stdlib/document.attn', dtype=torch.bfloat16, head_dim=64, lse=False)
    with pytest.raises(attnc.NoBackwardError, match='document: q requires grad.*lse'):
        nolse(q.requires_grad_(), k, v, doc=segments(256))
