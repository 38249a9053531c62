#!/bin/bash
# bench/gpu-bundle.sh - everything the GPU run (bench/on-device.sh) needs, built on a
# machine without a GPU, because the GPU machine cannot build the project (no LLVM
# development libraries, no OpenBLAS, no package registry) and has minutes, not hours.
#
#   bash bench/gpu-bundle.sh OUTDIR [--build DIR] [--quick] [--jobs N] [--allow-libs "LIB ..."]
#   bash bench/gpu-bundle.sh --check OUTDIR      verify a bundle (below)
#   bash bench/gpu-bundle.sh --libs FILE...      the self-containment check alone
#
# Builds (in OUTDIR, which must be new or a bundle made before):
#   bin/       cram, test_cuda_compare (tests/codegen: a cuda step vs another target's
#              through the ABI), cuda_probe (tests/gpu: driver, device, cuBLASLt found)
#   art/       cramc --target cuda: bert_crammed microbatch 128 and 256 in bf16 and 128 in
#              f32, tiny in bf16 and f32, the postln_noglu ablation in bf16; the
#              --target interp artifacts the cuda ones are compared with (tiny f32 and
#              bf16, postln_noglu bf16). Interp, not cpu: a cpu artifact links OpenBLAS and
#              libgomp, which the GPU machine lacks, and the interpreter is the project's
#              oracle anyway (the cpu target agrees with it to ~1e-7).
#   kernels/   the kernel lab (bench/kernels), nvcc, libstdc++/libgcc linked statically
#   data/      the loss-agreement inputs: 20 fixed MLM microbatches per compared
#              artifact shape (bench_torch.py --write-batches), and tiny's initial
#              parameters exported from its interp artifact (cram export; on the GPU the
#              cuda step's own init must be byte-identical). bert_crammed's init (478 MB)
#              cannot travel: the GPU run exports it there from the cuda step itself.
#   src/       the scripts and the Python the GPU run executes: bench/agree.sh,
#              report.py, torch_config.sh; reference/bench_torch.py, crammed_torch.py,
#              safetensors_io.py, configs/
#   MANIFEST   what was built from what: the git commit, tool versions, the newest
#              GLIBC symbol version any binary needs, every file's size, and the
#              sha256 of every source it was built from; SHA256SUMS: every file's hash
# Every ELF file must need only the C library (libc, libm, libdl, libpthread, librt,
# the loader): the CUDA driver and cuBLASLt are dlopened at run time. The bundle must
# stay <= 48 MiB (the GPU machine receives at most 64 MiB with the working tree).
#
# --build DIR  use the cramc/cram/test_cuda_compare/cuda_probe already built in DIR
#              (default: configure and build a Release tree in SRC/build-bundle)
# --quick      tiny only (cuda bf16/f32, interp f32/bf16, its data) and one kernel of the
#              lab: the same code path in a fraction of the time (the CI test uses it)
# --jobs N     parallel cramc/nvcc processes (default: nproc)
# --allow-libs accept these libraries too (tests of a sanitizer build: its binaries need
#              libasan/libubsan; such a bundle runs only where those are, and its MANIFEST
#              says so on an "allowed-libs" line that --check honours)
# --check      files present with the recorded sizes and hashes, nothing extra, the
#              size limit, the libraries, and the sources unchanged since the build
#              (a stale bundle is an error naming the changed sources)
# Environment: PYTHON (a python3 with torch, for the batches; default the first of
# python3, /usr/bin/python3 that imports torch), CC (the C compiler cramc links with).
# Exit: 0 ok, 1 failure (each problem on one line), 2 usage.
set -u
SRC=$(cd "$(dirname "$0")/.." && pwd)
LIMIT_MIB=48
ALLOWED_LIBS="libc.so.6 libm.so.6 libdl.so.2 libpthread.so.0 librt.so.1 ld-linux-x86-64.so.2"

