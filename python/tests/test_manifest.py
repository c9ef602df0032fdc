import ctypes
import json
import os
import struct

import pytest

from attnc.errors import ArgumentError, ManifestError
from attnc.kernel import ArgsLayout
from attnc.manifest import Manifest, find_manifest


def test_interface_of_real_manifests(manifests):
    doc = manifests['document']
    assert (doc.name, doc.dtype, doc.head_dim, doc.value_dim, doc.arch) == ('document', 'bf16', 64, 64, 'sm_90a')
    assert [(t.name, t.dtype, t.dim_names()) for t in doc.tensors] == [('doc', 'i32', ['Nk'])]
    assert doc.params == [] and doc.has_lse and not doc.has_indices
    assert doc.summary_functions == {'doc': 'attnc_document_summary_elems_doc'}
    assert doc.route_scratch_function is None
    assert os.path.isfile(doc.code_path) and doc.code_path.endswith('document.cu')
    cap = manifests['softcap']
    assert [(p.name, p.dtype, p.default) for p in cap.params] == [('cap', 'f32', 50)]
    assert (cap.dtype, cap.head_dim) == ('f16', 128)
    nolse = manifests['document_nolse']
    assert not nolse.has_lse and (nolse.head_dim, nolse.value_dim) == (64, 32)


def test_routing_indices_shape(manifests):
    nsa = manifests['nsa_select']
    assert nsa.has_indices and nsa.route_scratch_function == 'attnc_nsa_select_route_scratch_elems'
    sizes = dict(B=2, H=8, Hkv=2, Nq=100, Nk=300)
    top = nsa.param('top').default
    assert nsa.indices_shape(sizes, {'top': top}) == (2, 2, 100, top + 3)
    assert nsa.indices_shape(sizes, {'top': 5}) == (2, 2, 100, 8)


def test_tensor_shaped_by_a_param(manifests):
    step = manifests['recycled_step']
    idx = next(t for t in step.tensors if t.name == 'idx')
    assert idx.dim_names() == ['B', 'Hkv', 'Nq', 'budget']
    assert idx.shape(dict(B=1, H=4, Hkv=2, Nq=3, Nk=50), {'budget': 7, 'stride': 16}) == (1, 2, 3, 7)
    assert idx.describe() == 'i32 [B, Hkv, Nq, budget]'


@pytest.mark.parametrize('name', ['document', 'softcap', 'nsa_select', 'recycled_step', 'sink_calibration', 'document_nolse'])
def test_ctypes_struct_matches_manifest_offsets(manifests, name):
    m = manifests[name]
    layout = ArgsLayout(m)
    assert ctypes.sizeof(layout.Args) == m.struct_bytes
    for f in m.fields:
        assert getattr(layout.Args, f['field']).offset == f['offset']


def _bytes_at(args, offset, fmt):
    raw = ctypes.string_at(ctypes.addressof(args), ctypes.sizeof(args))
    return struct.unpack_from(fmt, raw, offset)[0]


def _offset(m, name):
    return next(f['offset'] for f in m.fields if f['name'] == name)


def test_values_land_at_the_manifest_offsets(manifests):
    m = manifests['nsa_select']
    layout = ArgsLayout(m)
    args = layout.Args()
    layout.set_param(args, m.param('top'), 11)
    layout.set_offsets(args, q_offset=-5, k_offset=30, scale=0.25)
    layout.set_pointer(args, 'indices', 0xABC0)
    assert _bytes_at(args, _offset(m, 'top'), '<i') == 11
    assert _bytes_at(args, _offset(m, 'q_offset'), '<i') == -5
    assert _bytes_at(args, _offset(m, 'k_offset'), '<i') == 30
    assert _bytes_at(args, _offset(m, 'scale'), '<f') == 0.25
    assert _bytes_at(args, _offset(m, 'indices'), '<Q') == 0xABC0
    cap = manifests['softcap']
    layout = ArgsLayout(cap)
    args = layout.Args()
    layout.set_param(args, cap.param('cap'), 7.5)
    assert _bytes_at(args, _offset(cap, 'cap'), '<f') == 7.5


