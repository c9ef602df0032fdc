#!/usr/bin/env bash
# Provides a Mesa >= 24 lavapipe (CPU Vulkan) for Dawn when the machine has no WebGPU adapter.
#
# Why: the `webgpu` package (Dawn) rejects Debian 12's own Mesa 22.3 lavapipe. Mesa 25 lives in
# bookworm-backports. We download its debs with apt (mirror derived from this machine's own apt
# sources — no host is hard-coded), unpack them into a project-local folder (.gpu/mesa) and
# write an ICD json pointing at that libvulkan_lvp.so. Nothing is installed system-wide except
# the Vulkan loader (libvulkan1), which Dawn dlopens.
#
# Idempotent: a second run with the folder present does nothing.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dest="$root/.gpu"
icd="$dest/lvp_icd.json"
if [[ -f "$icd" && -f "$dest/mesa/usr/lib/x86_64-linux-gnu/libvulkan_lvp.so" ]]; then
  echo "setup-lavapipe: already present at $dest"
  exit 0
fi

sudo_cmd=()
[[ $(id -u) -ne 0 ]] && sudo_cmd=(sudo)

# The Vulkan loader (Dawn dlopens libvulkan.so.1) and lavapipe's shared-library dependencies come
# from the system's own suite; only Mesa and libdrm come from backports (below).
system_deps=(libvulkan1 libelf1 libexpat1 libllvm15 libwayland-client0 libx11-xcb1 libxcb-dri3-0
  libxcb-present0 libxcb-randr0 libxcb-shm0 libxcb-sync1 libxcb-xfixes0 libxcb1 libxshmfence1
  libzstd1 zlib1g)
missing=()
for p in "${system_deps[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})); then
  echo "setup-lavapipe: installing ${missing[*]}"
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# Derive the Debian mirror from existing apt sources (deb822 or one-line format).
mirror=""
for f in /etc/apt/sources.list.d/*.sources; do
  [[ -f "$f" ]] || continue
  m=$(awk '/^URIs:/ {print $2}' "$f" | grep -v security | head -n1 || true)
  [[ -n "$m" ]] && { mirror="$m"; break; }
done
if [[ -z "$mirror" && -f /etc/apt/sources.list ]]; then
  mirror=$(awk '/^deb / && $0 !~ /security/ {print $2; exit}' /etc/apt/sources.list || true)
fi
[[ -n "$mirror" ]] || { echo "setup-lavapipe: could not find a Debian mirror in apt sources" >&2; exit 1; }
codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")

# A private apt configuration that only knows <codename>-backports, so the system's lists stay untouched.
work="$dest/apt"
mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$dest/debs"
echo "deb $mirror ${codename}-backports main" > "$work/sources.list"
apt_opts=(-o "Dir::Etc::SourceList=$work/sources.list" -o "Dir::Etc::SourceParts=-"
  -o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache" -o "APT::Get::List-Cleanup=0")
"${sudo_cmd[@]}" apt-get "${apt_opts[@]}" update -qq
(cd "$dest/debs" && "${sudo_cmd[@]}" apt-get "${apt_opts[@]}" download mesa-vulkan-drivers libdrm2 libdrm-amdgpu1 >/dev/null)

rm -rf "$dest/mesa"
for deb in "$dest"/debs/*.deb; do dpkg-deb -x "$deb" "$dest/mesa"; done
lib="$dest/mesa/usr/lib/x86_64-linux-gnu"
[[ -f "$lib/libvulkan_lvp.so" ]] || { echo "setup-lavapipe: libvulkan_lvp.so missing after unpack" >&2; exit 1; }
cat > "$icd" <<JSON
{ "file_format_version": "1.0.0", "ICD": { "library_path": "$lib/libvulkan_lvp.so", "api_version": "1.3.0" } }
JSON
echo "setup-lavapipe: Mesa lavapipe ready ($(ls "$dest"/debs | grep mesa-vulkan)); ICD: $icd"
