#!/bin/bash
# test_bench_cli.sh CRAMC CRAM MKSHARDS SOURCE_DIR CC [CXX] - `cram bench`
# without a GPU, on tiny.cram at toy dims:
#   1. the cpu and the interp artifact: every JSON field present, numbers
#      positive, (warmup + steps) x accum losses; same init and batches give
#      the same losses on both targets (1e-5);
#   2. flops_per_token = 3 x `cramc --summary`'s forward matmul FLOPs per token;
#      --profile on the cpu artifact: the family and kernel tables, same losses;
#      MFU = flops_per_token x tokens/s / peak, with the peak given;
#   3. the three batch sources (synthetic, --data shards, --batch-file),
#      --accum, --save-init + cram export;
#   4. bad arguments and inputs: one line on stderr, exit 2 (usage) or 1;
#   5. if CUDA headers and a C++ compiler exist: the cuda artifact on the SIMT
#      emulator and fake libcuda of tests/codegen (no cuMemGetInfo there, so the
#      memory is the labelled estimate) gives the interp artifact's loss.
# Prints "N passed, M failed".
CRAMC=$1 CRAM=$2 MK=$3 SRC=$4 BUILD_CC=${5:-cc} CXX=${6:-}
T=$(mktemp -d /tmp/test_bench_cli.XXXXXX)
trap 'rm -rf "$T"' EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); }
no() { fail=$((fail + 1)); echo "FAIL: $*" >&2; }
check() { if eval "$1"; then ok; else no "$1"; fi; }
# jq-free JSON queries: j FILE EXPR (python expression over the object `r`)
j() { python3 -c "import json,sys; r = json.load(open(sys.argv[1])); print($2)" "$1"; }

D="-D batch=4 -D seq=16 -D hidden=32 -D heads=2 -D ffn=64 -D layers=1 -D vocab=64"
"$CRAMC" "$SRC/models/tiny.cram" $D --target cpu --cc "$BUILD_CC" -o "$T/cpu.so"; check "[ $? = 0 ]"
"$CRAMC" "$SRC/models/tiny.cram" $D --target interp -o "$T/interp.so"; check "[ $? = 0 ]"

# 1. both targets: fields, positivity, losses
FIELDS="impl mode artifact model target device precision dims data distinct_batches params microbatch seq accum warmup steps
 tokens_per_step lr create_s timed_s ms_per_step ms_per_step_min ms_per_step_median ms_per_step_max tokens_per_s
 flops_per_token achieved_tflops peak_tflops mfu last_grad_norm peak_memory_bytes memory_kind arena_bytes kernel_count
 nonfinite_losses final_loss losses"
for t in cpu interp; do
  "$CRAM" bench "$T/$t.so" --warmup 2 --steps 4 --seed 5 --json "$T/$t.json" > "$T/$t.txt"; check "[ $? = 0 ]"
  for f in $FIELDS; do check "[ \"\$(j $T/$t.json \"'$f' in r\")\" = True ]"; done
  check "[ \"\$(j $T/$t.json \"r['impl'] == 'cramc' and r['target'] == '$t' and r['model'] == 'tiny' and r['device'] == 'cpu'\")\" = True ]"
  check "[ \"\$(j $T/$t.json \"all(r[k] > 0 for k in ('ms_per_step','ms_per_step_min','ms_per_step_median','ms_per_step_max','tokens_per_s','flops_per_token','achieved_tflops','mfu','peak_memory_bytes','create_s','timed_s'))\")\" = True ]"
  check "[ \"\$(j $T/$t.json \"r['ms_per_step_min'] <= r['ms_per_step_median'] <= r['ms_per_step_max']\")\" = True ]"
  check "[ \"\$(j $T/$t.json \"len(r['losses']) == 6 and r['nonfinite_losses'] == 0 and r['final_loss'] == r['losses'][-1]\")\" = True ]"
  check "[ \"\$(j $T/$t.json \"r['microbatch'] == 4 and r['seq'] == 16 and r['tokens_per_step'] == 64 and r['dims']['masked'] == 4\")\" = True ]"
  check "[ \"\$(j $T/$t.json \"r['memory_kind']\")\" = host-maxrss ]"
  check "grep -q 'tokens/s' $T/$t.txt && grep -q 'MFU' $T/$t.txt && grep -q 'peak memory' $T/$t.txt"