die() { echo "gpu-bundle: $*" >&2; exit 1; }
usage() { sed -n '2,/^set -u/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

# check_libs FILE... - every ELF file's NEEDED entries are in ALLOWED_LIBS and all of
# them resolve here (ldd); prints one line per problem, returns 1 if any.
check_libs() {
  local bad=0 f lib allowed="$ALLOWED_LIBS ${EXTRA_LIBS:-}"
  for f in "$@"; do
    head -c 4 "$f" 2> /dev/null | grep -q 'ELF' || continue
    for lib in $(readelf -d "$f" 2> /dev/null | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
      case " $allowed " in
        *" $lib "*) ;;
        *) echo "$f needs $lib, which the GPU machine does not have (allowed: $allowed)"; bad=1 ;;
      esac
    done
    if ldd "$f" 2> /dev/null | grep -q 'not found'; then
      echo "$f: $(ldd "$f" | grep 'not found' | tr -s ' \t' ' ' | tr '\n' ';')"
      bad=1
    fi
  done
  return $bad
}

# newest GLIBC_x.y any of the files needs (the GPU machine's C library must be at least that)
glibc_needed() {
  local f
  for f in "$@"; do
    head -c 4 "$f" 2> /dev/null | grep -q 'ELF' && readelf -V "$f" 2> /dev/null | grep -o 'GLIBC_[0-9.]*'
  done | sort -uV | tail -1
}

# the sources a bundle is built from, relative to SRC, one per line
source_files() {
  (cd "$SRC" && {
    find codegen ir passes frontend runtime driver -type f \( -name '*.c' -o -name '*.h' -o -name '*.cuh' -o -name '*.def' -o -name 'CMakeLists.txt' \)
    echo models/tiny.cram; echo models/bert_crammed.cram; echo models/ablations/postln_noglu.cram
    find bench/kernels -type f \( -name '*.cu' -o -name '*.h' -o -name '*.cuh' -o -name Makefile \)
    find reference -maxdepth 1 -name '*.py'
    find reference/configs -name '*.json'
    echo bench/agree.sh; echo bench/report.py; echo bench/torch_config.sh; echo bench/gpu-bundle.sh
    echo tests/gpu/cuda_probe.c; echo tests/codegen/test_cuda_compare.c; echo CMakeLists.txt
  } | LC_ALL=C sort -u)
}

cmd_check() {
  local B=$1 bad=0 line
  [ -f "$B/MANIFEST" ] && [ -f "$B/SHA256SUMS" ] || { echo "gpu-bundle: $B: no MANIFEST/SHA256SUMS (not a bundle)" >&2; return 1; }
  EXTRA_LIBS=$(sed -n 's/^allowed-libs //p' "$B/MANIFEST")
  # sizes, then content
  while read -r _ size path; do
    if [ ! -f "$B/$path" ]; then echo "missing: $path"; bad=1
    elif [ "$(stat -c %s "$B/$path")" != "$size" ]; then echo "size differs: $path ($(stat -c %s "$B/$path") bytes, built $size)"; bad=1
    fi
  done < <(grep '^file ' "$B/MANIFEST")
  (cd "$B" && sha256sum --quiet -c SHA256SUMS 2>&1) | sed 's/^/hash: /' | grep -v '^hash: sha256sum: WARNING' && bad=1
  # nothing that the manifest does not list
  while read -r path; do
    grep -q "^file [0-9]* $path\$" "$B/MANIFEST" || { echo "not in the manifest: $path"; bad=1; }
  done < <(cd "$B" && find . -type f ! -name MANIFEST ! -name SHA256SUMS | sed 's|^\./||' | LC_ALL=C sort)
  local total
  total=$(find "$B" -type f -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }')
  [ "$total" -le $((LIMIT_MIB << 20)) ] || { echo "too large: $total bytes > $LIMIT_MIB MiB"; bad=1; }
  mapfile -t elfs < <(find "$B" -type f \( -path '*/bin/*' -o -path '*/art/*' -o -path '*/kernels/*' \))
  check_libs "${elfs[@]}" || bad=1
  # stale: a source changed since the build
  while read -r _ sum path; do
    if [ ! -f "$SRC/$path" ]; then echo "stale: $path (a source of the bundle) is gone from $SRC"; bad=1
    elif [ "$(sha256sum < "$SRC/$path" | cut -d' ' -f1)" != "$sum" ]; then echo "stale: $path changed since the bundle was built"; bad=1
    fi
  done < <(grep '^source ' "$B/MANIFEST")
  while read -r path; do
    grep -q "^source [0-9a-f]* $path\$" "$B/MANIFEST" || { echo "stale: $path is new since the bundle was built"; bad=1; }
  done < <(source_files)
  if [ $bad = 0 ]; then
    echo "gpu-bundle: $B ok ($(grep -c '^file ' "$B/MANIFEST") files, $((total >> 20)) MiB, $(sed -n 's/^mode //p' "$B/MANIFEST") bundle of $(sed -n 's/^git //p' "$B/MANIFEST"))"
  fi
  return $bad
}

