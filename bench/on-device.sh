#!/bin/bash
# bench/on-device.sh - the whole GPU check in one time-boxed call, from a bundle built
# elsewhere (bench/gpu-bundle.sh): nothing is built here.
#
#   bash bench/on-device.sh BUNDLE [--budget SECONDS] [--out DIR] [--stages "S ..."]
#
# Stages, in priority order; each gets a timeout of min(its cap, what is left of the
# budget), is skipped when less than its minimum is left, and writes its result as soon
# as it ends (DIR/report.md, DIR/logs.tar.gz; later stages run whatever happened before):
#   device         nvidia-smi (GPU, driver), cuda_probe (driver version, devices, where
#                  cuBLASLt is found, as the step's shim finds it), the C library against
#                  the bundle's need, the bundle's hashes, torch and its CUDA
#   compare        the cuda step vs the interp artifact through the ABI (test_cuda_compare,
#                  5 step+update from the same parameters): tiny f32 (1e-3), tiny bf16 and
#                  the postln_noglu ablation in bf16 (loss 1e-2, parameters 5e-2)
#   agree-bf16     the first 20 losses vs the PyTorch reference (bench/agree.sh, bundled
#                  batches): bert_crammed microbatch 128 and postln_noglu in bf16 (2e-2
#                  per step; the reference's own bf16-vs-f32 gap printed as noise floor)
#   agree-f32      the same in f32 (1e-3, TF32 off): bert_crammed, tiny (whose init must be
#                  byte-identical to the one bundled from the interp artifact)
#   memcheck       compute-sanitizer memcheck on tiny bf16 vs interp, 2 steps
#   ours           cram bench bert_crammed microbatch 128 and 256 (bf16, 5 + 30 iterations)
#   torch-eager    reference/bench_torch.py eager, same dims, bf16 autocast, fused AdamW
#   torch-compile  torch.compile mode reduce-overhead (inductor + CUDA graphs), 128 then 256
#   table          bench/report.py table -> DIR/results.md (ratio to the fastest compile)
#   kernels        the kernel lab binaries (check every version, then time)
#   torch-max-autotune  torch.compile max-autotune, only when the budget leaves its minimum
#                  (150 s) plus the ncu stage's; then the table again
#   ncu            Nsight Compute: GPU time of each kernel of one bert_crammed mb 128
#                  step+update (CUDA graphs off), the ten heaviest
# A stage that fails or times out is a row saying so; later stages still run. Without a
# GPU (nvidia-smi missing or finding none) every stage is a "skipped-no-GPU" row, exit 0.
#
# --budget S   seconds for all stages (default 480: the device tool allows 600 per call)
# --out DIR    results (default $OUT, the device tool's folder, else ./on-device-out): at
#              most three files, as the device tool brings back few: report.md,
#              results.md, logs.tar.gz (every stage's log and JSON, no large files)
# --stages     run only these (names above), in the fixed order
# --work DIR   scratch (default a fresh /tmp folder; it holds the large files)
# Environment: PYTHON (default python3: the one with torch), PEAK_TFLOPS (989: dense
# bf16 of the H100/H200), LAB_PEAK_GBPS (the kernel lab's bandwidth peak; 4800 on an H200).
# Exit: 0 every stage ok or skipped for a missing tool/GPU, 1 a stage failed or timed out,
# 2 usage.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
SELF=$HERE/$(basename "$0")

# name cap min: cap = longest it may take, min = least worth starting with
STAGE_TABLE="device:30:5 compare:90:20 agree-bf16:120:40 agree-f32:90:30 memcheck:90:30 ours:90:20
torch-eager:90:30 torch-compile:220:60 table:20:2 kernels:90:15 torch-max-autotune:300:150 ncu:120:45 table2:20:2"
NCU_RESERVE=45

