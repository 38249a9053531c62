#!/bin/bash
# test_codegen_cli.sh CRAMC CRAM MKSKEW SOURCE_DIR LIBDIR CC - the interp
# artifact in the trainer and the artifact build's errors:
#   cram info; cram train 20 steps on synthetic shards, the loss falls; resume
#   (--stop-at + --resume) == uninterrupted, for the interp and the cpu target;
#   a cpu step.c split into parallel-compiled units trains as the single unit;
#   cram export; an artifact built for another
#   step ABI version is refused by the loader with the clear message; compiler
#   failure, missing library, unwritable output: one line, exit 1, and no
#   half-written artifact. Prints "N passed, M failed".
CRAMC=$1 CRAM=$2 MK=$3 SRC=$4 LIBDIR=$5 BUILD_CC=${6:-cc}
T=$(mktemp -d /tmp/test_codegen_cli.XXXXXX)
trap 'rm -rf "$T"' EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); }
no() { fail=$((fail + 1)); echo "FAIL: $*" >&2; }
check() { if eval "$1"; then ok; else no "$1"; fi; }
losses() { sed -E 's/.*"n":([0-9]+),"step":([0-9]+).*"loss":([^,]*),"lr":([^,]*),"batch":([0-9]+).*"skipped":([01]).*/\1 \2 \3 \4 \5 \6/' "$1"; }

# mkshards ... skew (tests/train/mkshards.c): vocab 64, seq 16, skewed unigrams; a model of that shape.
D="-D batch=4 -D seq=16 -D hidden=32 -D heads=2 -D ffn=64 -D layers=1 -D vocab=64"
"$MK" "$T/data" 200 skew || { echo "mkshards failed"; exit 1; }
"$CRAMC" "$SRC/models/tiny.cram" $D --target interp -o "$T/tiny.so"; check "[ $? = 0 ]"
check "[ -f $T/tiny.so ] && ! ls $T/tiny.so.tmp.* 2>/dev/null"

# 1. info
"$CRAM" info "$T/tiny.so" > "$T/info.txt"; check "[ $? = 0 ]"
check "grep -q 'model         tiny' $T/info.txt"
check "grep -q 'target        interp' $T/info.txt"
check "grep -q 'precision     f32' $T/info.txt"
check "grep -q 'step ABI      v3' $T/info.txt"
check "grep -q 'masked=4' $T/info.txt"
check "grep -Eq 'embedding.weight +\[64, 32\] +2048  decay' $T/info.txt"
"$CRAMC" "$SRC/models/tiny.cram" $D --precision f64 -o "$T/tiny64.so"; check "[ $? = 0 ]"
check "$CRAM info $T/tiny64.so | grep -q 'precision     f64'"

