"""Checking one call's arguments against a kernel's manifest, without torch: q/k/v (call_qkv; over
quantized or paged caches, call_caches), params and tensors by keyword, scalars and out=. Every
message names the kernel and the argument, and says what was expected and what came. Tensors are
seen through TensorInfo, so the torch layer describes its tensors and the pure tests describe
fakes."""
import ctypes
import math

from .call_caches import check_paged, check_paged_quant, check_quant_qkv
from .call_qkv import TensorInfo, check_qkv, shape_text
from .errors import ArgumentError
from .manifest import I32_MAX, I32_MIN

__all__ = [
    'BoundCall', 'TensorInfo', 'bind_call', 'check_interface', 'check_out', 'check_param', 'check_scalars',
    'check_tensor', 'is_f32_number',
]


class BoundCall:
    """A checked call: sizes, the build options it needs, and params and tensors in manifest order."""

    def __init__(self, sizes, dtype, head_dim, value_dim, params, tensor_names):
        self.sizes, self.dtype, self.head_dim, self.value_dim = sizes, dtype, head_dim, value_dim
        self.params = params  # name -> value, defaults filled in
        self.tensor_names = tensor_names

    def int_params(self, manifest):
        return [int(self.params[p.name]) for p in manifest.params if not p.is_float]

    def float_params(self, manifest):
        return [float(self.params[p.name]) for p in manifest.params if p.is_float]


