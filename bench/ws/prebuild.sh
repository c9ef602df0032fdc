#!/bin/bash
# Builds every .cu of a bench build dir into <variant>.so (libcudart shared) here, on the CPU
# machine: bench/ws/prebuild.sh bench/build/cuda-ws [jobs]
D=${1:-bench/build/cuda-ws}
J=${2:-2}
# (skips libraries newer than their .cu)
for f in $D/*.cu; do [ "${f%.cu}.so" -nt "$f" ] || echo $f; done | xargs -P $J -I{} sh -c 'so=${1%.cu}.so; /usr/local/cuda/bin/nvcc -O3 -arch=sm_90a --shared -Xcompiler -fPIC -cudart shared -Xptxas -v -o $so $1 > ${1%.cu}.ptxas.log 2>&1 || echo "FAILED $1"' _ {}
grep -H -A1 "Function properties for .*_attention" $D/*.ptxas.log | grep spill | sed 's/.ptxas.log-//' | awk '{print $1, $5, $6, $7, $8, $9, $10, $11}'
