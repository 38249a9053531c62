#!/bin/bash
# test_agree.sh CRAMC CRAM SOURCE_DIR CC - bench/agree.sh on the CPU: the
# cpu-target artifacts of tiny.cram and of the postln_noglu ablation (toy
# dims) against the PyTorch reference in f32, from the same `cram export`ed
# init on the same 20 batches (tolerance 1e-5; measured ~1e-7). Also: the
# bf16 path (reference under CPU autocast, tolerance 2e-2) runs and prints
# its noise floor, and a perturbed loss is caught. --batches/--init (the GPU
# bundle's pre-written inputs): the interp artifact of the same dims starts
# from the cpu one's exported init byte for byte and agrees on those batches;
# an init from another seed is refused. Prints "N passed, M failed".
CRAMC=$1 CRAM=$2 SRC=$3 BUILD_CC=${4:-cc}
T=$(mktemp -d /tmp/test_agree.XXXXXX)
trap 'rm -rf "$T"' EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); }
no() { fail=$((fail + 1)); echo "FAIL: $*" >&2; }
check() { if eval "$1"; then ok; else no "$1"; fi; }
PY=/usr/bin/python3
D="-D batch=4 -D seq=16 -D hidden=32 -D heads=2 -D ffn=64 -D layers=2 -D vocab=64"
for m in tiny ablations/postln_noglu; do
  n=$(basename $m)
  "$CRAMC" "$SRC/models/$m.cram" $D --target cpu --cc "$BUILD_CC" -o "$T/$n.so"; check "[ $? = 0 ]"
  bash "$SRC/bench/agree.sh" --cram "$CRAM" --step "$T/$n.so" --out "$T/$n" --python $PY --rtol 1e-5 > "$T/$n.txt" 2>&1
  check "[ $? = 0 ]"
  tail -1 "$T/$n.txt"
  check "grep -q 'loss agreement over 20 steps: .*OK' $T/$n.txt"
  check "[ -f $T/$n/init/checkpoint.safetensors ] && [ -f $T/$n/init.safetensors ] && [ -f $T/$n/batches.safetensors ]"
done
# bf16 reference (CPU autocast) against the f32 step: within the bf16 tolerance, noise floor printed
bash "$SRC/bench/agree.sh" --cram "$CRAM" --step "$T/tiny.so" --out "$T/bf" --python $PY --precision bf16 > "$T/bf.txt" 2>&1
check "[ $? = 0 ] && grep -q 'noise floor (torch eager bf16 vs torch eager f32)' $T/bf.txt && grep -q 'tolerance 0.02: OK' $T/bf.txt"
# pre-written batches and init (bench/gpu-bundle.sh's data/): another target of the same model and dims
"$CRAMC" "$SRC/models/tiny.cram" $D --target interp --cc "$BUILD_CC" -o "$T/tiny.interp.so"; check "[ $? = 0 ]"
bash "$SRC/bench/agree.sh" --cram "$CRAM" --step "$T/tiny.interp.so" --out "$T/pre" --python $PY --rtol 1e-5 \
  --batches "$T/tiny/batches.safetensors" --init "$T/tiny/init.safetensors" > "$T/pre.txt" 2>&1
check "[ $? = 0 ] && grep -q 'initial parameters: identical to' $T/pre.txt && grep -q 'over 20 steps: .*OK' $T/pre.txt"
check "[ ! -f $T/pre/batches.safetensors ]"  # used, not rewritten
bash "$SRC/bench/agree.sh" --cram "$CRAM" --step "$T/tiny.interp.so" --out "$T/pre2" --python $PY --seed 1 \
  --batches "$T/tiny/batches.safetensors" --init "$T/tiny/init.safetensors" > "$T/pre2.txt" 2>&1
check "[ $? = 1 ] && grep -q 'initial parameters .* differ from' $T/pre2.txt"
bash "$SRC/bench/agree.sh" --cram "$CRAM" --step "$T/tiny.so" --out "$T/pre3" --batches "$T/none" > "$T/pre3.txt" 2>&1
check "[ $? = 1 ] && grep -q 'no such file' $T/pre3.txt"
# sensitivity: one loss off by 1e-3 relative fails the f32 check
$PY - "$T/tiny/torch.json" "$T/bad.json" << 'PYEOF'
import json, sys
r = json.load(open(sys.argv[1])); r["losses"][7] *= 1.001; json.dump(r, open(sys.argv[2], "w"))
PYEOF
$PY "$SRC/bench/report.py" agree "$T/tiny/ours.json" "$T/bad.json" --rtol 1e-4 > "$T/bad.txt"
check "[ $? = 1 ] && grep -q 'outside tolerance' $T/bad.txt && grep -q FAILED $T/bad.txt"
# usage errors
bash "$SRC/bench/agree.sh" --cram "$CRAM" > /dev/null 2>&1; check "[ $? = 2 ]"
bash "$SRC/bench/agree.sh" --bogus > /dev/null 2>&1; check "[ $? = 2 ]"
echo "$pass passed, $fail failed"
[ $fail = 0 ]
