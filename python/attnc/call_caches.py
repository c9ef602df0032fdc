"""The K/V caches a kernel owns the layout of: quantized caches (codes and side tensors by keyword,
the manifest's `caches`), paged caches (page pools and a block table) and both together. Each
check raises ArgumentError naming the kernel and the argument."""
from .call_qkv import QKV_DIMS, TensorInfo, check_qkv, shape_text
from .errors import ArgumentError
from .manifest import I32_MAX, STORAGE_DTYPES

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
        raise ArgumentError(f'{where} must have shape [{dims}] = {shape_text(want)}{kind}, got {shape_text(info.shape)}')


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
    k = _agreeing_kv(name, infos, '[B, Hkv, Nk]')
    Hkv, Nk = k.shape[1], k.shape[2]
    if k.shape[0] != B:
        raise ArgumentError(f'{name}: batch sizes differ: q {B}, k/v {k.shape[0]}')
    _check_quant_heads(manifest, head_dim, H, Hkv, D, (('B', B), ('H', H), ('Nq', Nq), ('Nk', Nk)))
    sizes = dict(B=B, H=H, Hkv=Hkv, Nq=Nq, Nk=Nk)
    _check_quant_caches(manifest, infos, named, describe, sizes, D, QKV_DIMS)
    return sizes, q.dtype, D, manifest.value_dim


def _agreeing_kv(name, infos, dims):
    """k, once k and v (codes or floats: their last dims differ) agree on their first three dims
    (dims: how those are written)."""
    k, v = infos['k'], infos['v']
    if k.shape[:3] != v.shape[:3]:
        raise ArgumentError(f'{name}: k {shape_text(k.shape)} and v {shape_text(v.shape)} must agree on {dims}')
    return k


def _check_quant_qkv_tensors(manifest, infos, dtype, codes_what, float_what=QKV_DIMS.get):
    """q, k and v of a call over quantized K/V: 4-D, on q's CUDA device, q in a storage dtype (the
    kernel's when it was built for one). codes_what(role) describes a quantized k or v,
    float_what(role) a float one. Returns q."""
    name, q = manifest.name, infos['q']
    for role in ('q', 'k', 'v'):
        info = infos[role]
        if info is None or len(info.shape) != 4:
            got = 'nothing' if info is None else f'shape {shape_text(info.shape)}'
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
                raise ArgumentError(f'{name}: {role} must be {float_dims[role]} with last dim {width}, got {shape_text(infos[role].shape)}')


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
            got = 'nothing' if info is None else f'shape {shape_text(info.shape)}'
            raise ArgumentError(f'{name}: {role} must be a page pool {PAGED_DIMS[role]} with P = {P}, got {got}')
        if info.shape[2] != P:
            raise ArgumentError(f'{name}: {role} must be a page pool {PAGED_DIMS[role]} with P = {P} (the kernel\'s page size), got shape {shape_text(info.shape)}')
        pools[role] = TensorInfo((infos['q'].shape[0] if infos['q'] else 1,) + info.shape[1:], info.dtype, info.device, info.is_cuda)
    k, v = infos['k'], infos['v']
    if k.shape[:2] != v.shape[:2]:
        raise ArgumentError(f'{name}: k {shape_text(k.shape)} and v {shape_text(v.shape)} must agree on [pages, Hkv]')
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
        raise ArgumentError(f'{name}: block_table must be [B, max_pages] = [{B}, >= 1] (more rows than B are unused), got {shape_text(table.shape)}')
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
    k = _agreeing_kv(name, infos, '[pages, Hkv, P]')
    pages, Hkv = k.shape[0], k.shape[1]
    if k.shape[2] != P:
        raise ArgumentError(f'{name}: k and v must be page pools of P = {P} rows (the kernel\'s page size), got shape {shape_text(k.shape)}')
    _check_quant_heads(manifest, head_dim, H, Hkv, D, (('B', B), ('H', H), ('Nq', Nq), ('pages', pages)))
    max_pages, kv_len = _check_table(name, table, q, B, P, kv_len)
    sizes = dict(B=B, H=H, Hkv=Hkv, Nq=Nq, Nk=kv_len)
    pool_dims = {r: f'a page pool {d}' for r, d in PAGED_DIMS.items()}
    _check_quant_caches(manifest, infos, named, describe, sizes, D, pool_dims, dict(pages=pages, Hkv=Hkv))
    return sizes, q.dtype, D, manifest.value_dim, max_pages