def is_f32_number(value):
    """A number that stays finite when rounded to f32, as the runtime's paramProblem and checkScale
    decide it (src/runtime/params.ts: Number.isFinite(Math.fround(x))): NaN, ±inf and values that
    round to ±inf (1e39) would reach the kernel as non-finite words."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(ctypes.c_float(value).value)
    except OverflowError:  # an int beyond a double's range
        return False


def check_param(name, param, value):
    where = f'{name}: param {param.name}'
    if param.dtype == 'i32':
        if isinstance(value, bool) or not isinstance(value, int):
            raise ArgumentError(f'{where} is i32: expected an int, got {type(value).__name__} {value!r}')
        if not I32_MIN <= value <= I32_MAX:
            raise ArgumentError(f'{where} is i32: {value} is outside [{I32_MIN}, {I32_MAX}]')
    elif param.dtype == 'bool':
        if not isinstance(value, bool):
            raise ArgumentError(f'{where} is bool: expected True or False, got {type(value).__name__} {value!r}')
    elif not is_f32_number(value):
        raise ArgumentError(f'{where} is f32: expected a finite number within f32 range (|x| < 3.4028235e38), got {type(value).__name__} {value!r}')


def check_scalars(name, q_offset, k_offset, scale):
    """q_offset and k_offset: None or an int in the i32 range; scale: None or a number that stays
    finite in f32."""
    for what, value in (('q_offset', q_offset), ('k_offset', k_offset)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or not I32_MIN <= value <= I32_MAX):
            raise ArgumentError(f'{name}: {what} must be an int in the i32 range, got {value!r}')
    if scale is not None and not is_f32_number(scale):
        raise ArgumentError(f'{name}: scale must be a finite number within f32 range, got {type(scale).__name__} {scale!r}')


def check_tensor(name, slot, info, q_device, sizes, params):
    where = f'{name}: tensor {slot.name}'
    if info is None:
        raise ArgumentError(f'{where} must be a tensor {slot.describe()}')
    if info.dtype != slot.dtype:
        raise ArgumentError(f'{where} must be {slot.dtype}, got {info.dtype}')
    if info.device != q_device:
        raise ArgumentError(f'{where} is on {info.device}, q on {q_device}; they must share a device')
    want = slot.shape(sizes, params)
    if info.shape != want:
        dims = ', '.join(slot.dim_names())
        raise ArgumentError(f'{where} must have shape [{dims}] = {shape_text(want)}, got {shape_text(info.shape)}')


def check_out(name, info, sizes, dtype, value_dim, q_device):
    """out= of a call: a tensor [B, H, Nq, Dv] of q's dtype on q's device (its layout is checked
    where its strides are known: attnc.layout.qo_strides)."""
    if info is None:
        raise ArgumentError(f'{name}: out must be a tensor [B, H, Nq, Dv] (or None for a fresh one)')
    want = (sizes['B'], sizes['H'], sizes['Nq'], value_dim)
    if info.shape != want:
        raise ArgumentError(f'{name}: out must have shape [B, H, Nq, Dv] = {shape_text(want)}, got {shape_text(info.shape)}')
    if info.dtype != dtype:
        raise ArgumentError(f'{name}: out must be {dtype} like q, got {info.dtype}')
    if info.device != q_device:
        raise ArgumentError(f'{name}: out is on {info.device}, q on {q_device}; they must share a device')


CALL_KEYWORDS = ('q', 'k', 'v', 'q_offset', 'k_offset', 'scale', 'dtype', 'layout', 'out', 'block_table', 'kv_len')


def check_interface(manifest):
    """Refuses a kernel whose param or tensor has the name of a call argument (q, scale, dtype...):
    attn(..., dtype=x) could not reach it."""
    names = [p.name for p in manifest.params] + [t.name for t in manifest.tensors]
    cache_names = {t.field for t in manifest.cache_keywords()}
    clash = [n for n in names if n in CALL_KEYWORDS or n in cache_names]
    if clash:
        taken = ', '.join(CALL_KEYWORDS + tuple(sorted(cache_names)))
        raise ArgumentError(
            f'{manifest.name}: {", ".join(clash)} would be passed by keyword, but attn() takes '
            f'{taken} itself; rename it in the .attn source'
        )


def bind_call(manifest, infos, named, describe, dtype=None, head_dim=None, value_dim=None, block_table=None, kv_len=None):
    """Checks q/k/v (infos: role -> TensorInfo or None) and the keyword arguments `named` (params
    and tensors; describe(value) gives a tensor's TensorInfo or None for non-tensors); for a paged
    kernel also block_table (a TensorInfo) and kv_len (check_paged)."""
    name = manifest.name
    max_pages = None
    if manifest.caches and manifest.page_size is not None:
        sizes, call_dtype, D, Dv, max_pages = check_paged_quant(manifest, infos, named, describe, block_table, kv_len, dtype, head_dim)
    elif manifest.caches:
        if block_table is not None or kv_len is not None:
            raise ArgumentError(f'{name}: block_table= and kv_len= are for kernels over a paged cache; this one reads quantized k and v as they are')
        sizes, call_dtype, D, Dv = check_quant_qkv(manifest, infos, named, describe, dtype, head_dim)
    elif manifest.page_size is not None:
        sizes, call_dtype, D, Dv, max_pages = check_paged(name, manifest.page_size, infos, block_table, kv_len, dtype, head_dim, value_dim)
    else:
        if block_table is not None or kv_len is not None:
            raise ArgumentError(f'{name}: block_table= and kv_len= are for kernels over a paged cache (`cache paged P`); this one reads k and v as they are')
        sizes, call_dtype, D, Dv = check_qkv(name, infos, dtype, head_dim, value_dim)
    known = [p.name for p in manifest.params] + [t.name for t in manifest.tensors] + [t.field for t in manifest.cache_keywords()]
    for key in named:
        if key not in known:
            takes = '; '.join(manifest.interface_summary()) or 'no params or tensors'
            raise ArgumentError(f'{name}: unknown argument {key!r} (this kernel takes {takes})')
    params = {}
    for p in manifest.params:
        value = named.get(p.name)
        if value is None:  # left out or None: the default (None said "no default" of one that has it)
            value = p.default
        if value is None:
            raise ArgumentError(f'{name}: param {p.name} ({p.dtype}) has no default; pass {p.name}=...')
        check_param(name, p, value)
        params[p.name] = value
    for slot in manifest.tensors:
        if slot.name not in named:
            raise ArgumentError(f'{name}: missing tensor {slot.name}: {slot.describe()}; pass {slot.name}=...')
        check_tensor(name, slot, describe(named[slot.name]), infos['q'].device, sizes, params)
    bound = BoundCall(sizes, call_dtype, D, Dv, params, [t.name for t in manifest.tensors])
    bound.max_pages = max_pages
    bound.cache_names = [t.field for t in manifest.cache_keywords()]  # keyword tensors, manifest order
    return bound
