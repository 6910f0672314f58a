#!/usr/bin/env bash
# scripts/test.sh: build with warnings as errors and run the whole test suite through ctest;
# then rebuild with ASan+UBSan and run the unit tests, the fuzz-corpus replays and the parser-facing
# CLI scripts again under the sanitizers (skip that with SPX_NO_SANITIZE=1; SPX_SANITIZE_ALL=1 runs
# every test under the sanitizers).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh build
ctest --test-dir build --output-on-failure -j2
if [ "${SPX_NO_SANITIZE:-0}" != 1 ]; then
  cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSPX_WERROR=ON -DSPX_SANITIZE=ON >/dev/null
  cmake --build build-asan -j"$(nproc)" >/dev/null
  sel='^(unit|fuzz)\.|^script\.(format_inspect|convert_cli|runtime_cli|robust_.*|prune_e2e|expand_e2e)$'
  [ "${SPX_SANITIZE_ALL:-0}" = 1 ] && sel='.'
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir build-asan --output-on-failure -j2 -R "$sel"
fi
