#!/usr/bin/env bash
# Step 1 of the GPU recipe (bench/README.md): run on an x86-64 Linux machine where this checkout is
# set up (bash scripts/setup.sh). Packs into .gpu-bundle/ everything bench/gpu/run.sh needs on a
# Linux machine with an NVIDIA GPU that may have no Node, no node_modules and no network
# (about 32 MB; copy the checkout with it to that machine):
#   .gpu-bundle/node.xz             this machine's Node binary, xz-compressed (~24 MB)
#   .gpu-bundle/dawn.node.xz        Dawn for Node (webgpu package, linux-x64), xz-compressed (~5 MB)
#   .gpu-bundle/libstdcxx.so.6.xz   this machine's libstdc++, used only if the GPU machine's is too old
#   .gpu-bundle/node_modules/webgpu the webgpu package's JS (run.sh unpacks dawn.node into it)
#   .gpu-bundle/bench/run.mjs       bench/run.ts bundled with the library, the WGSL and TensorFlow.js
#   .gpu-bundle/commit              the commit being measured
#   .gpu-bundle/debs/*.deb          the Vulkan loader and glvnd's libraries, for a machine that has
#                                   the NVIDIA driver's Vulkan ICD but not the loader (libGLX_nvidia
#                                   needs glvnd, and the loader alone reports "Found no drivers")
set -euo pipefail
cd "$(dirname "$0")/../.."
[ "$(uname -m)" = x86_64 ] || { echo "prepare.sh: the bundle is for x86-64 Linux; run this on an x86-64 machine" >&2; exit 1; }

mkdir -p .gpu-bundle/node_modules/webgpu/dist/linux-x64 .gpu-bundle/debs
npx vite build --config bench/gpu/vite.bundle.config.ts
cp node_modules/webgpu/index.js node_modules/webgpu/package.json .gpu-bundle/node_modules/webgpu/
rm -f .gpu-bundle/node_modules/webgpu/dist/linux-x64/dawn.node
dawn=node_modules/webgpu/dist/linux-x64/dawn.node
[ .gpu-bundle/dawn.node.xz -nt "$dawn" ] || xz -T0 -6 -c "$dawn" >.gpu-bundle/dawn.node.xz
node_bin=$(readlink -f "$(command -v node)")
[ .gpu-bundle/node.xz -nt "$node_bin" ] || xz -T0 -6 -c "$node_bin" >.gpu-bundle/node.xz
# dawn.node needs libstdc++ with GLIBCXX_3.4.30 (GCC 12); run.sh falls back to this copy if the
# GPU machine's is older (about 0.6 MB compressed).
stdcxx=$(readlink -f "$(g++ -print-file-name=libstdc++.so.6 2>/dev/null || echo /usr/lib/x86_64-linux-gnu/libstdc++.so.6)")
[ -f "$stdcxx" ] || stdcxx=$(readlink -f /usr/lib/x86_64-linux-gnu/libstdc++.so.6)
[ .gpu-bundle/libstdcxx.so.6.xz -nt "$stdcxx" ] || xz -T0 -6 -c "$stdcxx" >.gpu-bundle/libstdcxx.so.6.xz
{ git rev-parse --short HEAD 2>/dev/null || echo unknown; } | tr -d '\n' >.gpu-bundle/commit
git diff --quiet HEAD 2>/dev/null || printf '+dirty' >>.gpu-bundle/commit

loaders="libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2"
missing=""
for p in $loaders; do ls .gpu-bundle/debs/${p}_*.deb >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
  # amd64 package lists of their own, so any host architecture works.
  o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
  mkdir -p /tmp/amd64/partial
  apt-get $o update -qq
  (cd .gpu-bundle/debs && apt-get $o download $missing)
fi
du -sh .gpu-bundle .gpu-bundle/debs
echo "ready: copy this checkout with .gpu-bundle/ to the GPU machine and run: bash bench/gpu/run.sh"
