#!/bin/sh
# run.sh: build the frontend fuzzer with clang (libFuzzer + ASan + UBSan)
# straight from the sources and run it.
#
#   tests/fuzz/run.sh [SECONDS]      (default 60)
#
# Seeds: tests/fuzz/corpus/ plus every model in models/. New interesting
# inputs go to a scratch corpus in $FUZZ_WORK (default build-fuzz/), never
# into the repository. Exits non-zero when the fuzzer finds a crash, leak or
# timeout; the reproducer is left in $FUZZ_WORK (crash-*, leak-*, timeout-*).
set -eu
secs=${1:-60}
root=$(cd "$(dirname "$0")/../.." && pwd)
work=${FUZZ_WORK:-$root/build-fuzz}
cc=${CC_FUZZ:-clang}
mkdir -p "$work/corpus"

srcs="$root/tests/fuzz/fuzz_frontend.c $root/frontend/*.c"
srcs="$srcs $root/ir/*.c"   # the whole cramc_ir library, whatever files it has

# shellcheck disable=SC2086
"$cc" -std=c17 -g -O1 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -Wno-unused-parameter \
  -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer \
  -I"$root/ir" -I"$root/frontend" $srcs -lm -o "$work/fuzz_frontend"

cd "$work"
exec ./fuzz_frontend -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
  -print_final_stats=1 "$work/corpus" "$root/tests/fuzz/corpus" "$root/models" "$root/models/ablations"
