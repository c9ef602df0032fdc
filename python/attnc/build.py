"""Building kernels: .attn source -> CUDA artifact (the attnc CLI) -> shared library (nvcc), both
cached under $ATTNC_CACHE (default ~/.cache/attnc). Artifacts are keyed by (source, entry, build
options, arch) and remember the compiler build that wrote them (recompiled when a different build
is found; reused when no CLI is around, so a cache filled where Node is works where it is not);
libraries are keyed by (the .cu's bytes, arch, nvcc version)."""
import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import tempfile

from . import __version__
from .cli import find_cli, source_roots
from .errors import BuildError
from .manifest import STORAGE_DTYPES, Manifest, find_manifest


class Arch:
    """A CUDA target: its name in the CLI and manifests, nvcc's -arch, and extra CLI flags."""

    def __init__(self, name, nvcc_arch, cli_args=()):
        self.name, self.nvcc_arch, self.cli_args = name, nvcc_arch, tuple(cli_args)


# Compute capability -> target (the CLI's --arch; src/codegen/cuda/arch.ts archOfCapability). A
# cubin for sm_8y runs on 8.z with z >= y, so 8.7 (Orin) takes sm_86 code. sm_90a is Hopper only.
ARCHS = {
    (8, 0): Arch('sm_80', 'sm_80', ('--arch', 'sm_80')),
    (8, 6): Arch('sm_86', 'sm_86', ('--arch', 'sm_86')),
    (8, 7): Arch('sm_86', 'sm_86', ('--arch', 'sm_86')),
    (8, 9): Arch('sm_89', 'sm_89', ('--arch', 'sm_89')),
    (9, 0): Arch('sm_90a', 'sm_90a', ('--arch', 'sm_90a')),
}


def arch_for_capability(major, minor):
    arch = ARCHS.get((major, minor))
    if arch is None:
        have = ', '.join(f'{m}.{n}' for (m, n) in sorted(ARCHS))
        raise BuildError(
            f'this GPU is sm_{major}{minor} (compute capability {major}.{minor}); attnc builds CUDA kernels for '
            f'compute capabilities {have} (sm_80, sm_86, sm_89, sm_90a)'
        )
    return arch


def arch_by_name(name):
    for arch in ARCHS.values():
        if arch.name == name:
            return arch
    names = dict.fromkeys(a.name for a in ARCHS.values())  # in table order, sm_86 once
    raise BuildError(f'unknown arch {name!r}; attnc builds for {", ".join(names)}')


def cache_dir():
    return os.path.abspath(os.path.expanduser(os.environ.get('ATTNC_CACHE') or os.path.join('~', '.cache', 'attnc')))


QUANT_PREFILL = ('staged', 'fused')
DECODE_LEAN = ('off', 'knob', 'on')


