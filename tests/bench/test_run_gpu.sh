#!/bin/bash
# test_run_gpu.sh CRAMC CRAM SOURCE_DIR BUILD_DIR CC - the plumbing of bench/run_gpu.sh
# without a GPU, through a fake nvidia-smi first on PATH:
#   1. nvidia-smi finds no device: everything skipped with the reason, exit 0;
#   2. a "GPU" but a torch without CUDA (/usr/bin/python3's): the torch stage
#      writes skip rows naming the reason, the agree stage says it is skipped,
#      the table stage prints and writes results.md with ours and the skips;
#      existing results are kept (not re-run) unless --force;
#   3. usage errors exit 2.
# Prints "N passed, M failed".
CRAMC=$1 CRAM=$2 SRC=$3 BUILD=$4 BUILD_CC=${5:-cc}
T=$(mktemp -d /tmp/test_run_gpu.XXXXXX)
trap 'rm -rf "$T"' EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); }
no() { fail=$((fail + 1)); echo "FAIL: $*" >&2; }
check() { if eval "$1"; then ok; else no "$1"; fi; }
mkdir -p "$T/nogpu" "$T/gpu"
printf '#!/bin/sh\necho "No devices were found"; exit 6\n' > "$T/nogpu/nvidia-smi"
printf '#!/bin/sh\necho "GPU 0: Fake GPU (UUID: GPU-0)"\n' > "$T/gpu/nvidia-smi"
chmod +x "$T/nogpu/nvidia-smi" "$T/gpu/nvidia-smi"

PATH=$T/nogpu:$PATH bash "$SRC/bench/run_gpu.sh" --out "$T/o1" > "$T/1.txt" 2>&1; check "[ $? = 0 ]"
check "grep -q 'skipped: everything: no GPU here' $T/1.txt && [ ! -d $T/o1 ]"

# ours: a real `cram bench` result (cpu target), filed as the tiny row
mkdir -p "$T/o2"
"$CRAMC" "$SRC/models/tiny.cram" -D batch=4 -D seq=16 -D hidden=32 -D heads=2 -D ffn=64 -D layers=1 -D vocab=64 \
  --target cpu --cc "$BUILD_CC" -o "$T/t.so"
"$CRAM" bench "$T/t.so" --steps 2 --warmup 0 --json "$T/o2/tiny_mb128_cramc.json" --quiet; check "[ $? = 0 ]"
R="--out $T/o2 --build $BUILD --mb 128"
PATH=$T/gpu:$PATH PYTHON=/usr/bin/python3 bash "$SRC/bench/run_gpu.sh" $R --stages "torch agree table" > "$T/2.txt" 2>&1
rc=$?
cat "$T/2.txt"
check "[ $rc = 0 ]"
check "grep -q 'skipped: the PyTorch columns and the loss agreement check: torch .* sees no CUDA device' $T/2.txt"
check "grep -q 'skipped: loss agreement' $T/2.txt"
for m in bert_crammed tiny postln_noglu; do
  for mode in eager compile; do
    check "grep -q '\"skipped\"' $T/o2/${m}_mb128_torch-$mode.json"
  done
done
check "[ -f $T/o2/results.md ] && grep -q '| tiny | 4 | cramc cpu |' $T/o2/results.md"
check "[ \$(grep -c 'skipped: torch' $T/o2/results.md) = 6 ]"
# kept unless --force
echo '{"impl":"torch","mode":"eager","model":"tiny","microbatch":128,"precision":"bf16","skipped":"kept"}' > "$T/o2/tiny_mb128_torch-eager.json"
PATH=$T/gpu:$PATH PYTHON=/usr/bin/python3 bash "$SRC/bench/run_gpu.sh" $R --stages "torch" > /dev/null 2>&1
check "grep -q kept $T/o2/tiny_mb128_torch-eager.json"
PATH=$T/gpu:$PATH PYTHON=/usr/bin/python3 bash "$SRC/bench/run_gpu.sh" $R --stages "torch" --force > /dev/null 2>&1
check "! grep -q kept $T/o2/tiny_mb128_torch-eager.json"
# a missing build is one clear failure
PATH=$T/gpu:$PATH PYTHON=/usr/bin/python3 bash "$SRC/bench/run_gpu.sh" --out "$T/o3" --build "$T/nobuild" --stages table > "$T/3.txt" 2>&1
check "[ $? = 1 ] && grep -q 'FAIL: no $T/nobuild/driver/cramc' $T/3.txt"
bash "$SRC/bench/run_gpu.sh" --bogus > /dev/null 2>&1; check "[ $? = 2 ]"
echo "$pass passed, $fail failed"
[ $fail = 0 ]
