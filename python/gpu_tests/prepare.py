#!/usr/bin/env python3
"""Compiles every kernel the GPU tests use into python/gpu_tests/.artifacts (the attnc CLI needs
Node, which the GPU machine lacks), plus one CLI --out directory for load_artifact. Run it where
Node is, after `npm run build`; then carry python/gpu_tests/.artifacts to the GPU machine."""
import argparse
import os
import subprocess
import sys

from builds import ARTIFACTS, BUILDS, CACHE, CP_BUILDS, REPO, SOFTCAP_F32_DIR

sys.path.insert(0, os.path.join(REPO, 'python'))
from attnc.build import BuildOptions, compile_artifact, read_source  # noqa: E402
from attnc.distributed_build import compile_cp  # noqa: E402


def main():
    os.chdir(REPO)
    for what, options in BUILDS:
        source, path = read_source(what)
        print(compile_artifact(source, path, BuildOptions(**options), cache=CACHE))
    for what, options in CP_BUILDS:
        print(*compile_cp(what, BuildOptions(**options), cache=CACHE))
    cli = [os.environ.get('NODE', 'node'), os.path.join(REPO, 'dist', 'src', 'cli', 'main.js')]
    subprocess.run(cli + ['compile', 'stdlib/softcap.attn', '--target', 'cuda', '--dtype', 'f32', '--dim', '64', '--backward', '--out', SOFTCAP_F32_DIR], check=True)
    print(f'ready: {ARTIFACTS}')


if __name__ == '__main__':
    # No options: but `prepare.py --help` used to start compiling every kernel instead of answering.
    argparse.ArgumentParser(description=__doc__, prog='python3 python/gpu_tests/prepare.py').parse_args()
    main()
