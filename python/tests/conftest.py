"""Pure-Python tests of the attnc package (no torch, no GPU): CI runs them with Debian's python3 and
python3-pytest. Manifests come from the real CLI (node dist/src/cli/main.js, built by `npm run build`)
so they track the compiler; a missing Node or build fails the tests, never skips them."""
import os
import shutil
import subprocess
import sys

import pytest

PYTHON_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPO = os.path.dirname(PYTHON_DIR)
CLI = os.path.join(REPO, 'dist', 'src', 'cli', 'main.js')
sys.path.insert(0, PYTHON_DIR)
sys.dont_write_bytecode = True

# name -> (stdlib file, extra CLI flags): a static mask with a summarized tensor, a float param,
# a routing kernel (indices, scratch), a tensor shaped by a param, an f32 tensor, and no lse;
# --backward where the kernel's backward (or the reason it has none) is under test, on each engine.
KERNELS = {
    'document': ('document.attn', ['--dtype', 'bf16', '--dim', '64']),
    'softcap': ('softcap.attn', ['--dtype', 'f16', '--dim', '128', '--backward', '--backward-engine', 'simt']),
    'softcap_mma': ('softcap.attn', ['--dtype', 'bf16', '--dim', '128', '--backward', '--arch', 'sm_80']),  # sm_80's default
    'causal_wgmma': ('causal.attn', ['--dtype', 'f16', '--dim', '64', '--backward']),  # sm_90a's default
    'nsa_select': ('nsa_select.attn', ['--dtype', 'bf16', '--dim', '64', '--backward']),
    'recycled_step': ('recycled.attn', ['--dtype', 'bf16', '--dim', '64', '--entry', 'recycled_step']),
    'sink_calibration': ('sink_calibration.attn', ['--dtype', 'f32', '--dim', '64', '--backward']),
    'paged_decode': ('paged-decode.attn', ['--dtype', 'bf16', '--dim', '64', '--backward']),
    'document_nolse': ('document.attn', ['--dtype', 'f16', '--dim', '64', '--value-dim', '32', '--no-lse', '--backward']),
}


def node():
    found = shutil.which('node')
    if found is None:
        pytest.fail('node is not on PATH: these tests compile real manifests with the attnc CLI')
    if not os.path.isfile(CLI):
        pytest.fail(f'{CLI} is missing: run `npm run build` first')
    return found


@pytest.fixture(scope='session')
def artifacts(tmp_path_factory):
    """name -> directory holding that kernel's .cu, .h and .json, compiled once per session."""
    exe = node()
    root = tmp_path_factory.mktemp('artifacts')
    dirs = {}
    for name, (file, flags) in KERNELS.items():
        out = root / name
        cmd = [exe, CLI, 'compile', os.path.join(REPO, 'stdlib', file), '--target', 'cuda', '--out', str(out)] + flags
        r = subprocess.run(cmd, capture_output=True, text=True)
        assert r.returncode == 0, f'{" ".join(cmd)}\n{r.stderr}'
        dirs[name] = str(out)
    return dirs


@pytest.fixture
def manifests(artifacts):
    from attnc.build import load_manifest

    return {name: load_manifest(d) for name, d in artifacts.items()}


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A fresh $ATTNC_CACHE."""
    path = tmp_path / 'cache'
    monkeypatch.setenv('ATTNC_CACHE', str(path))
    return str(path)
