#!/bin/bash
# test_readme.sh SRC BUILD - the README's tour, run as written (with 3 updates
# instead of hundreds) in a scratch directory that looks like the repository
# root: every command must exit 0 and write what the README says it writes.
# Prints "N passed, M failed".
SRC=$1 BUILD=$2
T=$(mktemp -d /tmp/test_readme.XXXXXX)
trap 'rm -rf "$T"' EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); }
no() { fail=$((fail + 1)); echo "FAIL: $*" >&2; }
check() { if eval "$1"; then ok; else no "$1"; fi; }
mkdir -p "$T/build"
ln -s "$BUILD/driver" "$T/build/driver"
ln -s "$BUILD/runtime" "$T/build/runtime"
ln -s "$SRC/models" "$T/models"
ln -s "$SRC/corpus" "$T/corpus"
# the ```sh block under "## A short tour", one command per line
awk '/^## A short tour/ {tour = 1} tour && /^```sh/ {on = 1; next} on && /^```/ {exit} on' "$SRC/README.md" > "$T/tour.txt"
check "[ \$(grep -c '^build/' $T/tour.txt) -ge 10 ]"
cd "$T" || exit 1
while IFS= read -r line; do
  [ -z "$line" ] && continue
  cmd=$(printf '%s' "$line" | sed -E 's/ +# .*$//; s/--steps [0-9]+/--steps 3/; s/--eval-every [0-9]+/--eval-every 2/')
  t0=$(date +%s)
  bash -c "$cmd" > "$T/out.txt" 2> "$T/err.txt"; rc=$?
  echo "[$(( $(date +%s) - t0 ))s] $cmd"
  if [ $rc != 0 ]; then no "exit $rc: $cmd"; tail -3 "$T/err.txt" >&2; else ok; fi
done < "$T/tour.txt"
# what the tour says it leaves behind
for f in data/sample/vocab.txt build/tiny.so run/metrics.jsonl run/checkpoint.safetensors run-b2/metrics.jsonl \
         compare.png tiny.safetensors tiny.cram tiny.json tiny.vocab.txt; do
  check "[ -s $T/$f ]"
done
check "grep -q '\"eval_loss\"' $T/run/metrics.jsonl"
check "cmp -s $SRC/models/tiny.cram $T/tiny.cram"
echo "$pass passed, $fail failed"
[ $fail = 0 ]
