#!/bin/bash
# test_train_mpi.sh CRAM FIXTURE_SO MKSHARDS CKPT_DIFF MPIRUN [CRAMC SRC] - data-parallel
# `mpirun -np 2 cram train` with the fixture step (docs/distributed.md):
#   - 2 ranks == 1 process over the same global batches (accumulation k of
#     the batch ramp, k = 1..4 microbatches: rank 1 idles while k = 1);
#   - the same with a cramc-compiled interp artifact (f64 gradient buffer,
#     a shim that refuses update() without a step(): the idle rank steps a
#     zero-scaled microbatch), when CRAMC and SRC are given;
#   - resume a 2-rank checkpoint on 1 rank and a 1-rank one on 2;
#   - a rank failing (data error, NaN guard) stops every rank with one
#     message and a valid checkpoint; a rank killed leaves the last periodic
#     checkpoint valid; ranks given other settings or data are refused.
# Tolerance: 2 ranks sum their f32 gradient accumulators in another order
# than one process (rank-local sums, then the all-reduce), so gradients
# differ by ~1e-7 relative; AdamW normalises each element, which can turn
# that into ~1e-7 absolute parameter changes per update. 20 updates at lr
# <= 1e-3: |dparam| <= 1e-5, |dloss| <= 1e-5 relative (in practice equal).
# The fixture's "dropout" is off (CRAM_FIXTURE_DROPOUT=0): ranks draw their
# own dropout streams by design, so with dropout only the statistics match.
# Prints "N passed, M failed". Fails (not skips) without mpirun.
CRAM=$1 FX=$2 MK=$3 DIFF=$4 MPIRUN=${5:-mpirun} CRAMC=$6 SRC=$7
command -v "$MPIRUN" > /dev/null || { echo "FAIL: this build has MPI but '$MPIRUN' is not installed"; exit 1; }
T=$(mktemp -d /tmp/test_train_mpi.XXXXXX)
trap 'rm -rf "$T"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export CRAM_FIXTURE_DROPOUT=0
# Sanitizer builds: Open MPI never frees what MPI_Init allocates, much of it
# in plugins unloaded before exit (no module name to suppress), so leak
# checking is off for the ranks; the one-process runs here keep it.
MPI="env ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 $MPIRUN --allow-run-as-root --oversubscribe"
pass=0 fail=0
ok() { pass=$((pass + 1)); }
no() { fail=$((fail + 1)); echo "FAIL: $*" >&2; }
check() { if eval "$1"; then ok; else no "$1"; fi; }
# n step loss batch grad_norm skipped, one line per update
cols() { sed -E 's/.*"n":([0-9]+),"step":([0-9]+).*"loss":([^,]*),"lr":([^,]*),"batch":([0-9]+),"grad_norm":([^,]*),.*"skipped":([01]).*/\1 \2 \3 \5 \6 \7/' "$1"; }
# same updates, losses and grad norms within 1e-5 relative
close() {
    paste -d' ' <(cols "$1") <(cols "$2") | awk -v want="$3" '
        function rel(a, b) { d = a - b; if (d < 0) d = -d; m = (a < 0 ? -a : a); return d / (m > 1 ? m : 1) }
        { n++; if ($1 != $7 || $2 != $8 || $4 != $10 || $6 != $12 || rel($3, $9) > 1e-5 || rel($5, $11) > 1e-5) bad++ }
        END { exit !(n == want && !bad) }'
}
pdiff() { d=$("$DIFF" "$1" "$2") && awk -v d="$d" 'BEGIN { exit !(d <= 1e-5) }'; }

"$MK" "$T/data" 200 > /dev/null || { echo "mkshards failed"; exit 1; }
"$MK" "$T/data2" 120 > /dev/null || { echo "mkshards failed"; exit 1; }
R="--data $T/data --batch 16 --ramp 0.5 --seed 7 --shuffle --quiet --steps 20"
check "$CRAM train --help | grep -q 'this build has MPI'"
# cram itself does not link MPI (libcram_mpi.so is opened under a launcher)
check "! ldd $CRAM | grep -q libmpi"
CRAM_MPI_PLUGIN=$T/none.so $MPI -np 2 "$CRAM" train "$FX" $R --out "$T/noplug" 2> "$T/noplug.err"
check "[ $? != 0 ] && grep -q 'every process would train alone' $T/noplug.err && [ ! -e $T/noplug ]"

