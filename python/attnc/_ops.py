"""The torch side of a kernel: a family of builds of one kernel (per dtype and head dims, built on
first use) behind one torch.library custom op, its fake (meta) implementation for torch.compile,
and the launch on torch's current CUDA stream. Imported only by attnc.torch."""
import hashlib
import os
import re
import threading
from typing import List, Optional, Tuple

import torch

from . import build
from .backward import BackwardKernel
from .kernel import Kernel
from .errors import ArgumentError
from .layout import KV_STRIDE_FIELDS, QO_STRIDE_FIELDS, copy_reason, kv_strides, qo_strides, takes_kv_strides, takes_qo_strides
from .manifest import Manifest
from .outputs import SIDE_OUTPUTS, call_sizes, output_specs, unlaunched_values

DTYPE_NAMES = {torch.float32: 'f32', torch.float16: 'f16', torch.bfloat16: 'bf16', torch.int32: 'i32'}
TORCH_DTYPES = {name: dtype for dtype, name in DTYPE_NAMES.items()}
if hasattr(torch, 'uint32'):  # quantized codes may come as uint32 (the same 32-bit words as int32)
    DTYPE_NAMES[torch.uint32] = 'u32'


def device_arch(device):
    major, minor = torch.cuda.get_device_capability(device)
    return build.arch_for_capability(major, minor)


def _readable(t, alignment):
    """t as the kernel reads it (attnc.layout): contiguous BHND starting on `alignment` bytes. Such a
    tensor is passed as it is; another layout is copied to contiguous BHND; a misaligned one cloned."""
    reason = copy_reason(tuple(t.shape), t.stride(), t.data_ptr(), alignment)
    if reason == 'layout':
        t = t.contiguous()
        reason = copy_reason(tuple(t.shape), t.stride(), t.data_ptr(), alignment)
    return t.clone(memory_format=torch.contiguous_format) if reason == 'alignment' else t


def _q_readable(t, alignment):
    """q and the strides to pass for it (attnc.layout.qo_strides): read in place when its layout
    allows, else as _readable makes it (strides None: args_init's packed ones)."""
    strides, _ = qo_strides('q', tuple(t.shape), t.stride(), t.data_ptr(), alignment, t.element_size())
    return (t, strides) if strides is not None else (_readable(t, alignment), None)


