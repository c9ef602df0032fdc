#!/usr/bin/env bash
# System packages the test suite needs, installed only when missing (runs before `npm test`):
# tmux (the REPL tests type into a real terminal), g++ (host builds of the CUDA tests), Debian's chromium (the browser example runs in
# it), and a Mesa >= 24 lavapipe for WebGPU on machines without a GPU. nvcc cannot come from
# Debian's repositories: it must be on PATH (it is on the CI machine image).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
sudo_cmd=()
[[ $(id -u) -ne 0 ]] && sudo_cmd=(sudo)
missing=()
[[ -x /usr/bin/chromium ]] || missing+=(chromium)
command -v tmux >/dev/null || missing+=(tmux)
# The CUDA tests build host programs (CPU emulator, launcher checks) with g++; nvcc needs it too.
command -v g++ >/dev/null || missing+=(g++)
/usr/bin/python3 -c 'import pytest' 2>/dev/null || missing+=(python3-pytest) # python/tests (the Python package's pure tests)
# pyflakes: undefined names in the torch-side code (python/attnc/_autograd.py, gpu_tests) that CI
# cannot import without torch — round 19's NameError in the backward's setup_context was one.
/usr/bin/python3 -c 'import pyflakes' 2>/dev/null || missing+=(python3-pyflakes)
if ((${#missing[@]})); then
  echo "setup-system: installing ${missing[*]}"
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
fi
bash "$root/scripts/setup-lavapipe.sh" >/dev/null
export PATH="$PATH:/usr/local/cuda/bin"
command -v nvcc >/dev/null || echo "setup-system: warning: nvcc not on PATH; the CUDA compile tests will fail" >&2