done
check "python3 -c \"import json; a = json.load(open('$T/cpu.json'))['losses']; b = json.load(open('$T/interp.json'))['losses']; exit(max(abs(x - y) / abs(y) for x, y in zip(a, b)) > 1e-5)\""

# 2. the FLOP count and MFU
sum=$("$CRAMC" "$SRC/models/tiny.cram" $D --summary | sed -n 's/^forward matmul FLOPs per token: \([0-9,]*\) .*/\1/p' | tr -d ,)
check "[ -n '$sum' ] && [ \"\$(j $T/cpu.json \"r['flops_per_token'] == 3 * $sum\")\" = True ]"
"$CRAM" bench "$T/cpu.so" --steps 2 --warmup 0 --peak-tflops 0.001 --json "$T/peak.json" > "$T/peak.txt"; check "[ $? = 0 ]"
check "[ \"\$(j $T/peak.json \"r['peak_tflops'] == 0.001 and abs(r['mfu'] - r['flops_per_token'] * r['tokens_per_s'] / 1e9) < 1e-6 * r['mfu']\")\" = True ]"
check "grep -q 'of 0.001 TFLOP/s peak' $T/peak.txt"
# --profile (cpu target): the op-family table and the heaviest kernels, from the same
# computation (same losses as the unprofiled run); refused for interp; an unwritable --profile file fails
"$CRAM" bench "$T/cpu.so" --warmup 2 --steps 4 --seed 5 --profile "$T/prof.txt" --json "$T/prof.json" --quiet; check "[ $? = 0 ]"
cat "$T/prof.txt"
check "grep -q '^per-kernel profile' $T/prof.txt && grep -q '^heaviest kernels:' $T/prof.txt"
check "grep -qE '^  gemm +[0-9.]+ +[0-9.]+% +[0-9.]+ +[0-9.]+ +[0-9.]+ +[0-9]+$' $T/prof.txt && grep -qE '^  total +[0-9.]+ +100.0% ' $T/prof.txt"
check "grep -qE '^  acc_k[0-9]+ .* gemm +%[0-9]+ matmul' $T/prof.txt"
check "[ \"\$(j $T/prof.json \"r['losses'] == __import__('json').load(open('$T/cpu.json'))['losses']\")\" = True ]"
"$CRAM" bench "$T/interp.so" --steps 1 --warmup 0 --profile "$T/p2.txt" --quiet 2> "$T/p2.err"
check "[ $? = 1 ] && grep -q 'needs a cpu-target artifact' $T/p2.err"
"$CRAM" bench "$T/cpu.so" --steps 1 --warmup 0 --profile /nonexistent/dir/p --quiet 2> "$T/p3.err"
check "[ $? = 1 ] && grep -q '/nonexistent/dir/p: cannot write the profile' $T/p3.err"

# 3. batch sources, accumulation, saved init
"$MK" "$T/data" 64 skew > /dev/null || { echo "mkshards failed"; exit 1; }
"$CRAM" bench "$T/cpu.so" --data "$T/data" --steps 3 --warmup 1 --accum 2 --json "$T/shards.json" --quiet; check "[ $? = 0 ]"
check "[ \"\$(j $T/shards.json \"r['data'] == 'shards' and len(r['losses']) == 8 and r['tokens_per_step'] == 128 and r['accum'] == 2\")\" = True ]"
# the step really trains: 40 updates at lr 3e-3 on the skewed-unigram shards lower the loss (measured 4.10 -> 3.87)
# (uniform synthetic tokens could not show it: ln(vocab) is already their optimum)
"$CRAM" bench "$T/cpu.so" --data "$T/data" --warmup 0 --steps 40 --lr 3e-3 --json "$T/learn.json" --quiet; check "[ $? = 0 ]"
check "[ \"\$(j $T/learn.json \"sum(r['losses'][-5:]) < sum(r['losses'][:5]) - 0.1\")\" = True ]"
python3 - "$T/batches.safetensors" << 'EOF'
# 3 microbatches [3, 4, 16] of I32 tokens/targets (8 targets per sequence), written by hand
import json, random, struct, sys
random.seed(1)
n, b, s = 3, 4, 16
tok = [random.randrange(64) for _ in range(n * b * s)]
tgt = [t if (i % s) % 2 == 0 else -100 for i, t in enumerate(tok)]
data = struct.pack(f"<{len(tok)}i", *tok) + struct.pack(f"<{len(tgt)}i", *tgt)
h = {"tokens": {"dtype": "I32", "shape": [n, b, s], "data_offsets": [0, 4 * len(tok)]},
     "targets": {"dtype": "I32", "shape": [n, b, s], "data_offsets": [4 * len(tok), 8 * len(tok)]}}
