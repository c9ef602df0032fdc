"""GPU tests of attnc.torch (run by run.sh on a CUDA machine; CI does not collect them)."""
import math

import pytest
import torch

TOL = {torch.float32: 1e-4, torch.float16: 3e-3, torch.bfloat16: 2e-2}  # relative L2 error of out
LSE_TOL = 1e-3  # max abs error of lse (computed in f32 for every storage dtype)


@pytest.fixture(autouse=True)
def seeded():
    torch.manual_seed(0)


def qkv(B=2, H=8, Hkv=2, Nq=300, Nk=300, D=64, Dv=None, dtype=torch.bfloat16, bnhd=False):
    """Random q, k, v; bnhd=True gives [B, H, N, D] views of [B, N, H, D] storage (transposed)."""
    shapes = [(B, H, Nq, D), (B, Hkv, Nk, D), (B, Hkv, Nk, Dv or D)]
    if bnhd:
        return [torch.randn(b, n, h, d, device='cuda').to(dtype).transpose(1, 2) for b, h, n, d in shapes]
    return [torch.randn(*s, device='cuda').to(dtype) for s in shapes]


def reference(q, k, v, mask, score=None, q_offset=None, k_offset=0, scale=None):
    """Dense float64 attention of the (rounded) inputs: mask(h, qpos, kpos) -> bool, score(s, h,
    qpos, kpos) -> s; rows with no allowed key give out 0 and lse -inf."""
    B, H, Nq, D = q.shape
    Hkv, Nk = k.shape[1], k.shape[2]
    q_offset = Nk - Nq if q_offset is None else q_offset
    scale = float(torch.tensor(1 / math.sqrt(D), dtype=torch.float32)) if scale is None else scale
    kk, vv = (x.double().repeat_interleave(H // Hkv, dim=1) for x in (k, v))
    s = scale * (q.double() @ kk.transpose(-1, -2))
    h = torch.arange(H, device=q.device).view(H, 1, 1)
    qp = (torch.arange(Nq, device=q.device) + q_offset).view(Nq, 1)
    kp = (torch.arange(Nk, device=q.device) + k_offset).view(1, Nk)
    if score is not None:
        s = score(s, h, qp, kp)
    s = s.masked_fill(~mask(h, qp, kp).expand(B, H, Nq, Nk), float('-inf'))
    lse = torch.logsumexp(s, dim=-1)
    return torch.nan_to_num(torch.exp(s - lse[..., None]), nan=0.0) @ vv, lse


def assert_close(result, ref, dtype):
    out, lse = result
    ref_out, ref_lse = ref
    assert out.shape == ref_out.shape and out.dtype == dtype
    rel = ((out.double() - ref_out).norm() / ref_out.norm().clamp_min(1e-30)).item()
    assert rel < TOL[dtype], f'out relative L2 error {rel:.2e} >= {TOL[dtype]}'
    if lse is not None:
        finite = torch.isfinite(ref_lse)
        assert torch.equal(torch.isfinite(lse), finite), 'lse is -inf exactly where a row has no allowed key'
        if finite.any():
            err = (lse.double()[finite] - ref_lse[finite]).abs().max().item()
            assert err < LSE_TOL, f'lse max abs error {err:.2e}'


def lookup(t, pos):
    """t[pos], positions outside t reading 0 (the language's rule)."""
    ok = (pos >= 0) & (pos < t.numel())
    return torch.where(ok, t[pos.clamp(0, t.numel() - 1)], torch.zeros((), dtype=t.dtype, device=t.device))


def segments(n, lo=20, hi=200):
    ids, doc = [], 0
    while len(ids) < n:
        ids += [doc] * int(torch.randint(lo, hi, (1,)))
        doc += 1
    return torch.tensor(ids[:n], dtype=torch.int32, device='cuda')


def causal(h, q, k):
    return q >= k


def document_mask(ids):
    return lambda h, q, k: (lookup(ids, q) == lookup(ids, k)) & (q >= k)
