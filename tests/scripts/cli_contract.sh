#!/usr/bin/env bash
# cli_contract.sh: the command-line contract (exit status, stdout, stderr) of every subcommand.
# Runs tests/cli/cases/*.case (format in tests/cli/README.md) plus generated cases: --help and an
# unknown option for every command listed by `spx --help`, and every golden invalid file through
# `spx verify`.
source "$SPX_SRC/tests/lib/common.sh"
# ctest runs two tests at once on this 2-core machine: BLAS threads would only oversubscribe it
# (small matrices; results do not depend on the thread count in these comparisons).
export OPENBLAS_NUM_THREADS="${OPENBLAS_NUM_THREADS:-1}"
CLI="$SPX_SRC/tests/cli"
export SPX GOLDEN="$SPX_SRC/tests/golden" FIX="$SPX_TMP/fix"
SPX="$SPX" bash "$CLI/fixtures.sh" "$FIX" || { fail "fixtures.sh"; finish; }
NCASES=0

# glob_line LINE PATTERN: `*` matches any characters, everything else is literal.
glob_line() {
  local s=$1 p=$2 part
  if [[ $p != *'*'* ]]; then [[ $s == "$p" ]]; return; fi
  part=${p%%\**}
  [[ $s == "$part"* ]] || return 1
  s=${s:${#part}}
  p=${p#*\*}
  while [[ $p == *'*'* ]]; do
    part=${p%%\**}
    p=${p#*\*}
    [ -z "$part" ] && continue
    [[ $s == *"$part"* ]] || return 1
    s=${s#*"$part"}
  done
  [[ $s == *"$p" ]]
}

# match_lines PI OI: do patterns PAT[PI..] match output lines OUT[OI..]? (`...` = any lines)
match_lines() {
  local pi=$1 oi=$2 k
  if [ "$pi" -ge "${#PAT[@]}" ]; then [ "$oi" -ge "${#OUT[@]}" ]; return; fi
  if [ "${PAT[$pi]}" = "..." ]; then
    for ((k = oi; k <= ${#OUT[@]}; k++)); do match_lines $((pi + 1)) "$k" && return 0; done
    return 1
  fi
  [ "$oi" -lt "${#OUT[@]}" ] && glob_line "${OUT[$oi]}" "${PAT[$pi]}" && match_lines $((pi + 1)) $((oi + 1))
}

# check_stream NAME WHAT(stdout|stderr) MODE(exact|glob) EXPECTED_FILE GOT_FILE
check_stream() {
  local name=$1 what=$2 mode=$3 exp=$4 got=$5
  if [ "$mode" = exact ]; then
    [ "$(cat "$exp")" == "$(cat "$got")" ] && return 0
  else
    mapfile -t PAT <"$exp"
    mapfile -t OUT <"$got"
    match_lines 0 0 && return 0
  fi
  fail "$name: $what does not match ($mode)"
  sed 's/^/    expected: /' "$exp" | head -12 >&2
  sed 's/^/    got:      /' "$got" | head -12 >&2
}

# run_case NAME CMD EXIT [STDOUT_MODE STDOUT_FILE] [STDERR_MODE STDERR_FILE] (mode "" = unchecked)
run_case() {
  local name=$1 cmd=$2 want=$3 omode=$4 ofile=$5 emode=$6 efile=$7 got
  local dir="$SPX_TMP/cases/$name"
  rm -rf "$dir" && mkdir -p "$dir"
  NCASES=$((NCASES + 1))
  (cd "$dir" && TMP="$dir" bash -c "$cmd") >"$dir.stdout" 2>"$dir.stderr"
  got=$?
  if [ "$got" != "$want" ]; then
    fail "$name: exit $got, want $want: $cmd"
    sed 's/^/    stderr: /' "$dir.stderr" | head -5 >&2
  fi
  [ -n "$omode" ] && check_stream "$name" stdout "$omode" "$ofile" "$dir.stdout"
  [ -n "$emode" ] && check_stream "$name" stderr "$emode" "$efile" "$dir.stderr"
  return 0
}

# parse one .case file into the run_case arguments
run_case_file() {
  local f=$1 name cmd="" want="" omode="" emode="" cur="" line
  name=$(basename "$f" .case)
  local ofile="$SPX_TMP/exp.$name.stdout" efile="$SPX_TMP/exp.$name.stderr"
  : >"$ofile"
  : >"$efile"
  while IFS= read -r line || [ -n "$line" ]; do
    case "$line" in
      "cmd: "*) cmd=${line#cmd: }; cur="" ;;
      "exit: "*) want=${line#exit: }; cur="" ;;
      "stdout:") omode=exact; cur=$ofile ;;
      "stdout glob:") omode=glob; cur=$ofile ;;
      "stderr:") emode=exact; cur=$efile ;;
      "stderr glob:") emode=glob; cur=$efile ;;
      *)
        if [ -n "$cur" ]; then printf '%s\n' "$line" >>"$cur"
        elif [ -n "$line" ] && [[ $line != \#* ]]; then fail "$name: stray line '$line'"; fi ;;
    esac
  done <"$f"
  if [ -z "$cmd" ] || [ -z "$want" ]; then fail "$name: needs cmd: and exit:"; return 0; fi
  run_case "$name" "$cmd" "$want" "$omode" "$ofile" "$emode" "$efile"
}

for f in "$CLI"/cases/*.case; do run_case_file "$f"; done

# generated: every registered command
cmds=$("$SPX" --help | sed -n '/^commands:/,/^$/p' | awk 'NF && $1 != "commands:" {print $1}')
[ -n "$cmds" ] || fail "no commands found in 'spx --help'"
printf '' >"$SPX_TMP/empty"
for c in $cmds; do   # (commands with their own case files are covered there)
  if [ ! -e "$CLI/cases/${c}_help.case" ]; then
    printf 'usage: spx %s*\n...\n' "$c" >"$SPX_TMP/help.$c"
    run_case "gen.$c.help" "\"\$SPX\" $c --help" 0 glob "$SPX_TMP/help.$c" exact "$SPX_TMP/empty"
  fi
  if [ ! -e "$CLI/cases/${c}_unknown_option.case" ]; then
    printf '*--no-such-option*\n...\n' >"$SPX_TMP/unk.$c"
    run_case "gen.$c.unknown_option" "\"\$SPX\" $c --no-such-option" 2 exact "$SPX_TMP/empty" glob "$SPX_TMP/unk.$c"
  fi
done

# generated: every golden invalid file fails verify's integrity check with its code (`inspect
# --check` on each is tests/scripts/format_inspect.sh; cases/inspect_*.case pin its message shape)
while read -r file code; do
  [ -n "$file" ] || continue
  printf 'spx verify: error: integrity check failed: *%s*(%s)\n' "$file" "$code" >"$SPX_TMP/inv.v.$file"
  run_case "gen.verify.$file" "\"\$SPX\" verify \"\$GOLDEN/invalid/$file\"" 1 exact "$SPX_TMP/empty" \
    glob "$SPX_TMP/inv.v.$file"
done <"$GOLDEN/invalid/EXPECTED"

echo "$NCASES cases" >&2
finish
