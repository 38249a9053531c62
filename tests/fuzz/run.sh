#!/bin/sh
# run.sh: build the libFuzzer targets with clang (libFuzzer + ASan + UBSan)
# straight from the sources and run each for a share of the time budget.
#
#   tests/fuzz/run.sh [SECONDS]      (default 60, the total for all targets)
#
# Targets and their share of SECONDS:
#   fuzz_frontend     1/2  the .cram frontend (seeds: corpus/ and models/)
#   fuzz_safetensors  1/4  the safetensors reader + checkpoint metadata checks
#                          (seeds: corpus_safetensors/)
#   fuzz_shard        1/4  the token shard header codec and reader
#                          (seeds: corpus_shard/)
# New interesting inputs go to scratch corpora in $FUZZ_WORK (default
# build-fuzz/), never into the repository. Exits non-zero when a fuzzer finds
# a crash, leak or timeout; the reproducer is left in $FUZZ_WORK (crash-*,
# leak-*, timeout-*).
set -eu
secs=${1:-60}
root=$(cd "$(dirname "$0")/../.." && pwd)
work=${FUZZ_WORK:-$root/build-fuzz}
cc=${CC_FUZZ:-clang}
mkdir -p "$work/corpus" "$work/corpus_safetensors" "$work/corpus_shard"
flags="-std=c17 -g -O1 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -Wno-unused-parameter
  -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"

srcs="$root/tests/fuzz/fuzz_frontend.c $root/frontend/*.c"
srcs="$srcs $root/ir/*.c"   # the whole cramc_ir library, whatever files it has
# shellcheck disable=SC2086
"$cc" $flags -I"$root/ir" -I"$root/frontend" $srcs -lm -o "$work/fuzz_frontend"
rt="$root/runtime"
# shellcheck disable=SC2086
"$cc" $flags -I"$rt" "$root/tests/fuzz/fuzz_safetensors.c" "$rt/safetensors.c" "$rt/ckpt.c" "$rt/shard.c" \
  "$rt/checksum.c" "$rt/status.c" -lm -o "$work/fuzz_safetensors"
# shellcheck disable=SC2086
"$cc" $flags -I"$rt" "$root/tests/fuzz/fuzz_shard.c" "$rt/shard.c" "$rt/checksum.c" "$rt/status.c" \
  -o "$work/fuzz_shard"

half=$((secs / 2)); quarter=$((secs / 4))
[ "$half" -ge 1 ] || half=1
[ "$quarter" -ge 1 ] || quarter=1
common="-timeout=10 -rss_limit_mb=2048 -print_final_stats=1"
cd "$work"
# shellcheck disable=SC2086
./fuzz_frontend -max_total_time="$half" $common -max_len=65536 \
  "$work/corpus" "$root/tests/fuzz/corpus" "$root/models" "$root/models/ablations"
# shellcheck disable=SC2086
./fuzz_safetensors -max_total_time="$quarter" $common -max_len=65536 \
  "$work/corpus_safetensors" "$root/tests/fuzz/corpus_safetensors"
# shellcheck disable=SC2086
./fuzz_shard -max_total_time="$quarter" $common -max_len=4096 \
  "$work/corpus_shard" "$root/tests/fuzz/corpus_shard"
