#!/bin/bash
# One device call (≤ 90 s): why does qp_int8_full (wgmma-ws, quantized producer) stop with an
# illegal instruction on the H200? Emit first, here:
#   npx tsc -p tsconfig.json && node bench/cuda/qfix-diag-emit.mjs
# then on the GPU (carry bench/build/qfix-diag): bash bench/cuda/qfix-diag.sh
# Out: $OUT/variants.txt (PASS/FAIL/FAULT per variant), ptxas.txt (-Xptxas -v per variant),
# sanitizer.txt (compute-sanitizer memcheck of main's code, bug3d), sass.txt (SASS ±30 lines at the PC).
export PYTHONUNBUFFERED=1
OUT=${OUT:-bench/build/qfix-diag-out}
B=bench/build/qfix-diag
mkdir -p "$OUT"
NVCC=$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)
CUBIN=$(dirname "$NVCC")
nvidia-smi --query-gpu=name,driver_version --format=csv > "$OUT/gpu.txt" 2>&1
"$NVCC" --version | tail -2 >> "$OUT/gpu.txt"
names=$(python3 -c "import json;print(' '.join(e['name'] for e in json.load(open('$B/index.json'))))")
# 1. build every variant (-lineinfo, ptxas verbose), in parallel
t0=$(date +%s)
for n in $names; do
  ( timeout 60 "$NVCC" -O3 -arch=sm_90a -std=c++17 -lineinfo --shared -Xcompiler -fPIC -Xptxas -v \
      -o "$B/$n.so" "$B/$n.cu" > "$B/$n.ptxas" 2>&1 || echo "BUILD FAILED rc=$?" >> "$B/$n.ptxas" ) &
done
wait
echo "built in $(( $(date +%s) - t0 )) s" | tee "$OUT/variants.txt"
for n in $names; do
  echo "== $n"
  grep -v C7519 "$B/$n.ptxas" | grep -A3 -E "entry function '[A-Za-z0-9_]*_attention'|warning|error|FAILED" | grep -vE "^--$" | head -20
  echo "C7519 (warpgroup.arrive injected): $(grep -c C7519 "$B/$n.ptxas")"
done > "$OUT/ptxas.txt"
# 2. each variant in its own process, 4 at a time
printf '%s\n' $names | xargs -P 4 -I{} timeout 40 python3 bench/cuda/qfix-check.py "$B" {} 2>&1 \
  | grep -E "^(PASS|FAIL|FAULT)|Error|error" | sort >> "$OUT/variants.txt"
for n in $names; do grep -q " $n:" "$OUT/variants.txt" || echo "NORESULT $n (timeout or crash)" >> "$OUT/variants.txt"; done
cat "$OUT/variants.txt"
# 3. the bug (main's code) under compute-sanitizer, then the SASS around the faulting PC
SAN=$(command -v compute-sanitizer || ls "$CUBIN"/compute-sanitizer /usr/local/cuda/compute-sanitizer/compute-sanitizer 2>/dev/null | head -1)
if [ -n "$SAN" ]; then
  timeout 45 "$SAN" --tool memcheck --show-backtrace device --print-limit 5 \
    python3 bench/cuda/qfix-check.py "$B" qp_int8_full_bug3d > "$OUT/sanitizer.txt" 2>&1
else
  echo "no compute-sanitizer" > "$OUT/sanitizer.txt"
fi
head -c 6000 "$OUT/sanitizer.txt"
OBJ=$(command -v cuobjdump || echo "$CUBIN/cuobjdump")
"$OBJ" -sass "$B/qp_int8_full_bug3d.so" > "$B/bug3d.sass" 2>&1
# only the attention kernel's function
awk '/Function : .*attention/{p=1} /Function : /&&!/attention/{p=0} p' "$B/bug3d.sass" > "$B/bug3d-attn.sass"
{
  echo "attention kernel SASS lines: $(wc -l < "$B/bug3d-attn.sass")"
  grep -nE "SETMAXNREG|WARPGROUP|HGMMA|BAR\.|ILLEGAL|BPT|TRAP" "$B/bug3d-attn.sass" | head -60
  for pc in $(grep -oE "\+0x[0-9a-f]+" "$OUT/sanitizer.txt" | sort -u | head -3); do
    hex=$(printf '%04x' $((16#${pc#+0x})))
    echo "==== PC $pc"
    grep -n -B30 -A30 "/\*$hex\*/" "$B/bug3d-attn.sass" | head -80
  done
} > "$OUT/sass.txt"
head -c 3000 "$OUT/sass.txt"
gzip -c "$B/bug3d-attn.sass" > "$OUT/bug3d-attn.sass.gz"
cat "$B"/*.ptxas > "$OUT/ptxas-full.txt"
echo "total $(( $(date +%s) - t0 )) s"
