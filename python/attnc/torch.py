"""attnc kernels as PyTorch ops.

    import attnc.torch
    attn = attnc.torch.load("stdlib/document.attn")          # or the .attn source text
    out = attn(q, k, v, doc=ids).out                          # q [B, H, Nq, D], k/v [B, Hkv, Nk, D]

`load` compiles the source with the attnc CLI and the result with nvcc for this GPU, both cached
under $ATTNC_CACHE (default ~/.cache/attnc); `load_artifact` takes the output directory of
`attnc compile --target cuda` (no Node needed). Either returns an `Attention`: calling it runs a
torch.library custom op (torch.ops.attnc.<kernel>_<hash>, with a fake implementation, so
torch.compile(fullgraph=True) traces it without a graph break) on torch's current CUDA stream.
There is one op per load configuration (source, entry, the fixed options); when the dtype or dims
are left to each call, the op builds and dispatches to one library per (dtype, D, Dv, arch).

Inputs: CUDA tensors q [B, H, Nq, D], k [B, Hkv, Nk, D], v [B, Hkv, Nk, Dv] (H a multiple of Hkv),
bf16, f16 or f32, positionally or by keyword (q=, k=, v=). Any layout whose last dim is contiguous
is read in place through the kernels' strides (BNHD views, token slices, padded rows); others
(expanded tensors, a strided last dim) are copied to contiguous BHND once per call (attnc.layout).
layout='bnhd' returns out as a BNHD view; out= writes into a given tensor (any such layout).
Kernels over quantized K/V (`store`) take a quantized k / v as its codes (int32 or uint32 words,
[B, Hkv, Nk, words]) and the cache's other tensors by keyword, named as in the manifest's `caches`
and the CUDA header: k_scale=, k_zero=, k_norm=, k_recent=, k_codesHi= (and v_...), each checked
for dtype and shape (attn.manifest.interface_summary() lists them); a staged prefill's workspace
(quant_prefill='staged') is allocated inside the op.
Paged kernels (`cache paged P`) take k and v as page pools [pages, Hkv, P, D] with block_table=
(int32 [B, max_pages]) and kv_len= (keys per sequence); over a quantized cache, the codes and the
side tensors that page as pools (the manifest's pagedShape), per-sequence ones as they are.
dtype= per call casts q, k, v to that dtype first (a copy; out comes back in it). Params and
tensors of the kernel go by keyword; an f32 param may be a one-element tensor (to get its gradient).

Autograd: kernels with a compiled backward (attnc._autograd) give dq, dk, dv and the gradients of
the f32 tensors and tensor-valued f32 params the score reads; routing/selection kernels (SIMT
backward) give them through the attention on the selected set, the forward's indices held
constant (the selection itself has no gradient). Kernels without one (lse=False, paged caches,
artifacts compiled without --backward) raise NoBackwardError for inputs that require grad unless
grad is off (torch.no_grad(), torch.inference_mode()).

The result is an AttentionOutput named tuple (out, lse, indices, importance): out [B, H, Nq, Dv]
in the input dtype (the given out=, or fresh in layout=); lse [B, H, Nq] float32 (natural log; None when loaded with lse=False,
unless the kernel has importance, whose pass reads lse); indices int32 (the
routing/selection kernels' selected blocks or tokens, ascending, -1 padded, shape from the
manifest, e.g. [B, Hkv, Nq, top + 1 + 2]; None for other kernels); importance float32 [B, H, Nk]
(kernels with an `importance sum|normalized` statement, e.g. stdlib/heavy_hitter.attn and
zipcache.attn: per query head and key, the attention mass sum_i p_ij, normalized: divided by the
number of query rows whose mask allows the key, 0 for a key no row sees; no gradient flows
from it; None for other kernels). Unpaged kernels with routing or importance read k and v
packed (their passes read keys by packed rows): other layouts are copied."""
import json
from typing import NamedTuple, Optional

from .errors import ArgumentError, NoBackwardError, import_torch

torch = import_torch('attnc.torch')

from . import build  # noqa: E402 (after torch: these import it too)
from ._ops import DTYPE_NAMES, TORCH_DTYPES, artifact_family, device_arch, op_name, register, source_family
from .call import TensorInfo, bind_call, check_interface, check_out, check_scalars
from .layout import call_dtype, dtype_name, out_layout
from .manifest import Manifest

if not hasattr(torch.library, 'custom_op'):
    raise ImportError(
        f'attnc.torch needs torch >= 2.4 (torch.library.custom_op); this is torch {torch.__version__}: '
        "upgrade it with `pip install -U 'torch>=2.4'`"
    )

