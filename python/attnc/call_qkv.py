"""q, k and v of a call over plain float K/V, checked against what the kernel was built for; and
TensorInfo, how every check sees a tensor (the torch layer describes its tensors, the pure tests
fakes). Messages name the kernel and the argument, and say what was expected and what came."""
from .errors import ArgumentError
from .manifest import I32_MAX, STORAGE_DTYPES

QKV_DIMS = {'q': '[B, H, Nq, D]', 'k': '[B, Hkv, Nk, D]', 'v': '[B, Hkv, Nk, Dv]'}


class TensorInfo:
    """What the checks need of a tensor: shape (tuple of ints), dtype name ('bf16', 'i32', or the
    framework's name for others), device (compared with ==), whether it is on a CUDA device."""

    def __init__(self, shape, dtype, device, is_cuda=True):
        self.shape, self.dtype, self.device, self.is_cuda = tuple(shape), dtype, device, is_cuda


def shape_text(shape):
    return '[' + ', '.join(str(d) for d in shape) + ']'


def check_qkv(name, infos, dtype=None, head_dim=None, value_dim=None):
    """Sizes {B, H, Hkv, Nq, Nk} and (dtype, D, Dv) of q, k, v; raises ArgumentError naming the
    offending tensor. dtype/head_dim/value_dim, when given, are what the kernel was built for."""
    for role in ('q', 'k', 'v'):
        info = infos[role]
        if info is None:
            raise ArgumentError(f'{name}: {role} must be a tensor {QKV_DIMS[role]}')
        if len(info.shape) != 4:
            raise ArgumentError(f'{name}: {role} must be 4-D {QKV_DIMS[role]}, got shape {shape_text(info.shape)}')
        if not info.is_cuda:
            raise ArgumentError(f'{name}: {role} must be on a CUDA device, got {info.device}')
    q, k, v = infos['q'], infos['k'], infos['v']
    for role, info in (('k', k), ('v', v)):
        if info.device != q.device:
            raise ArgumentError(f'{name}: {role} is on {info.device}, q on {q.device}; they must share a device')
        if info.dtype != q.dtype:
            raise ArgumentError(f'{name}: q, k and v must share a dtype: q is {q.dtype}, {role} is {info.dtype}')
    if q.dtype not in STORAGE_DTYPES:
        raise ArgumentError(f'{name}: q, k, v are {q.dtype}; attnc kernels take {", ".join(STORAGE_DTYPES)}')
    if dtype is not None and q.dtype != dtype:
        raise ArgumentError(
            f'{name}: this kernel was built for {dtype}, q/k/v are {q.dtype} '
            f"(pass dtype='{dtype}' to cast them, or load with dtype=None to build per call dtype)"
        )
    B, H, Nq, D = q.shape
    if k.shape[0] != B or v.shape[0] != B:
        raise ArgumentError(f'{name}: batch sizes differ: q {B}, k {k.shape[0]}, v {v.shape[0]}')
    if v.shape[1:3] != k.shape[1:3]:
        raise ArgumentError(f'{name}: k {shape_text(k.shape)} and v {shape_text(v.shape)} must agree on [B, Hkv, Nk]')
    Hkv, Nk = k.shape[1], k.shape[2]
    if k.shape[3] != D:
        raise ArgumentError(f'{name}: q and k head dims differ: q {D}, k {k.shape[3]}')
    if Hkv < 1 or H % Hkv != 0:
        raise ArgumentError(f'{name}: q heads H = {H} must be a multiple of k/v heads Hkv = {Hkv} (GQA)')
    Dv = v.shape[3]
    if D < 1 or Dv < 1:  # else the per-call build would name its own head_dim option, not q or v
        raise ArgumentError(f'{name}: q and k have head dim D = {D} and v has Dv = {Dv}; both must be >= 1')
    if head_dim is not None and D != head_dim:
        raise ArgumentError(f'{name}: this kernel was built for head dim {head_dim}, q/k have {D} (load with head_dim=None to build per call)')
    if value_dim is not None and Dv != value_dim:
        raise ArgumentError(f'{name}: this kernel was built for value dim {value_dim}, v has {Dv} (load with value_dim=None to build per call)')
    for size, value in (('B', B), ('H', H), ('Nq', Nq), ('Nk', Nk)):
        if value > I32_MAX:
            raise ArgumentError(f'{name}: {size} = {value} does not fit in int32')
    return dict(B=B, H=H, Hkv=Hkv, Nq=Nq, Nk=Nk), q.dtype, D, Dv
