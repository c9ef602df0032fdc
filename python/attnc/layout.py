"""How a call's tensors reach the kernel, without torch: which inputs are read as they are and which
are copied first, and the dtype a call runs in.

The kernels read q, k, v (and write out) as contiguous row-major BHND: [B, H, N, D] with element
strides (H*N*D, N*D, D, 1). Any other layout is accepted and copied once per call to contiguous
BHND (`.contiguous()`): a BNHD view (`x.view(B, N, H, D).transpose(1, 2)`), a slice along tokens,
an `expand`ed k/v, a last dim that is not contiguous. A contiguous BHND tensor is passed as it is,
unless its data does not start on the kernel's alignment (a view at an odd offset): then it is
cloned. Passing strides into the kernels instead is future work: each engine's row addressing of
q, k, v and out is spread over its templates (and wgmma-ws describes q/k/v to the TMA unit)."""
from .errors import ArgumentError
from .manifest import STORAGE_DTYPES

DTYPE_ALIASES = {
    'bf16': 'bf16',
    'bfloat16': 'bf16',
    'f16': 'f16',
    'float16': 'f16',
    'half': 'f16',
    'f32': 'f32',
    'float32': 'f32',
    'float': 'f32',
}


def is_row_major(shape, strides):
    """True when elements of this shape and these element strides are contiguous row-major, as
    torch's is_contiguous() decides it: a dim of size 1 may have any stride, an empty tensor is."""
    if any(size == 0 for size in shape):
        return True
    expected = 1
    for size, stride in reversed(list(zip(shape, strides))):
        if size != 1 and stride != expected:
            return False
        expected *= size
    return True


def copy_reason(shape, strides, data_ptr, alignment):
    """None when the kernel reads the tensor as it is; otherwise why it is copied first: 'layout'
    (not contiguous BHND: copied to it) or 'alignment' (contiguous, but its data starts off the
    kernel's alignment in bytes: cloned)."""
    if not is_row_major(shape, strides):
        return 'layout'
    if any(size == 0 for size in shape):
        return None
    if data_ptr % alignment:
        return 'alignment'
    return None


def dtype_name(dtype, what='dtype'):
    """'bf16', 'f16' or 'f32' for a dtype given by name ('bfloat16', 'half', ...) or as a
    torch.dtype (whose str is 'torch.bfloat16'); None stays None."""
    if dtype is None:
        return None
    name = DTYPE_ALIASES.get(str(dtype).replace('torch.', ''))
    if name not in STORAGE_DTYPES:
        raise ArgumentError(f'{what} {dtype!r}: attnc kernels run in torch.bfloat16, torch.float16 or torch.float32 (or None)')
    return name


def call_dtype(kernel, requested, built, inputs):
    """The dtype a call casts q, k, v to, or None to take them as they are.

    requested: the call's dtype= (a name, or None); built: the dtype the kernel was loaded for
    (None: built per call); inputs: the dtype names of q, k, v. With dtype= the inputs are cast to
    it (a copy, which rounds f32 inputs to bf16/f16), and out comes back in it."""
    if requested is None:
        return None
    if built is not None and requested != built:
        raise ArgumentError(
            f'{kernel}: dtype={requested!r} asked of a kernel built for {built} '
            '(pass dtype=None, or load with dtype=None to build per call dtype)'
        )
    return None if all(d == requested for d in inputs) else requested
