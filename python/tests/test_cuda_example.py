"""examples/cuda/run.py's flags and errors, which need neither torch nor a GPU to check: --help,
a missing --build folder, and no PyTorch are one-line messages with exit status 2, not a traceback
from `import torch` (it ran before the arguments were read) or a ManifestError from inside a load."""
import os
import subprocess
import sys

from conftest import REPO

RUN = os.path.join(REPO, 'examples', 'cuda', 'run.py')


def run(*args, no_torch=False):
    """run.py with `args`; no_torch: as if PyTorch were not installed (whether or not it is here)."""
    code = (
        'import runpy, sys\n'
        + ("sys.modules['torch'] = None\n" if no_torch else '')
        + f'sys.argv = [{RUN!r}] + {list(args)!r}\n'
        + f'runpy.run_path({RUN!r}, run_name="__main__")\n'
    )
    return subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, cwd=REPO)


def test_help_needs_no_torch():
    r = run('--help', no_torch=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith('usage:') and '--build' in r.stdout


def test_a_missing_build_folder_is_named_before_any_gpu_work(tmp_path):
    r = run('--build', str(tmp_path / 'nowhere'), no_torch=True)
    assert r.returncode == 2
    assert r.stderr.strip() == (
        f'run.py: {tmp_path / "nowhere" / "document.json"} is missing: run `bash examples/cuda/emit.sh` '
        'where Node is and bring examples/cuda/build here (or pass --build DIR)'
    )


def test_no_pytorch_is_a_one_line_error(tmp_path):
    for name in ('document', 'softcap', 'sink_calibration'):
        (tmp_path / f'{name}.json').write_text('{}')
    r = run('--build', str(tmp_path), no_torch=True)
    assert r.returncode == 2
    assert r.stderr.startswith('run.py: needs PyTorch with CUDA (import torch failed: ')
    assert len(r.stderr.strip().splitlines()) == 1
