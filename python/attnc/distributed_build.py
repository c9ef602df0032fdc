"""Compiling a kernel for context parallelism ahead of time (pure Python, needs the attnc CLI):
the kernel and, when its mask reads kv-indexed tensors, its ring variant (attnc.distributed_source),
into the artifact cache that attnc.distributed.load reads, so a GPU machine without Node can load
them (as `python -m attnc compile` does for single kernels)."""
import os

from . import build
from .distributed_check import check_cp_kernel
from .distributed_source import ring_source
from .errors import ArgumentError
from .manifest import Manifest


def compile_cp(path_or_source, options, cache=None):
    """(the kernel's manifest path, its ring variant's: the same path when it needs none, None when
    the ring cannot compute the kernel, attnc.distributed_check)."""
    cache = os.path.abspath(cache) if cache else None  # the CLI runs in a folder of its own
    source, path = build.read_source(str(path_or_source))
    manifest_path = build.compile_artifact(source, path, options, cache)
    manifest = Manifest.from_file(manifest_path)
    try:
        check_cp_kernel(manifest, 'ring')
    except ArgumentError:
        return manifest_path, None
    text, tensors = ring_source(source, manifest, options.entry)
    ring_path = build.compile_artifact(text, None, options, cache) if tensors else manifest_path
    return manifest_path, ring_path