# ---- arguments ---------------------------------------------------------------------------------
OUTDIR= BUILD= QUICK=0 JOBS=$(nproc) EXTRA_LIBS=
case "${1:-}" in
  --check) [ $# = 2 ] || { echo "usage: gpu-bundle.sh --check OUTDIR" >&2; exit 2; }
           cmd_check "$2"; exit $? ;;
  --libs) shift; [ $# -ge 1 ] || { echo "usage: gpu-bundle.sh --libs FILE..." >&2; exit 2; }
          check_libs "$@"; exit $? ;;
  -h|--help) usage; exit 0 ;;
esac
while [ $# -gt 0 ]; do
  case "$1" in
    --build) BUILD=$2; shift 2 ;;
    --quick) QUICK=1; shift ;;
    --jobs) JOBS=$2; shift 2 ;;
    --allow-libs) EXTRA_LIBS=$2; shift 2 ;;
    -*) echo "gpu-bundle: unknown option '$1' (see --help)" >&2; exit 2 ;;
    *) [ -z "$OUTDIR" ] || { echo "gpu-bundle: one OUTDIR (see --help)" >&2; exit 2; }; OUTDIR=$1; shift ;;
  esac
done
[ -n "$OUTDIR" ] || { echo "usage: gpu-bundle.sh OUTDIR [--build DIR] [--quick] [--jobs N] (see --help)" >&2; exit 2; }
INCOMPLETE=.gpu-bundle-incomplete  # present from the start of a build until its MANIFEST is written
if [ -e "$OUTDIR" ]; then
  [ -f "$OUTDIR/MANIFEST" ] || [ -f "$OUTDIR/$INCOMPLETE" ] || [ -z "$(ls -A "$OUTDIR")" ] ||
    die "$OUTDIR exists and is not a bundle: not overwriting it"
  rm -rf "$OUTDIR"
fi
mkdir -p "$OUTDIR"/{bin,art,kernels,data,src/bench,src/reference/configs} || die "cannot create $OUTDIR"
touch "$OUTDIR/$INCOMPLETE"
OUTDIR=$(cd "$OUTDIR" && pwd)
T=$(mktemp -d /tmp/gpu-bundle.XXXXXX)
trap 'rm -rf "$T"' EXIT
t_start=$(date +%s)
say() { echo "gpu-bundle: $* ($(($(date +%s) - t_start)) s)"; }

# ---- build -------------------------------------------------------------------------------------
if [ -z "$BUILD" ]; then
  BUILD=$SRC/build-bundle
  say "building cramc, cram, test_cuda_compare, cuda_probe (Release) in $BUILD"
  { cmake -S "$SRC" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release &&
    cmake --build "$BUILD" -j"$JOBS" --target cramc cram test_cuda_compare cuda_probe; } > "$T/build.log" 2>&1 ||
    { tail -30 "$T/build.log"; die "build failed"; }
fi
CRAMC=$BUILD/driver/cramc CRAM=$BUILD/runtime/cram
for f in "$CRAMC" "$CRAM" "$BUILD/tests/codegen/test_cuda_compare" "$BUILD/tests/gpu/cuda_probe"; do
  [ -x "$f" ] || die "$f: not built (build the targets cramc cram test_cuda_compare cuda_probe in $BUILD)"