def test_param_and_offset_values_are_checked(manifests):
    m = manifests['nsa_select']
    layout = ArgsLayout(m)
    args = layout.Args()
    with pytest.raises(ArgumentError, match=r'nsa_select: param top is i32: expected an int, got float 2.5'):
        layout.set_param(args, m.param('top'), 2.5)
    with pytest.raises(ArgumentError, match=r'nsa_select: param top is i32: 2147483648 is outside \[-2147483648, 2147483647\]'):
        layout.set_param(args, m.param('top'), 2**31)
    with pytest.raises(ArgumentError, match=r'nsa_select: q_offset must be an int in the i32 range, got 1.5'):
        layout.set_offsets(args, q_offset=1.5)
    with pytest.raises(ArgumentError, match=r"nsa_select: scale must be a finite number within f32 range, got str '1'"):
        layout.set_offsets(args, scale='1')
    with pytest.raises(ArgumentError, match=r'nsa_select: scale must be a finite number within f32 range, got float nan'):
        layout.set_offsets(args, scale=float('nan'))
    with pytest.raises(ArgumentError, match=r'nsa_select: scale must be a finite number within f32 range, got float 1e\+39'):
        layout.set_offsets(args, scale=1e39)


def _edited(artifacts, tmp_path, name, edit):
    with open(os.path.join(artifacts[name], name + '.json')) as f:
        data = json.load(f)
    edit(data)
    path = tmp_path / 'edited.json'
    path.write_text(json.dumps(data))
    return str(path)


def test_manifest_errors_name_the_file_and_the_key(artifacts, tmp_path):
    path = _edited(artifacts, tmp_path, 'document', lambda d: d['args'].pop('fields'))
    with pytest.raises(ManifestError, match=r'edited.json: the manifest lacks "args.fields" \(written by another attnc version\?\)'):
        Manifest.from_file(path)
    path = _edited(artifacts, tmp_path, 'document', lambda d: d.update(target='wgsl'))
    with pytest.raises(ManifestError, match=r"edited.json: not a CUDA manifest \(target 'wgsl'\)"):
        Manifest.from_file(path)
    path = _edited(artifacts, tmp_path, 'document', lambda d: d['args']['fields'][1].update(offset=4))
    with pytest.raises(ManifestError, match=r'field k is at offset 8 in ctypes, 4 in the manifest'):
        ArgsLayout(Manifest.from_file(path))
    path = _edited(artifacts, tmp_path, 'document', lambda d: d['args']['fields'][1].update(ctype='i128'))
    with pytest.raises(ManifestError, match=r"field k has ctype 'i128' \(known: ptr, i32, u32, i64, u64, f32, f64\)"):
        ArgsLayout(Manifest.from_file(path))
    path = _edited(artifacts, tmp_path, 'document', lambda d: d['args'].update(bytes=96))
    with pytest.raises(ManifestError, match=r'the args struct is 184 bytes in ctypes, 96 in the manifest'):
        ArgsLayout(Manifest.from_file(path))
    path = _edited(artifacts, tmp_path, 'document', lambda d: d['params'].append({'dtype': 'i32'}))
    with pytest.raises(ManifestError, match=r'edited.json: params\[0\] lacks "name" \(written by another attnc version\?\)'):
        Manifest.from_file(path)
    path = _edited(artifacts, tmp_path, 'document', lambda d: d['args']['fields'][2].pop('role'))
    with pytest.raises(ManifestError, match=r'edited.json: args.fields\[2\] lacks "role"'):
        Manifest.from_file(path)
    path = _edited(artifacts, tmp_path, 'document', lambda d: d['tensors'][0].pop('dims'))
    with pytest.raises(ManifestError, match=r'edited.json: tensors\[0\] lacks "dims"'):
        Manifest.from_file(path)
    path = _edited(artifacts, tmp_path, 'document', lambda d: d['params'].append({'name': 'x', 'dtype': 'f64'}))
    with pytest.raises(ManifestError, match=r"edited.json: param x has dtype 'f64' \(known: i32, f32, bool\)"):
        Manifest.from_file(path)
    bad = tmp_path / 'bad.json'
    bad.write_text('{')
    with pytest.raises(ManifestError, match=r'bad.json: not JSON'):
        Manifest.from_file(str(bad))
    with pytest.raises(ManifestError, match=r'cannot read the manifest'):
        Manifest.from_file(str(tmp_path / 'missing.json'))


