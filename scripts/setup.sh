#!/usr/bin/env bash
# scripts/setup.sh: install the build dependencies on Debian 12 (as root or through sudo) and build spx.
# Usage: bash scripts/setup.sh [build-dir]     (default build dir: build)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
PKGS="build-essential cmake pkg-config zlib1g-dev libcjson-dev libopenblas-dev liblapacke-dev python3-numpy"
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "setup: installing$missing" >&2
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
fi
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSPX_WERROR=ON >/dev/null
cmake --build "$BUILD" -j"$(nproc)" >/dev/null
echo "setup: built $BUILD/spx" >&2
