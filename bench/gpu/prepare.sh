#!/usr/bin/env bash
# Step 1 of the GPU recipe (bench/README.md, "GPU recipe"): builds .gpu-bundle/, one folder that
# holds everything the benchmark needs on a Linux x86-64 machine with an NVIDIA GPU. Copy that
# folder to the GPU machine and run `bash run.sh` inside it (step 2); the GPU machine needs no
# Node, no node_modules, no checkout and no network.
#
# Run this on an x86-64 Linux machine with apt (Debian or Ubuntu), in a checkout set up with
# `bash scripts/setup.sh` (or `npm ci`), with network access for the first run (apt downloads the
# Vulkan loader packages once). The bundle, about 33 MB:
#   run.sh, torch_triton.py   the recipe itself (copies of bench/gpu/run.sh and torch_triton.py)
#   bench/run.mjs             bench/run.ts bundled with the library, the WGSL and TensorFlow.js
#   node.xz                   this machine's Node binary, xz-compressed (~24 MB)
#   node_modules/webgpu/      the webgpu package's JS; run.sh unpacks Dawn's binary into it from
#   dawn.node.xz              Dawn for Node (webgpu package, linux-x64), xz-compressed (~5 MB)
#   libstdcxx.so.6.xz         this machine's libstdc++, used only where the GPU machine's is too old
#                             for dawn.node (GLIBCXX_3.4.30, GCC 12)
#   vulkan/                   the Vulkan loader and glvnd's libraries, from the amd64 packages
#                             libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2;
#                             run.sh uses each only where the GPU machine lacks it (NVIDIA's Vulkan
#                             driver needs glvnd, and the loader alone reports "Found no drivers")
#   commit                    the commit measured (+dirty when the checkout has uncommitted changes)
# The downloaded packages are kept in node_modules/.cache/gpu-bundle-debs/, so later runs need no
# network. Running it again refreshes the bundle (results/ from earlier runs stays).
set -euo pipefail
cd "$(dirname "$0")/../.."
die() { echo "prepare.sh: $*" >&2; exit 1; }
[ "$(uname -m)" = x86_64 ] || die "the bundle is for x86-64 Linux and carries this machine's Node: run this on an x86-64 machine"
[ -f node_modules/webgpu/dist/linux-x64/dawn.node ] || die "node_modules/webgpu is missing: set up the checkout first (bash scripts/setup.sh, or npm ci)"
for tool in node xz apt-get dpkg-deb; do command -v "$tool" >/dev/null || die "needs $tool"; done

B=.gpu-bundle
mkdir -p $B/node_modules/webgpu/dist/linux-x64
npx vite build --config bench/gpu/vite.bundle.config.ts # -> $B/bench/run.mjs
cp bench/gpu/run.sh bench/gpu/torch_triton.py $B/
cp node_modules/webgpu/index.js node_modules/webgpu/package.json $B/node_modules/webgpu/
rm -f $B/node_modules/webgpu/dist/linux-x64/dawn.node # run.sh unpacks it from dawn.node.xz
dawn=node_modules/webgpu/dist/linux-x64/dawn.node
[ $B/dawn.node.xz -nt "$dawn" ] || xz -T0 -6 -c "$dawn" >$B/dawn.node.xz
node_bin=$(readlink -f "$(command -v node)")
[ $B/node.xz -nt "$node_bin" ] || xz -T0 -6 -c "$node_bin" >$B/node.xz
stdcxx=$(readlink -f "$(g++ -print-file-name=libstdc++.so.6 2>/dev/null || echo /usr/lib/x86_64-linux-gnu/libstdc++.so.6)")
[ -f "$stdcxx" ] || stdcxx=$(readlink -f /usr/lib/x86_64-linux-gnu/libstdc++.so.6)
[ $B/libstdcxx.so.6.xz -nt "$stdcxx" ] || xz -T0 -6 -c "$stdcxx" >$B/libstdcxx.so.6.xz
{ git rev-parse --short HEAD 2>/dev/null || echo unknown; } | tr -d '\n' >$B/commit
git diff --quiet HEAD 2>/dev/null || printf '+dirty' >>$B/commit

# The Vulkan loader and glvnd (amd64 packages, with package lists of their own so that the host's
# apt configuration and architecture do not matter), unpacked into vulkan/ as plain files named by
# their sonames (libvulkan.so.1, libGLdispatch.so.0, ...): no symbolic links, nothing to install.
debs=node_modules/.cache/gpu-bundle-debs
mkdir -p $debs
loaders="libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2"
missing=""
for p in $loaders; do ls $debs/"${p}"_*.deb >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
  lists=$(mktemp -d)
  o="-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=$lists"
  mkdir -p "$lists/partial" && chmod 755 "$lists" # readable by apt's download user
  # shellcheck disable=SC2086 # $o and $missing are word lists
  apt-get $o update -qq && (cd $debs && apt-get $o download $missing)
  rm -rf "$lists"
fi
unpacked=$(mktemp -d)
for f in $debs/*.deb; do dpkg-deb -x "$f" "$unpacked"; done
rm -rf $B/vulkan && mkdir -p $B/vulkan
for so in "$unpacked"/usr/lib/x86_64-linux-gnu/lib*.so.[0-9]; do cp -L "$so" $B/vulkan/; done
rm -rf "$unpacked"
[ -f $B/vulkan/libvulkan.so.1 ] || die "the Vulkan loader packages did not unpack into $B/vulkan/"

du -sh $B
echo "ready: $B/ ($(cat $B/commit)). Copy it to the GPU machine, e.g."
echo "  rsync -a $B/ gpu-host:webgpu-dropout-gpu/"
echo "and run there: bash webgpu-dropout-gpu/run.sh   (results in webgpu-dropout-gpu/results/)"
