"""q and out layouts (attnc.layout.qo_strides, rows_disjoint, out_layout) and the out= checks
(attnc.call.check_out): pure Python, with shapes and element strides as torch reports them; and
the manifests' q/out stride fields."""
import pytest

from attnc.call import TensorInfo, check_out
from attnc.errors import ArgumentError
from attnc.layout import out_layout, qo_strides, rows_disjoint, takes_qo_strides

B, H, N, D = 2, 8, 300, 64
SHAPE = (B, H, N, D)


@pytest.mark.parametrize(
    'what, strides, expected',
    [
        ('contiguous BHND', (H * N * D, N * D, D, 1), (H * N * D, N * D, D)),
        ('BNHD view', (N * H * D, D, H * D, 1), (N * H * D, D, H * D)),
        ('heads first (HBND)', (N * D, B * N * D, D, 1), (N * D, B * N * D, D)),
        ('rows padded to 72', (H * N * 72, N * 72, 72, 1), (H * N * 72, N * 72, 72)),
    ],
)
def test_q_and_out_layouts_read_and_written_in_place(what, strides, expected):
    for role in ('q', 'out'):
        assert qo_strides(role, SHAPE, strides, data_ptr=4096, alignment=16, elem_bytes=2) == (expected, None), what


def test_layouts_the_kernel_cannot_take():
    assert qo_strides('q', SHAPE, (H * N * D, N * D, 1, N), 4096, 16, 2) == (None, 'layout')  # last dim strided
    assert qo_strides('q', SHAPE, (0, N * D, D, 1), 4096, 16, 2) == (None, 'layout')  # expanded over batches
    assert qo_strides('q', SHAPE, (H * N * 68, N * 68, 68, 1), 4096, 16, 2) == (None, 'layout')  # 68 % 8
    assert qo_strides('q', SHAPE, (H * N * D, N * D, D, 1), 4098, 16, 2) == (None, 'alignment')
    # out: rows that overlap (two heads on the same rows) are refused; q may share them (a read).
    overlapping = (H * N * D, 8, D, 1)  # heads 8 elements apart, rows 64 wide
    assert qo_strides('out', SHAPE, overlapping, 4096, 16, 2) == (None, 'layout')
    # Size-1 dims take the packed stride whatever torch reports.
    assert qo_strides('q', (1, 1, N, D), (5, 3, D, 1), 4096, 16, 2) == ((N * D, N * D, D), None)


def test_rows_disjoint():
    assert rows_disjoint((2, 3, 4, 8), (96, 32, 8))
    assert rows_disjoint((2, 3, 4, 8), (12 * 8, 8, 24))  # BNHD
    assert not rows_disjoint((2, 3, 4, 8), (96, 32, 4))  # rows 4 apart, 8 wide
    assert not rows_disjoint((2, 3, 4, 8), (96, 8, 16))  # heads interleave with rows
    assert rows_disjoint((1, 1, 1, 8), (0, 0, 0))  # one row


def test_out_layout_names():
    assert out_layout('k', None) == 'bhnd' and out_layout('k', 'BNHD') == 'bnhd'
    with pytest.raises(ArgumentError, match=r"k: layout='nhd': out comes back as 'bhnd' or 'bnhd'"):
        out_layout('k', 'nhd')


def test_out_argument_checks():
    sizes = dict(B=2, H=4, Hkv=2, Nq=10, Nk=20)
    good = TensorInfo((2, 4, 10, 32), 'bf16', 'cuda:0')
    check_out('k', good, sizes, 'bf16', 32, 'cuda:0')
    with pytest.raises(ArgumentError, match=r'k: out must have shape \[B, H, Nq, Dv\] = \[2, 4, 10, 32\], got \[2, 10, 4, 32\]'):
        check_out('k', TensorInfo((2, 10, 4, 32), 'bf16', 'cuda:0'), sizes, 'bf16', 32, 'cuda:0')
    with pytest.raises(ArgumentError, match=r'k: out must be bf16 like q, got f32'):
        check_out('k', TensorInfo((2, 4, 10, 32), 'f32', 'cuda:0'), sizes, 'bf16', 32, 'cuda:0')
    with pytest.raises(ArgumentError, match=r'k: out is on cuda:1, q on cuda:0'):
        check_out('k', TensorInfo((2, 4, 10, 32), 'bf16', 'cuda:1'), sizes, 'bf16', 32, 'cuda:0')
    with pytest.raises(ArgumentError, match=r'k: out must be a tensor'):
        check_out('k', None, sizes, 'bf16', 32, 'cuda:0')


def test_manifests_carry_q_and_out_strides(manifests):
    for m in manifests.values():
        fields = {f['field']: f for f in m.fields}
        assert takes_qo_strides(fields), m.name
        assert fields['q_stride_n']['ctype'] == 'i64' and fields['out_stride_b']['role'] == 'qo_stride'
