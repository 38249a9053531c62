#!/usr/bin/env bash
# test_finetune_cli.sh CRAMC CRAM SOURCE_DIR - `cram finetune` end to end on
# the interp target (quick to compile): a synthetic SST-2-layout task whose
# label is decided by the words, pretraining checkpoint from `cram train`
# loaded into the classifier by name, a mismatched shape refused, loss falls,
# exact resume (metrics.jsonl identical to an uninterrupted run), GLUE
# fixtures of every layout through the reader, bad input with file:line.
set -u
CRAMC=$1 CRAM=$2 SRC=$3
W=$(mktemp -d "${TMPDIR:-/tmp}/test_finetune.XXXXXX")
[ -n "${KEEP:-}" ] && echo "work dir $W" || trap 'rm -rf "$W"' EXIT
fails=0 checks=0
check() { # check DESCRIPTION COMMAND...
  checks=$((checks + 1))
  if ! "${@:2}"; then echo "FAIL: $1"; fails=$((fails + 1)); fi
}
VOCAB=$SRC/tests/data/fixtures/vocab-2000.txt
D="-D vocab=2000 -D seq=32 -D batch=8 -D heads=2 -D ffn=64 -D layers=1"

python3 - "$W" <<'PY'
import random, sys, os
w = sys.argv[1]
rnd = random.Random(7)
pos = "good great fine happy love best nice".split()
neg = "bad poor sad hate worst awful wrong".split()
filler = "the movie was a story of and it in with this film time people".split()
def sent(label):
    words = [rnd.choice(filler) for _ in range(rnd.randint(4, 9))]
    words.insert(rnd.randrange(len(words) + 1), rnd.choice(pos if label else neg))
    return " ".join(words) + " "
os.makedirs(f"{w}/toy", exist_ok=True)
for name, n in (("train", 96), ("dev", 32)):
    with open(f"{w}/toy/{name}.tsv", "w") as f:
        f.write("sentence\tlabel\n")
        for i in range(n):
            f.write(f"{sent(i % 2)}\t{i % 2}\n")
with open(f"{w}/corpus.txt", "w") as f:
    for i in range(400):
        f.write(sent(i % 2) + ".\n\n")
PY

# Build: the classifier and a pretraining model with the same encoder names.
"$CRAMC" "$SRC/models/ablations/finetune_classifier.cram" $D -D hidden=32 -D classes=2 -D head=32 --target interp -o "$W/cls.so" || exit 1
"$CRAMC" "$SRC/models/ablations/finetune_classifier.cram" $D -D hidden=48 -D classes=2 -D head=32 --target interp -o "$W/wide.so" || exit 1
"$CRAMC" "$SRC/models/tiny.cram" $D -D hidden=32 --target interp -o "$W/tiny.so" || exit 1
"$CRAM" data "$W/corpus.txt" --tokenizer "$VOCAB" --seq-len 32 --doc-split paragraph --out "$W/data" >/dev/null 2>&1 || { echo "cram data failed"; exit 1; }
"$CRAM" train "$W/tiny.so" --data "$W/data" --out "$W/pre" --steps 4 --batch 8 --quiet >/dev/null || { echo "cram train failed"; exit 1; }

# 1. From the pretraining checkpoint: every encoder tensor copied, the head new; loss falls over 3 epochs.
FT="$CRAM finetune $W/cls.so --task $W/toy --layout sst2 --vocab $VOCAB --lr 1e-3 --epochs 3 --seed 3"
$FT --init "$W/pre" --out "$W/a" >"$W/a.out" 2>"$W/a.err"
check "finetune from checkpoint runs" test $? -eq 0
check "init report" grep -q "init: 14 tensors .* 4 new head tensors" "$W/a.err"
check "result line" grep -q "SST-2 dev.tsv: .* after 3 epochs (36 updates" "$W/a.out"
check "one jsonl line per update + per epoch" test "$(wc -l <"$W/a/metrics.jsonl")" -eq 39
loss_falls() {
  python3 - "$1" <<'PY'
import json, sys
ep = [json.loads(l) for l in open(sys.argv[1]) if "train_loss" in l]
sys.exit(0 if ep[0]["train_loss"] > 0.65 and ep[-1]["train_loss"] < 0.5 else 1)
PY
}
# Fitting one batch (8 examples, dropout off, 12 updates): the loss must fall well below chance (ln 2).
$FT --init "$W/pre" --out "$W/fit" --max-train 8 --dropout off --warmup 0 --lr 3e-2 --epochs 12 --quiet >/dev/null 2>&1
check "train loss falls (0.69 -> < 0.5)" loss_falls "$W/fit/metrics.jsonl"

# 1b. From `cram export` files: the reference's tensor names and cramc's.
for names in cramming cramc; do
  "$CRAM" export "$W/tiny.so" "$W/pre" --out "$W/pre-$names.safetensors" --names $names >/dev/null 2>&1
  $FT --init "$W/pre-$names.safetensors" --epochs 1 >/dev/null 2>"$W/x-$names.err"
  check "init from cram export --names $names" grep -q "init: 14 tensors .* 4 new head tensors" "$W/x-$names.err"