# ---- one stage (run as `on-device.sh --run-stage NAME` under timeout) ------------------------------
# Each writes $WORK/NAME.log (everything), $WORK/NAME.note (one line for the table) and
# optionally $WORK/NAME.md (a section of the report). Exit 0 ok, 1 failed, 3 skipped.
note() { echo "$*" > "$WORK/$STAGE.note"; }
section() { cat >> "$WORK/$STAGE.md"; }
tool() { command -v "$1" 2> /dev/null || { [ -x "/usr/local/cuda/bin/$1" ] && echo "/usr/local/cuda/bin/$1"; }; }
need() { # need FILE... : all in the bundle, else the stage is skipped saying which
  local f
  for f in "$@"; do [ -f "$BUNDLE/$f" ] || { note "skipped: $f is not in the bundle (a --quick one?)"; exit 3; }; done
}
dims() { # dims ARTIFACT -> path of a dims JSON for bench_torch.py --dims-from
  local j=$WORK/dims-$(basename "$1" .so).json
  [ -s "$j" ] || step_dims_json "$CRAM" "$BUNDLE/$1" > "$j"
  echo "$j"
}

stage_device() {
  local name drv probe_rc glibc_have glibc_need torchv bad=0
  nvidia-smi -L
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,power.limit --format=csv
  name=$(nvidia-smi --query-gpu=name --format=csv,noheader 2> /dev/null | head -1)
  drv=$(nvidia-smi --query-gpu=driver_version --format=csv,noheader 2> /dev/null | head -1)
  "$BUNDLE/bin/cuda_probe" | tee "$WORK/probe.txt"
  probe_rc=${PIPESTATUS[0]}
  [ "$probe_rc" = 0 ] || bad=1
  glibc_have=$(ldd --version 2> /dev/null | head -1 | grep -o '[0-9]\+\.[0-9]\+$')
  glibc_need=$(sed -n 's/^glibc-needed GLIBC_//p' "$BUNDLE/MANIFEST")
  echo "C library: $glibc_have here, the bundle needs $glibc_need"
  if [ -n "$glibc_need" ] && [ "$(printf '%s\n%s\n' "$glibc_need" "$glibc_have" | sort -V | head -1)" != "$glibc_need" ]; then
    echo "the C library here ($glibc_have) is older than the bundle needs ($glibc_need)"; bad=1
  fi
  (cd "$BUNDLE" && sha256sum --quiet -c SHA256SUMS) || { echo "the bundle's files differ from its SHA256SUMS"; bad=1; }
  if grep -q '^allowed-libs ' "$BUNDLE/MANIFEST"; then
    echo "a test bundle: its binaries need $(sed -n 's/^allowed-libs //p' "$BUNDLE/MANIFEST")"; bad=1
  fi
  torchv=$("$PY" -c "import torch; print(torch.__version__, 'CUDA', torch.version.cuda, 'sees', torch.cuda.device_count(), 'GPU(s)')" 2>&1 | tail -1)
  echo "torch: $torchv"
  echo "compute-sanitizer: $(tool compute-sanitizer || echo none); ncu: $(tool ncu || echo none)"
  { echo "## Device"; echo; echo '```'; nvidia-smi -L; cat "$WORK/probe.txt"; echo "C library $glibc_have (bundle needs $glibc_need)"
    echo "torch $torchv"; echo '```'; } | section
  note "$name, driver $drv; $(grep '^cuBLASLt:' "$WORK/probe.txt" | cut -c11- | cut -d, -f1); torch $torchv"
  return $bad
}

stage_compare() {
  local C=$BUNDLE/bin/test_cuda_compare bad=0 n=0 rc what
  need art/tiny.f32.cuda.so art/tiny.f32.interp.so art/tiny.bf16.cuda.so art/tiny.bf16.interp.so
  set -- "tiny f32|tiny.f32.cuda|tiny.f32.interp|1e-3|1e-3" "tiny bf16|tiny.bf16.cuda|tiny.bf16.interp|1e-2|5e-2" \
         "postln_noglu bf16|postln_noglu.bf16.cuda|postln_noglu.bf16.interp|1e-2|5e-2"
  echo "## Correctness: cuda step vs interp artifact (5 step+update, same parameters)" | section
  for r in "$@"; do
    IFS='|' read -r what cu ref tol ptol <<< "$r"
    [ -f "$BUNDLE/art/$cu.so" ] || continue
    echo "== $what: cuda vs interp, loss tolerance $tol, parameters $ptol"
    "$C" "$BUNDLE/art/$cu.so" "$BUNDLE/art/$ref.so" 5 "$tol" 0 "$ptol" > "$WORK/compare-$cu.txt" 2>&1
    rc=$?
    cat "$WORK/compare-$cu.txt"
    n=$((n + 1))
    if [ $rc = 0 ]; then echo "- $what: agrees (loss $tol, parameters $ptol)" | section
    else bad=$((bad + 1)); echo "- $what: **FAILED** (exit $rc): $(tail -1 "$WORK/compare-$cu.txt")" | section; fi
  done
  note "$((n - bad)) of $n comparisons agree"
  [ $bad = 0 ]
}

