#!/bin/bash
# test_sweep.sh CRAMC CRAM MKSHARDS SOURCE_DIR - `cram sweep` end to end on the
# interp target at toy size (seconds):
#   a 3-variant sweep (base, a -D override, a grid) plus a broken variant
#   produces results.md/.csv/.json and loss.svg, the broken one is a row with
#   its compiler diagnostic; a re-run keeps finished variants and recompiles
#   nothing; SIGTERM mid-sweep exits 130 and the re-run resumes the
#   interrupted variant from its checkpoint (its metrics continue, no
#   duplicated updates); a second sweep on a locked directory is refused;
#   SPEC errors are one line with file:line:col; a `downstream` task finetunes
#   every pretrained variant (cram finetune) into a second table, misfits are
#   notes, re-runs keep results. Prints "N passed, M failed".
CRAMC=$1 CRAM=$2 MK=$3 SRC=$4
T=$(mktemp -d /tmp/test_sweep.XXXXXX)
trap 'kill $bg 2>/dev/null; rm -rf "$T"' EXIT
pass=0 fail=0 bg=
ok() { pass=$((pass + 1)); }
no() { fail=$((fail + 1)); echo "FAIL: $*" >&2; }
check() { if eval "$1"; then ok; else no "$1"; fi; }

"$MK" "$T/data" 200 skew > /dev/null || { echo "mkshards failed"; exit 1; }
D="-D batch=4 -D seq=16 -D hidden=32 -D heads=2 -D ffn=64 -D layers=1 -D vocab=64"
cat > "$T/study.sweep" <<SPEC
sweep toy study   # a comment
base   $SRC/models/tiny.cram $D
data   data                      # relative to this file
target interp
budget steps 6
seed   3
eval   32
train  --batch 8 --ramp 0 --lr 3e-3

variant wide  -D hidden=64 -D heads=4
variant postln $SRC/models/ablations/postln_noglu.cram $D
variant broken -D heads=3
grid    g  layers=1,2
SPEC
export CRAMC
"$CRAM" sweep "$T/study.sweep" --check > "$T/check.txt"; check "[ $? = 0 ]"
check "grep -q '6 variants, target interp' $T/check.txt"
check "grep -Eq '^  g.layers=2 .*-D layers=2$' $T/check.txt"
check "! grep -q 'layers=1 .*layers=2' $T/check.txt"   # a variant's -D replaces the base's

# 1. the sweep: table, plot, a broken variant as a row
"$CRAM" sweep "$T/study.sweep" --out "$T/out" > "$T/out1.txt" 2> "$T/err1.txt"; check "[ $? = 0 ]"
for f in results.md results.csv results.json loss.svg loss.png; do check "[ -s $T/out/$f ]"; done
check "grep -q '5 of 6 variants trained and evaluated' $T/out1.txt"
check "grep -q '| broken | compile error |' $T/out/results.md"
check "grep -q 'heads' $T/out/results.md"   # the compiler's diagnostic names the problem
check "grep -q 'error:' $T/out/results.md"
check "[ \$(grep -c '\"outcome\":\"done\"' $T/out/results.json) = 5 ]"
check "[ \$(wc -l < $T/out/results.csv) = 7 ]"
check "grep -q '^\"base\",done,9473,' $T/out/results.csv"
check "grep -q '| base (base) | done |' $T/out/results.md"
check "grep -q '+0.0000' $T/out/results.md"   # base vs itself
check "[ \$(wc -l < $T/out/variants/wide/run/metrics.jsonl) = 6 ]"
check "grep -q '<polyline' $T/out/loss.svg && grep -q 'postln' $T/out/loss.svg"
check "[ \"\$(head -c 8 $T/out/loss.png | od -An -tx1 | tr -d ' ')\" = 89504e470d0a1a0a ]"
ncache=$(ls "$T/out/cache/"*.so | wc -l); check "[ $ncache = 5 ]"

