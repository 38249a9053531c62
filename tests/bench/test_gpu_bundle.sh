#!/bin/bash
# test_gpu_bundle.sh SOURCE_DIR BUILD_DIR BUNDLE_DIR CC SANITIZE - bench/gpu-bundle.sh without a GPU,
# on a --quick bundle (tiny only, one kernel of the lab: the same code path as the full
# bundle, whose bert_crammed compiles would take minutes here) built from BUILD_DIR's
# cramc/cram into BUNDLE_DIR (left there for bench.on_device):
#   the bundle builds, its files are there, every binary needs only the C library,
#   --check passes; a changed file, a file too many, a changed source and a missing
#   file each fail --check with a line naming it, and restoring makes it pass again;
#   --libs refuses a cpu artifact (OpenBLAS, libgomp); usage errors exit 2.
# In a sanitizer build (SANITIZE=ON) the binaries need the sanitizer runtimes (gcc:
# libasan/libubsan; clang links those statically but needs libgcc_s): the bundle is
# refused naming them, then built with --allow-libs naming them (recorded in its MANIFEST).
# Prints "N passed, M failed".
SRC=$1 BUILD=$2 B=$3 BUILD_CC=${4:-cc} SAN=${5:-OFF}
G="bash $SRC/bench/gpu-bundle.sh"
T=$(mktemp -d /tmp/test_gpu_bundle.XXXXXX)
trap 'rm -rf "$T"' EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); }
no() { fail=$((fail + 1)); echo "FAIL: $*" >&2; }
check() { if eval "$1"; then ok; else no "$1"; fi; }

rm -rf "$B"
ALLOW=()
if [ "$SAN" = ON ]; then
  $G "$B" --build "$BUILD" --quick --jobs 2 > "$T/san.txt" 2>&1
  check "[ $? = 1 ] && grep -q 'not self-contained' $T/san.txt && [ -f $B/.gpu-bundle-incomplete ] && [ ! -f $B/MANIFEST ]"
  extra=$(sed -n 's/.* needs \([^,]*\), which the GPU machine.*/\1/p' "$T/san.txt" | sort -u | tr '\n' ' ')
  echo "sanitizer build: the binaries need $extra"
  check "[ -n '$extra' ]"
  ALLOW=(--allow-libs "$extra")
fi
$G "$B" --build "$BUILD" --quick --jobs 2 "${ALLOW[@]}" > "$T/build.txt" 2>&1
rc=$?
cat "$T/build.txt"
check "[ $rc = 0 ] && [ ! -e $B/.gpu-bundle-incomplete ]"
for f in bin/cram bin/test_cuda_compare bin/cuda_probe art/tiny.bf16.cuda.so art/tiny.f32.cuda.so \
         art/tiny.f32.interp.so art/tiny.bf16.interp.so kernels/layernorm data/tiny.batches.safetensors \
         data/tiny.init.safetensors src/bench/agree.sh src/bench/report.py src/reference/bench_torch.py \
         src/reference/configs/bert_crammed.json MANIFEST SHA256SUMS; do
  check "[ -s $B/$f ]"
done
check "grep -q '^mode quick' $B/MANIFEST && grep -q '^glibc-needed GLIBC_2' $B/MANIFEST"
check "grep -q '^source [0-9a-f]\{64\} codegen/cuda_step/cuda_shim.c' $B/MANIFEST"
check "[ \$(du -sb $B | cut -f1) -le \$((48 << 20)) ]"
$G --check "$B" > "$T/c0.txt" 2>&1; check "[ $? = 0 ] && grep -q 'ok (' $T/c0.txt"

# each kind of damage is named, and undoing it passes again
echo "# changed" >> "$B/src/bench/report.py"
$G --check "$B" > "$T/c1.txt" 2>&1
check "[ $? = 1 ] && grep -q 'size differs: src/bench/report.py' $T/c1.txt && grep -q 'hash: src/bench/report.py: FAILED' $T/c1.txt"
cp "$SRC/bench/report.py" "$B/src/bench/report.py"
touch "$B/data/extra"
$G --check "$B" > "$T/c2.txt" 2>&1; check "[ $? = 1 ] && grep -q 'not in the manifest: data/extra' $T/c2.txt"
rm "$B/data/extra"
mv "$B/kernels/layernorm" "$T/layernorm"
$G --check "$B" > "$T/c3.txt" 2>&1; check "[ $? = 1 ] && grep -q 'missing: kernels/layernorm' $T/c3.txt"
mv "$T/layernorm" "$B/kernels/layernorm"
cp "$B/MANIFEST" "$T/MANIFEST"
sed -i 's/^source [0-9a-f]* models\/tiny.cram$/source 0000 models\/tiny.cram/' "$B/MANIFEST"
$G --check "$B" > "$T/c4.txt" 2>&1; check "[ $? = 1 ] && grep -q 'stale: models/tiny.cram changed' $T/c4.txt"
cp "$T/MANIFEST" "$B/MANIFEST"
$G --check "$B" > "$T/c5.txt" 2>&1; check "[ $? = 0 ]"
cat "$T/c5.txt"

# the library check on its own: a cpu artifact links OpenBLAS and libgomp
"$BUILD/driver/cramc" "$SRC/models/tiny.cram" -D batch=2 -D layers=1 --target cpu --cc "$BUILD_CC" -o "$T/cpu.so"
$G --libs "$T/cpu.so" > "$T/l.txt" 2>&1
check "[ $? = 1 ] && grep -q 'needs libopenblas.so' $T/l.txt && grep -Eq 'needs lib(g|)omp.so' $T/l.txt"
if [ "$SAN" != ON ]; then
  $G --libs "$B"/bin/* "$B"/art/* "$B"/kernels/* > "$T/l2.txt" 2>&1; check "[ $? = 0 ] && [ ! -s $T/l2.txt ]"
fi

# usage
$G > /dev/null 2>&1; check "[ $? = 2 ]"
$G "$T/x" --bogus > /dev/null 2>&1; check "[ $? = 2 ]"
$G --check > /dev/null 2>&1; check "[ $? = 2 ]"
$G --check "$T" > /dev/null 2>&1; check "[ $? = 1 ]"
mkdir -p "$T/notabundle" && touch "$T/notabundle/precious"
$G "$T/notabundle" --build "$BUILD" --quick > "$T/nb.txt" 2>&1
check "[ $? = 1 ] && grep -q 'not a bundle: not overwriting' $T/nb.txt && [ -f $T/notabundle/precious ]"
echo "$pass passed, $fail failed"
[ $fail = 0 ]
