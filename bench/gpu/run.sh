#!/usr/bin/env bash
# Run ON THE GPU MACHINE through the device tool, after bench/gpu/prepare.sh here:
#   run(command='bash bench/gpu/run.sh', carry=['.carry', '.gl'], timeout_s=600)
# In one command: the WebGPU suite (Node + Dawn on the NVIDIA Vulkan driver) at 2^20..2^28, then
# PyTorch's dropout and a Triton seeded dropout on the same sizes, then the comparison table, then
# the launch-tuning trials (the suite's forward ops under the other tunings, WEBGPU_DROPOUT_TUNING).
# Everything lands in $OUT, six files (the device tool returns at most eight): bench-<gpu>.json/.md,
# torch-<gpu>.json, compare-<gpu>.md, tuning-<gpu>.md and log.txt; copy them into bench/results/
# and commit them.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/bench-out}
mkdir -p "$OUT"
MIN=${BENCH_MIN:-20} MAX=${BENCH_MAX:-28}

# The Vulkan loader (the image has the driver but may lack libvulkan.so.1).
for f in .gl/*.deb; do dpkg -x "$f" /; done
ldconfig
icd=""
for c in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /usr/share/vulkan/icd.d/nvidia_icd.json /etc/vulkan/icd.d/nvidia_icd.json; do
  [ -f "$c" ] && { icd=$c; break; }
done
[ -n "$icd" ] || { echo "no nvidia_icd.json found"; ls -R /usr/local/nvidia/share 2>/dev/null | head -20; }
export __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json

# Node and Dawn from the carried archives (Python's lzma where the image has no xz).
unxz_to() { if command -v xz >/dev/null; then xz -dc "$1" >"$2"; else python3 -c 'import lzma,shutil,sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' "$1" "$2"; fi; }
mkdir -p /tmp/nodebin .carry/node_modules/webgpu/dist/linux-x64  # (a transfer may drop empty folders)
unxz_to .carry/node.xz /tmp/nodebin/node && chmod +x /tmp/nodebin/node
unxz_to .carry/dawn.node.xz .carry/node_modules/webgpu/dist/linux-x64/dawn.node
export PATH=/tmp/nodebin:$PATH BENCH_COMMIT=$(cat .carry/commit 2>/dev/null || echo unknown)
# Node needs GLIBC 2.28 and dawn.node GLIBCXX_3.4.30: if the image's libstdc++ is older, use the
# carried one, for Node only (LD_LIBRARY_PATH is not exported to the PyTorch step).
node_env=()
if [ -n "${FORCE_CARRIED_LIBSTDCXX:-}" ] || ! node -e "require('./.carry/node_modules/webgpu')" >/dev/null 2>&1; then
  echo "node or dawn.node does not load with the image's libraries; trying the carried libstdc++"
  mkdir -p /tmp/nodelib && unxz_to .carry/libstdcxx.so.6.xz /tmp/nodelib/libstdc++.so.6
  node_env=(env "LD_LIBRARY_PATH=/tmp/nodelib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}")
  "${node_env[@]}" node -e "require('./.carry/node_modules/webgpu')" || echo "still failing: see the error above"
fi
# The bundle is built by prepare.sh: say so loudly if it predates the tree being run.
tree=$(git rev-parse --short HEAD 2>/dev/null || true)
[ -z "$tree" ] || [ "${BENCH_COMMIT%+dirty}" = "$tree" ] || echo "WARNING: .carry was built at $BENCH_COMMIT but the tree is $tree: run bench/gpu/prepare.sh again"

LOG=$OUT/log.txt
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee /tmp/gpu.txt "$LOG"
gpu=$(head -1 /tmp/gpu.txt | cut -d, -f1 | tr 'A-Z' 'a-z' | sed 's/[^a-z0-9]\+/-/g; s/^-//; s/-$//')
"${node_env[@]}" node --version

# 1. The WebGPU suite on the NVIDIA Vulkan driver (a path in WEBGPU_DROPOUT_ADAPTER selects that ICD).
# (timeouts: 360 + 200 s leave room for set-up under the device tool's 600 s; -k kills a hung driver.)
WEBGPU_DROPOUT_ADAPTER=${icd:-system} timeout -k 10 360 "${node_env[@]}" node .carry/bench/run.mjs \
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
  WEBGPU_DROPOUT_TUNING=$tuning WEBGPU_DROPOUT_ADAPTER=${icd:-system} timeout -k 10 60 "${node_env[@]}" node .carry/bench/run.mjs \
    --min "$MIN" --max 26 --step 2 --budget 100 --no-tf --no-cpu --ops dropout.forward.f32,dropout.forward+mask.f32,rng.bernoulli_packed,stage.rng_only \
    --out "$TRIALS" --name "$name" 2>&1 | grep -v artificially >>"$LOG"
  md=$TRIALS/$name.md
  { echo; echo "## WEBGPU_DROPOUT_TUNING='$tuning'"; echo
    if [ -f "$md" ]; then sed -n '/^## Ops/,/^## Peers/p' "$md" | sed '$d'; sed -n '/^## Where the time goes/,$p' "$md"; else echo "(no results: see log.txt)"; fi
  } >>"$OUT/tuning-$gpu.md"
done
ls -la "$OUT"
exit $((suite | peers))