class BuildOptions:
    """What the CLI compiles a source with: entry (None: the file's first), dtype, head and value
    dims (value_dim None: the head dim), whether to write lse, the arch, and for kernels over
    quantized K/V how a prefill reads them (quant_prefill: 'staged' dequantizes them once into a
    workspace, 'fused' converts each tile; None: the compiler's default; the CLI's --quant-prefill),
    and the backward's engine (None: the CLI's default, SIMT for f32, for f16/bf16 wgmma on sm_90a and
    mma.sync before it; 'simt', 'mma' or 'wgmma'), and the CUDA tensor-core decode's lean per-step
    code (decode_lean: 'off', 'knob' behind -DATTNC_DEC_MMA_LEAN, or 'on'; None: the compiler's
    default, on for quantized K/V; the CLI's --decode-lean)."""

    def __init__(self, entry=None, dtype='bf16', head_dim=64, value_dim=None, lse=True, arch='sm_90a', backward=True, quant_prefill=None, backward_engine=None, decode_lean=None):
        if dtype not in STORAGE_DTYPES:
            raise BuildError(f'dtype {dtype!r}: attnc kernels are built for {", ".join(STORAGE_DTYPES)}')
        for what, dim in (('head_dim', head_dim), ('value_dim', value_dim)):
            if dim is not None and (isinstance(dim, bool) or not isinstance(dim, int) or dim < 1):
                raise BuildError(f'{what} must be a positive int, got {dim!r}')
        if entry is not None and not isinstance(entry, str):
            raise BuildError(f'entry must be the name of an attention block (a str) or None, got {entry!r}')
        # bool(x) would build lse='no' with lse; 0 and 1 are the bools' own values.
        for what, flag in (('lse', lse), ('backward', backward)):
            if not (isinstance(flag, bool) or (type(flag) is int and flag in (0, 1))):
                raise BuildError(f'{what} must be True or False, got {flag!r}')
        arch_by_name(arch)  # an unknown arch is named here, not at the first build
        self.entry, self.dtype, self.head_dim, self.value_dim = entry, dtype, head_dim, value_dim
        self.lse, self.arch = bool(lse), arch
        self.backward = bool(backward)  # also the f32 backward (the CLI's --backward), for autograd
        if quant_prefill is not None and quant_prefill not in QUANT_PREFILL:
            raise BuildError(f'quant_prefill {quant_prefill!r}: expected {" or ".join(map(repr, QUANT_PREFILL))} (or None)')
        self.quant_prefill = quant_prefill
        if backward_engine not in (None, 'simt', 'mma', 'wgmma'):
            raise BuildError(f'backward_engine {backward_engine!r}: expected None, simt, mma or wgmma')
        self.backward_engine = backward_engine
        if decode_lean is not None and decode_lean not in DECODE_LEAN:
            raise BuildError(f'decode_lean {decode_lean!r}: expected {", ".join(map(repr, DECODE_LEAN))} (or None)')
        self.decode_lean = decode_lean

    def as_dict(self):
        d = dict(
            entry=self.entry, dtype=self.dtype, head_dim=self.head_dim, value_dim=self.value_dim, lse=self.lse, arch=self.arch, backward=self.backward,
            backward_engine=self.backward_engine,
        )
        if self.quant_prefill is not None:  # absent otherwise: the cache keys of other builds stay as they were
            d['quant_prefill'] = self.quant_prefill
        if self.decode_lean is not None:  # likewise
            d['decode_lean'] = self.decode_lean
        return d

    def cli_args(self):
        args = ['--target', 'cuda', '--dim', str(self.head_dim), '--dtype', self.dtype]
        if self.value_dim is not None:
            args += ['--value-dim', str(self.value_dim)]
        if self.entry is not None:
            args += ['--entry', self.entry]
        if not self.lse:
            args.append('--no-lse')
        if self.backward and self.lse:  # the backward recomputes P from lse
            args.append('--backward')
            if self.backward_engine is not None:
                args += ['--backward-engine', self.backward_engine]
        if self.quant_prefill is not None:
            args += ['--quant-prefill', self.quant_prefill]
        if self.decode_lean is not None:
            args += ['--decode-lean', self.decode_lean]
        return args + list(arch_by_name(self.arch).cli_args)


def _hash(obj):
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()


def artifact_key(source, options):
    """The artifact cache key: the source text, the build options and this package's version."""
    return _hash(dict(kind='artifact', source=source, options=options.as_dict(), package=__version__))


def library_key(code, arch, nvcc_version):
    """The library cache key: the .cu's bytes, the arch and nvcc's `--version` text."""
    return _hash(dict(kind='library', code=hashlib.sha256(code).hexdigest(), arch=arch.name, nvcc=nvcc_version))


def read_source(path_or_source, cwd=None):
    """(text, path or None): a path to a .attn file (relative paths may also name a file of an
    attnc package, e.g. stdlib/document.attn), or the source text itself (it has a '{')."""
    if '{' in path_or_source or '\n' in path_or_source:
        return path_or_source, None
    bases = [cwd or os.getcwd()] + source_roots(cwd)
    for base in bases:
        path = os.path.join(base, path_or_source)
        if os.path.isfile(path):
            with open(path) as f:
                return f.read(), path
    tried = ', '.join(bases)
    raise BuildError(f'{path_or_source}: no such .attn file (looked in {tried}); pass a path or the source text')


@contextlib.contextmanager
def _locked(path):
    """Holds an exclusive lock on `path` (so ranks of one job build a kernel once)."""
    import fcntl

    folder = os.path.dirname(path)
    try:
        os.makedirs(folder, exist_ok=True)
        f = open(path, 'a')
    except OSError as e:
        raise BuildError(
            f'the attnc cache {folder} cannot be written ({e.strerror}); set ATTNC_CACHE '
            '(python -m attnc: --cache) to a writable folder'
        ) from None
    with f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _run(command, what, cwd=None):
    try:
        r = subprocess.run(command, capture_output=True, text=True, cwd=cwd)
    except OSError as e:
        raise BuildError(f'{what}: cannot run {command[0]}: {e.strerror}') from None
    if r.returncode != 0:
        output = (r.stderr + r.stdout).strip()
        raise BuildError(f'{what} failed (exit {r.returncode}): {" ".join(command)}\n{output[-6000:]}')
    return r.stdout


