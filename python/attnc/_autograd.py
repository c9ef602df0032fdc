"""Autograd for attnc ops: the kernel's compiled backward (the manifest's `backward`, written by
`attnc compile --backward`: f32 SIMT, deterministic, src/codegen/cuda/backward.ts, or for f16/bf16
kernels the tensor-core one, mma.sync or wgmma, dq by f32 atomics into a dq_acc scratch) as a second
custom op, `torch.ops.attnc.<name>_backward`, registered as the forward op's backward with
torch.library.register_autograd, so torch.compile(fullgraph=True) traces forward and backward.

The backward reads packed [B, H, N, D] rows: q, k, v, out and dout are copied to that (and cast to
f32 for the SIMT engine), and dq, dk, dv come back in the inputs' dtypes. It recomputes P from the
forward's lse, so it needs a forward built with lse. f32 tensors the score reads (gain tables, bias
tables) get gradients; f32 params get one when passed as a tensor (attnc.torch.Attention). A
gradient flowing into lse (a loss on it, partial attentions merged by their lse) goes to the
kernels as Args.dlse (∂lse/∂score′ = P: their delta becomes Σ dO·O − dlse). The importance
output is marked non-differentiable (its grad_fn is None).

Routing/selection kernels (SIMT engine): the forward's int32 `indices` output is saved with out and
lse and passed back as Args.indices, a constant: the gradient flows through the attention on the
selected set, and the selection itself (pooling, ranking, voting) has none."""
from typing import List, Optional, Tuple

import torch

from ._ops import DTYPE_NAMES
from .backward import reads_indices, scratch_elems, slot_count, summary_elems
from .errors import LaunchError
from .layout import is_row_major

F32 = torch.float32


def _packed(t, dtype):
    t = t.to(dtype)
    return t if is_row_major(tuple(t.shape), t.stride()) else t.contiguous()


def _defaults(family, kern, sizes, q_offset, k_offset, scale):
    """(q_offset, k_offset, scale) as the forward ran: args_init's defaults where None was passed."""
    m = kern.manifest
    args = kern.new_args(sizes)
    kern.set_offsets(args, q_offset, k_offset, scale)
    return (
        getattr(args, m.field('offset', 'q_offset')),
        getattr(args, m.field('offset', 'k_offset')),
        getattr(args, m.field('scale')),
    )


def tensor_grad_layout(manifest, tensors):
    """[(index in `tensors`, slot offset)] of the tensors with a gradient, in slot order."""
    names = [t.name for t in manifest.tensors]
    at = len(manifest.backward.grad_params)
    layout = []
    for name in manifest.backward.grad_tensors:
        i = names.index(name)
        layout.append((i, at))
        at += tensors[i].numel()
    return layout


def run_backward(family, q, k, v, out, lse, indices, dout, dlse, tensors, int_params, float_params, q_offset, k_offset, scale):
    """dq, dk, dv (the inputs' dtypes) and the f32 gradient slots (params, then tensors)."""
    m = family.manifest
    B, H, Nq, D = q.shape
    Hkv, Nk, Dv = k.shape[1], k.shape[2], v.shape[3]
    numels = {s.name: t.numel() for s, t in zip(m.tensors, tensors)}
    grads = q.new_zeros((slot_count(m, numels),), dtype=F32)
    dq, dk, dv = (torch.zeros(t.shape, dtype=t.dtype, device=t.device) for t in (q, k, v))
    if q.numel() == 0 or k.numel() == 0 or v.numel() == 0:
        return dq, dk, dv, grads
    kern = family.kernel(DTYPE_NAMES[q.dtype], D, Dv, q.device)
    bwd = family.backward_kernel(DTYPE_NAMES[q.dtype], D, Dv, q.device)
    sizes = dict(B=B, H=H, Hkv=Hkv, Nq=Nq, Nk=Nk)
    q_off, k_off, scl = _defaults(family, kern, sizes, q_offset, k_offset, scale)
    inputs = dict(q=q, k=k, v=v, out=out, dout=dout)
    # SIMT reads f32 copies; the tensor-core engines read and write the kernel's own dtype.
    io = F32 if m.backward.engine == 'simt' else q.dtype
    staged = {name: _packed(t, io) for name, t in inputs.items()}
    staged['lse'] = lse.contiguous()
    if reads_indices(m):  # the forward's selection [B, G, Nq, K], held constant
        staged['indices'] = indices.to(torch.int32).contiguous()
    if dlse is not None:  # else Args.dlse stays null: no gradient flows into lse
        staged['dlse'] = dlse.to(F32).contiguous()
    made = {name: torch.empty(staged[src].shape, dtype=io, device=q.device) for name, src in (('dq', 'q'), ('dk', 'k'), ('dv', 'v'))}
    tensors = [t.contiguous() for t in tensors]
    args = bwd.Args()
    for name, value in dict(B=B, H=H, Hkv=Hkv, Nq=Nq, Nk=Nk, q_offset=q_off, k_offset=k_off).items():
        setattr(args, name, value)
    args.scale = scl
    ints, floats = iter(int_params), iter(float_params)
    for p in m.params:
        setattr(args, f'p_{p.name}', next(floats) if p.is_float else next(ints))
    for slot, t in zip(m.tensors, tensors):
        setattr(args, f't_{slot.name}', t.data_ptr())
    keep = []
    for name in m.backward.summaries:
        t = tensors[[s.name for s in m.tensors].index(name)]
        keep.append(torch.empty(summary_elems(t.numel(), m.backward.summary_block), dtype=t.dtype, device=q.device))
        setattr(args, f's_{name}', keep[-1].data_ptr())
    slots = bwd.slots(args)
    if slots != grads.numel():  # the manifest's slot layout and the compiled one must agree
        raise LaunchError(f'{m.name}: the backward has {slots} gradient slots, the manifest says {grads.numel()}')
    args.slots = slots
    # `inverted` (routing kernels): the selection's per-id row lists, int32; the rest are f32.
    for name, n in scratch_elems(m, B * H * Nq, D, slots, bwd.partials(args), bwd.inverted(args)).items():
        made[name] = torch.empty(n, dtype=torch.int32 if name == 'inverted' else F32, device=q.device)
    made['grads'] = grads if grads.numel() else torch.empty(1, dtype=F32, device=q.device)
    for name, t in list(staged.items()) + list(made.items()):
        setattr(args, name, t.data_ptr())
    with torch.cuda.device(q.device):
        bwd.launch_or_raise(args, torch.cuda.current_stream(q.device).cuda_stream)
    return made['dq'].to(q.dtype), made['dk'].to(k.dtype), made['dv'].to(v.dtype), grads


