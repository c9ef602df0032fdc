"""Which inputs the kernel reads in place and which are copied first, and the dtype a call runs in
(attnc.layout): pure Python, with shapes and element strides as torch reports them."""
import re

import pytest

from attnc.errors import ArgumentError
from attnc.layout import call_dtype, copy_reason, dtype_name, is_row_major

B, H, N, D = 2, 8, 300, 64
BHND = (B, H, N, D)
BHND_STRIDES = (H * N * D, N * D, D, 1)
BNHD_VIEW_STRIDES = (N * H * D, D, H * D, 1)  # torch.empty(B, N, H, D).transpose(1, 2)


def test_contiguous_bhnd_is_read_in_place():
    assert is_row_major(BHND, BHND_STRIDES)
    assert copy_reason(BHND, BHND_STRIDES, data_ptr=0x7F0000000200, alignment=16) is None
    # Dims of size 1 may have any stride (torch calls these contiguous too), and empty tensors are.
    assert copy_reason((1, 1, N, D), (12345, 7, D, 1), data_ptr=256, alignment=16) is None
    assert copy_reason((B, H, 0, D), (0, 0, 0, 0), data_ptr=3, alignment=16) is None


@pytest.mark.parametrize(
    'what, shape, strides',
    [
        ('a BNHD view', BHND, BNHD_VIEW_STRIDES),
        ('a slice along tokens', (B, H, 100, D), BHND_STRIDES),
        ('k/v expanded over heads', BHND, (N * D, 0, D, 1)),
        ('a last dim that is not contiguous', BHND, (H * N * D * 2, N * D * 2, D * 2, 2)),
        ('a BHDN transpose', BHND, (H * N * D, N * D, 1, N)),
    ],
)
def test_other_layouts_are_copied_to_bhnd(what, shape, strides):
    assert not is_row_major(shape, strides), what
    assert copy_reason(shape, strides, data_ptr=0, alignment=16) == 'layout', what


def test_a_contiguous_view_off_the_alignment_is_cloned():
    assert copy_reason(BHND, BHND_STRIDES, data_ptr=0x1000 + 2, alignment=16) == 'alignment'
    assert copy_reason(BHND, BHND_STRIDES, data_ptr=0x1000 + 32, alignment=16) is None


def test_dtype_names():
    for given, name in [('bf16', 'bf16'), ('bfloat16', 'bf16'), ('torch.bfloat16', 'bf16'), ('half', 'f16'), ('torch.float32', 'f32'), (None, None)]:
        assert dtype_name(given) == name
    message = "dtype 'torch.float64': attnc kernels run in torch.bfloat16, torch.float16 or torch.float32 (or None)"
    with pytest.raises(ArgumentError, match='^' + re.escape(message) + '$'):
        dtype_name('torch.float64')


def test_per_call_dtype_casts_only_what_differs():
    assert call_dtype('causal', None, 'bf16', ['f32', 'f32', 'f32']) is None  # check_qkv names the mismatch
    assert call_dtype('causal', 'bf16', None, ['bf16', 'bf16', 'bf16']) is None  # nothing to cast
    assert call_dtype('causal', 'bf16', None, ['f32', 'f32', 'f32']) == 'bf16'
    assert call_dtype('causal', 'f16', 'f16', ['f32', 'f16', 'bf16']) == 'f16'  # mixed inputs: all cast
    message = "causal: dtype='f16' asked of a kernel built for bf16 (pass dtype=None, or load with dtype=None to build per call dtype)"
    with pytest.raises(ArgumentError, match='^' + re.escape(message) + '$'):
        call_dtype('causal', 'f16', 'bf16', ['f16', 'f16', 'f16'])


# K/V read in place through the kernels' strides (attnc.layout.kv_strides).
from attnc.layout import kv_strides, takes_kv_strides  # noqa: E402


@pytest.mark.parametrize(
    'what, shape, strides, expected',
    [
        ('contiguous BHND', BHND, BHND_STRIDES, BHND_STRIDES[:3]),
        ('a BNHD view', BHND, BNHD_VIEW_STRIDES, BNHD_VIEW_STRIDES[:3]),
        ('a preallocated cache of capacity 4096 sliced to 300 tokens', BHND, (H * 4096 * D, 4096 * D, D, 1), (H * 4096 * D, 4096 * D, D)),
        ('size-1 dims take the packed stride', (1, 1, N, D), (12345, 7, D, 1), (N * D, N * D, D)),
    ],
)
def test_kv_layouts_read_in_place(what, shape, strides, expected):
    assert kv_strides(shape, strides, data_ptr=0x1000, alignment=16, elem_bytes=2) == (expected, None), what


@pytest.mark.parametrize(
    'what, shape, strides, data_ptr, reason',
    [
        ('a last dim that is not contiguous', BHND, (H * N * D * 2, N * D * 2, D * 2, 2), 0, 'layout'),
        ('a BHDN transpose', BHND, (H * N * D, N * D, 1, N), 0, 'layout'),
        ('rows that overlap', BHND, (H * N * D, N * D, 0, 1), 0, 'layout'),
        ('a stride off the 8-element vector width', (B, H, N, 60), (H * N * 60, N * 60, 60, 1), 0, 'layout'),
        ('a negative stride', BHND, (H * N * D, -N * D, D, 1), 0, 'layout'),
        ('k/v expanded over heads (stride 0)', BHND, (N * D, 0, D, 1), 0, 'layout'),
        ('data off the alignment', BHND, BHND_STRIDES, 0x1000 + 2, 'alignment'),
    ],
)
def test_kv_layouts_copied(what, shape, strides, data_ptr, reason):
    assert kv_strides(shape, strides, data_ptr=data_ptr, alignment=16, elem_bytes=2) == (None, reason), what


def test_kernels_without_stride_fields_copy_as_before():
    assert takes_kv_strides(['q', 'k', 'v', 'k_stride_b', 'k_stride_h', 'k_stride_n', 'v_stride_b', 'v_stride_h', 'v_stride_n'])
    assert not takes_kv_strides(['q', 'k', 'v', 'out', 'B'])