# 2. re-run: everything kept, nothing recompiled
before=$(stat -c %Y "$T"/out/cache/*.so | sort | tr '\n' ' ')
"$CRAM" sweep "$T/study.sweep" --out "$T/out" > /dev/null 2> "$T/err2.txt"; check "[ $? = 0 ]"
check "[ \$(grep -c ': kept (' $T/err2.txt) = 6 ]"
check "! grep -q 'compiling' $T/err2.txt"
check "[ \"\$(stat -c %Y $T/out/cache/*.so | sort | tr '\n' ' ')\" = \"$before\" ]"
# a changed budget re-runs (new key) but still does not recompile
sed -i 's/^budget steps 6/budget steps 4/' "$T/study.sweep"
"$CRAM" sweep "$T/study.sweep" --out "$T/out" > /dev/null 2> "$T/err3.txt"; check "[ $? = 0 ]"
check "! grep -q 'compiling' $T/err3.txt && grep -q 'compiled artifact cached' $T/err3.txt"
check "[ \$(wc -l < $T/out/variants/wide/run/metrics.jsonl) = 4 ]"

# 3. SIGTERM mid-sweep, then resume
cat > "$T/long.sweep" <<SPEC
base   $SRC/models/tiny.cram $D
data   data
target interp
budget steps 120
seed   1
eval   16
train  --batch 8 --ramp 0 --ckpt-steps 5
variant second -D ffn=32
SPEC
"$CRAM" sweep "$T/long.sweep" --out "$T/long" > /dev/null 2> "$T/long1.txt" &
bg=$!
for _ in $(seq 600); do [ -f "$T/long/variants/second/run/checkpoint.safetensors" ] && break; sleep 0.1; done
kill -TERM $bg; wait $bg; rc=$?; bg=
check "[ $rc = 130 ]"
check "grep -q 'run the same command again to resume' $T/long1.txt"
check "[ -f $T/long/variants/base/result.json ] && [ ! -f $T/long/variants/second/result.json ]"
check "[ -f $T/long/results.md ]"
check "grep -q '| second | pending |' $T/long/results.md"
"$CRAM" sweep "$T/long.sweep" --out "$T/long" > /dev/null 2> "$T/long2.txt"; check "[ $? = 0 ]"
check "grep -q 'base: kept (done)' $T/long2.txt"
check "grep -q 'second: resuming training' $T/long2.txt"
check "[ \$(wc -l < $T/long/variants/second/run/metrics.jsonl) = 120 ]"
check "[ \$(grep -o '\"step\":[0-9]*' $T/long/variants/second/run/metrics.jsonl | sort -u | wc -l) = 120 ]"
check "grep -q '| second | done |' $T/long/results.md"

# 4. the lock: a second sweep into the same directory is refused
if command -v flock > /dev/null; then
  flock "$T/out/.sweep.lock" sleep 5 & lk=$!
  sleep 0.3
  "$CRAM" sweep "$T/study.sweep" --out "$T/out" > /dev/null 2> "$T/lock.txt"; check "[ $? = 1 ]"
  check "grep -q 'another cram sweep' $T/lock.txt"
  kill $lk 2>/dev/null; wait $lk 2>/dev/null
else
  no "flock(1) missing: the lock test cannot run"
fi

# 6. downstream: every pretrained encoder finetuned on a toy SST-2-layout task (the label is
# which of two tokens the sentence holds); a variant the classifier does not fit and one whose own
# classifier does not compile are notes in their rows; a re-run keeps the results; new finetune
# flags re-run the finetuning only
python3 - "$T/SST-2" <<'PY'
import os, random, sys
rnd, d = random.Random(5), sys.argv[1]
os.makedirs(d)
for name, n in (("train", 48), ("dev", 16)):
    with open(f"{d}/{name}.tsv", "w") as f:
        f.write("sentence\tlabel\n")
        for i in range(n):
            w = [f"t{rnd.randint(12, 63)}" for _ in range(rnd.randint(3, 8))]
            w.insert(rnd.randrange(len(w) + 1), "t10" if i % 2 else "t11")
            f.write(" ".join(w) + f"\t{i % 2}\n")
PY
printf 'model broken\ndims batch=8\n' > "$T/broken_cls.cram"
cat > "$T/down.sweep" <<SPEC
base   $SRC/models/tiny.cram $D
data   data
target interp
budget steps 3
eval   16
train  --batch 8 --ramp 0
variant wide   -D hidden=64 -D heads=4
variant postln $SRC/models/ablations/postln_noglu.cram $D
variant own    -D ffn=32
classifier own broken_cls.cram
downstream SST-2 $SRC/models/ablations/finetune_classifier.cram -D classes=2 -D batch=8
finetune --epochs 1 --lr 1e-3
SPEC
"$CRAM" sweep "$T/down.sweep" --check > "$T/dcheck.txt"; check "[ $? = 0 ]"
check "grep -q 'own .*(classifier .*broken_cls.cram)' $T/dcheck.txt && grep -q '^downstream .*SST-2: classifier' $T/dcheck.txt"
"$CRAM" sweep "$T/down.sweep" --out "$T/down" > /dev/null 2> "$T/d1.txt"; check "[ $? = 0 ]"
check "grep -q '^## Downstream: SST-2' $T/down/results.md"
check "grep -Eq '^\| [12] \| base \(base\) \| [0-9]+\.[0-9]{2} \| \+0\.00 \|' $T/down/results.md"
check "grep -Eq '^\| [12] \| wide \| [0-9]+\.[0-9]{2} \|' $T/down/results.md"
check "grep -q '^| - | postln | - | - | cram finetune: .*ffn.out.weight' $T/down/results.md"   # the classifier does not fit
check "grep -q '^| - | own | - | - | classifier: .*error' $T/down/results.md"                 # its own classifier is refused
check "[ \$(grep -c 'starting finetuning on' $T/d1.txt) = 3 ] && [ -s $T/down/variants/wide/finetune/metrics.jsonl ]"
check "grep -q '\"downstream\":[0-9]' $T/down/results.json && grep -q 'downstream,downstream_why' $T/down/results.csv"
"$CRAM" sweep "$T/down.sweep" --out "$T/down" > /dev/null 2> "$T/d2.txt"; check "[ $? = 0 ]"
check "[ \$(grep -c 'downstream kept' $T/d2.txt) = 4 ] && ! grep -q 'starting' $T/d2.txt"
sed -i 's/^finetune --epochs 1/finetune --epochs 2/' "$T/down.sweep"
"$CRAM" sweep "$T/down.sweep" --out "$T/down" > /dev/null 2> "$T/d3.txt"; check "[ $? = 0 ]"
check "[ \$(grep -c 'kept (done)' $T/d3.txt) = 4 ] && [ \$(grep -c 'starting finetuning' $T/d3.txt) = 3 ] && ! grep -q 'starting training' $T/d3.txt"

# 5. SPEC errors: one line, file:line:col, exit 1; usage errors exit 2
# spec_error NAME LINES EXPECTED: a SPEC of tiny.cram's base line + LINES (printf), refused with EXPECTED (a grep pattern)
spec_error() {
  printf "base %s\\n$2" "$SRC/models/tiny.cram" > "$T/$1.sweep"
  "$CRAM" sweep "$T/$1.sweep" --check > /dev/null 2> "$T/$1.err"; check "[ $? = 1 ]"
  check "grep -q '$1.sweep:$3' $T/$1.err && [ \$(wc -l < $T/$1.err) = 1 ]"
}
spec_error bad1 'data d\nbudget lightyears 3\n' '3:8: unknown budget kind'
spec_error bad2 'data d\nbudget steps 3\nvariant a -D x=1\nvariant a -D x=2\n' '5:9: variant .a. is already defined (line 4)'
spec_error bad3 'data d\nbudget steps 3\ntrain --out x\n' '4:7: .--out. is set by the sweep itself'
spec_error bad4 'data d\n' '3:1: no .budget. line'
spec_error bad5 'data d\nbudget steps 3\nfinetune --init x\n' '4:10: .--init. is set by the sweep itself'
spec_error bad6 'data d\nbudget steps 3\nfinetune --epochs 1\n' '4:1: .finetune. without a .downstream. line'
spec_error bad7 'data d\nbudget steps 3\nclassifier nope x.cram\n' '4:12: no variant .nope. above this line'
"$CRAM" sweep "$T/nonexistent.sweep" --out "$T/x" > /dev/null 2> "$T/e5.txt"; check "[ $? = 1 ]"
check "grep -q 'nonexistent.sweep: No such file' $T/e5.txt"
"$CRAM" sweep > /dev/null 2>&1; check "[ $? = 2 ]"
"$CRAM" sweep "$T/study.sweep" --bogus > /dev/null 2>&1; check "[ $? = 2 ]"

echo "$pass passed, $fail failed"
[ $fail = 0 ]
