#!/bin/bash
# test_interrupt_build.sh CRAMC SOURCE_DIR - Ctrl-C (SIGINT) or SIGTERM during
# `cramc -o` while the C compiler runs leaves nothing behind: cramc dies of the
# signal (exit 128 + signo), its temporary directory under $TMPDIR is gone, no
# output (or half-written .tmp) exists, and no compiler process outlives it.
# Issue 19 item 11. Prints "N passed, M failed".
CRAMC=$1 SRC=$2
T=$(mktemp -d /tmp/test_interrupt_build.XXXXXX)
trap 'rm -rf "$T"' EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); }
no() { fail=$((fail + 1)); echo "FAIL: $*" >&2; }
check() { if eval "$1"; then ok; else no "$1"; fi; }

for run in INT TERM INT-split; do
  sig=${run%-split}
  # -split: the kernels in several C units compiled in parallel (one process group for all)
  units=$([ $run = INT-split ] && echo 300 || echo 1000000)
  mkdir -p "$T/tmp-$run" "$T/out-$run"
  # bert_crammed at 2 layers on the cpu target: seconds of C compilation, time to interrupt it
  CRAMC_CPU_UNIT_NODES=$units TMPDIR="$T/tmp-$run" "$CRAMC" "$SRC/models/bert_crammed.cram" -D layers=2 -D batch=2 --target cpu \
    -o "$T/out-$run/step.so" 2> "$T/err-$run.txt" &
  pid=$!
  seen=0
  for _ in $(seq 1200); do # up to 60 s for the compiler to start
    if ls "$T/tmp-$run"/cramc-*/step.c > /dev/null 2>&1 && pgrep -P $pid > /dev/null; then seen=1; break; fi
    kill -0 $pid 2> /dev/null || break
    sleep 0.05
  done
  check "[ $seen = 1 ]" # the signal arrives while the compiler runs (else this test proves nothing)
  kill -$sig $pid
  wait $pid; rc=$?
  want=$([ $sig = INT ] && echo 130 || echo 143)
  check "[ $rc = $want ]"
  check "[ -z \"\$(ls -A $T/tmp-$run)\" ]"   # the temporary directory is removed
  check "[ -z \"\$(ls -A $T/out-$run)\" ]"   # no artifact, no half-written .tmp
  sleep 0.2
  check "! pgrep -f '$T/tmp-$run' > /dev/null" # no compiler (cc1, as) left running on the removed files
done

echo "$pass passed, $fail failed"
[ $fail = 0 ]