hj = json.dumps(h).encode()
hj += b" " * (-len(hj) % 8)
open(sys.argv[1], "wb").write(struct.pack("<Q", len(hj)) + hj + data)
EOF
for t in cpu interp; do
  "$CRAM" bench "$T/$t.so" --batch-file "$T/batches.safetensors" --warmup 0 --steps 6 --json "$T/file_$t.json" --quiet
  check "[ $? = 0 ]"
done
check "[ \"\$(j $T/file_cpu.json \"r['data'] == 'file' and r['distinct_batches'] == 3 and len(r['losses']) == 6\")\" = True ]"
check "python3 -c \"import json; a = json.load(open('$T/file_cpu.json'))['losses']; b = json.load(open('$T/file_interp.json'))['losses']; exit(max(abs(x - y) / abs(y) for x, y in zip(a, b)) > 1e-5)\""
"$CRAM" bench "$T/cpu.so" --steps 1 --warmup 0 --seed 9 --save-init "$T/init" --quiet; check "[ $? = 0 ]"
check "[ -f $T/init/checkpoint.safetensors ]"
"$CRAM" export "$T/cpu.so" "$T/init" --out "$T/init.safetensors" > /dev/null; check "[ $? = 0 ]"
# the saved init is the one the run started from: a second run from --seed 9 has the same first loss
"$CRAM" bench "$T/interp.so" --steps 1 --warmup 0 --seed 9 --json "$T/s9.json" --quiet
"$CRAM" bench "$T/cpu.so" --steps 1 --warmup 0 --seed 9 --json "$T/s9c.json" --quiet
check "python3 -c \"import json; a = json.load(open('$T/s9.json'))['losses'][0]; b = json.load(open('$T/s9c.json'))['losses'][0]; exit(abs(a - b) > 1e-5 * abs(b))\""
"$CRAM" bench "$T/cpu.so" --steps 2 --warmup 0 --json - --quiet > "$T/stdout.json"; check "[ $? = 0 ]"
check "[ \"\$(j $T/stdout.json \"r['steps']\")\" = 2 ]"

# 4. errors: one line, the right status
e() { "$CRAM" bench "$@" > /dev/null 2> "$T/e.err"; echo $?; }
one() { [ "$(wc -l < "$T/e.err")" = 1 ] && grep -q "$1" "$T/e.err"; }
check "[ \$(e) = 2 ] && one 'no step.so given'"
check "[ \$(e $T/cpu.so --steps 0) = 2 ] && one 'expected an integer in \[1, 1000000\]'"
check "[ \$(e $T/cpu.so --steps) = 2 ] && one 'needs a value'"
check "[ \$(e $T/cpu.so --warmup -1) = 2 ] && one 'expected an integer in \[0, 1000000\]'"
check "[ \$(e $T/cpu.so --peak-tflops 0) = 2 ] && one 'expected a number in (0, 1e+06\]'"
check "[ \$(e $T/cpu.so --stpes 2) = 2 ] && one \"did you mean '--steps'\""
check "[ \$(e $T/cpu.so --bogus) = 2 ] && one \"unknown option '--bogus'\""
check "[ \$(e $T/cpu.so $T/interp.so) = 2 ] && one 'too many arguments'"
check "[ \$(e $T/cpu.so --data $T/data --batch-file $T/batches.safetensors) = 2 ] && one 'not both'"
check "[ \$(e $T/nonexistent.so) = 1 ] && one 'nonexistent.so'"
check "[ \$(e $T/cpu.so --data $T/nodata) = 1 ] && one 'nodata'"
check "[ \$(e $T/cpu.so --batch-file $T/nofile.safetensors) = 1 ] && one 'nofile'"
"$CRAMC" "$SRC/models/tiny.cram" ${D/batch=4/batch=2} --target interp -o "$T/b2.so"
check "[ \$(e $T/b2.so --batch-file $T/batches.safetensors) = 1 ] && one 'compile it with -D batch=4'"
check "[ \$(e $T/cpu.so --json $T/nodir/x.json --steps 1 --warmup 0) = 1 ] && one 'cannot write'"
"$CRAMC" "$SRC/models/tiny.cram" ${D/vocab=64/vocab=32} --target interp -o "$T/v32.so"
check "[ \$(e $T/v32.so --data $T/data) = 1 ] && one 'vocab=32'"

