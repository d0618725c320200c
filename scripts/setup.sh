#!/usr/bin/env bash
# One-command set-up on a fresh machine (Debian 12 first; other apt distributions best-effort).
# Idempotent: every step checks before it installs. Installs
#   - build/test tools from apt: g++ and Random123's headers and known-answer vectors (test oracle),
#     Debian's chromium (headless browser tests; never a downloaded browser), python3 (the GPU
#     recipe's comparison script is tested here without a GPU);
#   - the npm dependencies (npm ci against package-lock.json);
#   - a software Vulkan driver for Dawn when no WebGPU adapter is available: Mesa lavapipe from
#     bookworm-backports on Debian 12 (bookworm's own 22.3 is too old for Dawn).
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '[setup] %s\n' "$*"; }
die() { printf '[setup] ERROR: %s\n' "$*" >&2; exit 1; }

SUDO=""
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then SUDO="sudo"; fi
fi
can_apt() { command -v apt-get >/dev/null && { [ "$(id -u)" = 0 ] || [ -n "$SUDO" ]; }; }

APT_UPDATED=0
apt_install() {
  # apt_install [apt-get options...] pkg...: installs what is missing, updating the lists once.
  local missing=() opts=() a
  for a in "$@"; do
    case "$a" in -*) opts+=("$a") ;; *) dpkg-query -W -f='${Status}' "$a" 2>/dev/null | grep -q 'install ok installed' || missing+=("$a") ;; esac
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  can_apt || die "need to install ${missing[*]} but cannot: run as root (or with passwordless sudo) on an apt-based system, or install them yourself"
  if [ "$APT_UPDATED" = 0 ]; then $SUDO apt-get update -qq; APT_UPDATED=1; fi
  say "apt-get install ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${opts[@]}" "${missing[@]}" >/dev/null
}

command -v node >/dev/null || die "Node.js >= 20.19 is required (https://nodejs.org; Debian 12's own nodejs is 18)"
node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a === 20 && b >= 19) ? 0 : 1)' \
  || die "Node.js >= 20.19 is required, found $(node --version) (https://nodejs.org; Debian 12's own nodejs is 18)"

# 1. Tools the tests use.
if command -v apt-get >/dev/null; then
  apt_install g++ librandom123-dev librandom123-doc chromium fonts-dejavu-core python3
else
  say "no apt-get: install g++, Random123 headers (set RANDOM123_INCLUDE), chromium and python3 yourself"
fi

# 2. npm dependencies, skipped when node_modules was installed from this very lockfile (its hash
# is recorded after a successful npm ci; timestamps would be fooled by copies and checkouts).
LOCK_STAMP=node_modules/.setup-lock.sha256
if [ -f "$LOCK_STAMP" ] && sha256sum --status -c "$LOCK_STAMP" 2>/dev/null; then
  say "npm dependencies up to date"
else
  say "npm ci"
  npm ci --no-audit --no-fund --loglevel=error
  sha256sum package-lock.json > "$LOCK_STAMP"
fi

# 3. A WebGPU adapter for Node. Keep a working one; otherwise install lavapipe.
probe() { WEBGPU_DROPOUT_ADAPTER="$1" timeout 60 node scripts/probe-adapter.mjs 2>/dev/null; }
if probe lavapipe >/dev/null; then
  say "WebGPU adapter: $(probe lavapipe)"
elif [ "${WEBGPU_DROPOUT_ADAPTER:-}" = system ] && probe system >/dev/null; then
  say "WebGPU adapter: $(probe system)"
else
  if [ -r /etc/os-release ] && . /etc/os-release && [ "${ID:-}" = debian ] && [ "${VERSION_CODENAME:-}" = bookworm ]; then
    if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
      can_apt || die "lavapipe needs bookworm-backports; run this script as root"
      say "adding bookworm-backports to apt sources"
      printf 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
        | $SUDO tee /etc/apt/sources.list.d/bookworm-backports.sources >/dev/null
      APT_UPDATED=0
    fi
    if [ "$APT_UPDATED" = 0 ]; then $SUDO apt-get update -qq; APT_UPDATED=1; fi
    say "apt-get install -t bookworm-backports mesa-vulkan-drivers libvulkan1"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends -t bookworm-backports mesa-vulkan-drivers libvulkan1 >/dev/null
  elif command -v apt-get >/dev/null; then
    apt_install mesa-vulkan-drivers libvulkan1
  else
    die "no WebGPU adapter and no apt-get: install your distribution's mesa-vulkan-drivers (lavapipe) and libvulkan1"
  fi
  probe lavapipe >/dev/null || die "lavapipe is installed but Dawn still finds no adapter; check $(ls /usr/share/vulkan/icd.d/lvp_icd*.json 2>/dev/null)"
  say "WebGPU adapter: $(probe lavapipe)"
fi
say "done"
