#!/bin/bash
# test_unload.sh CRAM POOL_SO MKSHARDS [CRAMC SOURCE_DIR CC] - every command
# that loads a step.so exits with its own status and prints its result, run
# after run, even when the library keeps a thread running in its own code (the
# pool fixture, as OpenBLAS/libgomp do in a cpu artifact): no SIGSEGV at exit,
# no result lost in a stdio buffer. With CRAMC, the same with a real cpu
# artifact (OpenBLAS, libgomp). Prints "N passed, M failed".
CRAM=$1 POOL=$2 MK=$3 CRAMC=${4:-} SRC=${5:-} BUILD_CC=${6:-cc}
T=$(mktemp -d /tmp/test_unload.XXXXXX)
trap 'rm -rf "$T"' EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); }
no() { fail=$((fail + 1)); echo "FAIL: $*" >&2; }
# repeat N PATTERN CMD...: CMD exits 0 and prints PATTERN (stdout to a file) N times in a row
repeat() {
  local n=$1 pat=$2 bad=0; shift 2
  for ((i = 0; i < n; i++)); do
    "$@" > "$T/out.txt" 2> "$T/err.txt"; rc=$?
    if [ $rc != 0 ] || ! grep -q "$pat" "$T/out.txt"; then
      bad=1; echo "run $i: exit $rc, stdout '$(head -c 200 "$T/out.txt")', stderr '$(head -c 200 "$T/err.txt")'" >&2; break
    fi
  done
  if [ $bad = 0 ]; then ok; else no "$*"; fi
}

"$MK" "$T/data" 50 > /dev/null || { echo "mkshards failed"; exit 1; }
repeat 10 'fixture_bigram' "$CRAM" info "$POOL"
repeat 10 'heldout loss' "$CRAM" eval "$POOL" --data "$T/data" --max-seqs 16
repeat 10 'ms/step' "$CRAM" bench "$POOL" --warmup 1 --steps 2
repeat 5 '"final_loss"' "$CRAM" bench "$POOL" --data "$T/data" --warmup 1 --steps 2 --json -
"$CRAM" bench "$POOL" --warmup 0 --steps 1 --save-init "$T/init" > /dev/null || no "bench --save-init"
repeat 5 'tensors' "$CRAM" export "$POOL" "$T/init" --out "$T/x.safetensors" --names cramc
for ((i = 0; i < 3; i++)); do
  rm -rf "$T/run"
  "$CRAM" train "$POOL" --data "$T/data" --out "$T/run" --steps 3 --batch 4 --ramp 0 2> "$T/train.err"; rc=$?
  if [ $rc = 0 ] && grep -q 'done at step 3' "$T/train.err"; then ok; else no "train run $i: exit $rc: $(tail -1 "$T/train.err")"; fi
done

if [ -n "$CRAMC" ]; then # a real cpu artifact: OpenBLAS + libgomp threads
  D="-D batch=4 -D seq=16 -D hidden=32 -D heads=2 -D ffn=64 -D layers=1 -D vocab=64"
  if "$CRAMC" "$SRC/models/tiny.cram" $D --target cpu --cc "$BUILD_CC" -o "$T/cpu.so"; then
    repeat 6 'heldout loss' "$CRAM" eval "$T/cpu.so" --data "$T/data" --max-seqs 16
    repeat 3 'ms/step' "$CRAM" bench "$T/cpu.so" --warmup 1 --steps 2
  else no "cramc --target cpu"; fi
fi
echo "$pass passed, $fail failed"
[ $fail = 0 ]