def _check_pages(kernel, table, kv_len, page_size, pages):
    """The page ids the call reads (the first ceil(kv_len / P) of each row) name pages of the pool.
    One device sync: an id out of range would read outside the pool (a fault or a wrong answer)."""
    used = table[:, : -(-kv_len // page_size)]
    if used.numel() and bool(((used < 0) | (used >= pages)).any()):
        bad = used[(used < 0) | (used >= pages)][0].item()
        raise ArgumentError(f'{kernel}: block_table holds page id {bad}, outside the pool of {pages} pages (k.shape[0])')


def _kv_readable(t, alignment):
    """k or v and the strides to pass for it (attnc.layout.kv_strides): read in place when its
    layout allows, else as _readable makes it (strides None: args_init's packed ones)."""
    strides, _ = kv_strides(tuple(t.shape), t.stride(), t.data_ptr(), alignment, t.element_size())
    return (t, strides) if strides is not None else (_readable(t, alignment), None)


class KernelFamily:
    """One kernel's builds: `manifest` is its interface (params, tensors, outputs); `variant(dtype,
    D, Dv, arch)` gives the Manifest to build for a call."""

    def __init__(self, manifest, variant, library_for=None):
        self.manifest = manifest
        self.variant = variant
        self.library_for = library_for or (lambda m, arch: build.build_library(m, arch))
        self.kernels = {}
        self.backward_kernels = {}
        self.lock = threading.Lock()

    def kernel(self, dtype, D, Dv, device):
        arch = device_arch(device)
        key = (dtype, D, Dv, arch.name)
        with self.lock:
            if key not in self.kernels:
                m = self.variant(dtype, D, Dv, arch)
                self.kernels[key] = Kernel(m, self.library_for(m, arch))
            return self.kernels[key]

    def backward_kernel(self, dtype, D, Dv, device):
        """The backward (attnc.backward.BackwardKernel) of the build `kernel` gives for these."""
        m = self.kernel(dtype, D, Dv, device).manifest
        arch = device_arch(device)
        key = (dtype, D, Dv, arch.name)
        with self.lock:
            if key not in self.backward_kernels:
                self.backward_kernels[key] = BackwardKernel(m, build.build_backward_library(m, arch))
            return self.backward_kernels[key]

    def value_dim(self, v):
        """Dv of a call: v's last dim, or the manifest's for a quantized v (its last dim counts words)."""
        return self.manifest.value_dim if 'v' in self.manifest.caches else v.shape[3]

    def sizes(self, q, k, block_table=None, kv_len=None):
        """{B, H, Hkv, Nq, Nk} of a call (a paged call's Nk: kv_len, else the block table's capacity)."""
        max_pages = None if block_table is None else block_table.shape[1]
        return call_sizes(q.shape, k.shape, self.manifest.page_size, max_pages, kv_len)

    def outputs_like(self, q, k, v, int_params, out_layout='bhnd', block_table=None, kv_len=None):
        """Empty out (in out_layout: attnc.layout.out_layout), lse, indices, importance (zero-size
        where the kernel writes none; attnc.outputs.output_specs) for these inputs."""
        B, H, Nq = q.shape[0], q.shape[1], q.shape[2]
        Dv = self.value_dim(v)
        if out_layout == 'bnhd':
            out = q.new_empty((B, Nq, H, Dv)).transpose(1, 2)
        else:
            out = q.new_empty((B, H, Nq, Dv))
        specs = output_specs(self.manifest, self.sizes(q, k, block_table, kv_len), int_params)
        return (out,) + tuple(q.new_empty(specs[r].shape, dtype=TORCH_DTYPES[specs[r].dtype]) for r in SIDE_OUTPUTS)

    def run(self, q, k, v, tensors, int_params, float_params, q_offset, k_offset, scale, out_layout='bhnd', out=None, block_table=None, kv_len=None):
        """Runs the kernel; `out` (a [B, H, Nq, Dv] tensor any layout qo_strides takes) is written
        in place when given, else a fresh one in out_layout is. A paged kernel takes k and v as page
        pools [pages, Hkv, P, D], block_table i32 [B, max_pages] and kv_len keys per sequence. A
        kernel over quantized K/V takes the codes as k / v and the caches' other tensors after its
        own tensors in `tensors`, in the order of manifest.cache_keywords(). Returns (out, lse,
        indices, importance), zero-size where the kernel writes none."""
        if block_table is not None:  # rows past B (a table made for a larger batch) are never read
            block_table = block_table[: q.shape[0]]
        fresh, *side = self.outputs_like(q, k, v, int_params, out_layout, block_table, kv_len)
        out = fresh if out is None else out
        B, H, Nq, D = q.shape
        sizes = self.sizes(q, k, block_table, kv_len)
        Hkv, Nk = sizes['Hkv'], sizes['Nk']
        if block_table is not None:
            _check_pages(self.manifest.name, block_table, Nk, k.shape[2], k.shape[0])
        if out.numel() == 0 or Nk == 0:  # nothing to launch (attnc.outputs.unlaunched_values)
            fills = unlaunched_values(sizes)
            for role, t in zip(('out',) + SIDE_OUTPUTS, [out] + side):
                if role in fills:
                    t.fill_(fills[role])
            return (out, *side)
        lse, indices, importance = side
        kern = self.kernel(DTYPE_NAMES[q.dtype], D, self.value_dim(v), q.device)
        m = kern.manifest
        fields = [f['field'] for f in m.fields]
        q, q_strides = _q_readable(q, m.alignment) if takes_qo_strides(fields) else (_readable(q, m.alignment), None)
        out_strides = self._out_strides(m, out, fields)
        if takes_kv_strides(fields) and not m.needs_packed_kv:
            (k, k_strides), (v, v_strides) = _kv_readable(k, m.alignment), _kv_readable(v, m.alignment)
        else:  # a kernel built before K/V strides, a quantized cache, or one whose routing or importance pass reads packed rows
            (k, k_strides), (v, v_strides) = (_readable(k, m.alignment), None), (_readable(v, m.alignment), None)
        pointers = [('q', q), ('k', k), ('v', v), ('out', out)]
        pointers += [('lse', lse)] if m.has_lse else []
        pointers += [('indices', indices)] if m.has_indices else []
        pointers += [('importance', importance)] if m.has_importance else []
        with torch.cuda.device(q.device):
            args = kern.new_args(dict(B=B, H=H, Hkv=Hkv, Nq=Nq, Nk=Nk))
            kern.set_offsets(args, q_offset, k_offset, scale)
            for name, strides in (('k', k_strides), ('v', v_strides)):
                for field, value in zip(KV_STRIDE_FIELDS[name], strides or ()):
                    setattr(args, field, value)
            for name, strides in (('q', q_strides), ('out', out_strides)):
                for field, value in zip(QO_STRIDE_FIELDS[name], strides or ()):
                    setattr(args, field, value)
            ints, floats = iter(int_params), iter(float_params)
            for p in m.params:
                kern.set_param(args, p, next(floats) if p.is_float else next(ints))
            for role, t in pointers:
                kern.set_pointer(args, role, t.data_ptr())
            if block_table is not None:
                block_table = block_table.contiguous()
                kern.set_pointer(args, 'block_table', block_table.data_ptr())
                setattr(args, m.field('max_pages'), block_table.shape[1])
            tensors, caches = [_readable(t, 4) for t in tensors[: len(m.tensors)]], [_readable(t, 16) for t in tensors[len(m.tensors) :]]
            for slot, t in zip(m.tensors, tensors):
                kern.set_pointer(args, 'tensor', t.data_ptr(), slot.name)
            for part, t in zip(m.cache_keywords(), caches):  # quantized caches: k_scale, v_zero, ...
                setattr(args, part.field, t.data_ptr())
            scratch = self._scratch(kern, args, q.device)  # freed after the launch is queued: the allocator orders reuse by stream
            # Staged prefill (quantPrefill 'staged'): the dequantized K/V workspace, internal to this call.
            # Launches below manifest['staged']['minNq'] query rows run fused and need none.
            workspace = _staged_workspace(kern, args, Nq, q.device)
            kern.launch_or_raise(args, torch.cuda.current_stream(q.device).cuda_stream, workspace)
            del workspace
        del scratch
        return out, lse, indices, importance

    @staticmethod
    def _out_strides(m, out, fields):
        """out's strides for the kernel (None: packed); an out it cannot write in place is refused."""
        if not takes_qo_strides(fields):
            if not out.is_contiguous():
                raise ArgumentError(f'{m.name}: this kernel was built before out strides: out must be contiguous [B, H, Nq, Dv]')
            return None
        strides, why = qo_strides('out', tuple(out.shape), out.stride(), out.data_ptr(), m.alignment, out.element_size())
        if strides is None:
            vec = max(1, m.alignment // out.element_size())
            raise ArgumentError(
                f'{m.name}: out (shape {list(out.shape)}, strides {list(out.stride())}) cannot be written in place: '
                + (f'its data must start on {m.alignment} bytes' if why == 'alignment' else
                   f'its last dim must be contiguous, its other strides positive multiples of {vec} elements, its rows disjoint')
            )
        return strides

    @staticmethod
    def _scratch(kern, args, device):
        """The launcher's scratch buffers (per-tensor summaries, routing scratch), pointed to by args."""
        buffers = []
        for name, (elems, dtype) in kern.summary_sizes(args).items():
            buffers.append(torch.empty(elems, dtype=TORCH_DTYPES[dtype], device=device))
            kern.set_pointer(args, 'summary', buffers[-1].data_ptr(), f'{name}_summary')
        elems = kern.route_scratch_size(args)
        if elems is not None:
            buffers.append(torch.empty(elems, dtype=torch.float32, device=device))
            kern.set_pointer(args, 'scratch', buffers[-1].data_ptr())
        return buffers


def _staged_workspace(kern, args, Nq, device):
    """The staged prefill's workspace for this launch, or None (no staged launch, or too few rows)."""
    staged = kern.manifest.data.get('staged')
    nbytes = kern.workspace_size(args)
    if nbytes is None or staged is None or Nq < staged['minNq']:
        return None
    return torch.empty(max(nbytes, 16), dtype=torch.uint8, device=device)


_registered = {}  # op name -> KernelFamily (one op per kernel configuration per process)


def op_name(kernel_name, identity):
    """A valid, unique op name: the kernel's name and a hash of what identifies its builds."""
    stem = re.sub(r'[^0-9A-Za-z_]', '_', kernel_name) or 'kernel'
    return f'{stem}_{hashlib.sha256(identity.encode()).hexdigest()[:16]}'


def register(name, family):
    """The family registered as torch.ops.attnc.<name> (the one registered before under the same
    name, if any) and its op overload."""
    if name in _registered:
        return _registered[name], getattr(torch.ops.attnc, name).default

    def attnc_kernel(
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        tensors: List[torch.Tensor],
        int_params: List[int],
        float_params: List[float],
        q_offset: Optional[int],
        k_offset: Optional[int],
        scale: Optional[float],
        param_grad: Optional[torch.Tensor] = None,
        out_layout: str = 'bhnd',
        block_table: Optional[torch.Tensor] = None,
        kv_len: Optional[int] = None,
    ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        # Returns (out, lse, indices, importance), zero-size where the kernel writes none.
        # param_grad: the f32 params' values as a tensor when some require grad (autograd's handle
        # for their gradients); the kernel reads float_params. tensors: the kernel's tensors, then
        # a quantized kernel's k_scale, v_zero, ... (the staged prefill's workspace is allocated
        # inside run, never an input).
        return family.run(q, k, v, tensors, int_params, float_params, q_offset, k_offset, scale, out_layout, None, block_table, kv_len)

    def fake(q, k, v, tensors, int_params, float_params, q_offset, k_offset, scale, param_grad=None, out_layout='bhnd', block_table=None, kv_len=None):
        return family.outputs_like(q, k, v, int_params, out_layout, block_table, kv_len)

    op = torch.library.custom_op(f'attnc::{name}', attnc_kernel, mutates_args=(), device_types='cuda')
    op.register_fake(fake)

    def attnc_kernel_into(
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        out: torch.Tensor,
        tensors: List[torch.Tensor],
        int_params: List[int],
        float_params: List[float],
        q_offset: Optional[int],
        k_offset: Optional[int],
        scale: Optional[float],
        block_table: Optional[torch.Tensor],
        kv_len: Optional[int],
    ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        _, lse, indices, importance = family.run(q, k, v, tensors, int_params, float_params, q_offset, k_offset, scale, out=out, block_table=block_table, kv_len=kv_len)
        return lse, indices, importance

    def fake_into(q, k, v, out, tensors, int_params, float_params, q_offset, k_offset, scale, block_table, kv_len):
        return family.outputs_like(q, k, v, int_params, 'bhnd', block_table, kv_len)[1:]

    into = torch.library.custom_op(f'attnc::{name}_into', attnc_kernel_into, mutates_args=('out',), device_types='cuda')
    into.register_fake(fake_into)
    if family.manifest.no_backward_reason() is None:
        from ._autograd import register_backward

        register_backward(name, family, op)
    _registered[name] = family
    family.into_op = getattr(torch.ops.attnc, f'{name}_into').default  # attn(..., out=t): writes t in place
    return family, getattr(torch.ops.attnc, name).default


def artifact_family(manifest):
    """A compiled artifact's family: its one build (a .so beside the .cu, no older than it, is used as is)."""
    beside = os.path.join(manifest.directory, manifest.name + '.so')

    def library_for(m, arch):
        if os.path.isfile(beside) and os.path.getmtime(beside) >= os.path.getmtime(m.code_path):
            return beside
        return build.build_library(m, arch)

    return KernelFamily(manifest, lambda dtype, D, Dv, arch: manifest, library_for)


def source_family(manifest, source, source_path, entry, lse, quant_prefill=None, backward_engine=None, decode_lean=None):
    """A source's family: each (dtype, D, Dv, arch) is compiled by the CLI (or found in the cache)."""

    def variant(dtype, D, Dv, arch):
        options = build.BuildOptions(entry, dtype, D, None if Dv == D else Dv, lse, arch.name, quant_prefill=quant_prefill, backward_engine=backward_engine, decode_lean=decode_lean)
        return Manifest.from_file(build.compile_artifact(source, source_path, options))

    return KernelFamily(manifest, variant)
