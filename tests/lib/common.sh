# tests/lib/common.sh: sourced by tests/scripts/*.sh.
set -u
: "${SPX:?SPX must point at the spx executable (run through ctest)}"
: "${SPX_TMP:=/tmp/spx-script-test}"
rm -rf "$SPX_TMP" && mkdir -p "$SPX_TMP"
SPX_FAILS=0
fail() { echo "FAIL: $*" >&2; SPX_FAILS=$((SPX_FAILS + 1)); }
skip() { echo "SKIP: $*" >&2; exit 77; }
need_shared() { [ -e "$SPX_SHARED/$1" ] || skip "../shared/$1 is absent"; }
need_python() { [ -n "${SPX_PYTHON:-}" ] || skip "no python3 with NumPy found (install python3-numpy)"; }
# expect_exit CODE cmd...: run, compare exit status
expect_exit() {
  local want=$1; shift
  "$@" >"$SPX_TMP/out.txt" 2>"$SPX_TMP/err.txt"; local got=$?
  if [ "$got" != "$want" ]; then fail "exit $got (want $want): $*"; sed 's/^/  stderr: /' "$SPX_TMP/err.txt" | head -5 >&2; fi
}
finish() { if [ "$SPX_FAILS" -ne 0 ]; then echo "$SPX_FAILS failure(s)" >&2; exit 1; fi; echo ok; exit 0; }
