#!/usr/bin/env bash
# Step 2 of the GPU recipe (bench/README.md, "GPU recipe"): benchmarks webgpu-dropout on this
# machine's NVIDIA GPU, with PyTorch's and Triton's dropout beside it. Run the copy of this script
# inside the bundle that bench/gpu/prepare.sh builds (.gpu-bundle/, copied to the GPU machine):
#   bash webgpu-dropout-gpu/run.sh
# (In a checkout that holds .gpu-bundle/, `bash bench/gpu/run.sh` does the same.)
#
# The machine needs: Linux on x86-64; the NVIDIA driver with its Vulkan driver (nvidia_icd.json,
# e.g. Ubuntu's libnvidia-gl-<version>) and nvidia-smi. The bundle brings Node and Dawn, and the
# Vulkan loader and glvnd's libraries for a machine that lacks them (many CUDA containers do);
# nothing is installed and no root is needed. Python 3 with PyTorch (CUDA) and Triton is needed
# only for the PyTorch and Triton rows: without them those rows are skipped.
#
# In one command: the WebGPU suite (Node + Dawn on the NVIDIA Vulkan driver) at 2^20..2^28, then
# PyTorch's dropout and a Triton seeded dropout on the same sizes, then the comparison table, then
# the launch-tuning trials (the suite's forward ops under the other tunings, WEBGPU_DROPOUT_TUNING).
# Everything lands in $OUT (default: results/ in the bundle), six files: bench-<gpu>.json/.md,
# torch-<gpu>.json, compare-<gpu>.md, tuning-<gpu>.md and log.txt.
# The exit status is non-zero if the suite or the PyTorch/Triton step failed.
#
# Settings (environment):
#   OUT=DIR                    where the results go
#   BENCH_MIN=20 BENCH_MAX=28  the sizes, 2^MIN..2^MAX elements (MIN at least 10)
#   WEBGPU_DROPOUT_ADAPTER     the Vulkan driver (default: the NVIDIA ICD found below, else the
#                              loader's own choice); an ICD json path, or `system`
#   BENCH_SUITE_TIMEOUT=360 BENCH_PEERS_TIMEOUT=200 BENCH_TRIAL_TIMEOUT=60
#                              seconds each step may take before it is stopped (a hung driver
#                              then costs minutes, not the run); raise them on a slow GPU
#   FORCE_BUNDLED_LIBSTDCXX=1  use the bundle's libstdc++ for Node even where the machine's loads
#   FORCE_BUNDLED_VULKAN=1     use the bundle's Vulkan loader and glvnd even where the machine has its own
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
if [ -f "$here/bench/run.mjs" ]; then
  bundle=$here # the copy inside the bundle
elif [ -f "$here/../../.gpu-bundle/bench/run.mjs" ]; then
  bundle=$(cd "$here/../../.gpu-bundle" && pwd) # bench/gpu/run.sh in a checkout
else
  echo "run.sh: no bundle here: build it with bench/gpu/prepare.sh, copy .gpu-bundle/ to this machine and run the run.sh inside it" >&2
  exit 2
fi
[ "$(uname -m)" = x86_64 ] || { echo "run.sh: the bundle's Node and Dawn are for x86-64 Linux" >&2; exit 2; }
command -v nvidia-smi >/dev/null || { echo "run.sh: nvidia-smi not found: this recipe needs an NVIDIA GPU and its driver" >&2; exit 2; }
OUT=${OUT:-$bundle/results}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
MIN=${BENCH_MIN:-20} MAX=${BENCH_MAX:-28}
work=$(mktemp -d "${TMPDIR:-/tmp}/webgpu-dropout-gpu.XXXXXX")
trap 'rm -rf "$work"' EXIT
lib=$work/lib # libraries for Node only (LD_LIBRARY_PATH is not exported to the PyTorch step)
mkdir -p "$lib" "$work/bin" "$work/trials"