def test_find_manifest_in_a_directory(artifacts, tmp_path):
    assert find_manifest(artifacts['softcap']).endswith('softcap.json')
    with pytest.raises(ManifestError, match=r'no CUDA manifest \(expected the output directory of `attnc compile --target cuda`\)'):
        find_manifest(str(tmp_path))
    for name in ('a', 'b'):
        with open(os.path.join(artifacts['softcap'], 'softcap.json')) as f:
            (tmp_path / f'{name}.json').write_text(f.read())
    with pytest.raises(ManifestError, match=r'2 manifests \(a.json, b.json\); name one'):
        find_manifest(str(tmp_path))
    with pytest.raises(ManifestError, match=r'no such file or directory'):
        find_manifest(str(tmp_path / 'nope'))


def test_a_tensor_dim_or_cache_tensor_lacking_a_key_is_named(artifacts, tmp_path):
    # These were KeyErrors ('kind', 'part') from deep inside a call's checks.
    path = _edited(artifacts, tmp_path, 'document', lambda d: d['tensors'][0]['dims'][0].pop('kind'))
    with pytest.raises(ManifestError, match=r'edited.json: tensor doc: dims\[0\] lacks "kind" \(written by another attnc version\?\)'):
        Manifest.from_file(path)
    path = _edited(artifacts, tmp_path, 'document', lambda d: d['tensors'][0]['dims'][0].pop('name'))
    with pytest.raises(ManifestError, match=r'edited.json: tensor doc: dims\[0\] lacks "name"'):
        Manifest.from_file(path)
    path = _edited(artifacts, tmp_path, 'document', lambda d: d['tensors'][0]['dims'][0].update(kind='volume'))
    with pytest.raises(ManifestError, match=r"edited.json: tensor doc: unknown dim kind 'volume'"):
        Manifest.from_file(path)


@pytest.mark.parametrize('edit, message', [
    # These were TypeErrors at call time ('<' between str and int, 'int' object is not iterable).
    (lambda d: d['args']['fields'][1].update(offset='x'), r'"args.fields\[1\].offset" is \'x\', expected an integer'),
    (lambda d: d['functions'].update(summaryElems=7), r'"functions.summaryElems" is 7, expected an object of strings'),
    (lambda d: d['args'].update(bytes=True), r'"args.bytes" is True, expected an integer'),
    (lambda d: d['schedule'].update(headDim='64'), r'"schedule.headDim" is \'64\', expected an integer'),
    (lambda d: d['tensors'][0]['dims'][0].update(name=3), r'"tensors\[0\].dims\[0\].name" is 3, expected a string'),
    (lambda d: d['params'].append({'name': 'p', 'dtype': 'i32', 'default': 'big'}), r'"params\[0\].default" is \'big\', expected a number or null'),
])
def test_wrong_typed_values_are_named_by_key_path_at_load(artifacts, tmp_path, edit, message):
    path = _edited(artifacts, tmp_path, 'document', edit)
    with pytest.raises(ManifestError, match=r'edited.json: ' + message + r' \(written by another attnc version\?\)'):
        Manifest.from_file(path)


def test_wrong_typed_backward_and_cache_values_are_named(artifacts, tmp_path):
    path = _edited(artifacts, tmp_path, 'softcap', lambda d: d['backward'].update(gradParams='cap'))
    with pytest.raises(ManifestError, match=r'"backward.gradParams" is \'cap\', expected a list of strings'):
        Manifest.from_file(path)
    path = _edited(artifacts, tmp_path, 'paged_decode', lambda d: d['paged'].update(pageSize=None))
    with pytest.raises(ManifestError, match=r'"paged.pageSize" is None, expected an integer'):
        Manifest.from_file(path)
