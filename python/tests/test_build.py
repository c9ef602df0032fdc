"""Builds without a GPU: cache keys, the artifact cache (a logging stand-in for the CLI), the
library cache (a stand-in nvcc), finding the CLI and sources, and the arch table's errors."""
import os
import stat
import subprocess
import sys

import pytest
from conftest import CLI, REPO, node

import attnc.cli
from attnc import build
from attnc.build import ARCHS, BuildOptions, arch_for_capability, artifact_key, compile_artifact, library_key, read_source
from attnc.errors import BuildError
from attnc.manifest import Manifest


def script(path, body):
    path.write_text('#!/bin/sh\n' + body)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path)


def logging_cli(tmp_path):
    """An ATTNC_CLI that logs each call to calls.log and runs the real CLI."""
    log = tmp_path / 'calls.log'
    exe = script(tmp_path / 'attnc-cli', f'echo "$@" >> {log}\nexec {node()} {CLI} "$@"\n')
    return exe, log


def calls(log):
    return log.read_text().splitlines() if log.exists() else []


def test_artifact_keys_are_stable_and_change_with_every_input():
    base = artifact_key('attention a() { mask causal }', BuildOptions())
    assert base == artifact_key('attention a() { mask causal }', BuildOptions(entry=None, dtype='bf16', head_dim=64))
    assert len(base) == 64 and int(base, 16) >= 0
    changed = [
        artifact_key('attention b() { mask causal }', BuildOptions()),
        artifact_key('attention a() { mask causal }', BuildOptions(entry='a')),
        artifact_key('attention a() { mask causal }', BuildOptions(dtype='f16')),
        artifact_key('attention a() { mask causal }', BuildOptions(head_dim=128)),
        artifact_key('attention a() { mask causal }', BuildOptions(value_dim=32)),
        artifact_key('attention a() { mask causal }', BuildOptions(lse=False)),
    ]
    assert len(set(changed + [base])) == len(changed) + 1


def test_library_keys_change_with_code_arch_and_nvcc():
    sm90, other = ARCHS[(9, 0)], build.Arch('sm_80', 'sm_80')
    base = library_key(b'code', sm90, 'nvcc 13.0')
    assert base == library_key(b'code', sm90, 'nvcc 13.0')
    assert len({base, library_key(b'code2', sm90, 'nvcc 13.0'), library_key(b'code', other, 'nvcc 13.0'), library_key(b'code', sm90, 'nvcc 12.8')}) == 4


def test_build_options_are_checked():
    with pytest.raises(BuildError, match=r"dtype 'f64': attnc kernels are built for f32, f16, bf16"):
        BuildOptions(dtype='f64')
    with pytest.raises(BuildError, match=r'head_dim must be a positive int, got 0'):
        BuildOptions(head_dim=0)
    with pytest.raises(BuildError, match=r"value_dim must be a positive int, got '64'"):
        BuildOptions(value_dim='64')
    assert BuildOptions(entry='e', dtype='f16', head_dim=128, value_dim=64, lse=False).cli_args() == [
        '--target', 'cuda', '--dim', '128', '--dtype', 'f16', '--value-dim', '64', '--entry', 'e', '--no-lse',
        '--arch', 'sm_90a',
    ]  # fmt: skip
    assert BuildOptions(dtype='f32').cli_args()[-3:] == ['--backward', '--arch', 'sm_90a']
    assert '--backward' not in BuildOptions(backward=False).cli_args()


def test_build_options_name_a_wrong_kind_of_value_at_once():
    # lse='no' built with lse (bool('no')), entry=3 failed inside subprocess with a TypeError, and
    # an unknown arch passed until cli_args(), listing sm_86 twice.
    with pytest.raises(BuildError, match=r"^lse must be True or False, got 'no'$"):
        BuildOptions(lse='no')
    with pytest.raises(BuildError, match=r'^backward must be True or False, got None$'):
        BuildOptions(backward=None)
    with pytest.raises(BuildError, match=r"^entry must be the name of an attention block \(a str\) or None, got 3$"):
        BuildOptions(entry=3)
    with pytest.raises(BuildError, match=r"^unknown arch 'sm_75'; attnc builds for sm_80, sm_86, sm_89, sm_90a$"):
        BuildOptions(arch='sm_75')
    assert BuildOptions(lse=0, backward=1).as_dict()['lse'] is False  # 0 and 1 stay accepted


