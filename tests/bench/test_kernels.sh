#!/bin/bash
# test_kernels.sh SOURCE_DIR OUT_DIR - the kernel lab (bench/kernels) builds:
# every .cu compiles with nvcc (-Werror all-warnings) for sm_90 and sm_80 and
# the binaries hold machine code for both (cuobjdump). Running them needs a
# GPU (bench/on-device.sh runs the bundled ones); without nvcc this prints a skip and passes.
SRC=$1 OUT=$2
NVCC=$(command -v nvcc || ls /usr/local/cuda/bin/nvcc 2> /dev/null)
if [ -z "$NVCC" ]; then
  echo "skipped: nvcc not found (PATH, /usr/local/cuda/bin): the kernel lab is not built"
  exit 0
fi
pass=0 fail=0
ok() { pass=$((pass + 1)); }
no() { fail=$((fail + 1)); echo "FAIL: $*" >&2; }
check() { if eval "$1"; then ok; else no "$1"; fi; }
rm -rf "$OUT"
make -C "$SRC/bench/kernels" OUT="$OUT" NVCC="$NVCC" -j2 > "$OUT.log" 2>&1; rc=$?
[ $rc = 0 ] || tail -30 "$OUT.log"
check "[ $rc = 0 ]"
kernels=$(cd "$SRC/bench/kernels" && ls *.cu | sed 's/\.cu$//' | tr '\n' ' ')
check "[ \$(echo $kernels | wc -w) = 6 ]"
CUOBJDUMP=$(dirname "$NVCC")/cuobjdump
for k in $kernels; do
  check "[ -x $OUT/$k ]"
  if [ -x "$CUOBJDUMP" ]; then
    check "$CUOBJDUMP --list-elf $OUT/$k | grep -q sm_90 && $CUOBJDUMP --list-elf $OUT/$k | grep -q sm_80"
  fi
done
echo "$pass passed, $fail failed"
[ $fail = 0 ]