done
cp "$CRAM" "$BUILD/tests/codegen/test_cuda_compare" "$BUILD/tests/gpu/cuda_probe" "$OUTDIR/bin/"
not_self_contained() {
  sed 's/^/gpu-bundle: /' "$T/libs.txt" >&2
  die "the bundle is not self-contained (a sanitizer or OpenBLAS build? build with --build of a plain Release tree)"
}
# the build's own binaries first: a sanitizer build is refused before minutes of compiling
check_libs "$OUTDIR"/bin/* > "$T/libs.txt" || not_self_contained

# ---- artifacts: name model -D... --target T --precision P ----------------------------------------
ARTS=(
  "tiny.bf16.cuda models/tiny.cram --target cuda --precision bf16"
  "tiny.f32.cuda models/tiny.cram --target cuda --precision f32"
  "tiny.f32.interp models/tiny.cram --target interp --precision f32"
  "tiny.bf16.interp models/tiny.cram --target interp --precision bf16"
)
[ $QUICK = 1 ] || ARTS+=(
  "bert_crammed_mb128.bf16.cuda models/bert_crammed.cram -D batch=128 --target cuda --precision bf16"
  "bert_crammed_mb256.bf16.cuda models/bert_crammed.cram -D batch=256 --target cuda --precision bf16"
  "bert_crammed_mb128.f32.cuda models/bert_crammed.cram -D batch=128 --target cuda --precision f32"
  "postln_noglu.bf16.cuda models/ablations/postln_noglu.cram --target cuda --precision bf16"
  "postln_noglu.bf16.interp models/ablations/postln_noglu.cram --target interp --precision bf16"
)
say "compiling ${#ARTS[@]} artifacts, $JOBS at a time"
pids=()
for a in "${ARTS[@]}"; do
  set -- $a
  name=$1 model=$2
  shift 2
  ( cd "$SRC" && "$CRAMC" "$model" "$@" -o "$OUTDIR/art/$name.so" > "$T/$name.log" 2>&1 ) &
  pids+=("$!:$name")
  while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n; done
done
fails=0
for p in "${pids[@]}"; do
  wait "${p%%:*}" || { echo "gpu-bundle: cramc ${p#*:} failed: $(head -3 "$T/${p#*:}.log")" >&2; fails=1; }
done
[ $fails = 0 ] || die "artifact compilation failed"

# ---- kernel lab ---------------------------------------------------------------------------------
KERNELS=$(cd "$SRC/bench/kernels" && ls *.cu | sed 's/\.cu$//' | tr '\n' ' ')
[ $QUICK = 1 ] && KERNELS=layernorm
say "kernel lab: $KERNELS"
NVCC=$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)
[ -x "$NVCC" ] || die "no nvcc (PATH, /usr/local/cuda/bin): the kernel lab cannot be built"
make -C "$SRC/bench/kernels" -j"$JOBS" NVCC="$NVCC" OUT="$OUTDIR/kernels" LDFLAGS="-Xcompiler -static-libstdc++,-static-libgcc" \
  $(for k in $KERNELS; do echo "$OUTDIR/kernels/$k"; done) > "$T/kernels.log" 2>&1 ||
  { tail -20 "$T/kernels.log"; die "kernel lab build failed"; }

# ---- scripts and Python --------------------------------------------------------------------------
cp "$SRC/bench/agree.sh" "$SRC/bench/report.py" "$SRC/bench/torch_config.sh" "$OUTDIR/src/bench/"
cp "$SRC"/reference/bench_torch.py "$SRC"/reference/crammed_torch.py "$SRC"/reference/safetensors_io.py "$OUTDIR/src/reference/"
cp "$SRC"/reference/configs/*.json "$OUTDIR/src/reference/configs/"

# ---- loss-agreement data ---------------------------------------------------------------------------
PY=${PYTHON:-}
if [ -z "$PY" ]; then
  for p in python3 /usr/bin/python3; do
    "$p" -c "import torch" > /dev/null 2>&1 && { PY=$p; break; }
  done
fi
[ -n "$PY" ] || die "no python3 with torch here (set PYTHON): the fixed batches are written by reference/bench_torch.py"
. "$SRC/bench/torch_config.sh"
# batches for one artifact's shape: write_batches ARTIFACT NAME
write_batches() {
  local art=$OUTDIR/art/$1.so model cfg
  step_dims_json "$CRAM" "$art" > "$T/$2.dims.json" || die "cram info $art failed"
  model=$(sed -n 's/^{"model":"\([^"]*\)".*/\1/p' "$T/$2.dims.json")
  cfg=$(torch_config "$model") || die "no reference config for $model"
  # shellcheck disable=SC2086
  "$PY" "$SRC/reference/bench_torch.py" $cfg --dims-from "$T/$2.dims.json" --quiet \
    --write-batches "$OUTDIR/data/$2.batches.safetensors" --count 20 --seed 0 || die "writing batches $2 failed"
}
say "loss-agreement batches and tiny's init ($PY)"
write_batches tiny.f32.cuda tiny
if [ $QUICK = 0 ]; then
  write_batches bert_crammed_mb128.bf16.cuda bert_crammed_mb128
  write_batches postln_noglu.bf16.cuda postln_noglu
