#!/bin/bash
# test_cuda_emu.sh CRAMC CMP_TEST SOURCE_DIR CC CXX - the whole cuda step run
# WITHOUT a GPU: the artifact's generated CUDA C compiled for the host with
# the SIMT emulator test_cuda_emu.h, a fake libcuda.so.1 / libcublasLt.so.13
# (test_cuda_emu_driver.c) on LD_LIBRARY_PATH, and test_cuda_compare running
# the real step.so (shim, launch tables, kernels, cuBLASLt descriptors)
# against the interp artifact (the reference; the cpu one leaks 8 bytes in
# libgomp at dlclose under ASan), 3 step+update each:
#   --precision f32 against the interp target's f32: loss / grad norm /
#     parameters within 1e-4 (only summation order differs);
#   bf16 (the cuda default) against the interp target built with --precision
#     bf16, the same autocast graphs rounded by the interpreter: within 1e-2
#     (the GPU check's "loss within 1%"). Both round every bf16 value to
#     nearest even, but f32 sums in another order can land a value on the
#     other side of a bf16 rounding boundary (2^-9 relative), and such flips
#     propagate; the printed errors are far below the bound.
# Then a mutated kernel (layernorm's rstd) must be caught, and a compute
# capability below the cubins' refused.
# Prints "N passed, M failed".
CRAMC=$1 CMP=$2 SRC=$3 CC=${4:-cc} CXX=${5:-c++}
T=$(mktemp -d /tmp/test_cuda_emu.XXXXXX)
[ -n "${KEEP:-}" ] || trap 'rm -rf "$T"' EXIT
export CRAMC_CACHE_DIR=$T/cache CRAMC_NVRTC_PTX=0
pass=0 fail=0
ok() { pass=$((pass + 1)); }
no() { fail=$((fail + 1)); echo "FAIL: $*" >&2; }
check() { if eval "$1"; then ok; else no "$1"; fi; }
CUDA_INC=${CUDA_INC:-/usr/local/cuda/include}
# the fakes must not be sanitizer-instrumented twice: plain flags
env -u CFLAGS "$CC" -std=c17 -O1 -shared -fPIC -fvisibility=hidden -isystem "$CUDA_INC" "$SRC/tests/codegen/test_cuda_emu_driver.c" \
  -o "$T/libcuda.so.1" -ldl; check "[ $? = 0 ]"
cp "$T/libcuda.so.1" "$T/libcublasLt.so.13"
# the prelude's #include <cuda_bf16.h>: test_cuda_emu.h defines what the kernels use
mkdir -p "$T/inc" && echo '/* empty: test_cuda_emu.h emulates cuda_bf16.h */' > "$T/inc/cuda_bf16.h"
for run in tiny:f32:1e-4 tiny:bf16:1e-2; do # (each run costs ~30 s of fiber switching: tiny only)
  IFS=: read -r m prec tol <<< "$run"
  name=$(basename $m).$prec
  D="-D batch=2 -D seq=8 -D hidden=32 -D heads=2 -D ffn=64 -D layers=1 -D vocab=64"
  "$CRAMC" "$SRC/models/$m.cram" $D --target cuda --precision $prec -o "$T/$name.cuda.so"; check "[ $? = 0 ]"
  "$CRAMC" "$SRC/models/$m.cram" $D --target interp --precision $prec -o "$T/$name.ref.so"; check "[ $? = 0 ]"
  "$CRAMC" "$SRC/models/$m.cram" $D --target cuda --precision $prec --emit=cuda -o "$T/$name.cu"; check "[ $? = 0 ]"
  "$CXX" -std=c++17 -O1 -w -shared -fPIC -I "$T/inc" -include "$SRC/tests/codegen/test_cuda_emu.h" -x c++ "$T/$name.cu" \
    -o "$T/$name.kernels.so"; check "[ $? = 0 ]"
  echo "== $name: cuda (emulated) vs interp, --precision $prec, tolerance $tol"
  LD_LIBRARY_PATH=$T CRAM_CUDA_EMU_KERNELS=$T/$name.kernels.so "$CMP" "$T/$name.cuda.so" "$T/$name.ref.so" 3 $tol 0
  check "[ $? = 0 ]"
done
check "grep -q CRAM_CUDA_DT_BF16 $T/tiny.bf16.cu || grep -q cr_bf16p $T/tiny.bf16.cu"
# sensitivity: a wrong kernel (layernorm's rstd 1% off) is caught
sed 's/rsqrtf(cr_warp_sum(q)/1.01f * rsqrtf(cr_warp_sum(q)/' "$T/tiny.f32.cu" > "$T/bad.cu"
check "! cmp -s $T/tiny.f32.cu $T/bad.cu"
"$CXX" -std=c++17 -O1 -w -shared -fPIC -I "$T/inc" -include "$SRC/tests/codegen/test_cuda_emu.h" -x c++ "$T/bad.cu" -o "$T/bad.so"
LD_LIBRARY_PATH=$T CRAM_CUDA_EMU_KERNELS=$T/bad.so "$CMP" "$T/tiny.f32.cuda.so" "$T/tiny.f32.ref.so" 1 1e-4 0 > "$T/bad.out" 2>&1
check "[ $? = 1 ] && grep -q FAIL $T/bad.out"
# a GPU older than the cubins is refused
LD_LIBRARY_PATH=$T CRAM_CUDA_EMU_SM=75 CRAM_CUDA_EMU_KERNELS=$T/tiny.bf16.kernels.so "$CMP" "$T/tiny.bf16.cuda.so" "$T/tiny.bf16.ref.so" 1 1e-2 0 > "$T/old.out" 2>&1
check "[ $? = 77 ] && grep -q 'compute capability 7.5, older than' $T/old.out"
cat "$T/old.out"
echo "$pass passed, $fail failed"
[ $fail = 0 ]