__all__ = ['Attention', 'AttentionOutput', 'load', 'load_artifact']

class AttentionOutput(NamedTuple):
    out: torch.Tensor
    lse: Optional[torch.Tensor]
    indices: Optional[torch.Tensor]
    importance: Optional[torch.Tensor]


def _info(t):
    if not isinstance(t, torch.Tensor):
        return None
    return TensorInfo(tuple(t.shape), DTYPE_NAMES.get(t.dtype, str(t.dtype).replace('torch.', '')), t.device, t.is_cuda)


def _current_arch():
    if torch.cuda.is_available():
        return device_arch(torch.cuda.current_device())
    return next(iter(build.ARCHS.values()))


class Attention:
    """One attnc kernel as a callable: attn(q, k, v, *, q_offset=None, k_offset=None, scale=None,
    dtype=None, **params_and_tensors) -> AttentionOutput. q_offset defaults to Nk - Nq (bottom-right
    aligned), k_offset to 0, scale to 1/sqrt(D); dtype (torch.bfloat16/float16/float32 or a name)
    casts q, k, v to it first, None takes them as they come."""

    def __init__(self, family, op, dtype=None, head_dim=None, value_dim=None):
        self.family, self.op = family, op  # op: torch.ops.attnc.<op_name>.default
        self.manifest = family.manifest
        check_interface(self.manifest)
        self.name = self.manifest.name
        self.dtype, self.head_dim, self.value_dim = dtype, head_dim, value_dim

    def __repr__(self):
        built = self.dtype or 'per call dtype'
        dims = f'D={self.head_dim}' if self.head_dim else 'D per call'
        takes = ', '.join(self.manifest.interface_summary()) or 'no params or tensors'
        return f'<attnc kernel {self.name} ({built}, {dims}; takes {takes}) as {self.op}>'

    def __call__(
        self, q, k, v, *, q_offset=None, k_offset=None, scale=None, dtype=None, layout=None, out=None, block_table=None, kv_len=None, **params_and_tensors
    ):
        m = self.manifest
        # Quantized caches (the manifest's `caches`) are codes: never cast, only the float inputs are.
        float_roles = [role for role in ('q', 'k', 'v') if role not in m.caches]
        given = dict(zip(('q', 'k', 'v'), (_info(t) for t in (q, k, v))))
        cast = call_dtype(self.name, dtype_name(dtype), self.dtype, [given[r].dtype if given[r] else None for r in float_roles])
        if cast is not None:  # a copy, rounded to the call's dtype: out comes back in it
            q, k, v = (t.to(TORCH_DTYPES[cast]) if isinstance(t, torch.Tensor) and r in float_roles else t for r, t in zip(('q', 'k', 'v'), (q, k, v)))
        infos = dict(q=_info(q), k=_info(k), v=_info(v))
        named, param_tensors = _param_values(m, params_and_tensors)
        bound = bind_call(m, infos, named, _info, self.dtype, self.head_dim, self.value_dim, _info(block_table), kv_len)
        check_scalars(self.name, q_offset, k_offset, scale)
        tensors = [named[n] for n in bound.tensor_names]
        tensors += [named[n] for n in bound.cache_names]  # quantized caches' k_scale=, v_zero=, ... after them
        param_grad = None
        if torch.is_grad_enabled():
            wanting = [role for role, t in [('q', q), ('k', k), ('v', v)] + list(zip(bound.tensor_names, tensors)) if t.requires_grad]
            wanting += [name for name, t in param_tensors.items() if t.requires_grad]
            why = m.no_backward_reason()
            if wanting and why is not None:
                raise NoBackwardError(
                    f'{self.name}: {wanting[0]} requires grad, and this kernel has no backward ({why}); call under '
                    'torch.no_grad() or torch.inference_mode(), or pass detached tensors'
                )
            if any(t.requires_grad for t in param_tensors.values()):
                param_grad = torch.stack([_param_tensor(named, param_tensors, p.name, q.device) for p in m.params if p.is_float])
        scale = None if scale is None else float(scale)
        layout = out_layout(self.name, layout)
        ints, floats = bound.int_params(m), bound.float_params(m)
        if out is not None:  # written in place (torch.ops.attnc.<name>_into): outside autograd
            check_out(self.name, _info(out), bound.sizes, bound.dtype, bound.value_dim, q.device)
            if torch.is_grad_enabled() and any(t.requires_grad for t in [q, k, v, out] + tensors + list(param_tensors.values())):
                raise ArgumentError(f'{self.name}: out= writes a given tensor in place, outside autograd; drop out= to get gradients')
            lse, indices, importance = self.family.into_op(q, k, v, out, tensors, ints, floats, q_offset, k_offset, scale, block_table, kv_len)
        else:
            out, lse, indices, importance = self.op(q, k, v, tensors, ints, floats, q_offset, k_offset, scale, param_grad, layout, block_table, kv_len)
        return AttentionOutput(out, lse if m.has_lse else None, indices if m.has_indices else None, importance if m.has_importance else None)


