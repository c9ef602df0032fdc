"""The native side of a CUDA artifact, without torch: the args struct as a ctypes Structure built
from the manifest's fields and offsets (ArgsLayout), and the launcher's exported functions loaded
from the built shared library (Kernel). Callers pass device pointers as ints."""
import ctypes

from .call import check_param, check_scalars
from .errors import ArgumentError, LaunchError, ManifestError
from .manifest import I32_MAX, SIZE_NAMES

# The manifests' field types (ptr, i32 and f32 today; the wider ones keep newer layouts loadable).
CTYPES = {
    'ptr': ctypes.c_void_p,
    'i32': ctypes.c_int32,
    'u32': ctypes.c_uint32,
    'i64': ctypes.c_int64,
    'u64': ctypes.c_uint64,
    'f32': ctypes.c_float,
    'f64': ctypes.c_double,
}


class ArgsLayout:
    """The manifest's args struct as ctypes; offsets and size are checked against the manifest."""

    def __init__(self, manifest):
        self.manifest = m = manifest
        fields = []
        for f in m.fields:
            if f['ctype'] not in CTYPES:
                raise ManifestError(f'{m.where}: field {f["field"]} has ctype {f["ctype"]!r} (known: {", ".join(CTYPES)})')
            fields.append((f['field'], CTYPES[f['ctype']]))
        self.Args = type(f'AttncArgs_{m.name}', (ctypes.Structure,), {'_fields_': fields})
        for f in m.fields:
            got = getattr(self.Args, f['field']).offset
            if got != f['offset']:
                raise ManifestError(f'{m.where}: field {f["field"]} is at offset {got} in ctypes, {f["offset"]} in the manifest')
        if ctypes.sizeof(self.Args) != m.struct_bytes:
            raise ManifestError(f'{m.where}: the args struct is {ctypes.sizeof(self.Args)} bytes in ctypes, {m.struct_bytes} in the manifest')

    def set_pointer(self, args, role, ptr, name=None):
        setattr(args, self.manifest.field(role, name), ptr)

    def set_param(self, args, param, value):
        """Stores a param value, checked against its dtype (i32 range; a finite f32 number; True or
        False for bool, or the 0/1 word BoundCall.int_params makes of it)."""
        if param.dtype == 'bool' and type(value) is int and value in (0, 1):
            value = bool(value)
        check_param(self.manifest.name, param, value)
        setattr(args, self.manifest.field('param', param.name), int(value) if param.dtype == 'bool' else value)

    def set_offsets(self, args, q_offset=None, k_offset=None, scale=None):
        """Overrides args_init's defaults (q_offset Nk - Nq, k_offset 0, scale 1/sqrt(D)) where given."""
        check_scalars(self.manifest.name, q_offset, k_offset, scale)
        for name, value in (('q_offset', q_offset), ('k_offset', k_offset)):
            if value is not None:
                setattr(args, self.manifest.field('offset', name), value)
        if scale is not None:
            setattr(args, self.manifest.field('scale'), scale)


class Kernel(ArgsLayout):
    """A built artifact: the args layout plus the shared library's launcher functions."""

    def __init__(self, manifest, library_path):
        super().__init__(manifest)
        try:
            self.lib = ctypes.CDLL(library_path)
        except OSError as e:
            raise LaunchError(f'{manifest.name}: cannot load {library_path}: {e}') from None
        fn = manifest.functions
        pargs = ctypes.POINTER(self.Args)
        self.init = self._function(fn['argsInit'], [pargs] + [ctypes.c_int] * len(SIZE_NAMES), None)
        self.launch_fn = self._function(fn['launch'], [pargs, ctypes.c_void_p], ctypes.c_int)
        self.err = self._function(fn['lastError'], [], ctypes.c_char_p)
        self.summary_elems = {t: self._function(name, [pargs], ctypes.c_size_t) for t, name in manifest.summary_functions.items()}
        name = manifest.route_scratch_function
        self.route_scratch_elems = self._function(name, [pargs], ctypes.c_size_t) if name else None
        # Staged prefill over quantized K/V (quantPrefill 'staged'): a launch entry taking a workspace.
        ws, staged = fn.get('workspaceBytes'), fn.get('launchStaged')
        self.workspace_bytes_fn = self._function(ws, [pargs], ctypes.c_size_t) if ws else None
        self.launch_staged_fn = (
            self._function(staged, [pargs, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p], ctypes.c_int)
            if staged else None
        )

    def _function(self, name, argtypes, restype):
        try:
            f = self.lib[name]
        except AttributeError:
            raise LaunchError(f'{self.manifest.name}: the library exports no {name} (built from another artifact?)') from None
        f.argtypes, f.restype = argtypes, restype
        return f

    def new_args(self, sizes):
        """An args struct with these sizes (dict of SIZE_NAMES) and every default args_init sets."""
        for n in SIZE_NAMES:
            if not 0 <= sizes[n] <= I32_MAX:
                raise ArgumentError(f'{self.manifest.name}: size {n} = {sizes[n]} is outside [0, {I32_MAX}]')
        args = self.Args()
        self.init(ctypes.byref(args), *(int(sizes[n]) for n in SIZE_NAMES))
        return args

    def summary_sizes(self, args):
        """Elements of each summary scratch buffer for these args: {tensor: (elements, dtype)}."""
        dtypes = {t.name: t.dtype for t in self.manifest.tensors}
        return {t: (max(1, f(ctypes.byref(args))), dtypes[t]) for t, f in self.summary_elems.items()}

    def route_scratch_size(self, args):
        """Floats of the routing/selection scratch buffer, or None when the kernel has none."""
        return None if self.route_scratch_elems is None else max(1, self.route_scratch_elems(ctypes.byref(args)))

    def workspace_size(self, args):
        """Bytes of the staged prefill's workspace for these args, or None when the kernel has no
        staged launch (then `launch` runs it whole)."""
        return None if self.workspace_bytes_fn is None else int(self.workspace_bytes_fn(ctypes.byref(args)))

    def launch_staged(self, args, workspace_ptr, workspace_bytes, stream):
        """The staged launch (K/V dequantized into the workspace first); (code, message)."""
        code = self.launch_staged_fn(ctypes.byref(args), workspace_ptr, workspace_bytes, stream)
        return code, self.err().decode(errors='replace')

    def launch(self, args, stream):
        """Runs the launcher on `stream` (a cudaStream_t as an int; 0 is the legacy default stream)
        and returns (code, message) as the C function reports them."""
        code = self.launch_fn(ctypes.byref(args), stream)
        return code, self.err().decode(errors='replace')

    def launch_or_raise(self, args, stream, workspace=None):
        """Launches (staged when `workspace`, a device buffer of workspace_size bytes, is given)."""
        if workspace is not None:
            code, message = self.launch_staged(args, workspace.data_ptr(), workspace.numel() * workspace.element_size(), stream)
        else:
            code, message = self.launch(args, stream)
        if code != 0:
            raise LaunchError(f'{self.manifest.name}: launch failed (code {code}): {message}')