# 5. the cuda artifact on the emulator (tests/codegen/test_cuda_emu.sh's fakes)
# (f32: compared with the interp artifact at 1e-4; bf16 is test_cuda_emu.sh's)
CUDA_INC=${CUDA_INC:-/usr/local/cuda/include}
if [ -n "$CXX" ] && [ -f "$CUDA_INC/cuda.h" ] && [ -f "$CUDA_INC/cublasLt.h" ]; then
  export CRAMC_CACHE_DIR=$T/cache CRAMC_NVRTC_PTX=0
  E="-D batch=2 -D seq=8 -D hidden=32 -D heads=2 -D ffn=64 -D layers=1 -D vocab=64"
  env -u CFLAGS "$BUILD_CC" -std=c17 -O1 -shared -fPIC -fvisibility=hidden -isystem "$CUDA_INC" \
    "$SRC/tests/codegen/test_cuda_emu_driver.c" -o "$T/libcuda.so.1" -ldl; check "[ $? = 0 ]"
  cp "$T/libcuda.so.1" "$T/libcublasLt.so.13"
  "$CRAMC" "$SRC/models/tiny.cram" $E --target cuda --precision f32 -o "$T/cuda.so"; check "[ $? = 0 ]"
  "$CRAMC" "$SRC/models/tiny.cram" $E --precision f32 --emit=cuda -o "$T/k.cu"; check "[ $? = 0 ]"
  mkdir -p "$T/inc" && echo '/* empty: test_cuda_emu.h emulates cuda_bf16.h */' > "$T/inc/cuda_bf16.h"
  "$CXX" -std=c++17 -O1 -w -shared -fPIC -I "$T/inc" -I "$SRC/codegen/cuda_kernels" -I "$SRC/ir" -include "$SRC/tests/codegen/test_cuda_emu.h" -x c++ "$T/k.cu" -o "$T/k.so"
  check "[ $? = 0 ]"
  "$CRAMC" "$SRC/models/tiny.cram" $E --target interp -o "$T/e_interp.so"
  "$CRAM" bench "$T/e_interp.so" --warmup 0 --steps 1 --json "$T/e_interp.json" --quiet; check "[ $? = 0 ]"
  LD_LIBRARY_PATH=$T CRAM_CUDA_EMU_KERNELS=$T/k.so "$CRAM" bench "$T/cuda.so" --warmup 0 --steps 1 --json "$T/cuda.json" > "$T/cuda.txt"
  check "[ $? = 0 ]"
  check "[ \"\$(j $T/cuda.json \"r['target'] == 'cuda' and r['device'] == 'cuda' and r['memory_kind'] == 'device-estimate' and r['peak_memory_bytes'] > r['arena_bytes'] > 0\")\" = True ]"
  check "grep -q 'ESTIMATE' $T/cuda.txt"
  check "python3 -c \"import json; a = json.load(open('$T/cuda.json'))['losses'][0]; b = json.load(open('$T/e_interp.json'))['losses'][0]; exit(abs(a - b) > 1e-4 * abs(b))\""
else
  echo "skipped: the emulated cuda artifact (needs a C++ compiler and CUDA headers in $CUDA_INC)"
fi

echo "$pass passed, $fail failed"
[ $fail = 0 ]
