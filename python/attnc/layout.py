"""How a call's tensors reach the kernel, without torch: which inputs are read as they are and which
are copied first, the layout out is written in, and the dtype a call runs in.

Kernels built with q/out strides (their manifest has the `q_stride_b` .. `out_stride_n` fields,
src/codegen/cuda/qo-rows.ts) read q and write out in any layout whose last dim is contiguous and
whose other strides are positive multiples of the kernel's vector width (qo_strides): a BNHD view
(`x.view(B, N, H, D).transpose(1, 2)`), a slice along tokens, padded rows; out's rows must not
overlap. k and v likewise through the K/V strides (`k_stride_b` .. `v_stride_n`, kv-rows.ts),
which also take a preallocated cache of capacity > Nk. Other layouts (an `expand`ed tensor, a
strided last dim) are copied once per call to contiguous BHND (`.contiguous()`), and a tensor whose
data does not start on the kernel's alignment is cloned. Kernels built before the strides read
contiguous BHND only. lse is always a fresh contiguous [B, H, Nq] f32."""
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


QO_STRIDE_FIELDS = {
    'q': ('q_stride_b', 'q_stride_h', 'q_stride_n'),
    'out': ('out_stride_b', 'out_stride_h', 'out_stride_n'),
}
OUT_LAYOUTS = ('bhnd', 'bnhd')


def takes_qo_strides(field_names):
    """Whether a kernel's args struct has the q/out stride fields (src/codegen/cuda/qo-rows.ts)."""
    names = set(field_names)
    return all(f in names for fields in QO_STRIDE_FIELDS.values() for f in fields)


def rows_disjoint(shape, strides):
    """Whether the rows of a [B, H, N, W] tensor with these (b, h, n) element strides never share an
    element (the launcher's rows_disjoint): dims of size > 1 by stride, each at least the extent
    of the smaller ones, a row to begin with."""
    B, H, N, W = shape
    extent = W
    for stride, size in sorted(zip(strides, (B, H, N))):
        if size <= 1:
            continue
        if stride < extent:
            return False
        extent += stride * (size - 1)
    return True


def qo_strides(role, shape, strides, data_ptr, alignment, elem_bytes):
    """(stride_b, stride_h, stride_n) in elements for q (read) or out (written) in place, or
    (None, reason): 'layout' (q: copy to contiguous BHND; out: refused), 'alignment'.

    As kv_strides: the last dim contiguous, strides positive multiples of alignment / elem_bytes
    (the TMA unit and the vector loads), the data pointer aligned; out's rows must not overlap."""
    if len(shape) != 4 or len(strides) != 4:
        return None, 'layout'
    B, H, N, W = shape
    packed = (H * N * W, N * W, W)
    if any(size == 0 for size in shape):
        return packed, None
    if W > 1 and strides[3] != 1:
        return None, 'layout'
    picked = tuple(packed[i] if shape[i] == 1 else strides[i] for i in range(3))
    vec = max(1, alignment // elem_bytes)
    if any(s <= 0 or s % vec for s in picked):
        return None, 'layout'
    if role == 'out' and not rows_disjoint(shape, picked):
        return None, 'layout'
    if data_ptr % alignment:
        return None, 'alignment'
    return picked, None


def out_layout(kernel, layout):
    """The layout name of a call's fresh out: 'bhnd' (default, contiguous [B, H, Nq, Dv]) or 'bnhd'
    (a [B, H, Nq, Dv] view of contiguous [B, Nq, H, Dv] storage, as a BNHD model wants it)."""
    name = 'bhnd' if layout is None else str(layout).lower()
    if name not in OUT_LAYOUTS:
        raise ArgumentError(f"{kernel}: layout={layout!r}: out comes back as 'bhnd' or 'bnhd'")
    return name
