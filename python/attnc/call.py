"""Checking one call's arguments against a kernel's manifest, without torch: q/k/v shapes, dtypes
and devices, params and tensors by keyword. Every message names the kernel and the argument, and
says what was expected and what came. Tensors are seen through TensorInfo, so the torch layer
describes its tensors and the pure tests describe fakes."""
import ctypes
import math

from .errors import ArgumentError
from .manifest import I32_MAX, I32_MIN, STORAGE_DTYPES

QKV_DIMS = {'q': '[B, H, Nq, D]', 'k': '[B, Hkv, Nk, D]', 'v': '[B, Hkv, Nk, Dv]'}


class TensorInfo:
    """What the checks need of a tensor: shape (tuple of ints), dtype name ('bf16', 'i32', or the
    framework's name for others), device (compared with ==), whether it is on a CUDA device."""

    def __init__(self, shape, dtype, device, is_cuda=True):
        self.shape, self.dtype, self.device, self.is_cuda = tuple(shape), dtype, device, is_cuda


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


def _shape_text(shape):
    return '[' + ', '.join(str(d) for d in shape) + ']'


def check_qkv(name, infos, dtype=None, head_dim=None, value_dim=None):
    """Sizes {B, H, Hkv, Nq, Nk} and (dtype, D, Dv) of q, k, v; raises ArgumentError naming the
    offending tensor. dtype/head_dim/value_dim, when given, are what the kernel was built for."""
    for role in ('q', 'k', 'v'):
        info = infos[role]
        if info is None:
            raise ArgumentError(f'{name}: {role} must be a tensor {QKV_DIMS[role]}')
        if len(info.shape) != 4:
            raise ArgumentError(f'{name}: {role} must be 4-D {QKV_DIMS[role]}, got shape {_shape_text(info.shape)}')
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
        raise ArgumentError(f'{name}: k {_shape_text(k.shape)} and v {_shape_text(v.shape)} must agree on [B, Hkv, Nk]')
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


CODE_DTYPES = ('i32', 'u32')  # quantized codes: 32-bit words, int32 or uint32 tensors of the same bits


def _check_cache_tensor(name, what, spec_tensor, info, q_device, sizes, dtypes, pool=None):
    """One tensor of a quantized cache; pool ({pages, Hkv}: a paged call) checks a tensor that
    pages against its pool shape (the manifest's pagedShape), the others against their shape."""
    where = f'{name}: {what}'
    paged = pool is not None and spec_tensor.paged_exprs is not None
    if info is None:
        kind = 'page pool' if paged else 'tensor'
        raise ArgumentError(f'{where} must be a {kind} {spec_tensor.describe(paged)} (quantized cache {spec_tensor.part})')
    if info.dtype not in dtypes:
        raise ArgumentError(f'{where} must be {" or ".join(dtypes)} (quantized cache {spec_tensor.part}), got {info.dtype}')
    if info.device != q_device:
        raise ArgumentError(f'{where} is on {info.device}, q on {q_device}; they must share a device')
    want = spec_tensor.paged_shape(pool) if paged else spec_tensor.shape(sizes)
    if info.shape != want:
        dims = ', '.join(spec_tensor.paged_exprs if paged else spec_tensor.shape_exprs)
        kind = ' (a page pool)' if paged else ' (per sequence: not paged)' if pool is not None else ''
        raise ArgumentError(f'{where} must have shape [{dims}] = {_shape_text(want)}{kind}, got {_shape_text(info.shape)}')


