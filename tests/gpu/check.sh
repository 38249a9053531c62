#!/bin/bash
# tests/gpu/check.sh BUNDLE [on-device.sh options] - the correctness half of the GPU
# run: bench/on-device.sh's device, compare, agree-bf16, agree-f32 and memcheck stages
# on a bundle made by bench/gpu-bundle.sh (the GPU machine cannot build the project:
# no LLVM there). Without a GPU every stage is a skipped-no-GPU row and it exits 0.
# Speed, the kernel lab and ncu: bench/on-device.sh BUNDLE (bench/README.md).
set -u
[ $# -ge 1 ] || { echo "usage: tests/gpu/check.sh BUNDLE [--budget S] [--out DIR] (bench/gpu-bundle.sh makes BUNDLE)" >&2; exit 2; }
exec bash "$(cd "$(dirname "$0")/../.." && pwd)/bench/on-device.sh" "$@" \
  --stages "device compare agree-bf16 agree-f32 memcheck"
