"""Autograd of 16-bit attnc ops on the tensor-core backwards (the CLI's default for f16/bf16 is
wgmma on sm_90a, mma.sync elsewhere or when asked): dq, dk, dv against the float64 torch reference's autograd at
D 64 and 128 with GQA, offsets and a scale, a float param's and a float tensor's gradients (atomics),
and torch.compile(fullgraph=True) over forward and backward (dq by f32 atomics: equal within
rounding, not bit for bit)."""
import pytest
import torch
from conftest import causal, qkv, reference
from test_autograd import check_grads, leaves, rel_err

import attnc
import attnc.torch

ENGINES = [None, 'mma']  # None: the default, wgmma on the H200 (sm_90a)


@pytest.mark.parametrize('engine', ENGINES)
@pytest.mark.parametrize('D', [64, 128])
def test_causal_bf16_gqa_gradients_match_the_reference(engine, D):
    attn = attnc.torch.load('stdlib/causal.attn', dtype=torch.bfloat16, head_dim=D, backward_engine=engine)
    assert attn.manifest.backward.engine == (engine or 'wgmma')
    q, k, v = qkv(B=2, H=4, Hkv=2, Nq=200, Nk=330, D=D)
    check_grads(lambda q, k, v: attn(q, k, v).out, lambda q, k, v: reference(q, k, v, causal)[0], (q, k, v), torch.bfloat16)
    check_grads(  # offsets and scale reach the backward as they reached the forward
        lambda q, k, v: attn(q, k, v, q_offset=130, k_offset=3, scale=0.1).out,
        lambda q, k, v: reference(q, k, v, causal, q_offset=130, k_offset=3, scale=0.1)[0],
        (q, k, v),
        torch.bfloat16,
    )


@pytest.mark.parametrize('engine', ENGINES)
def test_softcap_param_gradient(engine):
    softcap = attnc.torch.load('stdlib/softcap.attn', dtype=torch.bfloat16, head_dim=128, backward_engine=engine)
    q, k, v = qkv(B=1, H=4, Hkv=4, Nq=150, Nk=150, D=128)
    cap = torch.tensor(5.0, device='cuda', requires_grad=True)
    ours = leaves(q, k, v)
    out = softcap(*ours, cap=cap).out
    g = torch.randn_like(out)
    (out.float() * g.float()).sum().backward()
    cap64 = torch.tensor(5.0, device='cuda', dtype=torch.float64, requires_grad=True)
    refs = [t.detach().double().requires_grad_() for t in (q, k, v)]
    ref = reference(*refs, causal, score=lambda s, h, qp, kp: cap64 * torch.tanh(s / cap64))[0]
    (ref * g.double()).sum().backward()
    for a, r in zip(ours, refs):
        assert rel_err(a.grad, r.grad) < 3e-2
    assert abs(cap.grad.item() - cap64.grad.item()) <= 3e-2 * max(1.0, abs(cap64.grad.item()))


def test_sink_gain_tensor_gradient_on_the_default_engine():
    sink = attnc.torch.load('stdlib/sink_calibration.attn', dtype=torch.bfloat16, head_dim=64)
    assert sink.manifest.backward.engine == 'wgmma'
    q, k, v = qkv(B=1, H=8, Hkv=2, Nq=90, Nk=120)
    gain = (0.5 + torch.rand(8, device='cuda')).requires_grad_()
    sink(q, k, v, gain=gain, sinks=3).out.float().sum().backward()
    gain64 = gain.detach().double().requires_grad_()
    score = lambda s, h, qp, kp: torch.where(kp < 3, s + torch.log(gain64[h]), s)  # noqa: E731
    reference(q, k, v, causal, score=score)[0].sum().backward()
    assert rel_err(gain.grad, gain64.grad) < 3e-2


@pytest.mark.parametrize('engine', ENGINES)
def test_torch_compile_fullgraph_on_the_tensor_core_backward(engine):
    attn = attnc.torch.load('stdlib/causal.attn', dtype=torch.bfloat16, head_dim=128, backward_engine=engine)
    q, k, v = qkv(B=1, H=4, Hkv=2, Nq=256, Nk=256, D=128)

    def loss(q, k, v):
        return attn(q * 2, k, v).out.float().square().sum()

    eager, compiled = leaves(q, k, v), leaves(q, k, v)
    loss(*eager).backward()
    torch.compile(loss, fullgraph=True)(*compiled).backward()
    for a, b in zip(eager, compiled):  # dq adds in any order: equal within a few bf16 ulps
        assert rel_err(b.grad, a.grad.double()) < 1e-2