def test_an_unwritable_cache_is_a_build_error_naming_it(tmp_path, monkeypatch, capsys):
    from attnc.__main__ import main

    blocker = tmp_path / 'a-file'
    blocker.write_text('')
    bad = str(blocker / 'cache')  # a folder under a file: never creatable, even as root
    source, path = read_source(os.path.join(REPO, 'stdlib', 'softcap.attn'))
    with pytest.raises(BuildError, match=r'^the attnc cache .*a-file/cache/artifacts cannot be written \(Not a directory\); set ATTNC_CACHE'):
        compile_artifact(source, path, BuildOptions(), cache=bad)
    monkeypatch.setenv('ATTNC_CLI', CLI)
    assert main(['compile', 'stdlib/softcap.attn', '--cache', bad]) == 1
    assert capsys.readouterr().err.startswith('error: the attnc cache ')


def test_arch_table_maps_capabilities_and_names_what_this_gpu_lacks():
    assert arch_for_capability(9, 0).nvcc_arch == 'sm_90a'
    assert arch_for_capability(8, 0).cli_args == ('--arch', 'sm_80')
    assert arch_for_capability(8, 7).name == 'sm_86'  # an sm_86 cubin runs on 8.7
    assert arch_for_capability(8, 9).nvcc_arch == 'sm_89'
    with pytest.raises(BuildError) as e:
        arch_for_capability(7, 5)
    assert str(e.value) == (
        'this GPU is sm_75 (compute capability 7.5); attnc builds CUDA kernels for '
        'compute capabilities 8.0, 8.6, 8.7, 8.9, 9.0 (sm_80, sm_86, sm_89, sm_90a)'
    )


def test_the_artifact_cache_compiles_once_and_again_for_a_new_compiler(tmp_path, monkeypatch, cache):
    exe, log = logging_cli(tmp_path)
    monkeypatch.setenv('ATTNC_CLI', exe)
    source, path = read_source(os.path.join(REPO, 'stdlib', 'softcap.attn'))
    options = BuildOptions(dtype='f16', head_dim=64)
    first = compile_artifact(source, path, options)
    assert first.startswith(cache) and Manifest.from_file(first).name == 'softcap'
    assert len(calls(log)) == 1 and '--target cuda --dim 64 --dtype f16' in calls(log)[0]
    assert compile_artifact(source, path, options) == first and len(calls(log)) == 1  # cached
    compile_artifact(source, path, BuildOptions(dtype='f32', head_dim=64))
    assert len(calls(log)) == 2  # another dtype, another artifact
    with open(exe, 'a') as f:
        f.write('# a rebuilt compiler\n')
    assert compile_artifact(source, path, options) == first and len(calls(log)) == 3  # recompiled
    monkeypatch.setattr(build, 'find_cli', lambda cwd=None: (_ for _ in ()).throw(BuildError('no CLI here')))
    assert compile_artifact(source, path, options) == first and len(calls(log)) == 3  # no CLI: the cached one
    with pytest.raises(BuildError, match='no CLI here'):
        compile_artifact(source, path, BuildOptions(dtype='f32', head_dim=128))


def test_source_text_compiles_and_its_diagnostics_name_source_attn(tmp_path, monkeypatch, cache):
    exe, _ = logging_cli(tmp_path)
    monkeypatch.setenv('ATTNC_CLI', exe)
    m = Manifest.from_file(compile_artifact('attention win(w: int = 4) {\n  mask causal && q - k < w\n}\n', None, BuildOptions()))
    assert m.name == 'win' and [p.name for p in m.params] == ['w']
    with pytest.raises(BuildError) as e:
        compile_artifact('attention bad() {\n  mask causal &&\n}\n', None, BuildOptions())
    assert 'attnc compile (source text) failed (exit 1)' in str(e.value)
    assert '--> source.attn:2:17' in str(e.value)
    assert not [n for n in os.listdir(os.path.join(cache, 'artifacts')) if n.startswith('tmp-')]  # no half-written artifact


