#!/usr/bin/env bash
# Runs every cramc test, the way CI does:
#   1. release build with gcc, warnings as errors, all ctest suites
#   2. ASan+UBSan build with clang, warnings as errors, every suite that runs C code
#   3. the frontend fuzzer for a bounded time (FUZZ_SECONDS, default 60)
# Stops at the first failing stage; the last line is "stages: N passed, M failed".
set -uo pipefail
cd "$(dirname "$0")/.."
JOBS=${JOBS:-2}
FUZZ_SECONDS=${FUZZ_SECONDS:-60}
passed=0; failed=0

stage() { # name, command...
  local name=$1; shift
  echo "=== stage: $name"
  if "$@"; then passed=$((passed + 1)); echo "=== stage $name: ok"
  else failed=$((failed + 1)); echo "=== stage $name: FAILED"; echo "stages: $passed passed, $failed failed"; exit 1; fi
}

build_and_test() { # builddir, cc, extra cmake args...
  local dir=$1 cc=$2; shift 2
  CC=$cc cmake -S . -B "$dir" -DCRAMC_WERROR=ON "$@" >/dev/null &&
    cmake --build "$dir" -j"$JOBS" &&
    (cd "$dir" && ctest --output-on-failure -j"$JOBS" ${CTEST_ARGS:-})
}

stage release build_and_test build gcc -DCMAKE_BUILD_TYPE=RelWithDebInfo
# pure-Python suites (label python) exercise no C code: run them once, in the release stage
CTEST_ARGS="-LE python" stage asan-ubsan build_and_test build-asan clang -DCMAKE_BUILD_TYPE=Debug -DCRAMC_SANITIZE=ON
stage fuzz bash tests/fuzz/run.sh "$FUZZ_SECONDS"
echo "stages: $passed passed, $failed failed"