# agree_run LABEL ARTIFACT PRECISION RTOL BATCHES [--init FILE]
agree_run() {
  local label=$1 art=$2 prec=$3 rtol=$4 batches=$5 rc
  shift 5
  [ -f "$BUNDLE/art/$art.so" ] || return 0
  echo "== $label"
  bash "$BUNDLE/src/bench/agree.sh" --cram "$CRAM" --step "$BUNDLE/art/$art.so" --out "$WORK/agree-$art" --python "$PY" \
    --device cuda --precision "$prec" --rtol "$rtol" --batches "$BUNDLE/data/$batches.batches.safetensors" "$@" \
    > "$WORK/agree-$art.txt" 2>&1
  rc=$?
  cat "$WORK/agree-$art.txt"
  { echo "- $label: $(grep -E 'loss agreement over|agree.sh:' "$WORK/agree-$art.txt" | tail -1)"
    grep -E '^noise floor|^initial parameters' "$WORK/agree-$art.txt" | sed 's/^/  - /'; } | section
  AGREE_N=$((AGREE_N + 1))
  [ $rc = 0 ] || AGREE_BAD=$((AGREE_BAD + 1))
}
stage_agree-bf16() {
  AGREE_N=0 AGREE_BAD=0
  need art/bert_crammed_mb128.bf16.cuda.so data/bert_crammed_mb128.batches.safetensors
  echo "## Loss agreement with PyTorch, bf16 (first 20 losses, |Δ|/loss <= 2e-2 per step)" | section
  agree_run "bert_crammed mb 128 bf16" bert_crammed_mb128.bf16.cuda bf16 2e-2 bert_crammed_mb128
  agree_run "postln_noglu bf16" postln_noglu.bf16.cuda bf16 2e-2 postln_noglu
  note "$((AGREE_N - AGREE_BAD)) of $AGREE_N agree"
  [ $AGREE_BAD = 0 ]
}
stage_agree-f32() {
  AGREE_N=0 AGREE_BAD=0
  need art/tiny.f32.cuda.so data/tiny.batches.safetensors data/tiny.init.safetensors
  echo "## Loss agreement with PyTorch, f32 (first 20 losses, |Δ|/loss <= 1e-3 per step, TF32 off)" | section
  agree_run "tiny f32 (init identical to the interp artifact's)" tiny.f32.cuda f32 1e-3 tiny \
    --init "$BUNDLE/data/tiny.init.safetensors"
  agree_run "bert_crammed mb 128 f32" bert_crammed_mb128.f32.cuda f32 1e-3 bert_crammed_mb128
  note "$((AGREE_N - AGREE_BAD)) of $AGREE_N agree"
  [ $AGREE_BAD = 0 ]
}

stage_memcheck() {
  local cs rc
  need art/tiny.bf16.cuda.so art/tiny.bf16.interp.so
  cs=$(tool compute-sanitizer) || { note "skipped: compute-sanitizer not installed"; exit 3; }
  "$cs" --tool memcheck --error-exitcode 9 "$BUNDLE/bin/test_cuda_compare" "$BUNDLE/art/tiny.bf16.cuda.so" \
    "$BUNDLE/art/tiny.bf16.interp.so" 2 1e-2 0 5e-2 > "$WORK/memcheck.txt" 2>&1
  rc=$?
  cat "$WORK/memcheck.txt"
  { echo "## compute-sanitizer memcheck (tiny bf16, 2 steps): exit $rc"; echo; echo '```'; tail -5 "$WORK/memcheck.txt"; echo '```'; } | section
  note "$(grep -m1 'ERROR SUMMARY' "$WORK/memcheck.txt" || echo "exit $rc")"
  [ $rc = 0 ]
}

