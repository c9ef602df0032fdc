"""A CUDA artifact's JSON manifest (written by `attnc compile --target cuda`), read into what a
caller needs: the args struct's fields, the kernel's params and tensors with their shapes, its
outputs (lse, routing indices, importance) and the launcher's exported functions. Pure Python: no torch."""
import json
import os

from .errors import ManifestError
from .manifest_types import check_types
from .shape_expr import evaluate

STORAGE_DTYPES = ('f32', 'f16', 'bf16')  # q/k/v/out dtypes a kernel can be built for
SIZE_NAMES = ('B', 'H', 'Hkv', 'Nq', 'Nk')  # the sizes args_init takes, in its order
I32_MIN, I32_MAX = -(2**31), 2**31 - 1


PARAM_DTYPES = ('i32', 'f32', 'bool')


class Param:
    """A scalar param: name, dtype ('i32', 'f32' or 'bool') and default (None when the caller must
    give it). The manifest writes a bool default as 0/1 (the i32 word the args struct holds); it is
    read back as False/True, the value a call passes."""

    def __init__(self, name, dtype, default):
        if dtype == 'bool' and default is not None:
            default = bool(default)
        self.name, self.dtype, self.default = name, dtype, default

    @property
    def is_float(self):
        """f32 params travel as floats (and may get a gradient); i32 and bool ones as i32 words."""
        return self.dtype == 'f32'

    def describe(self):
        return f'{self.dtype}, default {self.default}' if self.default is not None else f'{self.dtype}, required'


class TensorSlot:
    """A user tensor the kernel reads (document ids, gains, reused indices): dtype 'i32' or 'f32'."""

    def __init__(self, name, dtype, dims):
        self.name, self.dtype, self.dims = name, dtype, dims

    def dim_names(self):
        """The shape as the source declares it, e.g. ['B', 'Hkv', 'Nq', 'budget']."""
        return [str(d['value']) if d['kind'] == 'literal' else d['name'] for d in self.dims]

    def shape(self, sizes, params):
        """The shape for these sizes (dict of SIZE_NAMES) and param values (dict name -> int)."""
        out = []
        for d in self.dims:
            if d['kind'] == 'literal':
                out.append(int(d['value']))
            elif d['kind'] == 'param':
                out.append(int(params[d['name']]))
            elif d['kind'] == 'size':
                out.append(sizes[d['name']])
            else:
                raise ManifestError(f'tensor {self.name}: unknown dim kind {d["kind"]!r}')
        return tuple(out)

    def describe(self):
        return f'{self.dtype} [{", ".join(self.dim_names())}]'


def _need(data, where, *keys):
    node = data
    for i, key in enumerate(keys):
        if not isinstance(node, dict) or key not in node:
            dotted = '.'.join(keys[: i + 1])
            raise ManifestError(f'{where}: the manifest lacks "{dotted}" (written by another attnc version?)')
        node = node[key]
    return node


def _entries(data, where, keys, fields):
    """The list at data[keys...], each entry an object with these fields (a ManifestError naming
    the entry otherwise, rather than a KeyError from deep inside a call)."""
    entries = _need(data, where, *keys)
    dotted = '.'.join(keys)
    if not isinstance(entries, list):
        raise ManifestError(f'{where}: "{dotted}" is not a list (written by another attnc version?)')
    for i, entry in enumerate(entries):
        for field in fields:
            if not isinstance(entry, dict) or field not in entry:
                raise ManifestError(f'{where}: {dotted}[{i}] lacks "{field}" (written by another attnc version?)')
    return entries


DIM_KEYS = {'literal': 'value', 'param': 'name', 'size': 'name'}


