"""The errors attnc raises: each message names the kernel and the offending argument, file or tool."""


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