# 1. two ranks == one process with accumulation over the same global batches
"$CRAM" train "$FX" $R --out "$T/one"; check "[ $? = 0 ]"
$MPI -np 2 "$CRAM" train "$FX" $R --out "$T/two" 2> "$T/two.err"; check "[ $? = 0 ]"
check "[ ! -s $T/two.err ]"
check "close $T/one/metrics.jsonl $T/two/metrics.jsonl 20"
check "grep -q '\"batch\":4,' $T/two/metrics.jsonl && grep -q '\"batch\":16,' $T/two/metrics.jsonl"
check "pdiff $T/one/checkpoint.safetensors $T/two/checkpoint.safetensors"
# held-out evaluation split over the ranks: the same loss
"$CRAM" train "$FX" $R --out "$T/ev1" --eval-every 5 > /dev/null; check "[ $? = 0 ]"
$MPI -np 2 "$CRAM" train "$FX" $R --out "$T/ev2" --eval-every 5; check "[ $? = 0 ]"
check "[ \$(grep -c eval_loss $T/ev2/metrics.jsonl) = 4 ]"
check "diff <(grep -o 'eval_loss\":[0-9.]*' $T/ev1/metrics.jsonl | cut -c1-17) <(grep -o 'eval_loss\":[0-9.]*' $T/ev2/metrics.jsonl | cut -c1-17)"

# a real artifact: models/tiny.cram at toy size on the interp target
if [ -n "$CRAMC" ]; then
    "$CRAMC" "$SRC/models/tiny.cram" -D seq=16 -D vocab=64 -D layers=1 --target interp -o "$T/tiny.so"; check "[ $? = 0 ]"
    RT="--data $T/data --batch 32 --ramp 0.5 --seed 3 --quiet --steps 6"
    "$CRAM" train "$T/tiny.so" $RT --out "$T/t1"; check "[ $? = 0 ]"
    $MPI -np 2 "$CRAM" train "$T/tiny.so" $RT --out "$T/t2"; check "[ $? = 0 ]"
    check "close $T/t1/metrics.jsonl $T/t2/metrics.jsonl 6"
    check "grep -q '\"batch\":8,' $T/t2/metrics.jsonl"
    check "pdiff $T/t1/checkpoint.safetensors $T/t2/checkpoint.safetensors"
fi

# 2. resume across rank counts: 2 -> 1 and 1 -> 2 continue the same run
$MPI -np 2 "$CRAM" train "$FX" $R --out "$T/r21" --stop-at 8; check "[ $? = 0 ]"
"$CRAM" train "$FX" --data "$T/data" --resume "$T/r21" --quiet; check "[ $? = 0 ]"
check "close $T/one/metrics.jsonl $T/r21/metrics.jsonl 20"
check "pdiff $T/one/checkpoint.safetensors $T/r21/checkpoint.safetensors"
"$CRAM" train "$FX" $R --out "$T/r12" --stop-at 11; check "[ $? = 0 ]"
$MPI -np 2 "$CRAM" train "$FX" --data "$T/data" --resume "$T/r12" --quiet; check "[ $? = 0 ]"
check "close $T/one/metrics.jsonl $T/r12/metrics.jsonl 20"
check "pdiff $T/one/checkpoint.safetensors $T/r12/checkpoint.safetensors"

# 3. rank 1 alone hits bad data at its 6th step() call: every rank stops with
# one message naming the rank; the checkpoint covers the whole updates before
$MPI -np 1 "$CRAM" train "$FX" $R --out "$T/derr" : -np 1 env CRAM_FIXTURE_DATA_ERR=5:1 "$CRAM" train "$FX" $R --out "$T/derr" \
    > /dev/null 2> "$T/derr.err"
check "[ $? = 1 ]"
check "[ \$(grep -c 'cram train: rank 1: step step failed (bad batch data)' $T/derr.err) = 1 ]"
check "grep -q 'checkpoint of step [0-9]* written' $T/derr.err"
n=$(wc -l < "$T/derr/metrics.jsonl")
check "[ $n -ge 1 ] && [ $n -lt 20 ]"
"$CRAM" train "$FX" --data "$T/data" --resume "$T/derr" --quiet; check "[ $? = 0 ]"
check "close $T/one/metrics.jsonl $T/derr/metrics.jsonl 20"
# rank 1 alone sees NaN losses: every rank skips those updates (the guard
# sees the summed loss); K in a row -> checkpoint + exit 3 on every rank
$MPI -np 1 "$CRAM" train "$FX" $R --ramp 0 --out "$T/nan" --max-bad 3 : -np 1 env CRAM_FIXTURE_NAN=6:1000 "$CRAM" train "$FX" $R \
    --ramp 0 --out "$T/nan" --max-bad 3 2> "$T/nan.err"