stage_ours() {
  local mb bad=0 n=0 j
  need art/bert_crammed_mb128.bf16.cuda.so
  for mb in 128 256; do
    [ -f "$BUNDLE/art/bert_crammed_mb$mb.bf16.cuda.so" ] || continue
    echo "== cram bench bert_crammed microbatch $mb"
    n=$((n + 1))
    j=$WORK/results/bert_crammed_mb${mb}_cramc.json
    "$CRAM" bench "$BUNDLE/art/bert_crammed_mb$mb.bf16.cuda.so" --warmup 5 --steps 30 --peak-tflops "$PEAK" \
      --json "$j" 2> "$WORK/ours-mb$mb.err"
    if [ $? != 0 ]; then  # a row in the table saying why
      bad=$((bad + 1))
      cat "$WORK/ours-mb$mb.err"
      printf '{"impl":"cramc","mode":"step.so","target":"cuda","model":"bert_crammed","microbatch":%s,"precision":"bf16","error":"%s"}\n' \
        "$mb" "$(tail -1 "$WORK/ours-mb$mb.err" | tr -d '"\\' | cut -c1-200)" > "$j"
    fi
  done
  note "$((n - bad)) of $n ran; tokens/s: $(for j in "$WORK"/results/bert_crammed_mb*_cramc.json; do
    [ -f "$j" ] && sed -n 's/.*"microbatch":\([0-9]*\).*"tokens_per_s":\([0-9.e+]*\).*/mb \1: \2/p' "$j"; done | tr '\n' ' ')"
  [ $bad = 0 ]
}

# torch_run MODE [COMPILE_MODE]: bert_crammed 128 then 256
torch_run() {
  local mode=$1 cmode=${2:-} mb bad=0 n=0 tag j
  need art/bert_crammed_mb128.bf16.cuda.so
  tag=$mode${cmode:+-$cmode}
  for mb in 128 256; do
    [ -f "$BUNDLE/art/bert_crammed_mb$mb.bf16.cuda.so" ] || continue
    j=$WORK/results/bert_crammed_mb${mb}_torch-$tag.json
    echo "== torch $tag bert_crammed microbatch $mb"
    n=$((n + 1))
    # shellcheck disable=SC2046
    PYTHONUNBUFFERED=1 "$PY" "$BUNDLE/src/reference/bench_torch.py" $(torch_config bert_crammed) \
      --dims-from "$(dims art/bert_crammed_mb$mb.bf16.cuda.so)" --mode "$mode" ${cmode:+--compile-mode "$cmode"} \
      --precision bf16 --device cuda --warmup 5 --steps 30 --peak-tflops "$PEAK" --json "$j" || bad=$((bad + 1))
  done
  note "$((n - bad)) of $n ran; tokens/s: $(for j in "$WORK"/results/bert_crammed_mb*_torch-$tag.json; do
    [ -f "$j" ] && sed -n 's/.*"microbatch": \([0-9]*\).*"tokens_per_s": \([0-9.e+]*\).*/mb \1: \2/p' "$j"; done | tr '\n' ' ')"
  [ $bad = 0 ]
}
stage_torch-eager() { torch_run eager; }
stage_torch-compile() { torch_run compile reduce-overhead; }
stage_torch-max-autotune() { torch_run compile max-autotune; }

