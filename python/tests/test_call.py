"""A call's arguments against a manifest: what is accepted, and the message for each mistake."""
import json
import os
import re

import subprocess

import pytest

from attnc.call import TensorInfo, bind_call, check_interface
from attnc.errors import ArgumentError
from attnc.kernel import ArgsLayout
from attnc.manifest import Manifest
from conftest import CLI, node

GPU = 'cuda:0'


class FakeTensor:
    def __init__(self, shape, dtype='bf16', device=GPU):
        self.info = TensorInfo(shape, dtype, device, is_cuda=device.startswith('cuda'))


def describe(value):
    return value.info if isinstance(value, FakeTensor) else None


def qkv(B=2, H=8, Hkv=2, Nq=100, Nk=120, D=64, Dv=64, dtype='bf16'):
    return dict(
        q=TensorInfo((B, H, Nq, D), dtype, GPU),
        k=TensorInfo((B, Hkv, Nk, D), dtype, GPU),
        v=TensorInfo((B, Hkv, Nk, Dv), dtype, GPU),
    )


def bind(m, infos=None, built=(None, None, None), **named):
    return bind_call(m, infos or qkv(), named, describe, *built)


def fails(message, m, infos=None, built=(None, None, None), **named):
    with pytest.raises(ArgumentError, match='^' + re.escape(message) + '$'):
        bind(m, infos, built, **named)


def test_a_good_call_binds_sizes_params_and_tensors(manifests):
    doc = manifests['document']
    b = bind(doc, doc=FakeTensor((120,), 'i32'))
    assert b.sizes == dict(B=2, H=8, Hkv=2, Nq=100, Nk=120)
    assert (b.dtype, b.head_dim, b.value_dim, b.tensor_names) == ('bf16', 64, 64, ['doc'])
    cap = manifests['softcap']
    assert bind(cap).params == {'cap': 50}  # the default
    b = bind(cap, cap=7.5)
    assert (b.int_params(cap), b.float_params(cap)) == ([], [7.5])
    nsa = manifests['nsa_select']
    assert bind(nsa, top=3).int_params(nsa) == [3]
    step = manifests['recycled_step']
    b = bind(step, infos=qkv(Nq=3), idx=FakeTensor((2, 2, 3, 9), 'i32'), budget=9)
    assert b.int_params(step) == [9, 16]


def test_keyword_mistakes(manifests):
    doc, cap = manifests['document'], manifests['softcap']
    fails("document: unknown argument 'dox' (this kernel takes doc: tensor i32 [Nk])", doc, dox=FakeTensor((120,), 'i32'))
    fails("softcap: unknown argument 'doc' (this kernel takes cap: param f32, default 50)", cap, doc=1)
    fails("causal: unknown argument 'window' (this kernel takes no params or tensors)", _without_params(cap, 'causal'), window=3)
    fails('document: missing tensor doc: i32 [Nk]; pass doc=...', doc)
    fails('document: tensor doc must be i32, got f32', doc, doc=FakeTensor((120,), 'f32'))
    fails('document: tensor doc must have shape [Nk] = [120], got [119]', doc, doc=FakeTensor((119,), 'i32'))
    fails('document: tensor doc is on cpu, q on cuda:0; they must share a device', doc, doc=FakeTensor((120,), 'i32', 'cpu'))
    fails('document: tensor doc must be a tensor i32 [Nk]', doc, doc=[0] * 120)
    f32 = 'softcap: param cap is f32: expected a finite number within f32 range (|x| < 3.4028235e38), got '
    fails(f32 + "str '5'", cap, cap='5')
    fails(f32 + 'bool True', cap, cap=True)
    # What the runtime's paramProblem refuses: values the f32 word cannot hold (NaN, ±inf, and
    # numbers that round to inf in f32); the largest f32 is fine.
    fails(f32 + 'float nan', cap, cap=float('nan'))
    fails(f32 + 'float -inf', cap, cap=float('-inf'))
    fails(f32 + 'float 1e+39', cap, cap=1e39)
    fails(f32 + 'int ' + str(10**400), cap, cap=10**400)
    assert bind(cap, cap=3.4028234e38).float_params(cap) == [3.4028234e38]
    nsa = manifests['nsa_select']
    fails('nsa_select: param top is i32: expected an int, got float 4.0', nsa, top=4.0)
    fails('nsa_select: param top is i32: -2147483649 is outside [-2147483648, 2147483647]', nsa, top=-(2**31) - 1)
    step = manifests['recycled_step']
    fails(
        'recycled_step: tensor idx must have shape [B, Hkv, Nq, budget] = [2, 2, 3, 2048], got [2, 2, 3, 9]',
        step,
        infos=qkv(Nq=3),
        idx=FakeTensor((2, 2, 3, 9), 'i32'),
    )


def _without_params(m, name):
    data = dict(m.data, name=name, params=[], tensors=[])
    data['args'] = dict(m.data['args'], fields=[f for f in m.data['args']['fields'] if f['role'] != 'param'])
    return Manifest(data, m.directory)


def test_a_param_without_default_is_required(artifacts):
    with open(os.path.join(artifacts['softcap'], 'softcap.json')) as f:
        data = json.load(f)
    data['params'][0]['default'] = None
    m = Manifest(data, artifacts['softcap'])
    fails('softcap: param cap (f32) has no default; pass cap=...', m)
    assert bind(m, cap=3).params == {'cap': 3}


