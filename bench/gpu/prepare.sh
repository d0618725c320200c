#!/usr/bin/env bash
# Run HERE (the x86-64 dev machine), before calling the device tool. Packs what bench/gpu/run.sh
# needs on the GPU machine, which has Python/PyTorch/Triton but no Node, no node_modules and no
# network, into two git-ignored folders that the tool carries (64 MiB limit in all):
#   .carry/node.xz             this machine's Node binary, xz-compressed (~24 MB)
#   .carry/dawn.node.xz        Dawn for Node (webgpu package, linux-x64), xz-compressed (~5 MB)
#   .carry/libstdcxx.so.6.xz   this machine's libstdc++, used only if the GPU image's is too old
#   .carry/node_modules/webgpu the webgpu package's JS (run.sh unpacks dawn.node into it)
#   .carry/bench/run.mjs       bench/run.ts bundled with the library, the WGSL and TensorFlow.js
#   .carry/commit              the commit being measured
#   .gl/*.deb                  the Vulkan loader and glvnd's libraries (the GPU image has the NVIDIA
#                              driver's ICD only; libGLX_nvidia needs glvnd, and the loader alone
#                              reports "Found no drivers")
set -euo pipefail
cd "$(dirname "$0")/../.."
[ "$(uname -m)" = x86_64 ] || { echo "prepare.sh: the GPU machine is x86-64; run this on an x86-64 machine" >&2; exit 1; }

mkdir -p .carry/node_modules/webgpu/dist/linux-x64 .gl
npx vite build --config bench/gpu/vite.bundle.config.ts
cp node_modules/webgpu/index.js node_modules/webgpu/package.json .carry/node_modules/webgpu/
rm -f .carry/node_modules/webgpu/dist/linux-x64/dawn.node
dawn=node_modules/webgpu/dist/linux-x64/dawn.node
[ .carry/dawn.node.xz -nt "$dawn" ] || xz -T0 -6 -c "$dawn" >.carry/dawn.node.xz
node_bin=$(readlink -f "$(command -v node)")
[ .carry/node.xz -nt "$node_bin" ] || xz -T0 -6 -c "$node_bin" >.carry/node.xz
# dawn.node needs libstdc++ with GLIBCXX_3.4.30 (GCC 12); run.sh falls back to this copy if the
# GPU image's is older (about 0.6 MB compressed).
stdcxx=$(readlink -f "$(g++ -print-file-name=libstdc++.so.6 2>/dev/null || echo /usr/lib/x86_64-linux-gnu/libstdc++.so.6)")
[ -f "$stdcxx" ] || stdcxx=$(readlink -f /usr/lib/x86_64-linux-gnu/libstdc++.so.6)
[ .carry/libstdcxx.so.6.xz -nt "$stdcxx" ] || xz -T0 -6 -c "$stdcxx" >.carry/libstdcxx.so.6.xz
{ git rev-parse --short HEAD 2>/dev/null || echo unknown; } | tr -d '\n' >.carry/commit
git diff --quiet HEAD 2>/dev/null || printf '+dirty' >>.carry/commit

loaders="libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2"
missing=""
for p in $loaders; do ls .gl/${p}_*.deb >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
  # amd64 package lists of their own, so any host architecture works.
  o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
  mkdir -p /tmp/amd64/partial
  apt-get $o update -qq
  (cd .gl && apt-get $o download $missing)
fi
du -sh .carry .gl
echo "ready: device tool run(command='bash bench/gpu/run.sh', carry=['.carry', '.gl'], timeout_s=600)"