stage_table() {
  ls "$WORK"/results/*.json > /dev/null 2>&1 || { note "skipped: no results to tabulate"; exit 3; }
  "$PY" "$BUNDLE/src/bench/report.py" table "$WORK/results" --md "$WORK/results.md" || return 1
  cp "$WORK/results.md" "$RES/results.md"
  note "$(grep -c '^| bert_crammed' "$WORK/results.md") rows -> results.md"
}
stage_table2() { stage_table; }

stage_kernels() {
  local k bad=0 n=0 peak=${LAB_PEAK_GBPS:-}
  ls "$BUNDLE"/kernels/* > /dev/null 2>&1 || { note "skipped: no kernel lab in the bundle"; exit 3; }
  if [ -z "$peak" ]; then
    case "$(nvidia-smi --query-gpu=name --format=csv,noheader 2> /dev/null)" in *H200*) peak=4800 ;; *) peak=3350 ;; esac
  fi
  echo "## Kernel lab (bandwidth against $peak GB/s)" | section
  echo '```' | section
  for k in "$BUNDLE"/kernels/*; do
    n=$((n + 1))
    LAB_PEAK_GBPS=$peak "$k" > "$WORK/kernel-$(basename "$k").txt" 2>&1 || bad=$((bad + 1))
    cat "$WORK/kernel-$(basename "$k").txt"
    grep -E '^[a-z]+ on |MISMATCH|time |CHECK FAILED|error' "$WORK/kernel-$(basename "$k").txt" | section
  done
  echo '```' | section
  note "$((n - bad)) of $n binaries passed their checks"
  [ $bad = 0 ]
}

stage_ncu() {
  local ncu art=art/bert_crammed_mb128.bf16.cuda.so
  need "$art"
  ncu=$(tool ncu) || { note "skipped: ncu not installed"; exit 3; }
  mkdir -p "$WORK/ncu"
  # one step+update, each kernel a launch of its own (no graphs), caches and clocks as they are
  CRAM_CUDA_GRAPHS=0 "$ncu" --clock-control none --cache-control none --metrics gpu__time_duration.sum \
    -f -o "$WORK/ncu/step" "$CRAM" bench "$BUNDLE/$art" --warmup 0 --steps 1 --quiet || return 1
  "$ncu" --import "$WORK/ncu/step.ncu-rep" --csv --page raw --print-units base > "$WORK/ncu.csv" || return 1
  "$PY" "$BUNDLE/src/bench/report.py" ncu "$WORK/ncu.csv" --top 10 > "$WORK/ncu-top.txt" || return 1
  cat "$WORK/ncu-top.txt"
  { echo "## ncu: the ten heaviest kernels of one bert_crammed mb 128 step+update"; echo; echo '```'
    cat "$WORK/ncu-top.txt"; echo '```'; } | section
  note "$(head -1 "$WORK/ncu-top.txt")"
}

stage_test-slow() { sleep "$TEST_SLOW"; note "slept $TEST_SLOW s"; }

if [ "${1:-}" = --run-stage ]; then
  STAGE=$2
  . "$BUNDLE/src/bench/torch_config.sh"
  "stage_$STAGE"
  exit $?
fi

# ---- the driver --------------------------------------------------------------------------------------
BUNDLE= BUDGET=480 RES=${OUT:-} WORK= ONLY= TEST_SLOW= TEST_SLOW_CAP=
while [ $# -gt 0 ]; do
  case "$1" in
    --budget) BUDGET=$2; shift 2 ;;
    --out) RES=$2; shift 2 ;;
    --stages) ONLY=$2; shift 2 ;;
    --work) WORK=$2; shift 2 ;;
    # tests only: a stage that sleeps SLEEP s with cap CAP (0 = the whole budget), first in line
    --test-slow-stage) TEST_SLOW_CAP=${2%%:*} TEST_SLOW=${2#*:}; shift 2 ;;
    -h|--help) sed -n '2,/^set -u/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) echo "on-device.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
    *) [ -z "$BUNDLE" ] || { echo "on-device.sh: one BUNDLE (see --help)" >&2; exit 2; }; BUNDLE=$1; shift ;;
  esac
done
[ -n "$BUNDLE" ] || { echo "usage: on-device.sh BUNDLE [--budget SECONDS] [--out DIR] (see --help)" >&2; exit 2; }
case "$BUDGET" in ''|*[!0-9]*) echo "on-device.sh: --budget takes whole seconds" >&2; exit 2 ;; esac
[ -f "$BUNDLE/MANIFEST" ] || { echo "on-device.sh: $BUNDLE is not a bundle (no MANIFEST; bench/gpu-bundle.sh makes one)" >&2; exit 2; }
BUNDLE=$(cd "$BUNDLE" && pwd)
RES=${RES:-$PWD/on-device-out}
mkdir -p "$RES" || exit 1
RES=$(cd "$RES" && pwd)
[ -n "$WORK" ] || WORK=$(mktemp -d /tmp/on-device.XXXXXX)
mkdir -p "$WORK/results" || exit 1
if [ -n "$TEST_SLOW" ]; then
  STAGE_TABLE="test-slow:$TEST_SLOW_CAP:1 $STAGE_TABLE"
fi
for s in $ONLY; do
  case " $(echo $STAGE_TABLE | sed 's/:[0-9]*:[0-9]*//g') " in *" $s "*) ;; *) echo "on-device.sh: no stage '$s'" >&2; exit 2 ;; esac
done
export BUNDLE WORK RES TEST_SLOW
export PY=${PYTHON:-python3} PEAK=${PEAK_TFLOPS:-989} CRAM=$BUNDLE/bin/cram
T0=$(date +%s)
elapsed() { echo $(($(date +%s) - T0)); }
ROWS=() fails=0
HEADER="bundle $(sed -n 's/^git //p' "$BUNDLE/MANIFEST") ($(sed -n 's/^mode //p' "$BUNDLE/MANIFEST")), budget $BUDGET s"

write_report() {
  local s
  {
    echo "# on-device run: $HEADER"
    echo
    echo "| stage | result | seconds | timeout | note |"
    echo "|---|---|---|---|---|"
    for r in "${ROWS[@]}"; do echo "$r"; done
    echo
    echo "elapsed $(elapsed) s of the $BUDGET s budget; $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    for s in $(echo $STAGE_TABLE | sed 's/:[0-9]*:[0-9]*//g'); do
      [ -f "$WORK/$s.md" ] && { echo; cat "$WORK/$s.md"; }
    done
    [ -f "$WORK/results.md" ] && { echo; echo "## Speed (results.md)"; echo; cat "$WORK/results.md"; }
    for s in $(echo $STAGE_TABLE | sed 's/:[0-9]*:[0-9]*//g'); do
      case " ${FAILED:-} " in *" $s "*)
        echo; echo "## Log tail: $s"; echo; echo '```'; tail -25 "$WORK/$s.log" 2> /dev/null; echo '```' ;;
      esac
    done
  } > "$RES/report.md.tmp" && mv "$RES/report.md.tmp" "$RES/report.md"
  tar -czf "$RES/logs.tar.gz.tmp" -C "$WORK" --exclude='*.safetensors' --exclude='*.ncu-rep' --exclude='init' \
    --exclude='ncu' . 2> /dev/null && mv "$RES/logs.tar.gz.tmp" "$RES/logs.tar.gz"
}