def check_quant_qkv(manifest, infos, named, describe, dtype=None, head_dim=None):
    """check_qkv for a kernel over quantized K/V (the manifest's `caches`): q [B, H, Nq, D] as
    usual; a quantized k or v is its codes (int32 or uint32 words, [B, Hkv, Nk, words]), its other
    tensors come by keyword (k_scale=, v_zero=, ...: manifest.cache_keywords()); a float k or v
    is [B, Hkv, Nk, D or Dv] in q's dtype. D and Dv are the manifest's (the codes do not show
    them). Returns (sizes, dtype, D, Dv)."""
    name = manifest.name
    what = lambda role: f'the codes of a quantized cache, {manifest.caches[role].codes.describe()}'  # noqa: E731
    q = _check_quant_qkv_tensors(manifest, infos, dtype, what)
    B, H, Nq, D = q.shape
    k, v = infos['k'], infos['v']
    if k.shape[:3] != v.shape[:3]:
        raise ArgumentError(f'{name}: k {_shape_text(k.shape)} and v {_shape_text(v.shape)} must agree on [B, Hkv, Nk]')
    Hkv, Nk = k.shape[1], k.shape[2]
    if k.shape[0] != B:
        raise ArgumentError(f'{name}: batch sizes differ: q {B}, k/v {k.shape[0]}')
    _check_quant_heads(manifest, head_dim, H, Hkv, D, (('B', B), ('H', H), ('Nq', Nq), ('Nk', Nk)))
    sizes = dict(B=B, H=H, Hkv=Hkv, Nq=Nq, Nk=Nk)
    _check_quant_caches(manifest, infos, named, describe, sizes, D, QKV_DIMS)
    return sizes, q.dtype, D, manifest.value_dim


def _check_quant_qkv_tensors(manifest, infos, dtype, codes_what, float_what=QKV_DIMS.get):
    """q, k and v of a call over quantized K/V: 4-D, on q's CUDA device, q in a storage dtype (the
    kernel's when it was built for one). codes_what(role) describes a quantized k or v,
    float_what(role) a float one. Returns q."""
    name, q = manifest.name, infos['q']
    for role in ('q', 'k', 'v'):
        info = infos[role]
        if info is None or len(info.shape) != 4:
            got = 'nothing' if info is None else f'shape {_shape_text(info.shape)}'
            what = QKV_DIMS['q'] if role == 'q' else codes_what(role) if role in manifest.caches else float_what(role)
            raise ArgumentError(f'{name}: {role} must be a 4-D tensor: {what}; got {got}')
        if not info.is_cuda:
            raise ArgumentError(f'{name}: {role} must be on a CUDA device, got {info.device}')
        if role != 'q' and info.device != q.device:
            raise ArgumentError(f'{name}: {role} is on {info.device}, q on {q.device}; they must share a device')
    if q.dtype not in STORAGE_DTYPES:
        raise ArgumentError(f'{name}: q is {q.dtype}; attnc kernels take {", ".join(STORAGE_DTYPES)}')
    if dtype is not None and q.dtype != dtype:
        raise ArgumentError(f'{name}: this kernel was built for {dtype}, q is {q.dtype} (pass dtype=\'{dtype}\' to cast it)')
    return q


def _check_quant_heads(manifest, head_dim, H, Hkv, D, sizes):
    """GQA (H a multiple of Hkv), the head dim the kernel was built for (quantized codes do not show
    it), and each (name, size) in int32."""
    name = manifest.name
    if Hkv < 1 or H % Hkv != 0:
        raise ArgumentError(f'{name}: q heads H = {H} must be a multiple of k/v heads Hkv = {Hkv} (GQA)')
    if D != manifest.head_dim or (head_dim is not None and D != head_dim):
        raise ArgumentError(f'{name}: this kernel was built for head dim {manifest.head_dim}, q has {D} (quantized caches fix it: load with head_dim=)')
    for size, value in sizes:
        if value > I32_MAX:
            raise ArgumentError(f'{name}: {size} = {value} does not fit in int32')


