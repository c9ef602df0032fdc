"""The op's side outputs from the manifest (attnc.outputs): lse, routing indices and the
`importance` output of heavy_hitter / zipcache-style kernels: which a kernel has, their shapes and
dtypes for a call (paged: Nk is kv_len), what they hold when nothing launches, where the importance
pointer goes in the args struct, and which kernels need packed k/v. Pure Python: manifests from
the real CLI, no torch (the op itself runs in python/gpu_tests/test_importance.py)."""
import ctypes
import os
import subprocess

import pytest

from attnc.build import load_manifest
from attnc.call import TensorInfo, bind_call, check_interface
from attnc.kernel import ArgsLayout
from attnc.outputs import ABSENT, SIDE_OUTPUTS, OutputSpec, call_sizes, output_specs, unlaunched_values
from conftest import CLI, REPO, node

PAGED_IMPORTANCE = """
attention paged_heavy(kept: i32[batch, heads, kv]) {
  cache paged 16
  importance sum
  mask causal && kept[b, h, k] != 0
}
"""
GPU = 'cuda:0'


@pytest.fixture(scope='module')
def imp(tmp_path_factory):
    """heavy_hitter (importance sum, with its backward), zipcache (importance normalized over a
    quantized cache) and a paged kernel with importance; name -> Manifest."""
    exe, root, out = node(), tmp_path_factory.mktemp('importance'), {}
    src = root / 'paged_heavy.attn'
    src.write_text(PAGED_IMPORTANCE)
    builds = {
        'heavy_hitter': (os.path.join(REPO, 'stdlib', 'heavy_hitter.attn'), ['--dim', '64', '--backward']),
        'zipcache': (os.path.join(REPO, 'stdlib', 'zipcache.attn'), ['--dim', '128', '--backward']),
        'paged_heavy': (str(src), ['--dim', '64']),
    }
    for name, (path, flags) in builds.items():
        cmd = [exe, CLI, 'compile', path, '--target', 'cuda', '--out', str(root / name)] + flags
        r = subprocess.run(cmd, capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        out[name] = load_manifest(str(root / name))
    return out


def test_the_manifest_says_which_kernels_have_importance(imp, manifests):
    hh, zc = imp['heavy_hitter'], imp['zipcache']
    assert (hh.has_importance, hh.importance_mode, hh.has_lse) == (True, 'sum', True)
    assert (zc.has_importance, zc.importance_mode) == (True, 'normalized')
    for name in ('document', 'nsa_select', 'paged_decode'):
        assert not manifests[name].has_importance and manifests[name].importance_mode is None
    # heavy_hitter has a backward for out; importance itself gets none (attnc._autograd).
    assert hh.no_backward_reason() is None
    assert 'quantized cache' in zc.no_backward_reason()


def test_importance_kernels_load(imp):
    # They used to be refused here: the op never allocated the output the launcher requires.
    for m in imp.values():
        check_interface(m)


def test_output_specs_give_shape_and_dtype_per_call(imp, manifests):
    sizes = dict(B=2, H=8, Hkv=2, Nq=5, Nk=300)
    hh = output_specs(imp['heavy_hitter'], sizes, [64])  # recent = 64
    assert list(hh) == list(SIDE_OUTPUTS)
    assert hh['importance'] == OutputSpec((2, 8, 300), 'f32')  # per query head, not per kv head
    assert hh['lse'] == OutputSpec((2, 8, 5), 'f32')
    assert hh['indices'] == OutputSpec(ABSENT, 'i32') and not hh['indices'].present
    zc = output_specs(imp['zipcache'], sizes, [])
    assert zc['importance'] == OutputSpec((2, 8, 300), 'f32') and zc['importance'].present
    doc = output_specs(manifests['document'], sizes, [])
    assert doc['importance'] == OutputSpec(ABSENT, 'f32') and not doc['importance'].present
    nsa = manifests['nsa_select']
    top = nsa.param('top').default
    got = output_specs(nsa, dict(sizes, Nq=100), [nsa.param(p.name).default for p in nsa.params if not p.is_float])
    assert got['indices'] == OutputSpec((2, 2, 100, top + 3), 'i32')
    assert got['importance'] == OutputSpec(ABSENT, 'f32')
    nolse = output_specs(manifests['document_nolse'], sizes, [])
    assert nolse['lse'] == OutputSpec(ABSENT, 'f32')


def test_a_paged_call_sizes_importance_by_kv_len(imp):
    m = imp['paged_heavy']
    assert m.page_size == 16 and m.has_importance
    # q [B, H, Nq, D], k a pool [pages, Hkv, P, D]: Nk is kv_len, else max_pages * P.
    sizes = call_sizes((2, 8, 1, 64), (40, 2, 16, 64), m.page_size, max_pages=8, kv_len=100)
    assert sizes == dict(B=2, H=8, Hkv=2, Nq=1, Nk=100)
    assert output_specs(m, sizes, [])['importance'].shape == (2, 8, 100)
    full = call_sizes((2, 8, 1, 64), (40, 2, 16, 64), m.page_size, max_pages=8)
    assert output_specs(m, full, [])['importance'].shape == (2, 8, 128)
    assert call_sizes((2, 8, 3, 64), (2, 2, 77, 64)) == dict(B=2, H=8, Hkv=2, Nq=3, Nk=77)
    # bind_call agrees on the sizes the op allocates by.
    infos = dict(
        q=TensorInfo((2, 8, 1, 64), 'bf16', GPU), k=TensorInfo((40, 2, 16, 64), 'bf16', GPU), v=TensorInfo((40, 2, 16, 64), 'bf16', GPU)
    )
    named = dict(kept=TensorInfo((2, 8, 100), 'i32', GPU))
    bound = bind_call(m, infos, named, lambda t: t, block_table=TensorInfo((2, 8), 'i32', GPU), kv_len=100)
    assert bound.sizes == sizes


def test_a_call_that_launches_nothing_zeroes_importance():
    # No query row: no key gets any mass (normalized: no row sees it); the kernel is not launched,
    # so the op writes the zeros itself. No key: every output of a row is its empty value.
    assert unlaunched_values(dict(B=1, H=2, Hkv=1, Nq=0, Nk=50)) == dict(importance=0.0)
    assert unlaunched_values(dict(B=1, H=2, Hkv=1, Nq=7, Nk=0)) == dict(out=0.0, lse=float('-inf'), indices=-1, importance=0.0)


def test_the_importance_pointer_lands_at_its_manifest_offset(imp):
    m = imp['heavy_hitter']
    layout = ArgsLayout(m)
    args = layout.Args()
    layout.set_pointer(args, 'importance', 0xBEEF0)
    layout.set_pointer(args, 'lse', 0xCAFE0)
    at = {f['field']: f['offset'] for f in m.fields}
    raw = ctypes.string_at(ctypes.addressof(args), ctypes.sizeof(args))
    assert int.from_bytes(raw[at['importance'] : at['importance'] + 8], 'little') == 0xBEEF0
    assert int.from_bytes(raw[at['lse'] : at['lse'] + 8], 'little') == 0xCAFE0


def test_routing_and_importance_kernels_take_packed_kv(imp, manifests):
    # Their passes read keys by packed rows: the launcher refuses other strides, so the op copies.
    assert imp['heavy_hitter'].needs_packed_kv and manifests['nsa_select'].needs_packed_kv
    assert imp['zipcache'].needs_packed_kv  # (quantized: no stride fields, packed anyway)
    # A paged kernel's passes read through the block table; plain kernels take any strides.
    assert not imp['paged_heavy'].needs_packed_kv
    assert not manifests['document'].needs_packed_kv and not manifests['paged_decode'].needs_packed_kv


def test_a_manifest_with_importance_but_no_lse_is_refused(imp):
    from attnc.errors import ManifestError
    from attnc.manifest import Manifest

    m = imp['heavy_hitter']
    data = dict(m.data, args=dict(m.data['args'], fields=[f for f in m.data['args']['fields'] if f['role'] != 'lse']))
    with pytest.raises(ManifestError, match='an importance output but no lse'):
        Manifest(data, m.directory, 'hh.json')