rc=$?
check "[ $rc = 3 ]"
check "[ \$(grep -c '3 non-finite losses/gradient norms in a row' $T/nan.err) = 1 ]"
check "[ -f $T/nan/checkpoint.safetensors ] && [ \$(grep -c '\"skipped\":1' $T/nan/metrics.jsonl) = 3 ]"

# 4. a rank killed (-9) mid-run: the job ends, the last periodic checkpoint
# is intact and resumes
(CRAM_FIXTURE_SLEEP_US=20000 $MPI -np 1 "$CRAM" train "$FX" $R --steps 100000 --ckpt-steps 5 --out "$T/kill" : \
    -np 1 bash -c "echo \$\$ > $T/kill.pid; exec $CRAM train $FX $R --steps 100000 --ckpt-steps 5 --out $T/kill" \
    > /dev/null 2>&1; echo $? > "$T/kill.rc") &
for i in $(seq 100); do [ -f "$T/kill/checkpoint.safetensors" ] && break; sleep 0.1; done
sleep 0.5
kill -9 "$(cat "$T/kill.pid")"
wait
check "[ \$(cat $T/kill.rc) != 0 ]"
check "[ -f $T/kill/checkpoint.safetensors ]"
"$CRAM" train "$FX" --data "$T/data" --resume "$T/kill" --stop-at 1 --quiet 2> "$T/kill.err"
check "grep -q 'stopped at step\|done at step' $T/kill.err || [ \$(wc -l < $T/kill.err) = 0 ]"
"$CRAM" eval "$FX" --data "$T/data" --checkpoint "$T/kill" > /dev/null; check "[ $? = 0 ]"

# SIGINT to mpirun (forwarded to every rank): all stop at the same update
# boundary, rank 0 checkpoints and says so once; the run resumes
CRAM_FIXTURE_SLEEP_US=20000 $MPI -np 2 "$CRAM" train "$FX" $R --steps 100000 --out "$T/sig" 2> "$T/sig.err" &
pid=$!
for i in $(seq 100); do [ -s "$T/sig/metrics.jsonl" ] && break; sleep 0.1; done
sleep 0.5; kill -INT $pid; wait $pid
check "[ \$(grep -c 'interrupted at step' $T/sig.err) = 1 ] && [ \$(grep -c 'all ranks stop after the current update' $T/sig.err) = 1 ]"
n=$(wc -l < "$T/sig/metrics.jsonl")
"$CRAM" train "$FX" --data "$T/data" --resume "$T/sig" --stop-at $((n + 2)) --quiet; check "[ $? = 0 ]"
check "[ \$(wc -l < $T/sig/metrics.jsonl) = $((n + 2)) ]"

# 5. ranks that disagree are refused before any update
$MPI -np 1 "$CRAM" train "$FX" $R --out "$T/mb" : -np 1 "$CRAM" train "$FX" $R --max-bad 3 --out "$T/mb" 2> "$T/mb.err"
check "[ $? = 1 ] && grep -q 'ranks disagree on the run' $T/mb.err"
$MPI -np 1 "$CRAM" train "$FX" $R --out "$T/mm" : -np 1 "$CRAM" train "$FX" $R --seed 8 --out "$T/mm" 2> "$T/mm.err"
check "[ $? = 1 ] && grep -q 'ranks disagree on the run' $T/mm.err && [ ! -f $T/mm/checkpoint.safetensors ]"
$MPI -np 1 "$CRAM" train "$FX" $R --out "$T/md" : -np 1 "$CRAM" train "$FX" $R --data "$T/data2" --out "$T/md" 2> "$T/md.err"
check "[ $? = 1 ] && grep -q 'ranks disagree on the training data' $T/md.err"
# a rank that cannot start (no such data) stops the others, one message
$MPI -np 1 "$CRAM" train "$FX" $R --out "$T/ms" : -np 1 "$CRAM" train "$FX" $R --data "$T/none" --out "$T/ms" 2> "$T/ms.err"
check "[ $? = 1 ] && [ \$(grep -c 'cram train: rank 1:' $T/ms.err) = 1 ]"

echo "$pass passed, $fail failed"
[ $fail = 0 ]
