#!/usr/bin/env bash
# runtime_cli.sh: `spx ppl` / `spx run` options, output format and exit codes (0 ok, 1 data
# error, 2 usage error) on a synthetic checkpoint (no ../shared needed).
source "$SPX_SRC/tests/lib/common.sh"
T="$SPX_TMP"
# expect_exit plus: no sanitizer report (LeakSanitizer exits 1, like a data error)
run_exit() {
  expect_exit "$@"
  if grep -q 'Sanitizer' "$T/err.txt"; then fail "sanitizer report: ${*:2}"; fi
  return 0
}
"$SPX" synth -o "$T/syn" --vocab 300 --layers 2 --seed 3 >/dev/null || fail "spx synth"
"$SPX" convert "$T/syn" -o "$T/m.spx" >/dev/null || fail "spx convert"
for i in $(seq 1 30); do echo "the quick brown fox jumps over the lazy dog $i times."; done >"$T/text.txt"
printf 'a\r\nb\r\n' >"$T/crlf.txt"

# help and usage errors
run_exit 0 "$SPX" ppl --help
grep -q '^usage: spx ppl' "$T/out.txt" || fail "ppl --help does not print usage on stdout"
run_exit 0 "$SPX" run --help
grep -q '^usage: spx run' "$T/out.txt" || fail "run --help does not print usage on stdout"
run_exit 2 "$SPX" ppl
run_exit 2 "$SPX" ppl "$T/m.spx"
run_exit 2 "$SPX" ppl "$T/m.spx" --text "$T/text.txt" --tokens "$T/x"
run_exit 2 "$SPX" ppl "$T/m.spx" --text "$T/text.txt" --ctx 1
run_exit 2 "$SPX" ppl "$T/m.spx" --text "$T/text.txt" --ctx abc
run_exit 2 "$SPX" ppl "$T/m.spx" --tokens "$T/x" --token-width 3
run_exit 2 "$SPX" ppl "$T/m.spx" --text "$T/text.txt" --bogus
run_exit 2 "$SPX" ppl "$T/m.spx" --tokens "$T/x" --doc-sep X
run_exit 2 "$SPX" run "$T/m.spx"
run_exit 2 "$SPX" run "$T/m.spx" --prompt hi --steps -1
run_exit 2 "$SPX" run "$T/m.spx" --prompt-ids 1,x
run_exit 2 "$SPX" run "$T/m.spx" --prompt-ids 1,300 --steps 0

# data errors
run_exit 1 "$SPX" ppl "$T/missing.spx" --text "$T/text.txt"
run_exit 1 "$SPX" ppl "$T/m.spx" --text "$T/missing.txt"
run_exit 1 "$SPX" ppl "$T/m.spx" --text "$T/crlf.txt" --ctx 64          # too few tokens
head -c 1000 "$T/m.spx" >"$T/trunc.spx"
run_exit 1 "$SPX" ppl "$T/trunc.spx" --text "$T/text.txt"
run_exit 1 "$SPX" run "$T/trunc.spx" --prompt hi
printf '\x01\x00\x00\x00\xff\xff\xff\x7f\x02\x00\x00\x00' >"$T/bad.u32"
run_exit 1 "$SPX" ppl "$T/m.spx" --tokens "$T/bad.u32" --ctx 2
grep -q 'index 1' "$T/err.txt" || fail "out-of-range token error does not name its index"
printf '\x01\x00\x00' >"$T/odd.u32"
run_exit 1 "$SPX" ppl "$T/m.spx" --tokens "$T/odd.u32" --ctx 2

# text and token inputs give the same result; --max-windows; --json; exact PPL line
run_exit 0 "$SPX" ppl "$T/m.spx" --text "$T/text.txt" --ctx 64 --save-tokens "$T/ids.u32"
tail -n 1 "$T/out.txt" | grep -Eq '^PPL = [0-9]+\.[0-9]{4}$' || fail "last line is not 'PPL = x.xxxx'"
P1=$(tail -n 1 "$T/out.txt")
run_exit 0 "$SPX" ppl "$T/m.spx" --tokens "$T/ids.u32" --ctx 64
[ "$(tail -n 1 "$T/out.txt")" = "$P1" ] || fail "--tokens result differs from --text"
run_exit 0 "$SPX" ppl "$T/m.spx" --text "$T/text.txt" --ctx 64 --no-bos --save-tokens "$T/nobos.u32"
[ $(( $(stat -c %s "$T/ids.u32") - $(stat -c %s "$T/nobos.u32") )) -eq 4 ] || fail "--no-bos should drop exactly one id"
run_exit 0 "$SPX" ppl "$T/m.spx" --tokens "$T/nobos.u32" --bos --ctx 64
[ "$(tail -n 1 "$T/out.txt")" = "$P1" ] || fail "--tokens --bos should equal the text default"
run_exit 0 "$SPX" ppl "$T/m.spx" --text "$T/text.txt" --ctx 64 --max-windows 2 --json
grep -q '"windows": 2,' "$T/out.txt" || fail "--max-windows 2: $(cat "$T/out.txt")"
grep -q '"tokens": 126,' "$T/out.txt" || fail "2 windows of 64 predict 126 tokens: $(cat "$T/out.txt")"
grep -q '"ctx": 64,' "$T/out.txt" || fail "json ctx"
grep -q '"ffn_fraction": 1}' "$T/out.txt" || fail "json ffn_fraction of a dense model: $(cat "$T/out.txt")"
run_exit 2 "$SPX" ppl "$T/m.spx" --text "$T/text.txt" --ctx 64 --gate-mode topk --gate-k 2   # no gated layers
run_exit 2 "$SPX" ppl "$T/m.spx" --text "$T/text.txt" --ctx 64 --gate-mode best --gate-k 2
run_exit 0 "$SPX" ppl "$T/m.spx" --text "$T/text.txt" --ctx 64 --progress
grep -q 'ppl 25/25' "$T/err.txt" || fail "--progress prints nothing on stderr"

# run: text, ids line, logits dump of n_prompt x vocab float32
run_exit 0 "$SPX" run "$T/m.spx" --prompt "the quick" --steps 5 --tokens-out
head -n 1 "$T/out.txt" | grep -q '^the quick' || fail "run does not echo the prompt"
[ "$(tail -n 1 "$T/out.txt" | wc -w)" -le 5 ] || fail "more than --steps tokens"
run_exit 0 "$SPX" run "$T/m.spx" --prompt-ids 1,5,6,7 --steps 0 --dump-logits "$T/l.f32"
[ "$(stat -c %s "$T/l.f32")" -eq $((4 * 300 * 4)) ] || fail "logits dump size"
finish