def fake_nvcc(tmp_path, version='Cuda compilation tools, release 13.0'):
    log = tmp_path / 'nvcc.log'
    body = f'echo "$@" >> {log}\nif [ "$1" = --version ]; then echo "{version}"; exit 0; fi\n'
    body += 'while [ $# -gt 0 ]; do if [ "$1" = -o ]; then echo built > "$2"; fi; shift; done\n'
    return script(tmp_path / 'nvcc', body), log


def test_the_library_cache_runs_nvcc_once_per_code_arch_and_version(tmp_path, monkeypatch, manifests, cache):
    nvcc, log = fake_nvcc(tmp_path)
    monkeypatch.setenv('NVCC', nvcc)
    monkeypatch.setattr(build, '_nvcc_versions', {})
    m = manifests['document']
    so = build.build_library(m, ARCHS[(9, 0)])
    assert so.startswith(os.path.join(cache, 'lib', 'document-')) and so.endswith('.so') and open(so).read() == 'built\n'
    compiles = [c for c in calls(log) if c != '--version']
    assert compiles == [f'-O3 -arch=sm_90a --shared -Xcompiler -fPIC -o {so}.tmp{os.getpid()} {m.code_path}']
    assert build.build_library(m, ARCHS[(9, 0)]) == so and len([c for c in calls(log) if c != '--version']) == 1
    nvcc2, _ = fake_nvcc(tmp_path / '..', version='Cuda compilation tools, release 13.1')
    monkeypatch.setenv('NVCC', nvcc2)
    assert build.build_library(m, ARCHS[(9, 0)]) != so  # another nvcc, another library


def test_nvcc_failures_and_arch_mismatch_are_build_errors(tmp_path, monkeypatch, manifests, cache):
    monkeypatch.setenv('NVCC', script(tmp_path / 'nvcc', 'if [ "$1" = --version ]; then echo v; exit 0; fi\necho "ptxas error: too many registers" >&2\nexit 2\n'))
    monkeypatch.setattr(build, '_nvcc_versions', {})
    with pytest.raises(BuildError) as e:
        build.build_library(manifests['softcap'], ARCHS[(9, 0)])
    assert 'nvcc ' in str(e.value) and 'failed (exit 2)' in str(e.value) and 'ptxas error: too many registers' in str(e.value)
    assert not os.listdir(os.path.join(cache, 'lib')) or all(n.endswith('.lock') for n in os.listdir(os.path.join(cache, 'lib')))
    with pytest.raises(BuildError, match=r'the artifact targets sm_90a, this GPU needs sm_80; recompile it for sm_80'):
        build.build_library(manifests['softcap'], build.Arch('sm_80', 'sm_80'))
    empty = tmp_path / 'empty'
    empty.mkdir()
    monkeypatch.setenv('NVCC', str(empty / 'nvcc'))
    monkeypatch.setenv('PATH', str(empty))
    monkeypatch.setenv('CUDA_HOME', str(empty))
    with pytest.raises(BuildError, match=r'nvcc \(the CUDA toolkit\) was not found: put it on PATH, or set NVCC or CUDA_HOME'):
        build.find_nvcc()


def test_finding_the_cli(tmp_path, monkeypatch):
    monkeypatch.setenv('ATTNC_CLI', CLI)
    cli = attnc.cli.find_cli()
    assert cli.command[1:] == [CLI] and cli.root == REPO and cli.origin == 'ATTNC_CLI'
    monkeypatch.setenv('ATTNC_CLI', str(tmp_path / 'nope.js'))
    with pytest.raises(BuildError, match=r'ATTNC_CLI=.*nope.js: no such file'):
        attnc.cli.find_cli()
    monkeypatch.delenv('ATTNC_CLI')
    monkeypatch.setenv('PATH', str(tmp_path))  # no `attnc`, no `node`
    cli_dir = tmp_path / 'bin'
    cli_dir.mkdir()
    on_path = script(cli_dir / 'attnc', 'exit 0\n')
    monkeypatch.setenv('PATH', str(cli_dir))
    assert attnc.cli.find_cli().command == [on_path]
    monkeypatch.setenv('PATH', str(tmp_path))
    with pytest.raises(BuildError, match=r'the attnc checkout .* needs Node.js \(>= 20\), and `node` is not on PATH'):
        attnc.cli.find_cli()  # the checkout this package sits in, but no node
    monkeypatch.setattr(attnc.cli, 'find_checkout', lambda start: None)
    with pytest.raises(BuildError) as e:
        attnc.cli.find_cli()
    assert str(e.value) == attnc.cli.NO_CLI_HELP
    assert 'ATTNC_CLI' in str(e.value) and 'npm install -g attnc' in str(e.value) and 'load_artifact' in str(e.value)


