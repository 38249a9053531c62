#!/bin/bash
# test_train_soak.sh CRAM FIXTURE_SO MKSHARDS [KILLS] - kill -9 soak: a short
# run is killed KILLS times (default 8) at random moments (mid-update,
# mid-checkpoint, mid-metrics line) and resumed each time; after every resume
# the metrics so far, and at the end the whole run, equal the uninterrupted
# run's bit for bit. Prints "N passed, M failed".
CRAM=$1 FX=$2 MK=$3 KILLS=${4:-8}
T=$(mktemp -d /tmp/test_train_soak.XXXXXX)
trap 'rm -rf "$T"' EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); }
no() { fail=$((fail + 1)); echo "FAIL: $*" >&2; }
check() { if eval "$1"; then ok; else no "$1"; fi; }
losses() { sed -E 's/.*"n":([0-9]+),"step":([0-9]+).*"loss":([^,]*),"lr":([^,]*),"batch":([0-9]+).*"skipped":([01]).*/\1 \2 \3 \4 \5 \6/' "$1"; }
"$MK" "$T/data" 200 || { echo "mkshards failed"; exit 1; }
export CRAM_FIXTURE_SLEEP_US=1500
R="--data $T/data --batch 16 --ramp 0.5 --seed 11 --shuffle --quiet --ckpt-steps 3"
"$CRAM" train "$FX" $R --out "$T/ref" --steps 240; check "[ $? = 0 ]"
losses "$T/ref/metrics.jsonl" > "$T/ref.txt"
RANDOM=$$
first=1
for k in $(seq "$KILLS"); do
  if [ $first = 1 ]; then "$CRAM" train "$FX" $R --out "$T/run" --steps 240 & first=0
  else "$CRAM" train "$FX" --data "$T/data" --resume "$T/run" --quiet & fi
  pid=$!
  sleep "0.$((RANDOM % 5 + 1))$((RANDOM % 10))"
  kill -9 $pid 2> /dev/null; wait $pid 2> /dev/null
  [ -f "$T/run/checkpoint.safetensors" ] || { first=1; rm -rf "$T/run"; continue; } # killed before the first checkpoint
  # what a resume will keep: the lines the checkpoint covers, each equal to the reference's
  n=$(losses "$T/run/metrics.jsonl" | wc -l)
  check "cmp -s <(losses $T/run/metrics.jsonl | head -n $n) <(head -n $n $T/ref.txt)"
done
if [ $first = 1 ]; then "$CRAM" train "$FX" $R --out "$T/run" --steps 240
else "$CRAM" train "$FX" --data "$T/data" --resume "$T/run" --quiet; fi
check "[ $? = 0 ]"
check "cmp -s <(losses $T/run/metrics.jsonl) $T/ref.txt"
echo "$pass passed, $fail failed"
[ $fail = 0 ]
