#!/usr/bin/env bash
# synth_cli.sh: `spx synth` options, exit codes, atomic output and byte-identical determinism.
source "$SPX_SRC/tests/lib/common.sh"

# --help on stdout, exit 0
"$SPX" synth --help >"$SPX_TMP/help.txt" 2>"$SPX_TMP/help.err" || fail "--help exit $?"
grep -q "usage: spx synth" "$SPX_TMP/help.txt" || fail "--help does not print usage to stdout"
[ -s "$SPX_TMP/help.err" ] && fail "--help wrote to stderr"

# usage errors: exit 2 and nothing written
O="$SPX_TMP/never"
expect_exit 2 "$SPX" synth
expect_exit 2 "$SPX" synth -o "$O" --foo
expect_exit 2 "$SPX" synth -o "$O" extra
expect_exit 2 "$SPX" synth -o "$O" --dim
expect_exit 2 "$SPX" synth -o "$O" --dim abc
expect_exit 2 "$SPX" synth -o "$O" --dim -4
expect_exit 2 "$SPX" synth -o "$O" --dim 99999999999
expect_exit 2 "$SPX" synth -o "$O" --heads 3
expect_exit 2 "$SPX" synth -o "$O" --kv-heads 3
expect_exit 2 "$SPX" synth -o "$O" --heads 64
expect_exit 2 "$SPX" synth -o "$O" --vocab 258
expect_exit 2 "$SPX" synth -o "$O" --layers 0
expect_exit 2 "$SPX" synth -o "$O" --clusters 0
expect_exit 2 "$SPX" synth -o "$O" --clusters 65
expect_exit 2 "$SPX" synth -o "$O" --dtype q8
expect_exit 2 "$SPX" synth -o "$O" --act tanh
expect_exit 2 "$SPX" synth -o "$O" --arch bloom
expect_exit 2 "$SPX" synth -o "$O" --seed x
expect_exit 2 "$SPX" synth -o "$O" --shard-size 0
[ -e "$O" ] && fail "a usage error created $O"

# data/I/O error: exit 1 (the output directory cannot be created under a regular file)
: >"$SPX_TMP/plainfile"
expect_exit 1 "$SPX" synth -o "$SPX_TMP/plainfile/sub"

# defaults: three files, a one-line summary, fast
expect_exit 0 "$SPX" synth -o "$SPX_TMP/a"
for f in config.json model.safetensors tokenizer.json; do
  [ -s "$SPX_TMP/a/$f" ] || fail "missing $f"
done
[ "$(wc -l <"$SPX_TMP/out.txt")" -eq 1 ] || fail "summary is not one line"
grep -q "params" "$SPX_TMP/out.txt" || fail "summary lacks the parameter count"
ls "$SPX_TMP/a" | grep -q '\.tmp\.' && fail "temporary files left behind"

# same options + seed -> byte-identical files (also into a nested, not yet existing directory)
expect_exit 0 "$SPX" synth -o "$SPX_TMP/b/c/d" --seed 0
for f in config.json model.safetensors tokenizer.json; do
  cmp -s "$SPX_TMP/a/$f" "$SPX_TMP/b/c/d/$f" || fail "$f differs between identical runs"
done
for args in "--dtype f16 --untied --act relu --seed 7" "--dtype bf16 --layers 3 --clusters 8 --seed 18446744073709551615"; do
  expect_exit 0 "$SPX" synth -o "$SPX_TMP/x1" $args
  expect_exit 0 "$SPX" synth -o "$SPX_TMP/x2" $args
  for f in config.json model.safetensors tokenizer.json; do
    cmp -s "$SPX_TMP/x1/$f" "$SPX_TMP/x2/$f" || fail "$f differs between identical runs ($args)"
  done
  rm -rf "$SPX_TMP/x1" "$SPX_TMP/x2"
done
# overwriting an existing output gives the same bytes again
expect_exit 0 "$SPX" synth -o "$SPX_TMP/a"
cmp -s "$SPX_TMP/a/model.safetensors" "$SPX_TMP/b/c/d/model.safetensors" || fail "rewrite differs"

# a different seed changes the weights but not the tokenizer
expect_exit 0 "$SPX" synth -o "$SPX_TMP/s1" --seed 1
cmp -s "$SPX_TMP/a/model.safetensors" "$SPX_TMP/s1/model.safetensors" && fail "seed 1 gives the same weights as seed 0"
cmp -s "$SPX_TMP/a/tokenizer.json" "$SPX_TMP/s1/tokenizer.json" || fail "tokenizer depends on the seed"
grep -q '"seed":[[:space:]]*1' "$SPX_TMP/s1/config.json" || fail "config.json does not record seed 1"
grep -q '"clusters":[[:space:]]*4' "$SPX_TMP/s1/config.json" || fail "config.json does not record the clusters"

# --json: one object with the sizes, which match the files
expect_exit 0 "$SPX" synth -o "$SPX_TMP/j" --json
grep -q '^{"dir":.*"params":123712,.*"bytes":[0-9]*}$' "$SPX_TMP/out.txt" || fail "unexpected --json output: $(cat "$SPX_TMP/out.txt")"
want=$(cat "$SPX_TMP/j/config.json" "$SPX_TMP/j/model.safetensors" "$SPX_TMP/j/tokenizer.json" | wc -c)
grep -q "\"bytes\":$want}" "$SPX_TMP/out.txt" || fail "--json bytes differ from the files' $want bytes"

# sharded output: shards + index instead of model.safetensors (also replacing a single file)
expect_exit 0 "$SPX" synth -o "$SPX_TMP/sh"
expect_exit 0 "$SPX" synth -o "$SPX_TMP/sh" --shard-size 100000
[ -s "$SPX_TMP/sh/model.safetensors.index.json" ] || fail "no index for a sharded synth"
[ -e "$SPX_TMP/sh/model.safetensors" ] && fail "sharded synth also wrote model.safetensors"
n=$(ls "$SPX_TMP/sh" | grep -c '^model-000[0-9][0-9]-of-000[0-9][0-9]\.safetensors$')
[ "$n" -ge 2 ] || fail "expected several shards, got $n"

# and back: a single file replaces the index
expect_exit 0 "$SPX" synth -o "$SPX_TMP/sh"
[ -e "$SPX_TMP/sh/model.safetensors.index.json" ] && fail "stale index left beside model.safetensors"

finish