done

# 2. Exact resume: stop after 7 updates (mid-epoch 1), resume, same metrics.jsonl as uninterrupted.
$FT --init "$W/pre" --out "$W/b" --max-steps 7 --quiet >/dev/null 2>&1
check "stopped run has a checkpoint" test -f "$W/b/checkpoint.safetensors"
$FT --out "$W/b" --resume --quiet >/dev/null 2>"$W/b.err"
check "resume runs" test $? -eq 0
check "resumed metrics equal the uninterrupted run's" cmp -s "$W/a/metrics.jsonl" "$W/b/metrics.jsonl"
$FT --out "$W/b" --quiet >/dev/null 2>"$W/c0.err"
check "a run directory with a checkpoint is not overwritten" grep -q "holds a checkpoint: --resume it" "$W/c0.err"
$FT --out "$W/b" --resume --lr 2e-2 --quiet >/dev/null 2>"$W/c.err"
check "resume with another recipe refused" grep -q "written with another recipe" "$W/c.err"

# 3. Mismatches refused with one message naming the tensor and both shapes.
"$CRAM" finetune "$W/wide.so" --task "$W/toy" --layout sst2 --vocab "$VOCAB" --init "$W/pre" --quiet >/dev/null 2>"$W/d.err"
check "shape mismatch exit 1" test $? -eq 1
check "shape mismatch message" grep -q "tensor 'param.embedding.weight' is \[2000,32\] there, the classifier's 'embedding.weight' is \[2000,48\]" "$W/d.err"
"$CRAM" finetune "$W/cls.so" --task "$W/toy" --layout sst2 --vocab "$VOCAB" --init "$W/corpus.txt" --quiet >/dev/null 2>"$W/e.err"
check "not a safetensors file refused" test $? -eq 1
"$CRAM" finetune "$W/tiny.so" --task "$W/toy" --layout sst2 --vocab "$VOCAB" --quiet >/dev/null 2>"$W/f.err"
check "MLM step refused" grep -q "not a classifier step" "$W/f.err"
"$CRAM" finetune "$W/cls.so" --task "$SRC/tests/finetune/glue/MNLI" --vocab "$VOCAB" --quiet >/dev/null 2>"$W/g.err"
check "class count mismatch" grep -q "has 2 classes, MNLI has 3 (compile it with -D classes=3)" "$W/g.err"

# 4. Random init, every two-class fixture layout reads and trains one epoch; MNLI with 3 classes, two dev files.
for t in CoLA SST-2 MRPC QQP QNLI RTE; do
  "$CRAM" finetune "$W/cls.so" --task "$SRC/tests/finetune/glue/$t" --vocab "$VOCAB" --epochs 1 --quiet >"$W/$t.out" 2>&1
  check "$t fixture finetunes" grep -q "^$t dev.tsv: " "$W/$t.out"
done
"$CRAMC" "$SRC/models/ablations/finetune_classifier.cram" $D -D hidden=32 -D classes=3 -D head=32 --target interp -o "$W/cls3.so" || exit 1
"$CRAM" finetune "$W/cls3.so" --task "$SRC/tests/finetune/glue/MNLI" --vocab "$VOCAB" --epochs 1 --quiet >"$W/mnli.out" 2>&1
check "MNLI matched + mismatched" grep -q "MNLI dev_mismatched.tsv" "$W/mnli.out"

# 5. Malformed task file: file:line, exit 1.
mkdir -p "$W/bad" && printf 'sentence\tlabel\ngood movie\t1\nbad movie\n' >"$W/bad/train.tsv" && cp "$W/toy/dev.tsv" "$W/bad/"
"$CRAM" finetune "$W/cls.so" --task "$W/bad" --layout sst2 --vocab "$VOCAB" --quiet >/dev/null 2>"$W/h.err"
check "malformed line exit 1" test $? -eq 1
check "malformed line names file:line" grep -q "bad/train.tsv:3: 1 fields, SST-2 rows have 2" "$W/h.err"

# 5b. STS-B: the regression model (one output, MSE over the real rows), Pearson/Spearman.
"$CRAMC" "$SRC/models/ablations/finetune_regression.cram" $D -D hidden=32 -D head=32 --target interp -o "$W/reg.so" || exit 1
"$CRAM" finetune "$W/reg.so" --task "$SRC/tests/finetune/glue/STS-B" --vocab "$VOCAB" --epochs 2 --out "$W/stsb" >"$W/stsb.out" 2>"$W/stsb.err"
check "STS-B finetunes" grep -q "^STS-B dev.tsv: " "$W/stsb.out"
check "STS-B metrics.jsonl has Pearson and Spearman" grep -q '"pearson":.*"spearman":' "$W/stsb/metrics.jsonl"
"$CRAM" finetune "$W/cls.so" --task "$SRC/tests/finetune/glue/STS-B" --vocab "$VOCAB" --quiet >/dev/null 2>"$W/stsb2.err"
check "classifier refused for STS-B" grep -q "not a regression step for STS-B" "$W/stsb2.err"

