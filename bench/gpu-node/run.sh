#!/bin/bash
# On the GPU machine: unpacks what bench/gpu-node/pack.sh carried (node, Dawn, the Vulkan loader)
# and runs the given command with NVIDIA's Vulkan driver, e.g.
#   bash bench/gpu-node/run.sh node bench/wgsl/run.mjs --out $OUT/wgsl.json
set -euo pipefail
cd "$(dirname "$0")/../.."
C=.carry
mkdir -p /tmp/gpu-node/bin
[ -x /tmp/gpu-node/bin/node ] || { xz -dc $C/node.xz > /tmp/gpu-node/bin/node; chmod +x /tmp/gpu-node/bin/node; }
[ -f $C/nm/webgpu/dist/linux-x64/dawn.node ] || xz -dk $C/nm/webgpu/dist/linux-x64/dawn.node.xz
[ -e node_modules ] || ln -s $C/nm node_modules
for f in $C/debs/*.deb; do dpkg -x "$f" /; done
ldconfig
export PATH=/tmp/gpu-node/bin:$PATH
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp/xdg-$$}
mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"
"$@"
