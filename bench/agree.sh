#!/bin/bash
# bench/agree.sh - do the compiled step and the PyTorch reference train the same?
#
#   bench/agree.sh --cram CRAM --step STEP.so --out DIR [--python PY] [--steps N]
#                  [--device cpu|cuda] [--precision f32|bf16] [--rtol R] [--seed S]
#                  [--batches FILE] [--init FILE]
#
# Same init, same batches, N (default 20) step+update iterations on each side:
#   1. DIR/batches.safetensors: N random MLM microbatches of the artifact's shape
#      (reference/bench_torch.py --write-batches; dims from `cram info`), or
#      --batches FILE written beforehand (bench/gpu-bundle.sh does, for the GPU run);
#   2. ours: cram bench STEP.so --batch-file ... --warmup 0 --steps N --save-init DIR/init
#      (the initial parameters as a checkpoint) -> DIR/ours.json;
#   3. cram export STEP.so DIR/init -> DIR/init.safetensors (cramming's names); with
#      --init FILE (exported beforehand from another target's artifact of the same
#      model and seed) it must be byte-identical to FILE: the targets start alike;
#   4. the reference from that file on those batches, in --precision (bf16 =
#      torch.autocast, the same precision as a bf16 cuda artifact) -> DIR/torch.json;
#      with bf16 also in f32 -> DIR/torch_f32.json, printed as the bf16 noise floor;
#   5. bench/report.py agree: |ours - ref| / |ref| <= R at every step.
# The reference config is bench/torch_config.sh's for the artifact's model.
# Default tolerance: 1e-4 in f32 (one summation order against another: the
# cpu target measures ~1e-7 on tiny), 2e-2 in bf16 (2^-8 = 0.4% is one bf16
# rounding of the loss's inputs; after 16 layers and 20 AdamW steps a few
# such roundings compound; the f32-vs-bf16 gap of the reference itself is
# printed beside it to show where the noise floor really is).
# Exit: 0 agree, 1 disagree or error, 2 usage.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(dirname "$HERE")
. "$HERE/torch_config.sh"
CRAM= STEP= OUT= PY=${PYTHON:-python3} N=20 DEV=cpu PREC=f32 RTOL= SEED=0 BATCHES= INIT=
while [ $# -gt 0 ]; do
  case "$1" in
    --cram) CRAM=$2; shift 2 ;;
    --step) STEP=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --python) PY=$2; shift 2 ;;
    --steps) N=$2; shift 2 ;;
    --device) DEV=$2; shift 2 ;;
    --precision) PREC=$2; shift 2 ;;
    --rtol) RTOL=$2; shift 2 ;;
    --seed) SEED=$2; shift 2 ;;
    --batches) BATCHES=$2; shift 2 ;;
    --init) INIT=$2; shift 2 ;;
    -h|--help) sed -n '2,/^set -u/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "agree.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
[ -n "$CRAM" ] && [ -n "$STEP" ] && [ -n "$OUT" ] || { echo "agree.sh: need --cram, --step and --out (see --help)" >&2; exit 2; }
case "$PREC" in f32) RTOL=${RTOL:-1e-4} ;; bf16) RTOL=${RTOL:-2e-2} ;; *) echo "agree.sh: --precision f32|bf16" >&2; exit 2 ;; esac
mkdir -p "$OUT" || exit 1
fail() { echo "agree.sh: $*" >&2; exit 1; }

step_dims_json "$CRAM" "$STEP" > "$OUT/dims.json" || fail "cram info failed on $STEP"
model=$(sed -n 's/^{"model":"\([^"]*\)".*/\1/p' "$OUT/dims.json")
cfg=$(torch_config "$model") || exit 1
BT="$PY $SRC/reference/bench_torch.py $cfg --dims-from $OUT/dims.json --quiet"
if [ -n "$BATCHES" ]; then
  [ -f "$BATCHES" ] || fail "--batches $BATCHES: no such file"
else
  BATCHES=$OUT/batches.safetensors
  $BT --write-batches "$BATCHES" --count "$N" --seed "$SEED" || fail "writing batches failed"
fi
"$CRAM" bench "$STEP" --batch-file "$BATCHES" --warmup 0 --steps "$N" --seed "$SEED" \
  --save-init "$OUT/init" --json "$OUT/ours.json" --quiet || fail "cram bench on the batches failed"
"$CRAM" export "$STEP" "$OUT/init" --out "$OUT/init.safetensors" > /dev/null || fail "cram export failed"
if [ -n "$INIT" ]; then
  cmp -s "$OUT/init.safetensors" "$INIT" || fail "the step's initial parameters ($OUT/init.safetensors) differ from $INIT"
  echo "initial parameters: identical to $INIT"
fi
$BT --device "$DEV" --precision "$PREC" --params "$OUT/init.safetensors" --batches "$BATCHES" \
  --losses "$N" --json "$OUT/torch.json" > /dev/null || fail "the reference run failed"
NOISE=()
if [ "$PREC" = bf16 ]; then
  $BT --device "$DEV" --precision f32 --params "$OUT/init.safetensors" --batches "$BATCHES" \
    --losses "$N" --json "$OUT/torch_f32.json" > /dev/null || fail "the f32 reference run failed"
  NOISE=(--noise "$OUT/torch.json" "$OUT/torch_f32.json")
fi
echo "== $model ($(basename "$STEP")): $N steps, ours vs the reference in $PREC on $DEV, tolerance $RTOL"
"$PY" "$HERE/report.py" agree "$OUT/ours.json" "$OUT/torch.json" --rtol "$RTOL" --first "$N" "${NOISE[@]}"