# 6. cram glue on the fixtures: every task row (STS-B by the regression model), median of 2 seeds, JSON + Markdown.
G="$CRAM glue --init $W/pre --model $SRC/models/ablations/finetune_classifier.cram --vocab $VOCAB --target interp
   -D vocab=2000 -D seq=32 -D hidden=32 -D heads=2 -D ffn=64 -D layers=1 -D head=32 --batch 4 --epochs 1 --seeds 2"
$G --glue "$SRC/tests/finetune/glue" --out "$W/glue" >"$W/glue.out" 2>"$W/glue.err"
check "cram glue runs" test $? -eq 0
for row in CoLA SST-2 MRPC STS-B QQP MNLI-m MNLI-mm QNLI RTE; do
  check "glue row $row" grep -Eq "^$row +[A-Za-z0-9]+ +-?[0-9.]+ +-?[0-9.]+ +-?[0-9.]+ +-?[0-9.]+$" "$W/glue.out"
done
check "average of 9 scores" grep -q "GLUE average (median per task, 9 of 9 scores): -*[0-9.]*$" "$W/glue.out"
glue_json() {
  python3 - "$1" <<'PY'
import json, statistics, sys
j = json.load(open(sys.argv[1]))
rows = {t["task"]: t for t in j["tasks"]}
assert len(rows) == 9 and all(t["status"] == "done" for t in j["tasks"])
done = [t for t in j["tasks"] if t["status"] == "done"]
for t in done:
    assert len(t["values"]) == 2 and abs(statistics.median(t["values"]) - t["median"]) < 1e-3, t
assert abs(j["average"] - sum(t["median"] for t in done) / len(done)) < 1e-3
assert j["scores_in_average"] == 9
PY
}
check "glue.json: medians and average" glue_json "$W/glue/glue.json"
check "glue.md table" grep -q "^| \*\*average\*\* | 9 of 9 scores |" "$W/glue/glue.md"
$G --glue "$SRC/tests/finetune/glue" --out "$W/glue" --tasks rte --seeds 1 >"$W/glue3.out" 2>&1
check "cram glue reruns into the same --out" grep -q "^RTE .*1 of 9 scores\|1 of 9 scores" "$W/glue3.out"
mkdir -p "$W/partial" && cp -r "$SRC/tests/finetune/glue/RTE" "$W/partial/"
$G --glue "$W/partial" --out "$W/glue2" --seeds 1 >"$W/glue2.out" 2>&1
check "missing tasks listed as skipped" grep -q "^CoLA .*skipped: not in the GLUE directory" "$W/glue2.out"
check "one task: average of 1 score" grep -q "1 of 9 scores" "$W/glue2.out"

# 7. the option tables (runtime/cli/opts.c): --help from the table, a mistyped flag gets a
# did-you-mean and exit status 2, a value out of range is refused before any work.
for cmd in finetune glue tokenize; do
  "$CRAM" $cmd --help >"$W/help-$cmd.out" 2>&1
  check "cram $cmd --help" grep -q "^usage: cram $cmd" "$W/help-$cmd.out"
done
check "finetune --help lists --ckpt-every" grep -q "^  --ckpt-every N" "$W/help-finetune.out"
"$CRAM" finetune "$W/cls.so" --task "$SRC/tests/finetune/glue/SST-2" --vocab "$VOCAB" --epoch 1 2>"$W/typo.err"
check "finetune typo exit 2" test $? -eq 2
check "finetune did-you-mean" grep -q "unknown option '--epoch'; did you mean '--epochs'" "$W/typo.err"
"$CRAM" finetune "$W/cls.so" --task "$SRC/tests/finetune/glue/SST-2" --vocab "$VOCAB" --dropout maybe 2>"$W/drop.err"
check "finetune --dropout on|off" grep -q "expected one of off, on, got 'maybe'" "$W/drop.err"
$G --glue "$SRC/tests/finetune/glue" --out "$W/glue-typo" --seed 1 --sedes 2 2>"$W/gtypo.err"
check "glue typo exit 2" test $? -eq 2
check "glue did-you-mean" grep -q "unknown option '--sedes'; did you mean '--seeds'" "$W/gtypo.err"
$G --glue "$SRC/tests/finetune/glue" --out "$W/glue-typo" -D hidden 2>"$W/gdef.err"
check "glue -D needs NAME=VALUE" grep -q "expected NAME=VALUE, got 'hidden'" "$W/gdef.err"
"$CRAM" tokenize --vocb "$VOCAB" hello 2>"$W/ttypo.err"
check "tokenize typo exit 2" test $? -eq 2
check "tokenize did-you-mean" grep -q "did you mean '--vocab'" "$W/ttypo.err"
check "tokenize encodes" test -n "$("$CRAM" tokenize --vocab "$VOCAB" "the cat" | grep -E '^[0-9]+( [0-9]+)*$')"

echo "$checks checks, $fails failed"
test "$fails" -eq 0
