#!/bin/bash
# bench/compile_time.sh - how cramc's compile time grows with the model:
# `cramc --stats` (frontend, autodiff, the -O2 pipeline with a memory plan
# after every pass) on models/tiny.cram at each layer count, wall seconds and
# peak RSS. Near-linear growth is the goal (docs/benchmarks.md, "Compile time").
#
#   bash bench/compile_time.sh [CRAMC] [LAYERS...]   (default build/driver/cramc, 64 128 256 512 1024)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cramc=${1:-$root/build/driver/cramc}
shift || true
layers=${*:-64 128 256 512 1024}
printf '%-8s %10s %12s\n' layers seconds peak_MiB
for L in $layers; do
  /usr/bin/time -f '%e %M' -o /tmp/compile_time.$$ "$cramc" "$root/models/tiny.cram" -D layers="$L" --stats > /dev/null
  read -r s kb < /tmp/compile_time.$$
  printf '%-8s %10s %12d\n' "$L" "$s" $((kb / 1024))
done
rm -f /tmp/compile_time.$$
