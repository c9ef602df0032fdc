#!/usr/bin/env python3
"""bench/cuda/check.py with the shared libraries built beforehand (on the CPU machine, with
`-cudart shared`: torch has libcudart loaded already), so the device call spends no time in nvcc.
A library that does not load is rebuilt the usual way. Same arguments as check.py."""
import ctypes
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(HERE, '..', 'cuda'))
import torch  # noqa: E402,F401  (loads libcudart.so for the prebuilt libraries)
import check  # noqa: E402

_build = check.build


def build(build_dir, entry):
    so = os.path.join(build_dir, entry['variant'] + '.so')
    if os.path.exists(so):
        try:
            ctypes.CDLL(so)
            return dict(variant=entry['variant'], ok=True, so=so, seconds=0, log='prebuilt ' + so + '\n')
        except OSError as e:
            print('rebuilding', entry['variant'], e, flush=True)
    return _build(build_dir, entry)


check.build = build
if __name__ == '__main__':
    torch.cuda.init()
    check.main()
