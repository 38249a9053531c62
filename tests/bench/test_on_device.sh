#!/bin/bash
# test_on_device.sh SOURCE_DIR BUNDLE_DIR - bench/on-device.sh without a GPU, on the
# bundle bench.gpu_bundle built, so the first GPU run cannot die on a script error:
#   1. it parses (bash -n), --help works, usage errors exit 2;
#   2. no GPU: every stage is a "skipped-no-GPU" row, report.md and logs.tar.gz written
#      (at most three files, as the device tool brings back few), exit 0;
#   3. a fake nvidia-smi: the stages really run and fail (no driver here) or skip
#      (no sanitizer, not in a quick bundle), each a row; a fake slow stage first in
#      line is killed at its own timeout, the later stages still run, the whole run
#      stays inside its budget, exit 1;
#   4. a slow stage that may use the whole budget: killed when the budget is spent,
#      every later stage "skipped: budget", and the run ends on time.
# Prints "N passed, M failed".
SRC=$1 B=$2
S="bash $SRC/bench/on-device.sh"
T=$(mktemp -d /tmp/test_on_device.XXXXXX)
trap 'rm -rf "$T"' EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); }
no() { fail=$((fail + 1)); echo "FAIL: $*" >&2; }
check() { if eval "$1"; then ok; else no "$1"; fi; }
STAGES="device compare agree-bf16 agree-f32 memcheck ours torch-eager torch-compile table kernels torch-max-autotune ncu"
[ -f "$B/MANIFEST" ] || { echo "FAIL: no bundle in $B (bench.gpu_bundle makes it)"; exit 1; }

# 1
bash -n "$SRC/bench/on-device.sh"; check "[ $? = 0 ]"
$S --help > "$T/help.txt"; check "[ $? = 0 ] && grep -q 'priority order' $T/help.txt"
$S > /dev/null 2>&1; check "[ $? = 2 ]"
$S "$B" --budget soon > /dev/null 2>&1; check "[ $? = 2 ]"
$S "$B" --stages bogus > /dev/null 2>&1; check "[ $? = 2 ]"
$S "$T" > /dev/null 2>&1; check "[ $? = 2 ]"

# 2: no GPU (a nvidia-smi that finds none, first on PATH)
mkdir -p "$T/nogpu" "$T/gpu"
printf '#!/bin/sh\necho "No devices were found"; exit 6\n' > "$T/nogpu/nvidia-smi"
cat > "$T/gpu/nvidia-smi" << 'SH'
#!/bin/sh
case "$*" in
  -L) echo "GPU 0: Fake GPU (UUID: GPU-0)" ;;
  *driver_version*noheader*|*noheader*driver_version*) echo "0.0" ;;
  *noheader*) echo "Fake GPU" ;;
  *) echo "name, driver_version"; echo "Fake GPU, 0.0" ;;
esac
SH
chmod +x "$T/nogpu/nvidia-smi" "$T/gpu/nvidia-smi"
OUT=$T/o1 PATH=$T/nogpu:$PATH $S "$B" > "$T/1.txt" 2>&1
check "[ $? = 0 ]"
for s in $STAGES; do check "grep -q '^| $s | skipped-no-GPU |' $T/o1/report.md"; done
check "[ -f $T/o1/logs.tar.gz ] && [ \$(ls $T/o1 | wc -l) -le 3 ]"

# 3: a GPU that is not there; the slow stage gets 3 s, the rest what is left of 150 (room
# for a loaded CI machine: the stages themselves take ~10 s; max-autotune's 195 s never fit)
t0=$(date +%s)
PATH=$T/gpu:$PATH PYTHON=/usr/bin/python3 $S "$B" --out "$T/o2" --work "$T/w2" --budget 150 \
  --test-slow-stage 3:1000 > "$T/2.txt" 2>&1
rc=$? dt=$(($(date +%s) - t0))
cat "$T/o2/report.md"
check "[ $rc = 1 ]"
check "[ $dt -le 160 ]"
check "grep -q '^| test-slow | TIMEOUT | [3-6] | 3 | killed after 3 s' $T/o2/report.md"
for s in $STAGES; do check "grep -q '^| $s | ' $T/o2/report.md"; done
check "grep -q '^| device | FAIL | .*Fake GPU' $T/o2/report.md && grep -q 'cuBLASLt: ' $T/o2/report.md"
check "grep -q '^| compare | FAIL | .*0 of 2 comparisons agree' $T/o2/report.md"
check "grep -q 'no CUDA driver/GPU' $T/o2/report.md"
check "grep -q '^| agree-bf16 | skipped | .*not in the bundle' $T/o2/report.md"
check "grep -q '^| memcheck | skipped' $T/o2/report.md && grep -q '^| ncu | skipped' $T/o2/report.md"
check "grep -q '^| torch-max-autotune | skipped: budget' $T/o2/report.md"
check "tar -tzf $T/o2/logs.tar.gz | grep -q compare.log && ! tar -tzf $T/o2/logs.tar.gz | grep -q safetensors"

# 4: the slow stage may take the whole 6 s budget: nothing after it starts
t0=$(date +%s)
PATH=$T/gpu:$PATH PYTHON=/usr/bin/python3 $S "$B" --out "$T/o3" --budget 6 --test-slow-stage 0:1000 > "$T/3.txt" 2>&1
rc=$? dt=$(($(date +%s) - t0))
check "[ $rc = 1 ] && [ $dt -le 20 ]"
check "grep -q '^| test-slow | TIMEOUT | [6-9] | 6 |' $T/o3/report.md"
for s in $STAGES; do check "grep -q '^| $s | skipped: budget |' $T/o3/report.md"; done
echo "$pass passed, $fail failed"
[ $fail = 0 ]