# The NVIDIA Vulkan driver (its ICD file), selected through WEBGPU_DROPOUT_ADAPTER.
icd=""
for c in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd*.json /usr/share/vulkan/icd.d/nvidia_icd*.json /etc/vulkan/icd.d/nvidia_icd*.json; do
  [ -f "$c" ] && { icd=$c; break; }
done
[ -n "$icd" ] || echo "no nvidia_icd.json found (the NVIDIA driver's Vulkan part may be missing): leaving the choice to the Vulkan loader"
adapter=${WEBGPU_DROPOUT_ADAPTER:-${icd:-system}}
if [ -z "${__EGL_VENDOR_LIBRARY_FILENAMES:-}" ]; then
  for v in /usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json /usr/share/glvnd/egl_vendor.d/10_nvidia.json; do
    [ -f "$v" ] && { export __EGL_VENDOR_LIBRARY_FILENAMES=$v; break; }
  done
fi

# The Vulkan loader and glvnd's libraries from the bundle, each only where the machine lacks it.
ldcache=$({ ldconfig -p || /sbin/ldconfig -p; } 2>/dev/null)
have_lib() { # whether the dynamic linker finds library $1 without the bundle's
  local d IFS=:
  for d in ${LD_LIBRARY_PATH:-}; do [ -n "$d" ] && [ -e "$d/$1" ] && return 0; done
  grep -qE "^[[:space:]]*${1//./\\.} \(libc6,x86-64[,)]" <<<"$ldcache"
}
bundled=""
for so in "$bundle"/vulkan/lib*.so.*; do
  [ -f "$so" ] || continue
  name=${so##*/}
  if [ -n "${FORCE_BUNDLED_VULKAN:-}" ] || ! have_lib "$name"; then ln -s "$so" "$lib/$name" && bundled="$bundled $name"; fi
done
[ -z "$bundled" ] || echo "using the bundle's$bundled"

# Node and Dawn from the bundle's archives (Python's lzma where the machine has no xz).
unxz_to() { if command -v xz >/dev/null; then xz -dc "$1" >"$2"; else python3 -c 'import lzma,shutil,sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' "$1" "$2"; fi; }
webgpu=$bundle/node_modules/webgpu
mkdir -p "$webgpu/dist/linux-x64" # (a copy may leave out empty folders)
unxz_to "$bundle/node.xz" "$work/bin/node" && chmod +x "$work/bin/node"
unxz_to "$bundle/dawn.node.xz" "$webgpu/dist/linux-x64/dawn.node"
export PATH=$work/bin:$PATH BENCH_COMMIT=$(cat "$bundle/commit" 2>/dev/null || echo unknown)
node_env=(env "LD_LIBRARY_PATH=$lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}")
# Node needs GLIBC 2.28 and dawn.node GLIBCXX_3.4.30: if the machine's libstdc++ is older, use the
# bundle's, for Node only.
if [ -n "${FORCE_BUNDLED_LIBSTDCXX:-}" ] || ! "${node_env[@]}" node -e 'require(process.argv[1])' "$webgpu" >/dev/null 2>&1; then
  echo "node or dawn.node does not load with this machine's libraries; trying the bundle's libstdc++"
  unxz_to "$bundle/libstdcxx.so.6.xz" "$lib/libstdc++.so.6"
  "${node_env[@]}" node -e 'require(process.argv[1])' "$webgpu" || echo "still failing: see the error above"
fi
# Run from a checkout: say so loudly if the bundle predates the checkout's commit.
if [ "$bundle" != "$here" ]; then
  tree=$(git -C "$here" rev-parse --short HEAD 2>/dev/null || true)
  [ -z "$tree" ] || [ "${BENCH_COMMIT%+dirty}" = "$tree" ] || echo "WARNING: .gpu-bundle was built at $BENCH_COMMIT but the checkout is at $tree: run bench/gpu/prepare.sh again"
fi

LOG=$OUT/log.txt
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$work/gpu.txt" "$LOG"
gpu=$(head -1 "$work/gpu.txt" | cut -d, -f1 | tr 'A-Z' 'a-z' | sed 's/[^a-z0-9]\+/-/g; s/^-//; s/-$//')
gpu=${gpu:-gpu}
"${node_env[@]}" node --version | tee -a "$LOG"
echo "bundle: $bundle (commit $BENCH_COMMIT); adapter: $adapter; results: $OUT" | tee -a "$LOG"

# 1. The WebGPU suite on the NVIDIA Vulkan driver (a path in WEBGPU_DROPOUT_ADAPTER selects that ICD;
# timeout -k kills a hung driver).
WEBGPU_DROPOUT_ADAPTER=$adapter timeout -k 10 "${BENCH_SUITE_TIMEOUT:-360}" "${node_env[@]}" node "$bundle/bench/run.mjs" \
  --min "$MIN" --max "$MAX" --step 1 --budget 200 --out "$OUT" --name "bench-$gpu" 2>&1 | grep -v artificially | tee -a "$LOG"
suite=${PIPESTATUS[0]}
echo "webgpu suite exit: $suite" | tee -a "$LOG"

# 2. PyTorch and Triton on the same sizes, and the table beside ours (written even if ours failed).
peers=0
if python3 -c 'import torch, triton; assert torch.cuda.is_available()' >/dev/null 2>&1; then
  PYTHONUNBUFFERED=1 timeout -k 10 "${BENCH_PEERS_TIMEOUT:-200}" python3 "$here/torch_triton.py" --min "$MIN" --max "$MAX" --budget-ms 150 \
    --out "$OUT/torch-$gpu.json" --ours "$OUT/bench-$gpu.json" --md "$OUT/compare-$gpu.md" 2>&1 | tee -a "$LOG"
  peers=${PIPESTATUS[0]}
  echo "torch/triton exit: $peers" | tee -a "$LOG"
else
  echo "python3 with PyTorch (CUDA) and Triton not found: no torch-$gpu.json or compare-$gpu.md" | tee -a "$LOG"
fi

# 3. Launch-tuning trials: the ops the tuning touches, under each other setting, the even powers
# of the same sizes up to 2^26 (the suite above ran the adapter's default, which its report names).
# Tables gathered into one file; a failed trial is reported there and does not fail the recipe.
TRIALS=$work/trials
tmax=$((MAX < 26 ? MAX : 26))
{
  echo "# Launch-tuning trials on $gpu"
  echo
  echo "The suite's ops that the launch tuning affects, under tunings other than this adapter's default (see bench-$gpu.md for the default's figures); each block is one run of the suite with WEBGPU_DROPOUT_TUNING set."
} >"$OUT/tuning-$gpu.md"
for tuning in '{"groupsPerInvocation":4,"maskWords":"invocation"}' '{"groupsPerInvocation":1,"maskWords":"workgroup","workgroupSize":64}' '{"groupsPerInvocation":1,"maskWords":"workgroup","workgroupSize":128}'; do
  name=$(echo "$tuning" | tr -c 'a-zA-Z0-9\n' '-' | sed 's/-\+/-/g; s/^-//; s/-$//')
  WEBGPU_DROPOUT_TUNING=$tuning WEBGPU_DROPOUT_ADAPTER=$adapter timeout -k 10 "${BENCH_TRIAL_TIMEOUT:-60}" "${node_env[@]}" node "$bundle/bench/run.mjs" \
    --min "$MIN" --max "$tmax" --step 2 --budget 100 --no-tf --no-cpu --ops dropout.forward.f32,dropout.forward+mask.f32,rng.bernoulli_packed,stage.rng_only \
    --out "$TRIALS" --name "$name" 2>&1 | grep -v artificially >>"$LOG"
  md=$TRIALS/$name.md
  { echo; echo "## WEBGPU_DROPOUT_TUNING='$tuning'"; echo
    if [ -f "$md" ]; then sed -n '/^## Ops/,/^## Peers/p' "$md" | sed '$d'; sed -n '/^## Where the time goes/,$p' "$md"; else echo "(no results: see log.txt)"; fi
  } >>"$OUT/tuning-$gpu.md"
done
ls -la "$OUT"
echo "results in $OUT"
exit $((suite | peers))
