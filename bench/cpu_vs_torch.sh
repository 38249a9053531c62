#!/bin/bash
# bench/cpu_vs_torch.sh - the compiled CPU step against PyTorch eager, side by side.
#
#   bench/cpu_vs_torch.sh [--cramc CRAMC] [--cram CRAM] [--python PY] [--rounds R]
#                         [--steps N] [--warmup N] [--threads "1 2"] [--models "tiny bert_crammed"]
#                         [--toy] [--out DIR]
#
# Rows (issue 14): tiny.cram at its own dims (batch 8) and bert_crammed.cram with
# -D layers=2 -D batch=8, each at every thread count of --threads. Each model is
# compiled once (`cramc --target cpu -O2`); then R rounds, each running, per row,
# `cram bench` (OMP_NUM_THREADS=t) and right after it the reference
# (`reference/bench_torch.py --device cpu --mode eager --precision f32 --threads t`,
# same dims via --dims-from the cram result, the structure from torch_config.sh),
# so both sides see the same machine load. The table gives per row the median
# tokens/s over the rounds of each side and their ratio, then the machine and its
# load average before and after. --toy: both models at toy dims (seconds; the CI
# test). Without torch the torch column says so. Exit: 0 ok, 1 error, 2 usage.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(dirname "$HERE")
. "$HERE/torch_config.sh"
CRAMC=${CRAMC:-$SRC/build/driver/cramc} CRAM=${CRAM:-$SRC/build/runtime/cram} PY=/usr/bin/python3
ROUNDS=3 STEPS=10 WARMUP=3 THREADS="1 2" ONLY="tiny bert_crammed" TOY=0 OUT=
usage() { sed -n '4,6p' "$0" | sed 's/^# *//' >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --cramc) CRAMC=$2; shift 2 ;;
    --cram) CRAM=$2; shift 2 ;;
    --python) PY=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --steps) STEPS=$2; shift 2 ;;
    --warmup) WARMUP=$2; shift 2 ;;
    --threads) THREADS=$2; shift 2 ;;
    --models) ONLY=$2; shift 2 ;;
    --toy) TOY=1; shift ;;
    --out) OUT=$2; shift 2 ;;
    -h|--help) usage ;;
    *) echo "cpu_vs_torch.sh: unknown option '$1'" >&2; usage ;;
  esac
done
for v in "$ROUNDS" "$STEPS" "$WARMUP"; do
  case "$v" in ''|*[!0-9]*) echo "cpu_vs_torch.sh: --rounds/--steps/--warmup take a number, got '$v'" >&2; exit 2 ;; esac
done
[ -x "$CRAMC" ] && [ -x "$CRAM" ] || { echo "cpu_vs_torch.sh: no cramc/cram at $CRAMC, $CRAM (build first, or --cramc/--cram)" >&2; exit 1; }
if [ -z "$OUT" ]; then OUT=$(mktemp -d /tmp/cpu_vs_torch.XXXXXX); trap 'rm -rf "$OUT"' EXIT; fi
mkdir -p "$OUT" || exit 1
HAVE_TORCH=1
"$PY" -c 'import torch' 2> /dev/null || HAVE_TORCH=0

# name | model file | -D overrides
if [ $TOY = 1 ]; then
  TD="-D batch=2 -D seq=16 -D hidden=32 -D heads=2 -D ffn=64 -D vocab=64"
  MODELS="tiny|tiny|$TD -D layers=1
bert_crammed|bert_crammed|$TD -D layers=1"
else
  MODELS="tiny|tiny|
bert_crammed|bert_crammed|-D layers=2 -D batch=8"
fi
MODELS=$(echo "$MODELS" | while IFS='|' read -r name rest; do
  case " $ONLY " in *" $name "*) echo "$name|$rest" ;; esac; done)
[ -n "$MODELS" ] || { echo "cpu_vs_torch.sh: --models takes tiny and/or bert_crammed" >&2; exit 2; }
load() { cut -d' ' -f1-3 /proc/loadavg 2> /dev/null || echo "?"; }
LOAD0=$(load)
while IFS='|' read -r name model dims; do
  # shellcheck disable=SC2086
  "$CRAMC" "$SRC/models/$model.cram" --target cpu -O2 $dims -o "$OUT/$name.so" || { echo "cpu_vs_torch.sh: cramc failed on $model" >&2; exit 1; }
done <<< "$MODELS"
for r in $(seq 1 "$ROUNDS"); do
  while IFS='|' read -r name model dims; do
    for t in $THREADS; do
      j="$OUT/$name.t$t.r$r"
      OMP_NUM_THREADS=$t "$CRAM" bench "$OUT/$name.so" --steps "$STEPS" --warmup "$WARMUP" --quiet --json "$j.cram.json" ||
        { echo "cpu_vs_torch.sh: cram bench failed on $name ($t threads)" >&2; exit 1; }
      if [ $HAVE_TORCH = 1 ]; then
        # shellcheck disable=SC2046
        OMP_NUM_THREADS=$t "$PY" "$SRC/reference/bench_torch.py" $(torch_config "$model") --dims-from "$j.cram.json" \
          --device cpu --mode eager --precision f32 --threads "$t" --steps "$STEPS" --warmup "$WARMUP" --quiet \
          --json "$j.torch.json" 2> "$j.torch.log" ||
          { echo "cpu_vs_torch.sh: bench_torch.py failed on $name ($t threads):" >&2; tail -3 "$j.torch.log" >&2; exit 1; }
      fi
    done
  done <<< "$MODELS"
done
LOAD1=$(load)
# the table: median tokens/s per row and side
"$PY" - "$OUT" "$ROUNDS" "$THREADS" "$HAVE_TORCH" "$LOAD0" "$LOAD1" "$TOY" "$ONLY" << 'PYEOF'
import glob, json, os, platform, statistics, sys
out, rounds, threads, have_torch, load0, load1, toy, only = sys.argv[1:]
names = [n for n in ["tiny", "bert_crammed"] if n in only.split()]
label = {"tiny": "tiny (batch 8)", "bert_crammed": "bert_crammed `-D layers=2 -D batch=8`"}
if toy == "1":
    label = {n: n + " (toy dims)" for n in names}
def med(paths):
    v = [json.load(open(p))["tokens_per_s"] for p in paths]
    return statistics.median(v) if v else None
print("| model | threads | cram cpu target tok/s | torch eager tok/s | ratio |")
print("|---|---|---|---|---|")
for n in names:
    for t in threads.split():
        c = med(sorted(glob.glob(f"{out}/{n}.t{t}.r*.cram.json")))
        p = med(sorted(glob.glob(f"{out}/{n}.t{t}.r*.torch.json"))) if have_torch == "1" else None
        ts = f"{p:,.0f}" if p else "n/a (no torch)"
        ratio = f"{c / p:.2f}x" if p else "n/a"
        print(f"| {label[n]} | {t} | {c:,.0f} | {ts} | {ratio} |")
cpu = "?"
try:
    cpu = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
except (OSError, StopIteration):
    pass
print(f"\nmedian of {rounds} interleaved rounds; {os.cpu_count()} x {cpu} ({platform.machine()}); "
      f"load average before {load0}, after {load1}")
PYEOF