def _check_quant_caches(manifest, infos, named, describe, sizes, D, float_dims, pool=None):
    """Each quantized cache's codes (k / v) and side tensors (by keyword) against the manifest, a
    float k or v against q's dtype and its head dim (float_dims: how its shape is written); pool
    ({pages, Hkv}) for a paged call."""
    name, q = manifest.name, infos['q']
    for role, width in (('k', D), ('v', manifest.value_dim)):
        spec = manifest.caches.get(role)
        if spec is not None:
            _check_cache_tensor(name, role, spec.codes, infos[role], q.device, sizes, CODE_DTYPES, pool)
            for t in spec.side:
                dtypes = CODE_DTYPES if t.dtype == 'u32' else (t.dtype,)
                _check_cache_tensor(name, t.field, t, describe(named.get(t.field)), q.device, sizes, dtypes, pool)
        else:
            if infos[role].dtype != q.dtype:
                raise ArgumentError(f'{name}: {role} (a float cache) must be {q.dtype} like q, got {infos[role].dtype}')
            if infos[role].shape[3] != width:
                raise ArgumentError(f'{name}: {role} must be {float_dims[role]} with last dim {width}, got {_shape_text(infos[role].shape)}')


PAGED_DIMS = {'k': '[pages, Hkv, P, D]', 'v': '[pages, Hkv, P, Dv]'}


def check_paged(name, page_size, infos, table, kv_len, dtype=None, head_dim=None, value_dim=None):
    """A paged call (`cache paged P`): q [B, H, Nq, D]; k and v page pools [pages, Hkv, P, D]
    (HND; an NHD pool [pages, P, Hkv, D] passes as .transpose(1, 2)); block_table i32 [B, max_pages]
    of page ids; kv_len keys per sequence (default max_pages * P). Returns (sizes, dtype, D, Dv,
    max_pages) with sizes' Nk = kv_len; raises ArgumentError naming the argument."""
    P = page_size
    pools = dict(infos)
    if table is None:
        raise ArgumentError(f'{name}: this kernel reads a paged cache: pass block_table= (i32 [B, max_pages] page ids, pages of {P} rows)')
    # check_qkv's device, dtype and head-dim checks, with k/v standing in as [1, Hkv, P, D] each.
    for role in ('k', 'v'):
        info = infos[role]
        if info is None or len(info.shape) != 4:
            got = 'nothing' if info is None else f'shape {_shape_text(info.shape)}'
            raise ArgumentError(f'{name}: {role} must be a page pool {PAGED_DIMS[role]} with P = {P}, got {got}')
        if info.shape[2] != P:
            raise ArgumentError(f'{name}: {role} must be a page pool {PAGED_DIMS[role]} with P = {P} (the kernel\'s page size), got shape {_shape_text(info.shape)}')
        pools[role] = TensorInfo((infos['q'].shape[0] if infos['q'] else 1,) + info.shape[1:], info.dtype, info.device, info.is_cuda)
    k, v = infos['k'], infos['v']
    if k.shape[:2] != v.shape[:2]:
        raise ArgumentError(f'{name}: k {_shape_text(k.shape)} and v {_shape_text(v.shape)} must agree on [pages, Hkv]')
    sizes, call_dtype, D, Dv = check_qkv(name, pools, dtype, head_dim, value_dim)
    max_pages, sizes['Nk'] = _check_table(name, table, infos['q'], sizes['B'], P, kv_len)
    return sizes, call_dtype, D, Dv, max_pages


def _check_table(name, table, q, B, P, kv_len):
    """block_table (i32 [B or more, max_pages] on q's device) and kv_len (default max_pages * P):
    returns (max_pages, kv_len)."""
    if table.dtype != 'i32':
        raise ArgumentError(f'{name}: block_table must be i32 (torch.int32), got {table.dtype}')
    if table.device != q.device:
        raise ArgumentError(f'{name}: block_table is on {table.device}, q on {q.device}; they must share a device')
    # More than B rows is an engine's table made for a larger batch: rows past B are never read
    # (as the TypeScript runtime and the emitted modules take it).
    if len(table.shape) != 2 or table.shape[0] < B or table.shape[1] < 1:
        raise ArgumentError(f'{name}: block_table must be [B, max_pages] = [{B}, >= 1] (more rows than B are unused), got {_shape_text(table.shape)}')
    max_pages = table.shape[1]
    if kv_len is None:
        kv_len = max_pages * P
    if isinstance(kv_len, bool) or not isinstance(kv_len, int) or not 0 <= kv_len <= max_pages * P:
        raise ArgumentError(f'{name}: kv_len must be an int in [0, max_pages * P] = [0, {max_pages * P}], got {kv_len!r}')
    return max_pages, kv_len


