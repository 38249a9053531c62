#!/bin/bash
# test_train_stop.sh CRAM FIXTURE_SO MKSHARDS - how `cram train` stops, with a
# slow fixture step (CRAM_FIXTURE_SLEEP_US): a signal in the middle of an
# accumulation is acknowledged at once and honoured at the next microbatch
# (partial update discarded, checkpoint, exit 130, resume == uninterrupted);
# SIGHUP is SIGTERM; a --budget deadline ends the run within a microbatch of
# itself and warns when the schedule cannot fit; a data error checkpoints
# the whole updates before exiting. Prints "N passed, M failed".
CRAM=$1 FX=$2 MK=$3
T=$(mktemp -d /tmp/test_train_stop.XXXXXX)
trap 'rm -rf "$T"' EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); }
no() { fail=$((fail + 1)); echo "FAIL: $*" >&2; }
check() { if eval "$1"; then ok; else no "$1"; fi; }
losses() { sed -E 's/.*"n":([0-9]+),"step":([0-9]+).*"loss":([^,]*),"lr":([^,]*),"batch":([0-9]+).*"skipped":([01]).*/\1 \2 \3 \4 \5 \6/' "$1"; }
now() { date +%s.%N; }
"$MK" "$T/data" 200 || { echo "mkshards failed"; exit 1; }
export CRAM_FIXTURE_SLEEP_US=10000 # 10 ms per microbatch of 4: an update of 200 sequences takes 0.5 s
R="--data $T/data --batch 200 --ramp 0 --seed 3 --quiet --steps 100"

# 1. a signal mid-accumulation, for SIGINT, SIGTERM and SIGHUP
for sig in INT TERM HUP; do
  "$CRAM" train "$FX" $R --out "$T/s$sig" 2> "$T/s$sig.err" &
  pid=$!
  for i in $(seq 200); do [ -s "$T/s$sig/metrics.jsonl" ] && break; sleep 0.02; done
  sleep 0.1 # inside the second update (each takes 0.5 s or more)
  t0=$(now); kill -$sig $pid; wait $pid; rc=$?; t1=$(now)
  check "[ $rc = 130 ]"
  check "awk -v a=$t0 -v b=$t1 'BEGIN { exit !(b - a < 0.3) }'" # honoured at the next microbatch, not the next update
  check "grep -q 'stopping after the current microbatch' $T/s$sig.err"
  check "grep -q 'interrupted at step 1 (the partial update after it was discarded)' $T/s$sig.err"
  check "[ \$(wc -l < $T/s$sig/metrics.jsonl) = 1 ]" # the discarded update left no line
done
# the discarded microbatches are redone on resume: same losses as never stopping
"$CRAM" train "$FX" --data "$T/data" --resume "$T/sTERM" --stop-at 3 --quiet; check "[ $? = 0 ]"
"$CRAM" train "$FX" $R --out "$T/ref" --stop-at 3; check "[ $? = 0 ]"
check "cmp -s <(losses $T/ref/metrics.jsonl) <(losses $T/sTERM/metrics.jsonl)"

# 2. --budget as a deadline: within a microbatch of it (here inside the first
# update, of 400 sequences: 1 s or more), warned up front when the schedule cannot fit
t0=$(now); "$CRAM" train "$FX" $R --batch 400 --out "$T/dl" --budget 0.6s 2> "$T/dl.err"; rc=$?; t1=$(now)
check "[ $rc = 0 ]"
check "awk -v a=$t0 -v b=$t1 'BEGIN { exit !(b - a < 0.6 * 1.05 + 0.25) }'"
check "grep -q 'budget of 0.6 s reached mid-update: its [0-9]* microbatch(es) were discarded' $T/dl.err"
check "[ ! -s $T/dl/metrics.jsonl ] && [ -f $T/dl/checkpoint.safetensors ]"
"$CRAM" train "$FX" $R --batch 100 --out "$T/dl2" --budget 2s 2> "$T/dl2.err"
check "[ $? = 0 ] && grep -q 'past the --budget deadline' $T/dl2.err"
# a wall-clock horizon whose full batch takes most of the budget is warned about
"$CRAM" train "$FX" --data "$T/data" --batch 400 --ramp 0.5 --out "$T/tb" --budget 1.5s --quiet 2> "$T/tb.err"
check "[ $? = 0 ] && grep -q 'the ramp cannot reach that batch usefully' $T/tb.err"

# 3. a data error mid-run keeps the whole updates: checkpoint, then exit 1
export CRAM_FIXTURE_SLEEP_US=0
CRAM_FIXTURE_DATA_ERR=10:1000 "$CRAM" train "$FX" --data "$T/data" --batch 16 --ramp 0 --steps 20 --out "$T/de" --quiet 2> "$T/de.err"
check "[ $? = 1 ] && [ \$(wc -l < $T/de.err) = 1 ]"
check "grep -q 'outside the vocabulary' $T/de.err && grep -q 'checkpoint of step 2 written' $T/de.err"
check "[ -f $T/de/checkpoint.safetensors ] && [ \$(wc -l < $T/de/metrics.jsonl) = 2 ]"
"$CRAM" train "$FX" --data "$T/data" --resume "$T/de" --quiet; check "[ $? = 0 ] && [ \$(wc -l < $T/de/metrics.jsonl) = 20 ]"

echo "$pass passed, $fail failed"
[ $fail = 0 ]
