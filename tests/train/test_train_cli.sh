#!/bin/bash
# test_train_cli.sh CRAM FIXTURE_SO MKSHARDS - `cram train/info/eval/plot`
# end to end with the fixture step (a test double, see fixture_step.c):
# resume == uninterrupted (per-update losses identical), SIGINT checkpoint +
# resume, NaN guard (skips counted, K in a row -> checkpoint + exit 3),
# info output, plot, clear errors.
# Prints "N passed, M failed".
CRAM=$1 FX=$2 MK=$3
T=$(mktemp -d /tmp/test_train_cli.XXXXXX)
trap 'rm -rf "$T"' EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); }
no() { fail=$((fail + 1)); echo "FAIL: $*" >&2; }
check() { if eval "$1"; then ok; else no "$1"; fi; }
losses() { sed -E 's/.*"n":([0-9]+),"step":([0-9]+).*"loss":([^,]*),"lr":([^,]*),"batch":([0-9]+).*"skipped":([01]).*/\1 \2 \3 \4 \5 \6/' "$1"; }

"$MK" "$T/data" 200 || { echo "mkshards failed"; exit 1; }
R="--data $T/data --batch 16 --ramp 0.5 --seed 7 --shuffle --quiet"

# 1. uninterrupted vs --stop-at + resume
"$CRAM" train "$FX" $R --out "$T/full" --steps 30; check "[ $? = 0 ]"
check "[ \$(wc -l < $T/full/metrics.jsonl) = 30 ]"
"$CRAM" train "$FX" $R --out "$T/half" --steps 30 --stop-at 13; check "[ $? = 0 ]"
check "[ \$(wc -l < $T/half/metrics.jsonl) = 13 ]"
"$CRAM" train "$FX" --data "$T/data" --resume "$T/half" --quiet; check "[ $? = 0 ]"
check "cmp -s <(losses $T/full/metrics.jsonl) <(losses $T/half/metrics.jsonl)"
check "grep -q '\"batch\":4,' $T/full/metrics.jsonl && grep -q '\"batch\":16,' $T/full/metrics.jsonl"
# resume after more progress than the checkpoint: metrics lines past it are dropped
"$CRAM" train "$FX" $R --out "$T/ck" --steps 30 --ckpt-steps 5 --stop-at 12
"$CRAM" train "$FX" --data "$T/data" --resume "$T/ck" --quiet; check "[ $? = 0 ]"
check "[ \$(wc -l < $T/ck/metrics.jsonl) = 30 ]"
check "cmp -s <(losses $T/full/metrics.jsonl) <(losses $T/ck/metrics.jsonl)"

# 2. SIGINT: checkpoint, exit 130, resume gives the same losses
"$CRAM" train "$FX" --data "$T/data" --batch 16 --seed 7 --shuffle --out "$T/big" --steps 200000 --quiet 2> "$T/sig.err" &
pid=$!
sleep 1; kill -INT $pid; wait $pid; rc=$?
check "[ $rc = 130 ]"
check "grep -q 'interrupted at step' $T/sig.err"
check "[ -f $T/big/checkpoint.safetensors ]"
n=$(wc -l < "$T/big/metrics.jsonl")
"$CRAM" train "$FX" --data "$T/data" --resume "$T/big" --stop-at $((n + 3)) --quiet; check "[ $? = 0 ]"
"$CRAM" train "$FX" --data "$T/data" --batch 16 --seed 7 --shuffle --out "$T/big2" --steps 200000 --stop-at $((n + 3)) --quiet
check "cmp -s <(losses $T/big/metrics.jsonl) <(losses $T/big2/metrics.jsonl)"

# 3. NaN guard: isolated skips are counted and training goes on
CRAM_FIXTURE_NAN=8:5 "$CRAM" train "$FX" $R --out "$T/nan1" --steps 20 --ramp 0; check "[ $? = 0 ]"
check "[ \$(grep -c '\"skipped\":1' $T/nan1/metrics.jsonl) = 2 ]"
check "[ \$(tail -1 $T/nan1/metrics.jsonl | sed -E 's/.*\"step\":([0-9]+).*/\1/') = 20 ]"
# K in a row -> checkpoint + exit 3
CRAM_FIXTURE_NAN=8:1000 "$CRAM" train "$FX" $R --out "$T/nan2" --steps 20 --ramp 0 --max-bad 3 2> "$T/nan2.err"
check "[ $? = 3 ]"
check "grep -q '3 non-finite losses/gradient norms in a row' $T/nan2.err"
check "[ -f $T/nan2/checkpoint.safetensors ]"
check "! grep -q nan $T/nan2/metrics.jsonl"
# finite loss but NaN gradients (caught by grad_norm before update)
CRAM_FIXTURE_NAN_GRAD=4:4 "$CRAM" train "$FX" $R --out "$T/nan3" --steps 10 --ramp 0; check "[ $? = 0 ]"
check "[ \$(grep -c '\"skipped\":1' $T/nan3/metrics.jsonl) = 1 ]"

# 4. info, eval, plot
"$CRAM" info "$FX" > "$T/info.txt"; check "[ $? = 0 ]"
check "grep -q 'model         fixture_bigram' $T/info.txt"
check "grep -q 'total params  1088' $T/info.txt"
check "grep -Eq 'out.weight +\[8, 64\] +512  decay' $T/info.txt"
check "grep -q 'masked=4' $T/info.txt"
"$CRAM" eval "$FX" --data "$T/data" --checkpoint "$T/full/checkpoint.safetensors" > "$T/eval.txt"; check "[ $? = 0 ]"
check "grep -q 'heldout loss' $T/eval.txt"
"$CRAM" plot "$T/full" > /dev/null; check "[ $? = 0 ]"
check "grep -q '<polyline' $T/full/metrics.svg && grep -q '</svg>' $T/full/metrics.svg"

# 5. errors: one line, non-zero
e() { "$@" 2> "$T/e.err" > /dev/null; echo $?; }
check "[ \$(e $CRAM train $FX $R --out $T/full --steps 3) = 1 ] && grep -q 'already holds a checkpoint' $T/e.err"
check "[ \$(e $CRAM train $FX --data $T/data --out $T/x) = 2 ]"
check "[ \$(e $CRAM train $FX --data $T/data --resume $T/full --lr 1) = 2 ]"
check "[ \$(e $CRAM train $T/data/train-00000.shard --data $T/data --out $T/y --steps 2) = 1 ] && grep -q 'not a shared object' $T/e.err"
check "[ \$(e $CRAM train $FX --data $T/nonexistent --out $T/y --steps 2) = 1 ] && [ \$(wc -l < $T/e.err) = 1 ]"
mkdir -p "$T/trunc" && head -c 1000 "$T/full/checkpoint.safetensors" > "$T/trunc/checkpoint.safetensors"
check "[ \$(e $CRAM train $FX --data $T/data --resume $T/trunc) = 1 ] && grep -q 'checkpoint.safetensors' $T/e.err && [ \$(wc -l < $T/e.err) = 1 ]"
for c in train info eval plot; do check "$CRAM $c --help | grep -q usage"; done

echo "$pass passed, $fail failed"
[ $fail = 0 ]