# 2. train: the loss falls; resume == uninterrupted
R="--data $T/data --batch 8 --ramp 0 --lr 3e-3 --seed 3 --quiet"
"$CRAM" train "$T/tiny.so" $R --out "$T/full" --steps 20; check "[ $? = 0 ]"
check "[ \$(wc -l < $T/full/metrics.jsonl) = 20 ]"
first=$(losses "$T/full/metrics.jsonl" | head -3 | awk '{s += $3} END {print s / NR}')
last=$(losses "$T/full/metrics.jsonl" | tail -3 | awk '{s += $3} END {print s / NR}')
echo "train: mean loss of the first 3 updates $first, of the last 3 $last"
check "awk -v a=$first -v b=$last 'BEGIN {exit !(b < a - 0.05)}'"
"$CRAM" train "$T/tiny.so" $R --out "$T/half" --steps 20 --stop-at 9; check "[ $? = 0 ]"
"$CRAM" train "$T/tiny.so" --data "$T/data" --resume "$T/half" --quiet; check "[ $? = 0 ]"
check "cmp -s <(losses $T/full/metrics.jsonl) <(losses $T/half/metrics.jsonl)"
"$CRAM" eval "$T/tiny.so" --data "$T/data" --checkpoint "$T/full/checkpoint.safetensors" > "$T/eval.txt"; check "[ $? = 0 ]"
check "grep -q 'heldout loss' $T/eval.txt"
# the same with the cpu target: the loss falls, resume == uninterrupted
"$CRAMC" "$SRC/models/tiny.cram" $D --target cpu --cc "$BUILD_CC" -o "$T/tiny_cpu.so"; check "[ $? = 0 ]"
"$CRAM" train "$T/tiny_cpu.so" $R --out "$T/cfull" --steps 20; check "[ $? = 0 ]"
cfirst=$(losses "$T/cfull/metrics.jsonl" | head -3 | awk '{s += $3} END {print s / NR}')
clast=$(losses "$T/cfull/metrics.jsonl" | tail -3 | awk '{s += $3} END {print s / NR}')
echo "train (cpu target): mean loss of the first 3 updates $cfirst, of the last 3 $clast"
check "awk -v a=$cfirst -v b=$clast 'BEGIN {exit !(b < a - 0.05)}'"
"$CRAM" train "$T/tiny_cpu.so" $R --out "$T/chalf" --steps 20 --stop-at 9; check "[ $? = 0 ]"
"$CRAM" train "$T/tiny_cpu.so" --data "$T/data" --resume "$T/chalf" --quiet; check "[ $? = 0 ]"
# a step.c split into translation units (CRAMC_CPU_UNIT_NODES: a few hundred nodes per
# unit, compiled in parallel) trains exactly as the single-unit build; a unit that does
# not compile fails the build with the compiler's message and leaves nothing behind
CRAMC_CPU_UNIT_NODES=150 "$CRAMC" "$SRC/models/tiny.cram" $D --target cpu --cc "$BUILD_CC" -o "$T/tiny_units.so"
check "[ $? = 0 ] && [ \$(nm $T/tiny_units.so | grep -c ' t acc_k') -gt 10 ]"
"$CRAM" train "$T/tiny_units.so" $R --out "$T/ufull" --steps 20 --quiet; check "[ $? = 0 ]"
check "cmp -s <(losses $T/cfull/metrics.jsonl) <(losses $T/ufull/metrics.jsonl)"
CRAMC_CPU_UNIT_NODES=150 "$CRAMC" "$SRC/models/tiny.cram" $D --target cpu --cc "$BUILD_CC -DCRAM_CPU_KERNELS_H" -o "$T/bad_units.so" 2> "$T/u.err"
check "[ $? = 1 ] && grep -q 'failed on .*/unit0.c' $T/u.err && [ ! -e $T/bad_units.so ]"
check "cmp -s <(losses $T/cfull/metrics.jsonl) <(losses $T/chalf/metrics.jsonl)"
# export: the reference's state-dict names, bytes identical to the checkpoint
"$CRAM" export "$T/tiny.so" "$T/full" --out "$T/export.safetensors" > /dev/null; check "[ $? = 0 ]"
check "python3 $SRC/tests/codegen/check_export.py $T/full/checkpoint.safetensors $T/export.safetensors 1 16"
"$CRAM" export "$T/tiny.so" "$T/full" --names cramc --out "$T/export2.safetensors" > /dev/null; check "[ $? = 0 ]"
"$CRAM" export "$T/tiny.so" "$T/nonexistent" --out "$T/x.safetensors" 2> "$T/x.err"; check "[ $? = 1 ] && [ \$(wc -l < $T/x.err) = 1 ]"
# the export is self-describing: the .cram source, dims and the run's tokenizer beside the weights
check "cmp -s $SRC/models/tiny.cram $T/export.cram && cmp -s $T/data/vocab.txt $T/export.vocab.txt"
check "python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d[\"dims\"][\"hidden\"]==32 and d[\"source\"]==\"export.cram\" and len(d[\"parameters\"])==14' $T/export.json"
printf 'x\n' > "$T/othervocab.txt"; mkdir -p "$T/otherdata" && cp "$T/othervocab.txt" "$T/otherdata/vocab.txt"
"$CRAM" export "$T/tiny.so" "$T/full" --data "$T/otherdata" --out "$T/x2.safetensors" 2> "$T/x.err"
check "[ $? = 1 ] && grep -q 'the run trained with' $T/x.err"

