#!/bin/bash
# Packs what WGSL benchmarks need on the GPU machine (which has no Node and no internet) into
# .carry/ (git-ignored): an xz'd node binary, the runtime's node_modules (webgpu with Dawn for
# linux-x64 only, chevrotain, lodash-es), and the Vulkan/GL loader debs Dawn dlopens. Carry `.carry`
# and `dist` in the device call, then run `bash bench/gpu-node/run.sh CMD...` there.
#   npm run build && bash bench/gpu-node/pack.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
C=.carry
mkdir -p $C/nm/webgpu/dist/linux-x64 $C/debs
[ -f $C/node.xz ] || xz -T2 -6 -c "$(command -v node)" > $C/node.xz
cp node_modules/webgpu/{index.js,package.json} $C/nm/webgpu/
[ -f $C/nm/webgpu/dist/linux-x64/dawn.node.xz ] || xz -T2 -6 -c node_modules/webgpu/dist/linux-x64/dawn.node > $C/nm/webgpu/dist/linux-x64/dawn.node.xz
for p in chevrotain @chevrotain lodash-es; do rm -rf "$C/nm/$p"; cp -r "node_modules/$p" "$C/nm/$p"; done
if ! ls $C/debs/libvulkan1_*.deb >/dev/null 2>&1; then
  (cd $C/debs && apt-get download libvulkan1 libglvnd0 libglx0 libgl1 libegl1 libopengl0 libgles2 libx11-6 \
    libx11-data libxext6 libxcb1 libxau6 libxdmcp6 libbsd0 libmd0)
fi
du -sh $C dist
