"""The native side of a kernel's backward, without torch: the backward's args struct as ctypes (its
fields come from the manifest's `backward` entry in declaration order, so C's natural layout and
ctypes' agree), the launcher and slot-count functions, and the sizes of the scratch buffers it
needs. The backward reads packed [B, H, N, D] rows: f32 copies for the SIMT engine
(src/codegen/cuda/backward.ts), the kernel's f16/bf16 for the tensor-core ones (backward-mma.ts,
backward-wgmma.ts); callers pass device pointers as ints."""
import ctypes

from .errors import LaunchError, ManifestError


def _ctype(where, name, ctype):
    if '*' in ctype:
        return ctypes.c_void_p
    if ctype == 'int':
        return ctypes.c_int32
    if ctype == 'float':
        return ctypes.c_float
    raise ManifestError(f'{where}: backward field {name} has C type {ctype!r} (known: pointers, int, float)')


def backward_args_type(manifest):
    """The ctypes Structure of manifest.backward's Args."""
    b = manifest.backward
    fields = [(name, _ctype(manifest.where, name, ctype)) for name, ctype in b.fields]
    return type(f'AttncBackwardArgs_{manifest.name}', (ctypes.Structure,), {'_fields_': fields})


def reads_indices(manifest):
    """Whether the backward takes the forward's routing `indices` back (Args.indices): a routing or
    selection kernel's, whose selection the backward holds constant."""
    return any(name == 'indices' for name, _ in manifest.backward.fields)


def slot_count(manifest, tensor_numels):
    """Length of the gradient slots: one per f32 param with a gradient, then every element of each
    f32 tensor with one (tensor_numels: name -> element count), in the manifest's order."""
    b = manifest.backward
    return len(b.grad_params) + sum(tensor_numels[t] for t in b.grad_tensors)


def scratch_elems(manifest, rows, head_dim, slots, partials, inverted=0):
    """Elements of the backward's scratch buffers, name -> count (each at least 1): f32 delta
    [rows = B·H·Nq]; SIMT: partials [rows·slots], and for routing kernels the int32 `inverted`
    (the count the library's inverted function gives); tensor cores: dq_acc [rows·D] and
    `partials` (the count the library's partials function gives)."""
    if manifest.backward.engine == 'simt':
        out = {'delta': max(1, rows), 'partials': max(1, rows * slots)}
        if manifest.backward.inverted:
            out['inverted'] = max(1, inverted)
        return out
    return {'delta': max(1, rows), 'dq_acc': max(1, rows * head_dim), 'partials': max(1, partials)}


def summary_elems(length, block):
    """Elements of a tensor summary buffer: [min, max] per block of `block` elements (at least one pair)."""
    return 2 * max(1, -(-length // block))


class BackwardKernel:
    """A built backward: args type, launcher (`int launch(const Args*, cudaStream_t)`, a cudaError_t)
    and the slot-count function."""

    def __init__(self, manifest, library_path):
        if manifest.backward is None or not manifest.backward.available:
            raise ManifestError(f'{manifest.where}: no backward to load ({manifest.no_backward_reason()})')
        self.manifest = manifest
        self.Args = backward_args_type(manifest)
        try:
            self.lib = ctypes.CDLL(library_path)
        except OSError as e:
            raise LaunchError(f'{manifest.name}: cannot load {library_path}: {e}') from None
        pargs = ctypes.POINTER(self.Args)
        self.launch_fn = self._function(manifest.backward.launch, [pargs, ctypes.c_void_p], ctypes.c_int)
        self.slots_fn = self._function(manifest.backward.slots, [pargs], ctypes.c_int)
        self.partials_fn = None
        if manifest.backward.partials:
            self.partials_fn = self._function(manifest.backward.partials, [pargs], ctypes.c_longlong)
        self.inverted_fn = None
        if manifest.backward.inverted:
            self.inverted_fn = self._function(manifest.backward.inverted, [pargs], ctypes.c_longlong)

    def _function(self, name, argtypes, restype):
        try:
            f = self.lib[name]
        except AttributeError:
            raise LaunchError(f'{self.manifest.name}: the backward library exports no {name}') from None
        f.argtypes, f.restype = argtypes, restype
        return f

    def slots(self, args):
        return int(self.slots_fn(ctypes.byref(args)))

    def partials(self, args):
        """Floats of `partials` the launch needs beyond the SIMT layout (tensor-core engines; else 0)."""
        return int(self.partials_fn(ctypes.byref(args))) if self.partials_fn else 0

    def inverted(self, args):
        """Ints of the `inverted` scratch a routing kernel's launch needs (else 0)."""
        return int(self.inverted_fn(ctypes.byref(args))) if self.inverted_fn else 0

    def launch_or_raise(self, args, stream):
        code = self.launch_fn(ctypes.byref(args), stream)
        if code != 0:
            raise LaunchError(f'{self.manifest.name}: backward launch failed (cudaError_t {code})')
