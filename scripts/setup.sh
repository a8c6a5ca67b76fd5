#!/usr/bin/env bash
# Installs what building and testing dkhost needs on Debian 12, then
# configures the build. Idempotent: packages already present are not touched,
# and a configured build directory is reused.
#
#   scripts/setup.sh [BUILD_DIR] [extra cmake args...]
set -euo pipefail

build_dir=${1:-build}
shift || true

# Build: compiler, CMake, pkg-config; libyaml (configs), zlib (gzip data
# files), zstd (checkpoints), oneDNN (CPU convolution, normalisation, matmul), libjpeg-turbo
# (ImageFolder's decoder); tests: cmocka, binutils (nm); the demo's data:
# Fashion-MNIST; distributed training (core/dist/) and its tests: Open MPI
# (headers and libmpi; mpirun). (clang and libclang-rt-dev, when present,
# also build the checkpoint fuzzer; without them its test is skipped.)
packages=(build-essential cmake pkg-config libyaml-dev zlib1g-dev libzstd-dev libcmocka-dev binutils libdnnl-dev
          libjpeg-dev dataset-fashion-mnist openmpi-bin libopenmpi-dev)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then
    sudo=sudo
  else
    sudo=
  fi
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if [ ! -f "$build_dir/CMakeCache.txt" ]; then
  cmake -S . -B "$build_dir" "$@"
fi
