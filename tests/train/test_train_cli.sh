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
# every subcommand parses from its option table: help, an unknown option refused with a did-you-mean
for c in data shards train info eval plot export bench sweep; do
  check "$CRAM $c --help | grep -q 'usage: cram $c' && $CRAM $c --help | grep -q -- '-h, --help'"
  check "[ \$(e $CRAM $c --quiett) = 2 ] && grep -q \"unknown option '--quiett'\" $T/e.err"
done
check "[ \$(e $CRAM data --outt x) = 2 ] && grep -q \"did you mean '--out'\" $T/e.err"
check "[ \$(e $CRAM export --name cramc) = 2 ] && grep -q \"did you mean '--names'\" $T/e.err"

# 6. recipe knobs at run time: recorded, honoured, refused on resume
meta() { head -c 8192 "$1" | tr ',' '\n'; }
"$CRAM" train "$FX" $R --out "$T/knobs" --steps 12 --beta1 0.8 --beta2 0.95 --eps 1e-8 --weight-decay 0.1 \
  --wd-skip none --clip 1.5 --lr-shape cosine --warmup 0.25; check "[ $? = 0 ]"
for kv in '"beta1":"0.80000000000000004"' '"beta2":"0.94999999999999996"' '"eps":"1e-08"' '"weight_decay":"0.10000000000000001"' \
  '"weight_decay_other":"0.10000000000000001"' '"max_norm":"1.5"' '"lr_shape":"2"' '"warmup":"0.25"'; do
  check "meta $T/knobs/checkpoint.safetensors | grep -qF '$kv'"
done
check "! cmp -s <(losses $T/full/metrics.jsonl | head -12) <(losses $T/knobs/metrics.jsonl)"
# each knob alone changes the trajectory (the step reads it; none is ignored)
for k in "--beta1 0.5" "--beta2 0.5" "--eps 0.01" "--weight-decay 0.5" "--wd-skip none --weight-decay 0.5" "--clip 0.01" "--lr-shape constant"; do
  d=$T/k$(echo "$k" | tr -dc 'a-z0-9'); "$CRAM" train "$FX" $R --out "$d" --steps 6 $k
  [ "$k" = "--wd-skip none --weight-decay 0.5" ] && base=$T/kweightdecay05 || base=$T/kbase
  [ -d $T/kbase ] || "$CRAM" train "$FX" $R --out $T/kbase --steps 6
  check "! cmp -s <(losses $base/metrics.jsonl) <(losses $d/metrics.jsonl)"
done
# lr shapes: the cosine warms up from 0, the constant holds the peak
check "[ \$(head -1 $T/knobs/metrics.jsonl | sed -E 's/.*\"lr\":([^,]*),.*/\1/') = 0 ]"
"$CRAM" train "$FX" $R --out "$T/const" --steps 5 --lr-shape constant --lr 0.002
check "[ \$(grep -c '\"lr\":0.002,' $T/const/metrics.jsonl) = 5 ]"
check "[ \$(e $CRAM train $FX $R --out $T/w --steps 3 --warmup 0.1) = 2 ] && grep -q 'triangle' $T/e.err"
check "[ \$(e $CRAM train $FX --data $T/data --resume $T/knobs --beta2 0.9) = 2 ]"

# 7. token and FLOP budgets: the schedule follows them, the checkpoint records them
"$CRAM" train "$FX" $R --out "$T/tok" --tokens 2000; check "[ $? = 0 ]"
tk=$(tail -1 "$T/tok/metrics.jsonl" | sed -E 's/.*"tokens":([0-9]+).*/\1/')
check "[ $tk -ge 2000 ] && [ $tk -lt 2256 ]"
check "meta $T/tok/checkpoint.safetensors | grep -qF '\"budget_tokens\":\"2000\"'"
# a token-horizon run resumes (the checkpoint's horizon is the tokens)
"$CRAM" train "$FX" $R --out "$T/tokr" --tokens 2000 --stop-at 5; check "[ $? = 0 ]"
"$CRAM" train "$FX" --data "$T/data" --resume "$T/tokr" --quiet; check "[ $? = 0 ]"
check "cmp -s <(losses $T/tok/metrics.jsonl) <(losses $T/tokr/metrics.jsonl)"
check "tail -1 $T/tok/metrics.jsonl | grep -Eq '\"lr\":[0-9.e-]+,' && [ \$(tail -1 $T/tok/metrics.jsonl | sed -E 's/.*\"lr\":([^,]*),.*/\1/' | awk '{print (\$1 < 2e-4)}') = 1 ]"
# 6 * 8 * 64 = 3072 FLOPs per token: 3072 * 2000 is the same horizon as --tokens 2000
"$CRAM" train "$FX" $R --out "$T/flop" --flops 6144000; check "[ $? = 0 ]"
check "cmp -s <(losses $T/tok/metrics.jsonl) <(losses $T/flop/metrics.jsonl)"
check "[ \$(e $CRAM train $FX $R --out $T/two --steps 3 --tokens 100) = 2 ]"
check "[ \$(e $CRAM train $FX $R --out $T/two --tokens 1x) = 2 ] && grep -q 'count like' $T/e.err"

