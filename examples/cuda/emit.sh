#!/usr/bin/env bash
# Writes the CUDA artifacts that run.py loads (.cu, .h, .json manifest per kernel) into
# examples/cuda/build/ with the attnc CLI. Runs where Node is (the GPU machine has none):
#   npm run build && bash examples/cuda/emit.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
out=examples/cuda/build
rm -rf "$out"
attnc() { node dist/src/cli/main.js "$@"; }
# One kernel per storage dtype; each name is one .cu/.so.
attnc compile stdlib/document.attn --target cuda --dtype bf16 --dim 128 --out "$out"
attnc compile stdlib/softcap.attn --target cuda --dtype f16 --dim 64 --out "$out"
attnc compile stdlib/sink_calibration.attn --target cuda --dtype f32 --dim 64 --out "$out"