def _cached(out, cwd):
    """(manifest path or None, the CLI if one was found): the cached artifact stands when it was
    written by the compiler build found now, or when no compiler is found here."""
    meta_path = os.path.join(out, 'attnc-build.json')
    if not os.path.isfile(meta_path):
        return None, None
    with open(meta_path) as f:
        meta = json.load(f)
    manifest = os.path.join(out, meta['manifest'])
    if not os.path.isfile(manifest):
        return None, None
    try:
        cli = find_cli(cwd)
    except BuildError:
        return manifest, None
    return (manifest if meta.get('compiler') == cli.fingerprint() else None), cli


def _compile_into(tmp, cli, source, source_path, options, cwd):
    """Runs the CLI writing into `tmp` and records the build; the manifest's file name."""
    src, run_in = source_path, cwd
    if src is None:  # source text: a file the diagnostics name as `source.attn`
        src, run_in = 'source.attn', tmp
        with open(os.path.join(tmp, src), 'w') as f:
            f.write(source)
    _run(cli.command + ['compile', src, '--out', tmp] + options.cli_args(), f'attnc compile {source_path or "(source text)"}', run_in)
    if source_path is None:
        os.remove(os.path.join(tmp, src))
    manifest = os.path.basename(find_manifest(tmp))
    with open(os.path.join(tmp, 'attnc-build.json'), 'w') as f:
        json.dump(dict(manifest=manifest, compiler=cli.fingerprint(), options=options.as_dict(), cli=cli.command), f, indent=1)
    return manifest


def compile_artifact(source, source_path, options, cache=None, cwd=None):
    """The manifest path of `source` compiled with `options`, from the cache or the attnc CLI."""
    cache = cache or cache_dir()
    out = os.path.join(cache, 'artifacts', artifact_key(source, options)[:32])
    with _locked(out + '.lock'):
        manifest, cli = _cached(out, cwd)
        if manifest is not None:
            return manifest
        cli = cli or find_cli(cwd)
        tmp = tempfile.mkdtemp(prefix='tmp-', dir=os.path.join(cache, 'artifacts'))
        try:
            name = _compile_into(tmp, cli, source, source_path, options, cwd)
            shutil.rmtree(out, ignore_errors=True)
            os.replace(tmp, out)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return os.path.join(out, name)


def find_nvcc():
    for candidate in (os.environ.get('NVCC'), shutil.which('nvcc'), os.path.join(os.environ.get('CUDA_HOME') or '/usr/local/cuda', 'bin', 'nvcc')):
        if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    raise BuildError('nvcc (the CUDA toolkit) was not found: put it on PATH, or set NVCC or CUDA_HOME')


_nvcc_versions = {}


def nvcc_version(nvcc):
    if nvcc not in _nvcc_versions:
        _nvcc_versions[nvcc] = _run([nvcc, '--version'], 'nvcc --version').strip()
    return _nvcc_versions[nvcc]


def build_library(manifest, arch, cache=None):
    """The path of `manifest`'s .cu built into a shared library for `arch`, from the cache or nvcc."""
    if manifest.arch != arch.name:
        raise BuildError(f'{manifest.where}: the artifact targets {manifest.arch}, this GPU needs {arch.name}; recompile it for {arch.name}')
    return build_code(manifest.code_path, manifest.name, arch, cache)


def build_backward_library(manifest, arch, cache=None):
    """The path of `manifest`'s backward .cu (manifest.backward) built for `arch`."""
    return build_code(manifest.backward_code_path, manifest.name + '_backward', arch, cache)


def build_code(code_path, name, arch, cache=None):
    """The path of the .cu at `code_path` built into a shared library for `arch` (cached by its bytes)."""
    with open(code_path, 'rb') as f:
        code = f.read()
    nvcc = find_nvcc()
    key = library_key(code, arch, nvcc_version(nvcc))
    lib_dir = os.path.join(cache or cache_dir(), 'lib')
    so = os.path.join(lib_dir, f'{name}-{key[:32]}.so')
    with _locked(so + '.lock'):
        if os.path.isfile(so):
            return so
        tmp = so + f'.tmp{os.getpid()}'
        command = [nvcc, '-O3', f'-arch={arch.nvcc_arch}', '--shared', '-Xcompiler', '-fPIC', '-o', tmp, code_path]
        try:
            _run(command, f'nvcc {code_path}')
            os.replace(tmp, so)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
    return so


def load_manifest(path):
    return Manifest.from_file(find_manifest(path))