# 8. no silently ignored setting; bounded numbers; did-you-mean
check "[ \$(e $CRAM train $FX $R --out $T/mr --steps 2 --mask-rate 0.15) = 1 ] && grep -q 'recompile with cramc -D masked=2' $T/e.err"
check "[ \$(e $CRAM eval $FX --data $T/data --mask-rate 0.15) = 1 ] && grep -q -- '-D masked=' $T/e.err"
check "[ \$(e $CRAM train $FX --data $T/data --out $T/b --steps 2 --batch 18446744073709551608) = 2 ] && grep -q 'integer in' $T/e.err"
check "[ \$(e $CRAM train $FX --data $T/data --out $T/b --steps 2 --lr inf) = 2 ]"
check "[ \$(e $CRAM train $FX --data $T/data --out $T/b --stpes 2) = 2 ] && grep -q \"did you mean '--steps'\" $T/e.err"
check "[ \$(e $CRAM eval $FX --data $T/data --chekpoint x) = 2 ] && grep -q \"did you mean '--checkpoint'\" $T/e.err"
check "$CRAM train --help | grep -q -- '--beta2' && $CRAM train --help | grep -q -- '--tokens'"
# no --batch on a cpu artifact: a batch the machine can run, said once
"$CRAM" train "$FX" --data "$T/data" --out "$T/auto" --steps 2 2> "$T/auto.err"; check "[ $? = 0 ]"
check "grep -q 'cpu target: --batch not given, training with batch 16 (4 microbatches of 4)' $T/auto.err"
check "[ \$(e $CRAM train $FX --data $T/data --out $T/huge --steps 1 --batch 4096) = 0 ] && grep -q 'larger than the 400 training' $T/e.err"

# 9. run directories: parents created, an earlier run's metrics never silently replaced
"$CRAM" train "$FX" $R --out "$T/a/b/c" --steps 2; check "[ $? = 0 ] && [ -f $T/a/b/c/checkpoint.safetensors ]"
mkdir -p "$T/old" && echo '{"n":1}' > "$T/old/metrics.jsonl"
check "[ \$(e $CRAM train $FX $R --out $T/old --steps 2) = 1 ] && grep -q 'pass --force' $T/e.err && [ \$(wc -l < $T/old/metrics.jsonl) = 1 ]"
check "[ \$(e $CRAM train $FX $R --out $T/old --steps 2 --force) = 0 ] && [ \$(wc -l < $T/old/metrics.jsonl) = 2 ]"

# 10. held-out evaluation during training; eval --json, a run directory as --checkpoint
"$CRAM" train "$FX" $R --out "$T/ev" --steps 6 --eval-every 3 --eval-seqs 16; check "[ $? = 0 ]"
check "[ \$(grep -c '\"eval_loss\":' $T/ev/metrics.jsonl) = 2 ]"
check "[ \$(grep -c '\"eval_accuracy\":[0-9.e-]*,' $T/ev/metrics.jsonl) = 2 ]"
"$CRAM" eval "$FX" --data "$T/data" --checkpoint "$T/full" --json --max-seqs 10 > "$T/ev.json"; check "[ $? = 0 ]"
check "python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d[\"sequences\"]==8 and d[\"left_out\"]==2 and d[\"loss\"]>0 and 0<=d[\"accuracy\"]<=1' $T/ev.json"
check "[ \$(e $CRAM eval $FX --data $T/data --max-seqs 3) = 2 ] && grep -q 'less than one microbatch' $T/e.err"

# 11. cram plot: several runs on one figure, any x axis, smoothing, SVG and PNG
"$CRAM" plot "$T/full" "$T/knobs" "$T/ev" --x tokens -o "$T/cmp.svg" > /dev/null; check "[ $? = 0 ]"
check "[ \$(grep -c '<polyline' $T/cmp.svg) -ge 9 ] && grep -q 'tokens seen' $T/cmp.svg && grep -q 'held-out' $T/cmp.svg"
"$CRAM" plot "$T/full" "$T/knobs" --x steps --smooth 0.9 -o "$T/cmp.png" > /dev/null; check "[ $? = 0 ]"
check "python3 - $T/cmp.png <<'PY'
import struct, sys, zlib
b = open(sys.argv[1], 'rb').read()
assert b[:8] == b'\\x89PNG\\r\\n\\x1a\\n'
w, h, depth, ctype = struct.unpack('>IIBB', b[16:26])
i, idat = 8, b''
while i < len(b):
    n, t = struct.unpack('>I4s', b[i:i + 8])
    assert zlib.crc32(b[i + 4:i + 8 + n]) == struct.unpack('>I', b[i + 8 + n:i + 12 + n])[0]
    if t == b'IDAT': idat += b[i + 8:i + 8 + n]
    i += 12 + n
raw = zlib.decompress(idat)
assert (w, depth, ctype) == (960, 8, 2) and len(raw) == h * (1 + 3 * w)
assert bytes([0x1f, 0x77, 0xb4]) in raw and bytes([0xd6, 0x27, 0x28]) in raw  # both runs drawn
PY"
check "[ \$(e $CRAM plot $T/full --x epochs) = 2 ] && grep -q 'one of time, tokens, steps' $T/e.err"

echo "$pass passed, $fail failed"
[ $fail = 0 ]