fi
"$CRAM" bench "$OUTDIR/art/tiny.f32.interp.so" --batch-file "$OUTDIR/data/tiny.batches.safetensors" --warmup 0 \
  --steps 1 --seed 0 --save-init "$T/init" --quiet || die "cram bench --save-init on tiny's interp artifact failed"
"$CRAM" export "$OUTDIR/art/tiny.f32.interp.so" "$T/init" --out "$OUTDIR/data/tiny.init.safetensors" > /dev/null ||
  die "cram export of tiny's init failed"

# ---- checks and manifest -------------------------------------------------------------------------
mapfile -t elfs < <(find "$OUTDIR/bin" "$OUTDIR/art" "$OUTDIR/kernels" -type f | LC_ALL=C sort)
check_libs "${elfs[@]}" > "$T/libs.txt" || not_self_contained
{
  echo "bundle 1"
  echo "mode $([ $QUICK = 1 ] && echo quick || echo full)"
  echo "built $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -m)"
  echo "git $(git -C "$SRC" rev-parse --short=12 HEAD 2> /dev/null || echo unknown)$(git -C "$SRC" diff --quiet HEAD 2> /dev/null || echo ' (uncommitted changes)')"
  echo "cramc $("$CRAMC" --version 2>&1 | head -1)"
  echo "nvcc $("$NVCC" --version 2> /dev/null | sed -n 's/.*release \([0-9.]*\).*/\1/p' | head -1)"
  echo "glibc-needed $(glibc_needed "${elfs[@]}")"
  [ -z "$EXTRA_LIBS" ] || echo "allowed-libs $EXTRA_LIBS"
  echo "python-for-batches $("$PY" -c 'import sys, torch; print(sys.version.split()[0], "torch", torch.__version__)')"
  for a in "${ARTS[@]}"; do echo "artifact ${a%% *}.so ${a#* }"; done
  (cd "$OUTDIR" && find . -type f ! -name MANIFEST ! -name SHA256SUMS ! -name "$INCOMPLETE" -printf '%P\n' | LC_ALL=C sort |
    while read -r p; do echo "file $(stat -c %s "$p") $p"; done)
  source_files | while read -r p; do echo "source $(sha256sum < "$SRC/$p" | cut -d' ' -f1) $p"; done
} > "$OUTDIR/MANIFEST"
(cd "$OUTDIR" && find . -type f ! -name SHA256SUMS ! -name "$INCOMPLETE" -printf '%P\n' | LC_ALL=C sort | xargs sha256sum > SHA256SUMS)
rm -f "$OUTDIR/$INCOMPLETE"
total=$(find "$OUTDIR" -type f -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }')
[ "$total" -le $((LIMIT_MIB << 20)) ] || die "the bundle is $total bytes, over the $LIMIT_MIB MiB limit"
say "wrote $OUTDIR: $(grep -c '^file ' "$OUTDIR/MANIFEST") files, $((total >> 20)) MiB ($total bytes)"
du -b --max-depth=1 "$OUTDIR" | sort -k2 | awk '{ printf "  %8.1f MiB  %s\n", $1 / 1048576, $2 }'
