#!/usr/bin/env bash
# scripts/setup-fuzz.sh: install what scripts/fuzz.sh needs on Debian 12 (as root or through sudo):
# clang (14) and libclang-rt-14-dev, which ships the libFuzzer runtime (libclang_rt.fuzzer*.a) and
# the ASan/UBSan runtimes clang links with -fsanitize=fuzzer,address,undefined. No-op when present.
set -euo pipefail
PKGS="clang libclang-rt-14-dev"
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "setup-fuzz: installing$missing" >&2
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
fi
# the runtime must be where clang looks for it
rt=$(clang -print-resource-dir)/lib/linux/libclang_rt.fuzzer-x86_64.a
[ "$(uname -m)" != x86_64 ] || [ -e "$rt" ] || { echo "setup-fuzz: $rt missing after the install" >&2; exit 1; }
echo "setup-fuzz: $(clang --version | head -1), libFuzzer runtime present" >&2
