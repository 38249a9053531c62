#!/bin/bash
# tests/gpu/check.sh [BUILD_DIR] - the cuda target on a real GPU (H100/A100).
# Run by hand (or by a GPU job) where a GPU exists; elsewhere it prints what
# it skipped and why, and exits 0.
#   1. builds (cmake + make) in BUILD_DIR (default build-gpu) unless built;
#   2. `cramc --target cuda` for tiny and bert_crammed (NVRTC times shown),
#      bf16 (the default) and tiny also --precision f32;
#   3. tiny f32: the cuda step vs the cpu artifact (and the interp one if the
#      cpu one cannot be built) through the ABI: 5 step+update from the same
#      parameters, loss / grad norm / parameters within 1e-3 relative;
#      tiny bf16 vs the interp artifact built with --precision bf16 (the same
#      mixed-precision graphs): loss and grad norm within 1%, parameters 5%;
#      then 20 timed steps of each (ms per step, tokens/s);
#   4. compute-sanitizer (memcheck) on tiny's compare run if installed;
#   5. bert_crammed: 10 timed steps (create, step, update) - tokens/s.
set -u
SRC=$(cd "$(dirname "$0")/../.." && pwd)
B=${1:-$SRC/build-gpu}
T=$(mktemp -d /tmp/gpu_check.XXXXXX)
trap 'rm -rf "$T"' EXIT
skip() { echo "skipped: $*"; }
fails=0

if ! command -v nvidia-smi > /dev/null 2>&1 || ! nvidia-smi -L > /dev/null 2>&1; then
  skip "everything: no GPU here (nvidia-smi missing or finds no device); the no-GPU checks are ctest -R codegen.cuda"
  exit 0
fi
nvidia-smi -L
if [ ! -x "$B/driver/cramc" ] || [ ! -x "$B/tests/codegen/test_cuda_compare" ]; then
  cmake -S "$SRC" -B "$B" -DCMAKE_BUILD_TYPE=Release > "$T/cmake.log" 2>&1 &&
    make -C "$B" -j"$(nproc)" cramc cram test_cuda_compare > "$T/make.log" 2>&1 ||
    { cat "$T/cmake.log" "$T/make.log" | tail -30; echo "FAIL: build"; exit 1; }
fi
CRAMC=$B/driver/cramc CMP=$B/tests/codegen/test_cuda_compare

# 2. artifacts
for m in tiny bert_crammed; do
  t0=$(date +%s.%N)
  CRAMC_NVRTC_TIMES=1 "$CRAMC" "$SRC/models/$m.cram" --target cuda -o "$T/$m.cuda.so" || { echo "FAIL: cramc $m"; exit 1; }
  echo "cramc --target cuda $m: $(echo "$(date +%s.%N) - $t0" | bc) s"
done
"$CRAMC" "$SRC/models/tiny.cram" --target cuda --precision f32 -o "$T/tiny.cuda32.so" || { echo "FAIL: cramc tiny f32"; exit 1; }
"$CRAMC" "$SRC/models/tiny.cram" --target interp --precision bf16 -o "$T/tiny.interp16.so" || { echo "FAIL: interp bf16 artifact"; exit 1; }
REF=$T/tiny.cpu.so
if ! "$CRAMC" "$SRC/models/tiny.cram" --target cpu -o "$REF" 2> "$T/cpu.err"; then
  skip "cpu reference ($(head -1 "$T/cpu.err")); comparing with the interp artifact"
  REF=$T/tiny.interp.so
  "$CRAMC" "$SRC/models/tiny.cram" --target interp -o "$REF" || { echo "FAIL: interp artifact"; exit 1; }
fi

# 3. tiny: cuda vs reference, then timed
echo "== tiny f32: cuda vs $(basename "$REF")"
"$CMP" "$T/tiny.cuda32.so" "$REF" 5 1e-3 20
rc=$?
[ $rc = 0 ] || { echo "FAIL: tiny cuda f32 vs reference (exit $rc)"; fails=$((fails + 1)); }
echo "== tiny bf16: cuda vs interp --precision bf16"
"$CMP" "$T/tiny.cuda.so" "$T/tiny.interp16.so" 5 1e-2 20 5e-2
rc=$?
[ $rc = 0 ] || { echo "FAIL: tiny cuda bf16 vs interp bf16 (exit $rc)"; fails=$((fails + 1)); }

# 4. compute-sanitizer
CS=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2> /dev/null | head -1)
if [ -n "$CS" ]; then
  echo "== compute-sanitizer memcheck on tiny (2 steps)"
  "$CS" --tool memcheck --error-exitcode 9 "$CMP" "$T/tiny.cuda.so" "$T/tiny.interp16.so" 2 1e-2 0 5e-2 > "$T/cs.log" 2>&1
  rc=$?
  tail -5 "$T/cs.log"
  [ $rc = 0 ] || { echo "FAIL: compute-sanitizer (exit $rc)"; fails=$((fails + 1)); }
else
  skip "compute-sanitizer: not installed"
fi

# 5. bert_crammed timing (the cuda step against itself: no reference needed)
echo "== bert_crammed: 10 timed steps"
"$CMP" "$T/bert_crammed.cuda.so" "$T/bert_crammed.cuda.so" 1 1 10 || { echo "FAIL: bert_crammed"; fails=$((fails + 1)); }

[ $fails = 0 ] && echo "gpu check: OK" || echo "gpu check: $fails FAILED"
[ $fails = 0 ]