def check_paged_quant(manifest, infos, named, describe, table, kv_len, dtype=None, head_dim=None):
    """A paged call over quantized K/V (`cache paged P` with `store`; docs/LANGUAGE.md, "Paged
    quantized caches"): q [B, H, Nq, D]; a quantized k or v is its codes' page pool [pages, Hkv, P,
    words] (a float one [pages, Hkv, P, D or Dv] in q's dtype); the caches' other tensors by keyword,
    those that page as pools (codes' rows, per-token and per-channel-group scales: the manifest's
    pagedShape), per-sequence ones (per tensor or channel, norm, recent) in their [B, Hkv, ...]
    shapes; block_table i32 [B, max_pages]; kv_len keys per sequence (default max_pages * P).
    Returns (sizes, dtype, D, Dv, max_pages) with sizes' Nk = kv_len."""
    name, P = manifest.name, manifest.page_size
    if table is None:
        raise ArgumentError(f'{name}: this kernel reads a paged quantized cache: pass block_table= (i32 [B, max_pages] page ids, pages of {P} rows)')
    what = lambda role: f'the page pool of its codes, {manifest.caches[role].codes.describe(True)}'  # noqa: E731
    q = _check_quant_qkv_tensors(manifest, infos, dtype, what, lambda role: f'a page pool {PAGED_DIMS[role]}')
    B, H, Nq, D = q.shape
    k, v = infos['k'], infos['v']
    if k.shape[:3] != v.shape[:3]:
        raise ArgumentError(f'{name}: k {_shape_text(k.shape)} and v {_shape_text(v.shape)} must agree on [pages, Hkv, P]')
    pages, Hkv = k.shape[0], k.shape[1]
    if k.shape[2] != P:
        raise ArgumentError(f'{name}: k and v must be page pools of P = {P} rows (the kernel\'s page size), got shape {_shape_text(k.shape)}')
    _check_quant_heads(manifest, head_dim, H, Hkv, D, (('B', B), ('H', H), ('Nq', Nq), ('pages', pages)))
    max_pages, kv_len = _check_table(name, table, q, B, P, kv_len)
    sizes = dict(B=B, H=H, Hkv=Hkv, Nq=Nq, Nk=kv_len)
    pool_dims = {r: f'a page pool {d}' for r, d in PAGED_DIMS.items()}
    _check_quant_caches(manifest, infos, named, describe, sizes, D, pool_dims, dict(pages=pages, Hkv=Hkv))
    return sizes, q.dtype, D, manifest.value_dim, max_pages


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
        raise ArgumentError(f'{where} must have shape [{dims}] = {_shape_text(want)}, got {_shape_text(info.shape)}')


def check_out(name, info, sizes, dtype, value_dim, q_device):
    """out= of a call: a tensor [B, H, Nq, Dv] of q's dtype on q's device (its layout is checked
    where its strides are known: attnc.layout.qo_strides)."""
    if info is None:
        raise ArgumentError(f'{name}: out must be a tensor [B, H, Nq, Dv] (or None for a fresh one)')
    want = (sizes['B'], sizes['H'], sizes['Nq'], value_dim)
    if info.shape != want:
        raise ArgumentError(f'{name}: out must have shape [B, H, Nq, Dv] = {_shape_text(want)}, got {_shape_text(info.shape)}')
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
