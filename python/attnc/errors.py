"""The errors attnc raises: each message names the kernel and the offending argument, file or tool."""
import sys


class AttncError(Exception):
    """Base of every attnc error."""


class ArgumentError(AttncError, ValueError):
    """A call's argument is missing, unknown, or has the wrong dtype, shape, device or value."""


class ManifestError(AttncError, ValueError):
    """A manifest is unreadable or lacks what this package needs (an artifact of another attnc version)."""


class BuildError(AttncError, RuntimeError):
    """Compiling the .attn (attnc CLI) or the .cu (nvcc) failed, or a tool is missing."""


class LaunchError(AttncError, RuntimeError):
    """The kernel's launcher refused the arguments or a CUDA call failed."""


class NoBackwardError(AttncError, RuntimeError):
    """An input requires grad, and this kernel has no backward (no lse, a paged cache, or none compiled)."""


class MissingTorchError(AttncError, ModuleNotFoundError):
    """attnc.torch or attnc.distributed was imported where PyTorch is not installed."""


def import_torch(module):
    """`import torch` for `module` (attnc.torch, attnc.distributed): where torch is not installed, a
    MissingTorchError that says what to install, in place of a bare "No module named 'torch'" from
    inside the package. A torch that is installed but fails to import (a broken CUDA library) keeps
    its own error."""
    try:
        import torch
    except ImportError as e:
        if e.name != 'torch':
            raise
        raise MissingTorchError(
            f'{module} needs PyTorch (torch >= 2.4, a CUDA build), which this Python ({sys.executable}) '
            'cannot import: install it with `pip install torch` (CUDA builds: https://pytorch.org/get-started/locally/). '
            'Without torch, the pure modules still work: attnc.manifest, attnc.build and `python -m attnc compile`.',
            name='torch',
        ) from None
    return torch