row() { ROWS+=("| $1 | $2 | $3 | $4 | $5 |"); }

gpu_found=1
if ! command -v nvidia-smi > /dev/null 2>&1 || ! nvidia-smi -L > /dev/null 2>&1; then
  gpu_found=0
  HEADER="no GPU here (nvidia-smi missing or finds no device); $HEADER"
fi
FAILED=
for entry in $STAGE_TABLE; do
  IFS=: read -r s cap min <<< "$entry"
  if [ -n "$ONLY" ]; then
    case " $ONLY " in *" $s "*|*" ${s%2} "*) ;; *) continue ;; esac
  fi
  if [ $gpu_found = 0 ]; then
    row "$s" "skipped-no-GPU" 0 - "nvidia-smi finds no GPU"
    continue
  fi
  left=$((BUDGET - $(elapsed)))
  [ "$cap" = 0 ] && cap=$left
  if [ "$s" = torch-max-autotune ]; then min=$((min + NCU_RESERVE)); fi
  if [ "$s" = table2 ] && [ ! -f "$WORK/results/bert_crammed_mb128_torch-compile-max-autotune.json" ]; then continue; fi
  if [ $left -lt "$min" ]; then
    row "$s" "skipped: budget" 0 - "$left s left, needs at least $min s"
    write_report
    continue
  fi
  to=$((cap < left ? cap : left))
  echo "== [$(elapsed) s] stage $s (timeout $to s)"
  t=$(date +%s)
  timeout -k 5 "$to" bash "$SELF" --run-stage "$s" > "$WORK/$s.log" 2>&1
  rc=$?
  dt=$(($(date +%s) - t))
  nt=$(cat "$WORK/$s.note" 2> /dev/null | tr '|' '/')
  case $rc in
    0) row "$s" ok "$dt" "$to" "$nt" ;;
    3) row "$s" "skipped" "$dt" "$to" "$nt" ;;
    124|137) row "$s" "TIMEOUT" "$dt" "$to" "killed after $to s${nt:+; $nt}"; fails=$((fails + 1)); FAILED="$FAILED $s" ;;
    *) row "$s" "FAIL" "$dt" "$to" "exit $rc${nt:+; $nt}"; fails=$((fails + 1)); FAILED="$FAILED $s" ;;
  esac
  echo "${ROWS[-1]}"
  write_report
done
write_report
cat "$RES/report.md"
echo "on-device: $([ $fails = 0 ] && echo OK || echo "$fails stage(s) failed or timed out") in $(elapsed) s; $RES/report.md"
[ $fails = 0 ]