def _param_values(manifest, named):
    """(named with each f32 param given as a one-element float tensor replaced by its value, those
    tensors by name). A tensor param is how its gradient is asked for; reading its value syncs."""
    named, tensors = dict(named), {}
    for p in manifest.params:
        t = named.get(p.name)
        if not p.is_float or not isinstance(t, torch.Tensor):
            continue
        if t.numel() != 1 or not t.is_floating_point():
            raise ArgumentError(f'{manifest.name}: param {p.name} is f32: a tensor for it must be one float element, got {t.dtype} shape {list(t.shape)}')
        tensors[p.name], named[p.name] = t, float(t.detach())
    return named, tensors


def _param_tensor(named, tensors, name, device):
    t = tensors.get(name)
    return t.reshape(()).to(device=device, dtype=torch.float32) if t is not None else torch.tensor(float(named[name]), device=device)


def load(path_or_source, entry=None, dtype=None, head_dim=None, value_dim=None, lse=True, quant_prefill=None, backward_engine=None, decode_lean=None):
    """The kernel of a .attn file (a path; relative paths may also name a file of the attnc package,
    e.g. stdlib/document.attn) or of its source text. entry: which `attention` block (default the
    first). dtype (torch.bfloat16/float16/float32 or 'bf16'/'f16'/'f32'), head_dim and value_dim fix
    the build; None builds per call from the inputs (each variant is built once and cached).
    A kernel over quantized K/V (`store`) needs head_dim (and value_dim, if it differs) fixed;
    quant_prefill ('staged' or 'fused', None: the compiler's default) picks how its prefill
    reads the caches (BuildOptions). backward_engine: the autograd backward's engine ('simt', 'mma',
    'wgmma'; None: SIMT for f32, wgmma on sm_90a and mma.sync before it for f16/bf16). decode_lean
    ('off', 'knob', 'on'; None: on for quantized K/V): the tensor-core decode's lean code (BuildOptions)."""
    dtype = dtype_name(dtype)
    source, path = build.read_source(str(path_or_source))
    base_dim = 64 if head_dim is None else head_dim  # 0 is an error (BuildOptions), not 64
    vd = None if value_dim is None or value_dim == base_dim else value_dim
    options = build.BuildOptions(entry, dtype or 'bf16', base_dim, vd, lse, _current_arch().name, quant_prefill=quant_prefill, backward_engine=backward_engine, decode_lean=decode_lean)
    manifest = Manifest.from_file(build.compile_artifact(source, path, options))
    identity = repr((source, entry, dtype, head_dim, value_dim, bool(lse), backward_engine) + ((quant_prefill,) if quant_prefill else ()) + ((('decode_lean', decode_lean),) if decode_lean else ()))
    family, op = register(op_name(manifest.name, identity), source_family(manifest, source, path, entry, lse, quant_prefill, backward_engine, decode_lean))
    fixed_vd = value_dim if value_dim is not None else head_dim
    attn = Attention(family, op, dtype, head_dim, fixed_vd)
    if dtype is not None and head_dim is not None and torch.cuda.is_available():
        family.kernel(dtype, head_dim, fixed_vd, torch.device('cuda', torch.cuda.current_device()))  # build now: errors at load
    return attn


def load_artifact(dir_or_manifest):
    """The kernel of a compiled CUDA artifact: the --out directory of `attnc compile --target cuda`
    (holding one manifest) or the manifest .json. Its .cu is built with nvcc for this GPU (cached),
    unless a .so of the same name, no older than the .cu, sits beside it."""
    manifest = build.load_manifest(str(dir_or_manifest))
    with open(manifest.code_path, 'rb') as f:
        identity = f.read().decode(errors='replace') + json.dumps(manifest.data, sort_keys=True)
    family, op = register(op_name(manifest.name, identity), artifact_family(manifest))
    attn = Attention(family, op, manifest.dtype, manifest.head_dim, manifest.value_dim)
    if torch.cuda.is_available():
        family.kernel(manifest.dtype, manifest.head_dim, manifest.value_dim, torch.device('cuda', torch.cuda.current_device()))
    return attn
