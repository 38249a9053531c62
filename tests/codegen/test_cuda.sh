#!/bin/bash
# test_cuda.sh CRAMC CRAM ABI_TEST SOURCE_DIR - the cuda target without a GPU:
#   1. every kernel of every model in models/ and models/ablations/ compiles
#      with NVRTC for sm_80 and sm_90 (through `cramc --target cuda
#      --emit=step-c`, PTX left out: CRAMC_NVRTC_PTX=0), in a fresh cache, at
#      the default precision bf16; tiny and untied_biases also at --precision
#      f32; bert_crammed once more with the PTX image, timed;
#   2. tiny's step.so builds, has no CUDA symbol to resolve at load, and
#      `cram info` shows target cuda (sm_80+);
#   3. through the ABI (test_cuda_abi): metadata, create() -> E_DEVICE with
#      the clear message (or a note that a GPU is present);
#   4. `cram train` with it fails with one line suggesting --target cpu;
#   5. an NVRTC error names the kernel and the source line; --precision f64
#      is refused. Prints "N passed, M failed".
CRAMC=$1 CRAM=$2 ABI=$3 SRC=$4
T=$(mktemp -d /tmp/test_cuda.XXXXXX)
trap 'rm -rf "$T"' EXIT
export CRAMC_CACHE_DIR=$T/cache
pass=0 fail=0
ok() { pass=$((pass + 1)); }
no() { fail=$((fail + 1)); echo "FAIL: $*" >&2; }
check() { if eval "$1"; then ok; else no "$1"; fi; }

# 1. NVRTC for sm_80 + sm_90, every model
for m in "$SRC"/models/*.cram "$SRC"/models/ablations/*.cram; do
  name=$(basename "$m" .cram)
  [ "$name" = bert_crammed ] && continue # below, with PTX
  t0=$(date +%s.%N)
  CRAMC_NVRTC_PTX=0 "$CRAMC" "$m" --target cuda --emit=step-c -o "$T/$name.c" 2> "$T/$name.err"
  rc=$?
  t1=$(date +%s.%N)
  check "[ $rc = 0 ]" || cat "$T/$name.err" >&2
  check "grep -q 'img_sm80\[[1-9]' $T/$name.c && grep -q 'img_sm90\[[1-9]' $T/$name.c"
  printf 'nvrtc %-22s sm_80 + sm_90 %5.1f s, %d kernels\n' "$name" "$(echo "$t1 - $t0" | bc)" \
    "$("$CRAMC" "$m" --emit=cuda | grep -c __global__)"
done
for name in tiny ablations/untied_biases; do
  CRAMC_NVRTC_PTX=0 "$CRAMC" "$SRC/models/$name.cram" --target cuda --precision f32 --emit=step-c -o "$T/f32.c" 2> "$T/f32.err"
  check "[ $? = 0 ]" || cat "$T/f32.err" >&2
  check "grep -q 'img_sm80\[[1-9]' $T/f32.c && grep -q 'precision = \"f32\"' $T/f32.c && ! grep -q CRAM_CUDA_DT_BF16 $T/f32.c"
done
check "grep -q 'precision = \"bf16\"' $T/tiny.c && grep -q 'CRAM_CUDA_DT_BF16' $T/tiny.c"
t0=$(date +%s.%N)
CRAMC_NVRTC_TIMES=1 "$CRAMC" "$SRC/models/bert_crammed.cram" --target cuda --emit=step-c -o "$T/bert.c" 2> "$T/bert.err"
check "[ $? = 0 ]" || cat "$T/bert.err" >&2
t1=$(date +%s.%N)
check "grep -q 'img_ptx90\[[1-9]' $T/bert.c"
echo "nvrtc bert_crammed (sm_80, sm_90, compute_90 in parallel): $(echo "$t1 - $t0" | bc) s wall;" $(grep nvrtc "$T/bert.err")

# 2. tiny's step.so
"$CRAMC" "$SRC/models/tiny.cram" --target cuda -o "$T/tiny.so"; check "[ $? = 0 ]"
check "[ -f $T/tiny.so ] && ! ls $T/tiny.so.tmp.* 2>/dev/null"
check "! nm -D --undefined-only $T/tiny.so | grep -Eq ' (cu|cublas|nvrtc)[A-Z]'"
"$CRAM" info "$T/tiny.so" > "$T/info.txt"; check "[ $? = 0 ]"
check "grep -q 'target        cuda (sm_80+)' $T/info.txt"
check "grep -q 'precision     bf16' $T/info.txt"
check "grep -q 'model         tiny' $T/info.txt"
check "grep -Eq 'embedding.weight +\[8192, 64\] +524288  decay' $T/info.txt"

# 3. the ABI: metadata, create() without a GPU
"$ABI" "$T/tiny.so" 22 > "$T/abi.txt" 2>&1; check "[ $? = 0 ]" || cat "$T/abi.txt" >&2
cat "$T/abi.txt"

# 4. cram train: one clear line
if grep -q 'a CUDA GPU is present' "$T/abi.txt"; then
  echo "skipped: cram train failure without a GPU (a GPU is present)"
else
  # no data is needed: the trainer asks for the device before it reads any
  "$CRAM" train "$T/tiny.so" --data "$T/no-data" --steps 2 --out "$T/run" > "$T/train.out" 2> "$T/train.err"
  check "[ $? != 0 ]"
  check "[ \$(wc -l < $T/train.err) = 1 ]"
  check "grep -q 'no CUDA driver/GPU' $T/train.err && grep -q 'use --target cpu' $T/train.err"
  cat "$T/train.err"
fi

# 5. errors
"$CRAMC" "$SRC/models/tiny.cram" --target cuda --precision f64 -o "$T/x.so" 2> "$T/f64.err"
check "[ $? != 0 ] && grep -q 'bf16 or f32' $T/f64.err && [ ! -f $T/x.so ]"
"$CRAMC" "$SRC/models/tiny.cram" --target cpu --precision bf16 -o "$T/x.so" 2> "$T/cpu.err"
check "[ $? = 2 ] && grep -q 'cpu computes in f32 only' $T/cpu.err && [ ! -f $T/x.so ]"

echo "$pass passed, $fail failed"
[ $fail = 0 ]