def test_qkv_mistakes(manifests):
    cap = manifests['softcap']
    good = qkv()
    fails('softcap: q must be 4-D [B, H, Nq, D], got shape [8, 100, 64]', cap, infos=dict(good, q=TensorInfo((8, 100, 64), 'bf16', GPU)))
    fails('softcap: k must be a tensor [B, Hkv, Nk, D]', cap, infos=dict(good, k=None))
    fails('softcap: v must be on a CUDA device, got cpu', cap, infos=dict(good, v=TensorInfo((2, 2, 120, 64), 'bf16', 'cpu', is_cuda=False)))
    fails('softcap: k is on cuda:1, q on cuda:0; they must share a device', cap, infos=dict(good, k=TensorInfo((2, 2, 120, 64), 'bf16', 'cuda:1')))
    fails('softcap: q, k and v must share a dtype: q is bf16, v is f16', cap, infos=dict(good, v=TensorInfo((2, 2, 120, 64), 'f16', GPU)))
    fails('softcap: q, k, v are float64; attnc kernels take f32, f16, bf16', cap, infos=qkv(dtype='float64'))
    fails('softcap: batch sizes differ: q 2, k 3, v 2', cap, infos=dict(good, k=TensorInfo((3, 2, 120, 64), 'bf16', GPU)))
    fails(
        'softcap: k [2, 2, 120, 64] and v [2, 2, 121, 64] must agree on [B, Hkv, Nk]',
        cap,
        infos=dict(good, v=TensorInfo((2, 2, 121, 64), 'bf16', GPU)),
    )
    fails('softcap: q and k head dims differ: q 64, k 32', cap, infos=dict(good, k=TensorInfo((2, 2, 120, 32), 'bf16', GPU)))
    fails('softcap: q heads H = 8 must be a multiple of k/v heads Hkv = 3 (GQA)', cap, infos=qkv(Hkv=3))
    fails('softcap: q heads H = 8 must be a multiple of k/v heads Hkv = 0 (GQA)', cap, infos=qkv(Hkv=0))


def test_build_options_are_checked(manifests):
    cap = manifests['softcap']
    fails(
        "softcap: this kernel was built for f16, q/k/v are bf16 (pass dtype='f16' to cast them, or load with dtype=None to build per call dtype)",
        cap,
        built=('f16', None, None),
    )
    fails('softcap: this kernel was built for head dim 128, q/k have 64 (load with head_dim=None to build per call)', cap, built=(None, 128, None))
    fails('softcap: this kernel was built for value dim 32, v has 64 (load with value_dim=None to build per call)', cap, built=(None, None, 32))
    b = bind(cap, infos=qkv(D=128, Dv=32, dtype='f16'), built=('f16', 128, 32))
    assert (b.head_dim, b.value_dim) == (128, 32)


def test_a_param_named_like_a_call_argument_is_refused(artifacts):
    with open(os.path.join(artifacts['softcap'], 'softcap.json')) as f:
        data = json.load(f)
    check_interface(Manifest(data, artifacts['softcap']))
    data['params'][0]['name'] = 'dtype'
    message = 'softcap: dtype would be passed by keyword, but attn() takes q, k, v, q_offset, k_offset, scale, dtype, layout, out, block_table, kv_len itself; rename it in the .attn source'
    with pytest.raises(ArgumentError, match='^' + re.escape(message) + '$'):
        check_interface(Manifest(data, artifacts['softcap']))


FLAGGED = """attention flagged(wide: bool = true, w: int = 4, c: f32 = 2.0) {
  mask wide ? (q - k < w) : causal
  score score * c
}
"""


def test_a_bool_param_is_true_or_false_and_travels_as_an_i32_word(tmp_path):
    # The manifest writes a bool param's default as 1 and its args field as an i32: a call takes
    # True/False (as attnc run and the runtime do), and the op passes it with the int params.
    src, out = tmp_path / 'flagged.attn', tmp_path / 'flagged'
    src.write_text(FLAGGED)
    r = subprocess.run([node(), CLI, 'compile', str(src), '--target', 'cuda', '--dim', '64', '--out', str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    m = Manifest.from_file(str(out / 'flagged.json'))
    assert m.param('wide').default is True
    b = bind(m)
    assert (b.params, b.int_params(m), b.float_params(m)) == ({'wide': True, 'w': 4, 'c': 2}, [1, 4], [2.0])
    b = bind(m, wide=False)
    assert (b.int_params(m), b.float_params(m)) == ([0, 4], [2.0])
    fails('flagged: param wide is bool: expected True or False, got int 1', m, wide=1)
    fails('flagged: param wide is bool: expected True or False, got float 0.0', m, wide=0.0)
    layout = ArgsLayout(m)
    args = layout.Args()
    ints, floats = iter(b.int_params(m)), iter(b.float_params(m))
    for p in m.params:  # as the op does (attnc/_ops.py)
        layout.set_param(args, p, next(floats) if p.is_float else next(ints))
    assert (args.wide, args.w, args.c) == (0, 4, 2.0)


def test_a_param_given_as_none_takes_its_default(manifests):
    # cap=None said "param cap (f32) has no default", which softcap's cap has (50).
    assert bind(manifests['softcap'], cap=None).params == {'cap': 50}


def test_a_zero_head_dim_names_q_and_v(manifests):
    # q/k with D = 0 (or v with Dv = 0) reached the build as "head_dim must be a positive int, got 0".
    cap = manifests['softcap']
    fails('softcap: q and k have head dim D = 0 and v has Dv = 64; both must be >= 1', cap, qkv(D=0))
    fails('softcap: q and k have head dim D = 64 and v has Dv = 0; both must be >= 1', cap, qkv(Dv=0))
