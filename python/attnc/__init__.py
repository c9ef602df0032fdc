"""attnc for Python: attention kernels compiled from .attn files, called from PyTorch.

    import attnc.torch
    attn = attnc.torch.load("stdlib/document.attn")
    out = attn(q, k, v, doc=ids).out

`attnc.torch` needs torch; the rest (manifests, args structs, call checks, builds) is pure Python."""
from .errors import ArgumentError, AttncError, BuildError, LaunchError, ManifestError, MissingTorchError, NoBackwardError

__version__ = '0.1.0'
__all__ = ["ArgumentError", "AttncError", "BuildError", "LaunchError", "ManifestError", "MissingTorchError", "NoBackwardError", "__version__"]


def __getattr__(name):
    # `import attnc` then `attnc.torch.load(...)`: the torch layer loads (and imports torch) on first use.
    if name == 'torch':
        import importlib

        return importlib.import_module('.torch', __name__)
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
