"""Calls over quantized K/V caches (`store`, the manifest's `caches`): the codes as k / v, the
caches' other tensors by keyword (k_scale=, v_zero=, ... as the CUDA header names them), each
checked for dtype, device and shape from the manifest alone; the message for each mistake; the
CLI flag BuildOptions(quant_prefill=) passes. Pure Python: manifests from the real CLI."""
import os
import re
import subprocess

import pytest

from attnc.build import BuildOptions, load_manifest
from attnc.call import TensorInfo, bind_call, check_interface
from attnc.errors import ArgumentError, BuildError, ManifestError
from conftest import CLI, REPO, node

GPU = 'cuda:0'
B, H, Hkv, Nq, Nk, D = 2, 8, 2, 40, 77, 128


@pytest.fixture(scope='module')
def quant(tmp_path_factory):
    """kivi (int2, per-channel groups of 32 for K, recent window) and zipcache (salient codes,
    norm), compiled staged; name -> Manifest."""
    exe, root, out = node(), tmp_path_factory.mktemp('quant'), {}
    for name in ('kivi', 'zipcache'):
        cmd = [exe, CLI, 'compile', os.path.join(REPO, 'stdlib', f'{name}.attn'), '--target', 'cuda', '--dim', str(D),
               '--quant-prefill', 'staged', '--out', str(root / name)]  # fmt: skip
        r = subprocess.run(cmd, capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        out[name] = load_manifest(str(root / name))
    return out


def kivi_call(Nk=Nk):
    words = D // 16  # int2: 16 codes a word
    infos = dict(q=TensorInfo((B, H, Nq, D), 'bf16', GPU), k=TensorInfo((B, Hkv, Nk, words), 'i32', GPU), v=TensorInfo((B, Hkv, Nk, words), 'u32', GPU))
    named = dict(
        k_scale=TensorInfo((B, Hkv, -(-Nk // 32), D), 'f16', GPU), k_zero=TensorInfo((B, Hkv, -(-Nk // 32), D), 'f16', GPU),
        k_recent=TensorInfo((B, Hkv, 128, D), 'f16', GPU), v_scale=TensorInfo((B, Hkv, Nk, D // 32), 'f16', GPU),
        v_zero=TensorInfo((B, Hkv, Nk, D // 32), 'f16', GPU), v_recent=TensorInfo((B, Hkv, 128, D), 'f16', GPU),
    )  # fmt: skip
    return infos, named


def bind(m, infos, named):
    return bind_call(m, infos, named, lambda t: t if isinstance(t, TensorInfo) else None)


def fails(message, m, infos, named):
    with pytest.raises(ArgumentError, match='^' + re.escape(message) + '$'):
        bind(m, infos, named)


def test_manifest_lists_each_cache_tensor(quant):
    m = quant['kivi']
    assert [t.field for t in m.caches['k'].tensors] == ['k', 'k_scale', 'k_zero', 'k_recent']
    assert [t.field for t in m.cache_keywords()] == ['k_scale', 'k_zero', 'k_recent', 'v_scale', 'v_zero', 'v_recent']
    assert m.caches['k'].tensors[1].shape(dict(B=2, Hkv=3, Nk=65)) == (2, 3, 3, D)
    z = quant['zipcache']
    assert z.caches['v'].salient == 'salient'
    assert [t.part for t in z.caches['k'].tensors] == ['codes', 'codesHi', 'scale', 'zero', 'norm']
    assert 'k_scale: quantized cache tensor f16 [B, Hkv, cdiv(Nk, 32), 128]' in m.interface_summary()
    assert m.data['staged']['minNq'] > 1


def test_a_quantized_call_binds_with_the_manifest_sizes(quant):
    m = quant['kivi']
    for nk in (Nk, 1, 300):
        bound = bind(m, *kivi_call(nk))
        assert bound.sizes == dict(B=B, H=H, Hkv=Hkv, Nq=Nq, Nk=nk)
        assert (bound.head_dim, bound.value_dim) == (D, D)
        assert bound.cache_names == ['k_scale', 'k_zero', 'k_recent', 'v_scale', 'v_zero', 'v_recent']


def test_quantized_mistakes_name_the_argument(quant):
    m = quant['kivi']
    infos, named = kivi_call()
    fails('kivi: k_zero must be a tensor f16 [B, Hkv, cdiv(Nk, 32), 128] (quantized cache zero)', m, infos, {**named, 'k_zero': None})
    fails('kivi: v_scale must be f16 (quantized cache scale), got bf16', m, infos, {**named, 'v_scale': TensorInfo((B, Hkv, Nk, 4), 'bf16', GPU)})
    fails(
        'kivi: k_scale must have shape [B, Hkv, cdiv(Nk, 32), 128] = [2, 2, 3, 128], got [2, 2, 2, 128]',
        m, infos, {**named, 'k_scale': TensorInfo((B, Hkv, 2, D), 'f16', GPU)},
    )  # fmt: skip
    fails('kivi: k must be i32 or u32 (quantized cache codes), got bf16', m, {**infos, 'k': TensorInfo((B, Hkv, Nk, 8), 'bf16', GPU)}, named)
    fails(
        'kivi: v must have shape [B, Hkv, Nk, 8] = [2, 2, 77, 8], got [2, 2, 77, 128]',
        m, {**infos, 'v': TensorInfo((B, Hkv, Nk, D), 'i32', GPU)}, named,
    )  # fmt: skip
    fails('kivi: v_recent is on cuda:1, q on cuda:0; they must share a device', m, infos, {**named, 'v_recent': TensorInfo((B, Hkv, 128, D), 'f16', 'cuda:1')})
    fails(
        'kivi: this kernel was built for head dim 128, q has 64 (quantized caches fix it: load with head_dim=)',
        m, {**infos, 'q': TensorInfo((B, H, Nq, 64), 'bf16', GPU)}, named,
    )  # fmt: skip
    fails('kivi: k [2, 2, 77, 8] and v [2, 2, 76, 8] must agree on [B, Hkv, Nk]', m, {**infos, 'v': TensorInfo((B, Hkv, Nk - 1, 8), 'i32', GPU)}, named)
    with pytest.raises(ArgumentError, match=r"^kivi: unknown argument 'k_norm' \(this kernel takes k_scale: quantized cache tensor"):
        bind(m, infos, {**named, 'k_norm': TensorInfo((B, Hkv, D), 'f16', GPU)})


def test_zipcache_takes_its_salient_flags_and_wide_codes(quant):
    m = quant['zipcache']
    infos = dict(q=TensorInfo((B, H, Nq, D), 'f16', GPU), k=TensorInfo((B, Hkv, Nk, 8), 'i32', GPU), v=TensorInfo((B, Hkv, Nk, 8), 'i32', GPU))
    named = dict(salient=TensorInfo((B, Hkv, Nk), 'i32', GPU))
    for w in 'kv':
        named.update({f'{w}_codesHi': TensorInfo((B, Hkv, Nk, 16), 'u32', GPU), f'{w}_scale': TensorInfo((B, Hkv, Nk, 1), 'f16', GPU),
                      f'{w}_zero': TensorInfo((B, Hkv, Nk, 1), 'f16', GPU), f'{w}_norm': TensorInfo((B, Hkv, D), 'f16', GPU)})  # fmt: skip
    bound = bind(m, infos, named)
    assert bound.tensor_names == ['salient'] and bound.cache_names[0] == 'k_codesHi'
    fails('zipcache: v_codesHi must have shape [B, Hkv, Nk, 16] = [2, 2, 77, 16], got [2, 2, 77, 8]', m, infos,
          {**named, 'v_codesHi': TensorInfo((B, Hkv, Nk, 8), 'i32', GPU)})  # fmt: skip


def test_a_kernel_tensor_named_like_a_cache_tensor_is_refused(quant):
    m = quant['kivi']
    m.data['tensors'] = []
    from attnc.manifest import TensorSlot

    m.tensors = [TensorSlot('k_scale', 'f32', [])]
    with pytest.raises(ArgumentError, match=r'^kivi: k_scale would be passed by keyword, but attn\(\) takes .*k_scale'):
        check_interface(m)


def test_a_manifest_with_cache_fields_but_no_caches_entry_is_refused(quant):
    from attnc.manifest import Manifest

    data = dict(quant['kivi'].data)
    del data['caches']
    with pytest.raises(ManifestError, match='quantized cache fields but no "caches" entry'):
        Manifest(data, '.', 'old.json')


def test_build_options_pass_quant_prefill():
    args = BuildOptions(quant_prefill='staged').cli_args()
    assert args[args.index('--quant-prefill') + 1] == 'staged'
    assert '--quant-prefill' not in BuildOptions().cli_args()
    assert 'quant_prefill' not in BuildOptions().as_dict()  # other builds' cache keys unchanged
    assert BuildOptions(quant_prefill='fused').as_dict()['quant_prefill'] == 'fused'
    with pytest.raises(BuildError, match="quant_prefill 'tiled': expected 'staged' or 'fused'"):
        BuildOptions(quant_prefill='tiled')


def test_build_options_pass_decode_lean():
    args = BuildOptions(decode_lean='knob').cli_args()
    assert args[args.index('--decode-lean') + 1] == 'knob'
    assert '--decode-lean' not in BuildOptions().cli_args()
    assert 'decode_lean' not in BuildOptions().as_dict()  # other builds' cache keys unchanged
    assert BuildOptions(decode_lean='off').as_dict()['decode_lean'] == 'off'
    with pytest.raises(BuildError, match="decode_lean 'fast': expected 'off', 'knob', 'on'"):
        BuildOptions(decode_lean='fast')


def test_a_cache_tensor_lacking_a_key_is_a_manifest_error(quant):
    import copy

    from attnc.manifest import Manifest

    m = quant['kivi']
    for key in ('field', 'part', 'dtype', 'shape'):
        data = copy.deepcopy(m.data)
        data['caches']['v']['tensors'][1].pop(key)
        with pytest.raises(ManifestError, match=rf'^edited.json \(caches.v\): tensors\[1\] lacks "{key}" \(written by another attnc version\?\)$'):
            Manifest(data, m.directory, 'edited.json')


@pytest.fixture(scope='module')
def paged_quant(tmp_path_factory):
    """KIVI int4 over pages of 64 rows (codes and per-token V scales page by row, K's per-channel
    scales of 32 tokens two rows a page, the recent window per sequence); name -> Manifest."""
    source = (
        'attention pkivi() {\n'
        '  store k int4 scale f16 per channel group 32 zero f16 recent 128 f16\n'
        '  store v int4 scale f16 per token group 32 zero f16 recent 128 f16\n'
        '  cache paged 64\n'
        '}\n'
    )
    root = tmp_path_factory.mktemp('pquant')
    path = root / 'pkivi.attn'
    path.write_text(source)
    cmd = [node(), CLI, 'compile', str(path), '--target', 'cuda', '--dim', str(D), '--out', str(root / 'out')]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return load_manifest(str(root / 'out'))


PAGES, P = 9, 64


def paged_kivi_call():
    words = D // 8  # int4: 8 codes a word
    infos = dict(q=TensorInfo((B, H, 1, D), 'bf16', GPU), k=TensorInfo((PAGES, Hkv, P, words), 'i32', GPU), v=TensorInfo((PAGES, Hkv, P, words), 'u32', GPU))
    named = dict(
        k_scale=TensorInfo((PAGES, Hkv, P // 32, D), 'f16', GPU), k_zero=TensorInfo((PAGES, Hkv, P // 32, D), 'f16', GPU),
        k_recent=TensorInfo((B, Hkv, 128, D), 'f16', GPU), v_scale=TensorInfo((PAGES, Hkv, P, D // 32), 'f16', GPU),
        v_zero=TensorInfo((PAGES, Hkv, P, D // 32), 'f16', GPU), v_recent=TensorInfo((B, Hkv, 128, D), 'f16', GPU),
    )  # fmt: skip
    return infos, named


def bind_paged(m, infos, named, block_table, kv_len=None):
    return bind_call(m, infos, named, lambda t: t if isinstance(t, TensorInfo) else None, block_table=block_table, kv_len=kv_len)


def test_a_paged_quantized_manifest_gives_the_pool_shapes(paged_quant):
    m = paged_quant
    k = {t.part: t for t in m.caches['k'].tensors}
    assert k['codes'].paged_exprs == ['pages', 'Hkv', '64', '16']
    assert k['scale'].paged_shape(dict(pages=5, Hkv=3)) == (5, 3, 2, D)  # a row per 32-token group
    assert k['recent'].paged_exprs is None  # per sequence
    assert m.caches['v'].tensors[1].paged_exprs == ['pages', 'Hkv', '64', '4']
    assert 'k_scale: quantized cache tensor f16 [pages, Hkv, 2, 128]' in m.interface_summary()
    assert 'k_recent: quantized cache tensor f16 [B, Hkv, 128, 128]' in m.interface_summary()


def test_a_paged_quantized_call_binds_pools_and_the_block_table(paged_quant):
    m = paged_quant
    table = TensorInfo((B + 1, 4), 'i32', GPU)  # a row more than B: a table made for a larger batch
    for kv_len, want in ((None, 4 * P), (1, 1), (200, 200)):
        bound = bind_paged(m, *paged_kivi_call(), table, kv_len)
        assert bound.sizes == dict(B=B, H=H, Hkv=Hkv, Nq=1, Nk=want)
        assert bound.max_pages == 4 and bound.cache_names[0] == 'k_scale'


def test_paged_quantized_mistakes_name_the_argument(paged_quant):
    m = paged_quant
    infos, named = paged_kivi_call()
    table = TensorInfo((B, 4), 'i32', GPU)

    def fails_paged(message, infos=infos, named=named, block_table=table, kv_len=None):
        with pytest.raises(ArgumentError, match='^' + re.escape(message) + '$'):
            bind_paged(m, infos, named, block_table, kv_len)

    fails_paged('pkivi: this kernel reads a paged quantized cache: pass block_table= (i32 [B, max_pages] page ids, pages of 64 rows)', block_table=None)
    fails_paged(  # K's scales as a contiguous cache has them
        'pkivi: k_scale must have shape [pages, Hkv, 2, 128] = [9, 2, 2, 128] (a page pool), got [2, 2, 8, 128]',
        named={**named, 'k_scale': TensorInfo((B, Hkv, 8, D), 'f16', GPU)},
    )
    fails_paged(  # the recent window paged like the codes
        'pkivi: v_recent must have shape [B, Hkv, 128, 128] = [2, 2, 128, 128] (per sequence: not paged), got [9, 2, 64, 128]',
        named={**named, 'v_recent': TensorInfo((PAGES, Hkv, P, D), 'f16', GPU)},
    )
    fails_paged('pkivi: v_zero must be a page pool f16 [pages, Hkv, 64, 4] (quantized cache zero)', named={**named, 'v_zero': None})
    fails_paged(
        "pkivi: k and v must be page pools of P = 64 rows (the kernel's page size), got shape [9, 2, 32, 16]",
        infos={**infos, 'k': TensorInfo((PAGES, Hkv, 32, 16), 'i32', GPU), 'v': TensorInfo((PAGES, Hkv, 32, 16), 'i32', GPU)},
    )
    fails_paged('pkivi: k [9, 2, 64, 16] and v [8, 2, 64, 16] must agree on [pages, Hkv, P]', infos={**infos, 'v': TensorInfo((PAGES - 1, Hkv, P, 16), 'i32', GPU)})
    fails_paged('pkivi: kv_len must be an int in [0, max_pages * P] = [0, 256], got 257', kv_len=257)
    fails_paged('pkivi: block_table must be i32 (torch.int32), got i64', block_table=TensorInfo((B, 4), 'i64', GPU))
    fails_paged('pkivi: v must be a 4-D tensor: the page pool of its codes, u32 [pages, Hkv, 64, 16]; got nothing', infos={**infos, 'v': None})