def _check_dims(slot, where):
    """Each dim of a tensor has its kind and that kind's key (a KeyError from a call otherwise)."""
    label = f'{where}: tensor {slot.name}'
    for i, d in enumerate(_entries({'dims': slot.dims}, label, ('dims',), ('kind',))):
        if d['kind'] not in DIM_KEYS:
            raise ManifestError(f'{label}: unknown dim kind {d["kind"]!r}')
        if DIM_KEYS[d['kind']] not in d:
            raise ManifestError(f'{label}: dims[{i}] lacks "{DIM_KEYS[d["kind"]]}" (written by another attnc version?)')


class CacheTensor:
    """One tensor of a quantized K/V cache (the manifest's `caches`): its args field, which is also
    the keyword a call passes it by (k / v for the codes, k_scale, v_zero, ...), part ('codes',
    'codesHi', 'scale', 'zero', 'norm', 'recent'), dtype ('u32', 'f32', 'f16', 'bf16') and shape
    expressions over B, Hkv, Nk; in a paged kernel, a tensor that pages (codes, per-token and
    per-channel-group scales) also has its pool shape over pages and Hkv (paged_exprs; None for a
    per-sequence tensor, which keeps its shape)."""

    def __init__(self, field, part, dtype, shape, paged_shape=None):
        self.field, self.part, self.dtype, self.shape_exprs = field, part, dtype, list(shape)
        self.paged_exprs = None if paged_shape is None else list(paged_shape)

    def shape(self, sizes):
        return tuple(evaluate(e, sizes) for e in self.shape_exprs)

    def paged_shape(self, sizes):
        """The pool shape (sizes: pages and Hkv at least); only where paged_exprs is not None."""
        return tuple(evaluate(e, sizes) for e in self.paged_exprs)

    def describe(self, paged=False):
        exprs = self.paged_exprs if paged and self.paged_exprs is not None else self.shape_exprs
        return f'{self.dtype} [{", ".join(exprs)}]'


class CacheSpec:
    """A quantized K or V cache: its format (as the manifest writes it), its tensors in layout
    order (codes first) and the kernel tensor flagging salient tokens, if any."""

    def __init__(self, which, data, where):
        self.which = which
        self.format = _need(data, where, 'format')
        tensors = _entries(data, where, ('tensors',), ('field', 'part', 'dtype', 'shape'))
        self.tensors = [CacheTensor(t['field'], t['part'], t['dtype'], t['shape'], t.get('pagedShape')) for t in tensors]
        if not self.tensors or self.tensors[0].part != 'codes':
            raise ManifestError(f'{where}: caches.{which} must list its codes first')
        self.salient = data.get('salient')

    @property
    def codes(self):
        return self.tensors[0]

    @property
    def side(self):
        """The tensors besides the codes (scales, zero points, ...): the call's keywords."""
        return self.tensors[1:]


class BackwardInfo:
    """The manifest's `backward` entry (`attnc compile --backward`): its engine ('simt': f32, reads
    f32 copies; 'mma'/'wgmma': tensor cores, read and write the kernel's f16/bf16 and take an f32
    dq_acc scratch), .cu, launcher, slot-count, (tensor-core) partials-size and (routing kernels)
    inverted-size functions, its args
    fields in declaration order, and which f32 params and tensors get a gradient. `available`
    False carries the compiler's reason instead."""

    def __init__(self, data, where):
        self.available = bool(data.get('available'))
        self.reason = data.get('reason', '')
        if not self.available:
            return
        self.code_file = _need(data, where, 'code')
        self.engine = data.get('engine', 'simt')  # manifests before the engine field were SIMT
        if self.engine not in ('simt', 'mma', 'wgmma'):
            raise ManifestError(f'{where}: unknown backward engine {self.engine!r} (known: simt, mma, wgmma)')
        self.dtype = data.get('dtype', 'f32')
        self.launch, self.slots = _need(data, where, 'launch'), _need(data, where, 'slots')
        self.partials = _need(data, where, 'partials') if self.engine != 'simt' else None
        # Routing kernels' SIMT backward: ints of the `inverted` scratch (the selection's per-id rows).
        self.inverted = data.get('inverted')
        self.fields = [(f['name'], f['ctype']) for f in _need(data, where, 'fields')]
        self.grad_params = list(_need(data, where, 'gradParams'))
        self.grad_tensors = list(_need(data, where, 'gradTensors'))
        self.summaries = list(_need(data, where, 'summaries'))
        self.summary_block = int(_need(data, where, 'summaryBlock'))

    @classmethod
    def parse(cls, data, where):
        """None for a manifest written without --backward (or by an attnc before it)."""
        if data is None:
            return None
        if not isinstance(data, dict):
            raise ManifestError(f'{where}: "backward" is not an object')
        return cls(data, f'{where} (backward)')


