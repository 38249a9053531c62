#!/bin/bash
# train_variants.sh DATA_DIR [STEPS] [CHECK_STEPS] - the language's variants
# (docs/cram-language.md §7) trained on the CPU, for the table there:
#   1. each model of models/ablations/ (and tiny.cram, the baseline) compiled
#      for the cpu target at its own (tiny) dims and trained STEPS updates
#      (default 300) with `cram train` on DATA_DIR (`cram data` shards, seq
#      128): the mean loss of the first and of the last 10 updates, seconds;
#   2. the same model as an interp-target artifact (the reference
#      interpreter) for CHECK_STEPS updates (default 5) from the same seed and
#      data: the largest relative difference of the per-update losses.
# MODELS replaces the list (names under models/, e.g. MODELS="ablations/rotary").
# DIMS adds -D overrides to every model (e.g. DIMS="-D seq=32" with shards of
# `cram data --seq-len 32`). Prints one markdown row per model. Slow (minutes
# per model on 2 cores); not part of CI, which runs codegen.cpu.variants (5
# steps at small dims).
set -u
DATA=$1 STEPS=${2:-300} CHECK=${3:-5} DIMS=${DIMS:-}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CRAMC=${CRAMC:-$ROOT/build/driver/cramc} CRAM=${CRAM:-$ROOT/build/runtime/cram}
T=$(mktemp -d /tmp/train_variants.XXXXXX)
trap 'rm -rf "$T"' EXIT
R="--data $DATA --batch 8 --ramp 0 --lr 2e-3 --seed 1 --quiet --ckpt-every 0"
losses() { sed -E 's/.*"loss":([^,]*),.*/\1/' "$1"; }
mean() { awk '{s += $1} END {printf "%.3f", s / NR}'; }
echo "| model | parameters | loss, first 10 updates | loss, last 10 of $STEPS | s / update (cpu) | cpu vs interp, $CHECK updates |"
echo "|---|---|---|---|---|---|"
MODELS=${MODELS:-tiny ablations/attention_explicit ablations/rotary ablations/alibi ablations/attention_temperature
  ablations/multi_query ablations/swiglu ablations/scalenorm ablations/deep_narrow ablations/shallow_wide}
for m in $MODELS; do
  name=$(basename "$m")
  src=$ROOT/models/$m.cram
  # shellcheck disable=SC2086
  params=$("$CRAMC" "$src" $DIMS --summary | sed -n 's/^total parameters: //p')
  # shellcheck disable=SC2086
  "$CRAMC" "$src" $DIMS --target cpu -o "$T/$name.so" || { echo "| $name | compile failed |"; continue; }
  t0=$(date +%s.%N)
  "$CRAM" train "$T/$name.so" $R --out "$T/$name.run" --steps "$STEPS" || { echo "| $name | train failed |"; continue; }
  t1=$(date +%s.%N)
  first=$(losses "$T/$name.run/metrics.jsonl" | head -10 | mean)
  last=$(losses "$T/$name.run/metrics.jsonl" | tail -10 | mean)
  per=$(echo "($t1 - $t0) / $STEPS" | bc -l)
  # the first CHECK updates again, through the interpreter and the cpu artifact
  # shellcheck disable=SC2086
  "$CRAMC" "$src" $DIMS --target interp -o "$T/$name.interp.so" &&
    "$CRAM" train "$T/$name.interp.so" $R --out "$T/$name.irun" --steps "$STEPS" --stop-at "$CHECK" &&
    "$CRAM" train "$T/$name.so" $R --out "$T/$name.crun" --steps "$STEPS" --stop-at "$CHECK" || {
      echo "| $name | interp check failed |"
      continue
    }
  diff=$(paste <(losses "$T/$name.irun/metrics.jsonl") <(losses "$T/$name.crun/metrics.jsonl") |
    awk '{d = ($1 - $2) / $1; d = d < 0 ? -d : d; if (d > w) w = d} END {printf "%.1e", w}')
  printf '| %s | %s | %s | %s | %.2f | %s |\n' "$name" "$params" "$first" "$last" "$per" "$diff"
done