# dropout in a model is active in training (so the first loss differs from the same model
# without it: same parameters, dropout has none) and off in eval (eval is deterministic)
sed 's/^x = layernorm(x, eps=1e-12, name="emb_norm")$/x = dropout(layernorm(x, eps=1e-12, name="emb_norm"), 0.1)/' \
  "$SRC/models/tiny.cram" > "$T/tiny_do.cram"
check "grep -q 'dropout(layernorm' $T/tiny_do.cram"
"$CRAMC" "$T/tiny_do.cram" $D --target interp -o "$T/tiny_do.so"; check "[ $? = 0 ]"
"$CRAM" train "$T/tiny_do.so" $R --out "$T/do" --steps 2; check "[ $? = 0 ]"
check "[ \"\$(losses $T/do/metrics.jsonl | head -1 | cut -d' ' -f3)\" != \"\$(losses $T/full/metrics.jsonl | head -1 | cut -d' ' -f3)\" ]"
e1=$("$CRAM" eval "$T/tiny_do.so" --data "$T/data" --checkpoint "$T/do" --json); e2=$("$CRAM" eval "$T/tiny_do.so" --data "$T/data" --checkpoint "$T/do" --json)
check "[ -n \"$e1\" ] && [ \"$e1\" = \"$e2\" ]"

# 3. an artifact built for another step ABI version is refused, clearly
"$CRAMC" "$SRC/models/tiny.cram" $D --target interp --emit=step-c -o "$T/step.c"; check "[ $? = 0 ]"
check "grep -q 'CRAM_INTERP_ABI_VERSION' $T/step.c"
CC="$BUILD_CC -DCRAM_INTERP_ABI_VERSION=99" "$CRAMC" "$SRC/models/tiny.cram" $D --target interp -o "$T/abi99.so"; check "[ $? = 0 ]"
"$CRAM" info "$T/abi99.so" > /dev/null 2> "$T/abi.err"; check "[ $? = 1 ]"
check "grep -q 'built for step ABI v99, this cram speaks v3: recompile with this cramc' $T/abi.err"
check "[ \$(wc -l < $T/abi.err) = 1 ]"

# 4. build errors: one line, exit 1, nothing left behind
e() { "$@" 2> "$T/e.err" > /dev/null; echo $?; }
DI="$D --target interp" # (the default target, cuda, is built and tested by test_cuda*.sh)
check "[ \$(e $CRAMC $SRC/models/tiny.cram $DI --cc false -o $T/x.so) = 1 ] && grep -q \"C compiler 'false' failed\" $T/e.err && [ ! -e $T/x.so ]"
check "[ \$(e $CRAMC $SRC/models/tiny.cram $DI --cc /nonexistent/cc -o $T/x.so) = 1 ] && grep -q 'cannot run' $T/e.err && [ \$(wc -l < $T/e.err) = 1 ]"
check "[ \$(e $CRAMC $SRC/models/tiny.cram $DI --libdir $T/nolib -o $T/x.so) = 1 ] && grep -q 'interp runtime library not found' $T/e.err"
check "[ \$(CRAMC_LIBDIR=$T/nolib e $CRAMC $SRC/models/tiny.cram $DI -o $T/x.so) = 1 ] && grep -q 'nolib' $T/e.err"
check "[ \$(CRAMC_LIBDIR=$T/nolib e $CRAMC $SRC/models/tiny.cram $DI --libdir $LIBDIR -o $T/x.so) = 0 ]"
check "[ \$(e $CRAMC $SRC/models/tiny.cram $DI -o $T/nodir/x.so) = 1 ] && grep -q 'nodir' $T/e.err && ! ls $T/nodir* 2>/dev/null"
check "! ls $T/*.tmp.* 2>/dev/null"

echo "$pass passed, $fail failed"
[ $fail = 0 ]
