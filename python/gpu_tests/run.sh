#!/usr/bin/env bash
# GPU tests of the attnc Python package, on a CUDA machine with torch, pip, setuptools and pytest:
# installs ./python (no build isolation, no deps: works offline) and runs python/gpu_tests against
# a float64 torch reference. Writes gpu-tests.txt and gpu-tests.xml to $OUT when it is set.
# Arguments, if any, replace the test selection (e.g. `run.sh test_cp.py test_cp_transport.py`).
# Where Node is, first:  npm run build && python3 python/gpu_tests/prepare.py
# (compiles the tests' kernels into python/gpu_tests/.artifacts; carry that directory along).
set -euo pipefail
# --help: these lines, before anything is installed (it went to pip install, then to pytest).
if [[ "${1:-}" == -h || "${1:-}" == --help ]]; then
  sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
  exit 0
fi
cd "$(dirname "$0")/../.."
export PATH="$PATH:/usr/local/cuda/bin"
python3 -m pip install --no-build-isolation --no-deps --quiet ./python
export ATTNC_CACHE="$PWD/python/gpu_tests/.artifacts/cache"
[[ -d "$ATTNC_CACHE" ]] || echo "run.sh: warning: $ATTNC_CACHE is missing (run prepare.py where Node is); loads need the attnc CLI" >&2
out="${OUT:-$(mktemp -d)}"
mkdir -p "$out"
# Run from python/gpu_tests' parent with the installed package (not the source tree) on sys.path.
cd python/gpu_tests
set +e
python3 -m pytest "${@:-.}" -v -p no:cacheprovider --junitxml="$out/gpu-tests.xml" 2>&1 | tee "$out/gpu-tests.txt"
status=${PIPESTATUS[0]}
set -e
python3 -c 'import attnc, torch; print(f"attnc {attnc.__file__}, torch {torch.__version__}, {torch.cuda.get_device_name()}")' | tee -a "$out/gpu-tests.txt"
exit "$status"