def test_reading_sources(tmp_path, monkeypatch):
    text = 'attention a() { mask causal }'
    assert read_source(text) == (text, None)
    monkeypatch.chdir(tmp_path)  # outside the checkout: stdlib/ paths resolve in the package's checkout
    source, path = read_source('stdlib/causal.attn')
    assert path == os.path.join(REPO, 'stdlib', 'causal.attn') and 'mask causal' in source
    (tmp_path / 'mine.attn').write_text(text)
    assert read_source('mine.attn') == (text, str(tmp_path / 'mine.attn'))
    with pytest.raises(BuildError, match=r'nope.attn: no such .attn file \(looked in .*\); pass a path or the source text'):
        read_source('nope.attn')


def test_python_m_attnc_compile_fills_the_cache(tmp_path, monkeypatch, capsys, cache):
    from attnc.__main__ import main

    monkeypatch.setenv('ATTNC_CLI', CLI)
    assert main(['compile', 'stdlib/sliding_window.attn', '--dtype', 'f16', '--head-dim', '128']) == 0
    printed = capsys.readouterr().out.strip()
    source, path = read_source('stdlib/sliding_window.attn')
    assert printed == compile_artifact(source, path, BuildOptions(dtype='f16', head_dim=128)) and printed.startswith(cache)
    assert main(['compile', 'stdlib/nope.attn']) == 1
    assert capsys.readouterr().err.startswith('error: stdlib/nope.attn: no such .attn file')


def test_the_pure_modules_import_without_torch():
    code = (
        "import sys; sys.modules['torch'] = None\n"  # any `import torch` now raises
        'import attnc, attnc.build, attnc.call, attnc.cli, attnc.kernel, attnc.manifest, attnc.__main__\n'
        'for name in ("attnc.torch", "attnc.distributed"):\n'
        '    try:\n        __import__(name)\n'
        '    except attnc.errors.MissingTorchError as e:\n        print(type(e).__mro__[2].__name__, e.name, e)\n'
    )
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, cwd=os.path.join(REPO, 'python'))
    assert r.returncode == 0, r.stderr
    # Only the torch layer needs torch, and its error says what to install (a ModuleNotFoundError
    # named 'torch', as callers that catch a missing torch expect), not "import of torch halted".
    lines = r.stdout.splitlines()
    assert [line.split(' needs ')[0] for line in lines] == [
        "ModuleNotFoundError torch attnc.torch",
        "ModuleNotFoundError torch attnc.distributed",
    ]
    assert all('torch >= 2.4' in line and '`pip install torch`' in line for line in lines)


def test_gpu_tests_prepare_answers_help_without_compiling():
    # `prepare.py --help` compiled every GPU-test kernel (minutes) instead of printing its usage.
    prepare = os.path.join(REPO, 'python', 'gpu_tests', 'prepare.py')
    r = subprocess.run([sys.executable, prepare, '--help'], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.startswith('usage: python3 python/gpu_tests/prepare.py'), r
    assert 'Compiles every kernel the GPU tests use' in r.stdout and 'ready:' not in r.stdout  # nothing compiled
    r = subprocess.run([sys.executable, prepare, '--bogus'], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and 'unrecognized arguments: --bogus' in r.stderr


def test_gpu_tests_run_sh_answers_help_without_installing():
    # `run.sh --help` ran `pip install ./python` first, then handed --help to pytest.
    r = subprocess.run(['bash', os.path.join(REPO, 'python', 'gpu_tests', 'run.sh'), '--help'], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.startswith('GPU tests of the attnc Python package'), r
    assert 'prepare.py' in r.stdout and 'set -euo' not in r.stdout and r.stderr == ''
