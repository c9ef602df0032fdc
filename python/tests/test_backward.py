"""The backward side of manifests without torch or a GPU: what `attnc compile --backward` lists
(the backward's .cu, functions, fields, which params and tensors get gradients), the reasons a
kernel has none, and the ctypes args struct and scratch sizes attnc.backward derives from it."""
import ctypes
import os

import pytest

from attnc.backward import backward_args_type, reads_indices, scratch_elems, slot_count, summary_elems
from attnc.errors import ManifestError
from attnc.manifest import Manifest


def test_a_float_param_and_a_float_tensor_get_gradient_slots(manifests):
    softcap, sink = manifests['softcap'], manifests['sink_calibration']
    assert softcap.no_backward_reason() is None and sink.no_backward_reason() is None
    assert softcap.backward.grad_params == ['cap'] and softcap.backward.grad_tensors == []
    assert sink.backward.grad_params == [] and sink.backward.grad_tensors == ['gain']
    assert os.path.isfile(softcap.backward_code_path) and softcap.backward_code_path.endswith('softcap_backward.cu')
    assert softcap.backward.launch == 'attnc_softcap_backward_launch'
    assert softcap.backward.slots == 'attnc_softcap_backward_slots'
    assert slot_count(softcap, {}) == 1
    assert slot_count(sink, {'gain': 12}) == 12


def test_a_routing_kernel_has_a_simt_backward_that_reads_its_indices(manifests):
    nsa, softcap = manifests['nsa_select'], manifests['softcap']
    assert nsa.no_backward_reason() is None  # bf16, yet SIMT: the tensor-core engines refuse routing
    assert nsa.backward.engine == 'simt' and nsa.backward.grad_params == [] and nsa.backward.grad_tensors == []
    assert reads_indices(nsa) and not reads_indices(softcap)
    Args = backward_args_type(nsa)
    names = [name for name, _ in Args._fields_]
    # The forward's indices come back as a pointer after the gradient buffers, then the int32
    # `inverted` scratch (bwd_dkdv's per-id row lists), before the ints.
    assert names[names.index('grads') + 1 :][:2] == ['indices', 'inverted'] and 'p_top' in names
    assert Args.B.offset == 15 * ctypes.sizeof(ctypes.c_void_p)
    assert Args().indices is None


def test_a_routing_kernels_inverted_scratch_is_sized_by_its_library_function(manifests):
    nsa, softcap = manifests['nsa_select'], manifests['softcap']
    assert nsa.backward.inverted == 'attnc_nsa_select_backward_inverted' and softcap.backward.inverted is None
    with open(nsa.backward_code_path) as f:
        assert 'extern "C" long long attnc_nsa_select_backward_inverted(' in f.read()
    # The count comes from the library (passed in); only routing kernels get the buffer.
    assert scratch_elems(nsa, 6, 64, 0, 0, 1234) == {'delta': 6, 'partials': 1, 'inverted': 1234}
    assert scratch_elems(nsa, 6, 64, 0, 0, 0)['inverted'] == 1
    assert 'inverted' not in scratch_elems(softcap, 6, 64, 1, 0, 99)


def test_kernels_without_a_backward_say_why(manifests):
    assert 'lse' in manifests['document_nolse'].no_backward_reason()
    assert manifests['document'].backward is None
    assert 'without --backward' in manifests['document'].no_backward_reason()


def test_backward_args_follow_the_manifest_fields_in_c_layout(manifests):
    m = manifests['softcap']
    Args = backward_args_type(m)
    names = [name for name, _ in Args._fields_]
    assert names == [name for name, _ in m.backward.fields]
    assert names[:7] == ['q', 'k', 'v', 'out', 'lse', 'dlse', 'dout'] and 'p_cap' in names and 'slots' in names
    # Pointers first, then 4-byte ints and floats: C packs them with no padding between.
    assert Args.B.offset == 13 * ctypes.sizeof(ctypes.c_void_p)
    assert Args().dlse is None  # null unless a gradient flows into lse
    assert Args.p_cap.offset == Args.scale.offset + 4
    assert isinstance(Args().p_cap, float)


def test_summary_buffers_hold_a_min_max_pair_per_block():
    assert summary_elems(0, 16) == 2
    assert summary_elems(16, 16) == 2
    assert summary_elems(17, 16) == 4


def test_a_malformed_backward_entry_is_named(artifacts):
    data = Manifest.from_file(os.path.join(artifacts['softcap'], 'softcap.json')).data
    with pytest.raises(ManifestError, match=r'backward.*lacks "launch"'):
        Manifest(dict(data, backward={'available': True, 'code': 'x.cu'}), '/tmp', 'softcap.json')
    with pytest.raises(ManifestError, match=r'"backward" is not an object'):
        Manifest(dict(data, backward=[]), '/tmp', 'softcap.json')
    with pytest.raises(ManifestError, match=r"backward field q has C type 'short'"):
        bad = dict(data['backward'], fields=[{'name': 'q', 'ctype': 'short'}])
        backward_args_type(Manifest(dict(data, backward=bad), '/tmp', 'softcap.json'))
