"""The tensor-core backwards in manifests, without torch or a GPU: `attnc compile --backward` on an
f16/bf16 kernel lists wgmma by default on sm_90a (mma.sync on sm_80), in the kernel's dtype, with the
partials-size function and the dq_acc scratch; attnc.backward sizes the scratch per engine."""
import ctypes

import pytest

from attnc.backward import backward_args_type, scratch_elems, slot_count
from attnc.build import BuildError, BuildOptions
from attnc.errors import ManifestError
from attnc.manifest import Manifest


def test_a_16_bit_sm_80_kernel_gets_the_mma_backward_by_default(manifests):
    m = manifests['softcap_mma']
    b = m.backward
    assert m.no_backward_reason() is None
    assert (b.engine, b.dtype) == ('mma', 'bf16')
    assert b.partials == 'attnc_softcap_backward_partials'
    assert b.grad_params == ['cap'] and slot_count(m, {}) == 1
    with open(m.backward_code_path) as f:
        assert 'mma.sync' in f.read()


def test_wgmma_by_default_on_sm_90a_and_simt_for_f32(manifests):
    w = manifests['causal_wgmma'].backward
    assert (w.engine, w.dtype, w.partials) == ('wgmma', 'f16', 'attnc_causal_backward_partials')
    s = manifests['sink_calibration'].backward
    assert (s.engine, s.dtype, s.partials) == ('simt', 'f32', None)
    assert (manifests['softcap'].backward.engine, manifests['softcap'].backward.dtype) == ('simt', 'f32')


def test_tensor_core_args_hold_the_dq_acc_scratch_in_c_layout(manifests):
    m = manifests['softcap_mma']
    Args = backward_args_type(m)
    names = [name for name, _ in Args._fields_]
    assert names[:14] == ['q', 'k', 'v', 'out', 'dout', 'lse', 'dlse', 'dq', 'dk', 'dv', 'delta', 'dq_acc', 'grads', 'partials']
    assert Args.B.offset == 14 * ctypes.sizeof(ctypes.c_void_p)
    assert Args.p_cap.offset == Args.scale.offset + 4


def test_scratch_sizes_follow_the_engine(manifests):
    rows, D, slots = 2 * 4 * 100, 128, 3
    assert scratch_elems(manifests['softcap_mma'], rows, D, slots, 0) == {'delta': rows, 'dq_acc': rows * D, 'partials': 1}
    assert scratch_elems(manifests['causal_wgmma'], rows, 64, 0, 7)['partials'] == 7
    assert scratch_elems(manifests['softcap'], rows, D, slots, 0) == {'delta': rows, 'partials': rows * slots}
    assert scratch_elems(manifests['softcap'], 0, D, 0, 0) == {'delta': 1, 'partials': 1}


def test_an_unknown_engine_or_a_tensor_core_entry_without_partials_is_named(manifests):
    data = manifests['softcap_mma'].data
    with pytest.raises(ManifestError, match=r"unknown backward engine 'tpu'"):
        Manifest(dict(data, backward=dict(data['backward'], engine='tpu')), '/tmp', 'softcap.json')
    bad = {k: v for k, v in data['backward'].items() if k != 'partials'}
    with pytest.raises(ManifestError, match=r'backward.*lacks "partials"'):
        Manifest(dict(data, backward=bad), '/tmp', 'softcap.json')
    old = {k: v for k, v in manifests['softcap'].data['backward'].items() if k not in ('engine', 'dtype')}
    assert Manifest(dict(data, backward=old), '/tmp', 'softcap.json').backward.engine == 'simt'  # before the field


def test_build_options_pass_the_engine_to_the_cli():
    args = BuildOptions(dtype='f16', backward_engine='wgmma').cli_args()
    assert args[args.index('--backward-engine') + 1] == 'wgmma'
    assert '--backward-engine' not in BuildOptions(dtype='f16').cli_args()
    assert BuildOptions(backward_engine='mma').as_dict()['backward_engine'] == 'mma'
    with pytest.raises(BuildError, match='backward_engine'):
        BuildOptions(backward_engine='tc')
