"""How a call's tensors reach the kernel, without torch: which inputs are read as they are and which
are copied first, and the dtype a call runs in.

The kernels read q, k, v (and write out) as contiguous row-major BHND: [B, H, N, D] with element
strides (H*N*D, N*D, D, 1). Any other layout is accepted and copied once per call to contiguous
BHND (`.contiguous()`): a BNHD view (`x.view(B, N, H, D).transpose(1, 2)`), a slice along tokens,
an `expand`ed k/v, a last dim that is not contiguous. A contiguous BHND tensor is passed as it is,
unless its data does not start on the kernel's alignment (a view at an odd offset): then it is
cloned.

k and v are read in place in more layouts: kernels built with K/V strides (their manifest has the
`k_stride_b` .. `v_stride_n` fields, src/codegen/cuda/kv-rows.ts) take any layout whose last dim is
contiguous and whose other strides are non-negative multiples of the kernel's vector width, with
rows that do not overlap: a BNHD view, a slice of a preallocated cache along tokens (capacity >
Nk). k/v expanded over batches or heads (stride 0) are still copied. kv_strides says which strides to pass, or why
the tensor is copied after all. q and out are still contiguous BHND (their strides are future
work: each engine's q/out addressing is spread over its templates)."""
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


KV_STRIDE_FIELDS = {
    'k': ('k_stride_b', 'k_stride_h', 'k_stride_n'),
    'v': ('v_stride_b', 'v_stride_h', 'v_stride_n'),
}


def takes_kv_strides(field_names):
    """Whether a kernel's args struct (its field names) has the K/V stride fields."""
    names = set(field_names)
    return all(f in names for fields in KV_STRIDE_FIELDS.values() for f in fields)


def kv_strides(shape, strides, data_ptr, alignment, elem_bytes):
    """(stride_b, stride_h, stride_n) in elements for a [B, Hkv, Nk, W] k or v read in place, or
    (None, reason) with reason 'layout' (copy to contiguous BHND) or 'alignment' (clone).

    A dim of size 1 never moves, so its stride is replaced by the packed one (torch reports any
    stride there). The kernel's loads are alignment bytes wide: every stride must be a multiple of
    alignment / elem_bytes elements, and so must the data pointer be aligned."""
    if len(shape) != 4 or len(strides) != 4:
        return None, 'layout'
    B, Hkv, Nk, W = shape
    if any(size == 0 for size in shape):
        return (Hkv * Nk * W, Nk * W, W), None
    if W > 1 and strides[3] != 1:
        return None, 'layout'
    packed = (Hkv * Nk * W, Nk * W, W)
    picked = tuple(packed[i] if shape[i] == 1 else strides[i] for i in range(3))
    vec = max(1, alignment // elem_bytes)
    # Stride 0 (k/v expanded over batches or heads) is copied: the TMA unit's tensor maps (the
    # wgmma-ws engine) are not promised to take it.
    if any(s <= 0 or s % vec for s in picked):
        return None, 'layout'
    if Nk > 1 and picked[2] < W:
        return None, 'layout'  # rows would overlap: the launcher refuses a row stride below a row
    if data_ptr % alignment:
        return None, 'alignment'
    return picked, None
