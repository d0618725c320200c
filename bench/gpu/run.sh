#!/usr/bin/env bash
# Step 2 of the GPU recipe (bench/README.md): run on a Linux machine with an NVIDIA GPU, in a copy
# of this checkout holding the .gpu-bundle/ that bench/gpu/prepare.sh built:
#   bash bench/gpu/run.sh              (results in $OUT, default /tmp/bench-out)
# In one command: the WebGPU suite (Node + Dawn on the NVIDIA Vulkan driver) at 2^20..2^28, then
# PyTorch's dropout and a Triton seeded dropout on the same sizes, then the comparison table, then
# the launch-tuning trials (the suite's forward ops under the other tunings, WEBGPU_DROPOUT_TUNING).
# Everything lands in $OUT, six files: bench-<gpu>.json/.md,
# torch-<gpu>.json, compare-<gpu>.md, tuning-<gpu>.md and log.txt; copy them into bench/results/
# and commit them.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/bench-out}
mkdir -p "$OUT"
MIN=${BENCH_MIN:-20} MAX=${BENCH_MAX:-28}

# The Vulkan loader, where the machine has the NVIDIA driver but not libvulkan.so.1 (root only).
if ! ldconfig -p | grep -q 'libvulkan.so.1'; then
  for f in .gpu-bundle/debs/*.deb; do dpkg -x "$f" /; done
  ldconfig
fi
icd=""
for c in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /usr/share/vulkan/icd.d/nvidia_icd.json /etc/vulkan/icd.d/nvidia_icd.json; do
  [ -f "$c" ] && { icd=$c; break; }
done
[ -n "$icd" ] || { echo "no nvidia_icd.json found"; ls -R /usr/local/nvidia/share 2>/dev/null | head -20; }
for v in /usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json /usr/share/glvnd/egl_vendor.d/10_nvidia.json; do
  [ -f "$v" ] && { export __EGL_VENDOR_LIBRARY_FILENAMES=$v; break; }
done

# Node and Dawn from the bundle's archives (Python's lzma where the machine has no xz).
unxz_to() { if command -v xz >/dev/null; then xz -dc "$1" >"$2"; else python3 -c 'import lzma,shutil,sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' "$1" "$2"; fi; }
mkdir -p /tmp/nodebin .gpu-bundle/node_modules/webgpu/dist/linux-x64  # (a transfer may drop empty folders)
unxz_to .gpu-bundle/node.xz /tmp/nodebin/node && chmod +x /tmp/nodebin/node
unxz_to .gpu-bundle/dawn.node.xz .gpu-bundle/node_modules/webgpu/dist/linux-x64/dawn.node
export PATH=/tmp/nodebin:$PATH BENCH_COMMIT=$(cat .gpu-bundle/commit 2>/dev/null || echo unknown)
# Node needs GLIBC 2.28 and dawn.node GLIBCXX_3.4.30: if the machine's libstdc++ is older, use the
# bundled one, for Node only (LD_LIBRARY_PATH is not exported to the PyTorch step).
node_env=()
if [ -n "${FORCE_BUNDLED_LIBSTDCXX:-}" ] || ! node -e "require('./.gpu-bundle/node_modules/webgpu')" >/dev/null 2>&1; then
  echo "node or dawn.node does not load with this machine's libraries; trying the bundled libstdc++"
  mkdir -p /tmp/nodelib && unxz_to .gpu-bundle/libstdcxx.so.6.xz /tmp/nodelib/libstdc++.so.6
  node_env=(env "LD_LIBRARY_PATH=/tmp/nodelib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}")
  "${node_env[@]}" node -e "require('./.gpu-bundle/node_modules/webgpu')" || echo "still failing: see the error above"
fi
# The bundle is built by prepare.sh: say so loudly if it predates the tree being run.
tree=$(git rev-parse --short HEAD 2>/dev/null || true)
[ -z "$tree" ] || [ "${BENCH_COMMIT%+dirty}" = "$tree" ] || echo "WARNING: .gpu-bundle was built at $BENCH_COMMIT but the tree is $tree: run bench/gpu/prepare.sh again"

LOG=$OUT/log.txt
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee /tmp/gpu.txt "$LOG"
gpu=$(head -1 /tmp/gpu.txt | cut -d, -f1 | tr 'A-Z' 'a-z' | sed 's/[^a-z0-9]\+/-/g; s/^-//; s/-$//')
"${node_env[@]}" node --version

# 1. The WebGPU suite on the NVIDIA Vulkan driver (a path in WEBGPU_DROPOUT_ADAPTER selects that ICD).
# (timeouts: 360 + 200 s keep the whole recipe under 10 minutes; -k kills a hung driver.)
WEBGPU_DROPOUT_ADAPTER=${icd:-system} timeout -k 10 360 "${node_env[@]}" node .gpu-bundle/bench/run.mjs \
  --min "$MIN" --max "$MAX" --step 1 --budget 200 --out "$OUT" --name "bench-$gpu" 2>&1 | grep -v artificially | tee -a "$LOG"
suite=${PIPESTATUS[0]}
echo "webgpu suite exit: $suite"

# 2. PyTorch and Triton on the same sizes, and the table beside ours (written even if ours failed).
PYTHONUNBUFFERED=1 timeout -k 10 200 python3 bench/gpu/torch_triton.py --min "$MIN" --max "$MAX" --budget-ms 150 \
  --out "$OUT/torch-$gpu.json" --ours "$OUT/bench-$gpu.json" --md "$OUT/compare-$gpu.md" 2>&1 | tee -a "$LOG"
peers=${PIPESTATUS[0]}
echo "torch/triton exit: $peers"

# 3. Launch-tuning trials: the ops the tuning touches, under each other setting, same sizes' even
# powers (the suite above ran the adapter's default, which its report names). Tables gathered into
# one file; a failed trial is reported there and does not fail the recipe.
TRIALS=/tmp/trials; mkdir -p "$TRIALS"
{
  echo "# Launch-tuning trials on $gpu"
  echo
  echo "The suite's ops that the launch tuning affects, under tunings other than this adapter's default (see bench-$gpu.md for the default's figures); each block is one run of the suite with WEBGPU_DROPOUT_TUNING set."
} >"$OUT/tuning-$gpu.md"
for tuning in '{"groupsPerInvocation":4,"maskWords":"invocation"}' '{"groupsPerInvocation":1,"maskWords":"workgroup","workgroupSize":64}' '{"groupsPerInvocation":1,"maskWords":"workgroup","workgroupSize":128}'; do
  name=$(echo "$tuning" | tr -c 'a-zA-Z0-9\n' '-' | sed 's/-\+/-/g; s/^-//; s/-$//')
  WEBGPU_DROPOUT_TUNING=$tuning WEBGPU_DROPOUT_ADAPTER=${icd:-system} timeout -k 10 60 "${node_env[@]}" node .gpu-bundle/bench/run.mjs \
    --min "$MIN" --max 26 --step 2 --budget 100 --no-tf --no-cpu --ops dropout.forward.f32,dropout.forward+mask.f32,rng.bernoulli_packed,stage.rng_only \
    --out "$TRIALS" --name "$name" 2>&1 | grep -v artificially >>"$LOG"
  md=$TRIALS/$name.md
  { echo; echo "## WEBGPU_DROPOUT_TUNING='$tuning'"; echo
    if [ -f "$md" ]; then sed -n '/^## Ops/,/^## Peers/p' "$md" | sed '$d'; sed -n '/^## Where the time goes/,$p' "$md"; else echo "(no results: see log.txt)"; fi
  } >>"$OUT/tuning-$gpu.md"
done
ls -la "$OUT"
exit $((suite | peers))