def register_backward(name, family, forward_op):
    """Registers torch.ops.attnc.<name>_backward and makes it the backward of forward_op."""

    def attnc_backward(
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        out: torch.Tensor,
        lse: torch.Tensor,
        indices: torch.Tensor,
        dout: torch.Tensor,
        dlse: Optional[torch.Tensor],
        tensors: List[torch.Tensor],
        int_params: List[int],
        float_params: List[float],
        q_offset: Optional[int],
        k_offset: Optional[int],
        scale: Optional[float],
    ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        return run_backward(family, q, k, v, out, lse, indices, dout, dlse, tensors, int_params, float_params, q_offset, k_offset, scale)

    def fake(q, k, v, out, lse, indices, dout, dlse, tensors, int_params, float_params, q_offset, k_offset, scale):
        numels = {s.name: t.numel() for s, t in zip(family.manifest.tensors, tensors)}
        grads = q.new_empty((slot_count(family.manifest, numels),), dtype=F32)
        return torch.empty_like(q), torch.empty_like(k), torch.empty_like(v), grads

    bwd_op = torch.library.custom_op(f'attnc::{name}_backward', attnc_backward, mutates_args=(), device_types='cuda')
    bwd_op.register_fake(fake)
    bwd = getattr(torch.ops.attnc, f'{name}_backward').default

    def setup_context(ctx, inputs, output):
        q, k, v, tensors, int_params, float_params, q_offset, k_offset, scale, param_grad, *_ = inputs  # then layout, paging
        out, lse, indices, importance = output
        # The importance output (per-key attention mass) is a statistic the caller ranks keys by,
        # not a function to differentiate: no gradient flows from it (indices, int32, get none anyway).
        ctx.mark_non_differentiable(importance)
        # indices: a routing kernel's selection, which its backward reads back (zero-size otherwise).
        ctx.save_for_backward(q, k, v, out, lse, indices, *tensors)
        ctx.int_params, ctx.float_params = list(int_params), list(float_params)
        ctx.offsets = (q_offset, k_offset, scale)
        ctx.param_shape = None if param_grad is None else param_grad.shape

    def backward(ctx, dout, dlse, _dindices, _dimportance):
        q, k, v, out, lse, indices, *tensors = ctx.saved_tensors
        dq, dk, dv, grads = bwd(q, k, v, out, lse, indices, dout, dlse, tensors, ctx.int_params, ctx.float_params, *ctx.offsets)
        m = family.manifest
        dtensors: List[Optional[torch.Tensor]] = [None] * len(tensors)
        for i, at in tensor_grad_layout(m, tensors):
            dtensors[i] = grads[at : at + tensors[i].numel()].view(tensors[i].shape).to(tensors[i].dtype)
        dparams = None
        if ctx.param_shape is not None:  # f32 params in manifest order; those the score does not differentiate get 0
            f32_params = [p.name for p in m.params if p.is_float]
            picks = [grads[m.backward.grad_params.index(n)] if n in m.backward.grad_params else grads.new_zeros(()) for n in f32_params]
            dparams = torch.stack(picks) if picks else grads.new_zeros((0,))
        # Non-tensor inputs get None, but an empty list is a list node of autograd's input tree: [].
        no_grad = [[] if isinstance(x, list) and not x else None for x in (ctx.int_params, ctx.float_params)]
        grads_in = (dq, dk, dv, dtensors, *no_grad, None, None, None, dparams, None, None, None)
        # The dispatcher drops trailing arguments that equal their defaults from autograd's input
        # tree (setup_context still sees all 13), and torch.library checks the returned structure
        # against that tree; it hands the tree's shape to us as ctx.needs_input_grad.
        return grads_in[: len(ctx.needs_input_grad)]

    torch.library.register_autograd(f'attnc::{name}', backward, setup_context=setup_context)
    return bwd