class Manifest:
    """One compiled kernel's manifest; `directory` holds its .cu (and .h, and maybe a built .so)."""

    def __init__(self, data, directory, where='manifest'):
        if not isinstance(data, dict) or data.get('target') != 'cuda':
            raise ManifestError(f'{where}: not a CUDA manifest (target {data.get("target") if isinstance(data, dict) else None!r})')
        check_types(data, where)  # wrong-typed values name their key path here, not as call-time TypeErrors
        self.data, self.directory, self.where = data, directory, where
        self.name = _need(data, where, 'name')
        self.arch = data.get('arch', 'sm_90a')  # manifests before the arch field were Hopper-only
        self.code_file = _need(data, where, 'files', 'code')
        fn = _need(data, where, 'functions')
        for key in ('launch', 'lastError', 'argsInit'):
            _need(data, where, 'functions', key)
        self.functions = fn
        fields = _entries(data, where, ('args', 'fields'), ('field', 'role', 'ctype', 'offset'))
        self.fields = sorted(fields, key=lambda f: f['offset'])
        self.struct_bytes = _need(data, where, 'args', 'bytes')
        schedule = _need(data, where, 'schedule')
        self.dtype = _need(data, where, 'schedule', 'dtype')
        self.head_dim = _need(data, where, 'schedule', 'headDim')
        self.value_dim = schedule.get('valueDim', self.head_dim)
        self.engine = schedule.get('engine', 'simt')
        self.alignment = data.get('alignment', 16)
        params = _entries(data, where, ('params',), ('name', 'dtype'))
        for p in params:
            if p['dtype'] not in PARAM_DTYPES:
                raise ManifestError(f'{where}: param {p["name"]} has dtype {p["dtype"]!r} (known: {", ".join(PARAM_DTYPES)})')
        self.params = [Param(p['name'], p['dtype'], p.get('default')) for p in params]
        self.tensors = [TensorSlot(t['name'], t['dtype'], t['dims']) for t in _entries(data, where, ('tensors',), ('name', 'dtype', 'dims'))]
        for t in self.tensors:
            _check_dims(t, where)
        roles = {f['role'] for f in self.fields}
        self.has_lse = 'lse' in roles
        self.has_indices = 'indices' in roles
        # `importance sum|normalized`: per-key attention mass, [B, H, Nk] f32 (attnc.outputs).
        self.has_importance = 'importance' in roles
        self.importance_mode = (data.get('outputs') or {}).get('importance') if self.has_importance else None
        if self.has_importance and not self.has_lse:
            raise ManifestError(f'{where}: the args have an importance output but no lse (its pass reads lse; written by another attnc version?)')
        self.indices_dims = _need(data, where, 'routing', 'indices', 'shape') if self.has_indices else None
        self.summary_functions = dict(fn.get('summaryElems', {}))
        self.route_scratch_function = fn.get('routeScratchElems') if 'scratch' in roles else None
        self.backward = BackwardInfo.parse(data.get('backward'), where)
        # Quantized K/V caches (`store`): k / v are the codes, the side tensors go by keyword.
        caches = data.get('caches') or {}
        self.caches = {w: CacheSpec(w, caches[w], f'{where} (caches.{w})') for w in ('k', 'v') if w in caches}
        if 'cache' in roles and not self.caches:
            raise ManifestError(f'{where}: the args have quantized cache fields but no "caches" entry (written by an attnc before it?)')
        # A paged K/V cache (`cache paged P`): k and v are page pools, keys found through block_table.
        self.page_size = None
        if 'block_table' in roles:
            self.page_size = _need(data, where, 'paged', 'pageSize')
        if 'scratch' in roles and self.route_scratch_function is None:
            raise ManifestError(f'{where}: the args have a route scratch buffer but functions lack "routeScratchElems"')

    @classmethod
    def from_file(cls, path):
        try:
            with open(path) as f:
                data = json.load(f)
        except OSError as e:
            raise ManifestError(f'{path}: cannot read the manifest ({e.strerror})') from None
        except json.JSONDecodeError as e:
            raise ManifestError(f'{path}: not JSON ({e})') from None
        return cls(data, os.path.dirname(os.path.abspath(path)), path)

    @property
    def code_path(self):
        return os.path.join(self.directory, self.code_file)

    @property
    def backward_code_path(self):
        return os.path.join(self.directory, self.backward.code_file)

    def no_backward_reason(self):
        """None when the kernel has a backward; otherwise why not, for NoBackwardError."""
        if not self.has_lse:
            return 'the backward recomputes P from lse, and this kernel was built without lse'
        if self.page_size is not None:
            return 'it reads a paged cache (inference only: the backward reads packed K/V)'
        if self.backward is None:
            return 'its artifact was compiled without --backward'
        return None if self.backward.available else self.backward.reason

    @property
    def needs_packed_kv(self):
        """Whether the launcher takes only packed [B, Hkv, Nk, D] k and v (args_init's strides):
        an unpaged kernel whose routing or importance pass reads keys by their packed rows
        (src/codegen/cuda/launcher-checks.ts, strideChecks)."""
        return (self.has_indices or self.has_importance) and self.page_size is None

    def field(self, role, name=None):
        """The struct field with this role (and name, for params, tensors and summaries)."""
        for f in self.fields:
            if f['role'] == role and (name is None or f['name'] == name):
                return f['field']
        raise ManifestError(f'{self.where}: no args field with role {role!r}' + (f' named {name!r}' if name else ''))

    def param(self, name):
        return next((p for p in self.params if p.name == name), None)

    def indices_shape(self, sizes, params):
        """The shape of the routing `indices` output, e.g. [B, Hkv, Nq, top + 1 + 2] evaluated."""
        env = dict(sizes)
        env.update({p.name: params[p.name] for p in self.params if p.dtype == 'i32' and p.name in params})
        return tuple(evaluate(d, env) for d in self.indices_dims)

    def cache_keywords(self):
        """The quantized caches' side tensors by keyword (k_scale, v_zero, ...), in args order."""
        return [t for spec in self.caches.values() for t in spec.side]

    def interface_summary(self):
        """One line per keyword argument, for error messages and docs."""
        lines = [f'{p.name}: param {p.describe()}' for p in self.params]
        lines += [f'{t.name}: tensor {t.describe()}' for t in self.tensors]
        paged = self.page_size is not None  # a paged kernel's tensors that page: their pool shapes
        lines += [f'{t.field}: quantized cache tensor {t.describe(paged)}' for t in self.cache_keywords()]
        return lines


def find_manifest(path):
    """The manifest path for `path`: a .json file, or a directory holding exactly one manifest."""
    if os.path.isdir(path):
        found = sorted(n for n in os.listdir(path) if n.endswith('.json') and _is_manifest(os.path.join(path, n)))
        if len(found) != 1:
            what = 'no CUDA manifest' if not found else f'{len(found)} manifests ({", ".join(found)}); name one'
            raise ManifestError(f'{path}: {what} (expected the output directory of `attnc compile --target cuda`)')
        return os.path.join(path, found[0])
    if not os.path.exists(path):
        raise ManifestError(f'{path}: no such file or directory')
    return path


def _is_manifest(path):
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and data.get('target') == 'cuda' and 'args' in data
