#!/usr/bin/env bash
# check_format.sh SOURCE_DIR - every tracked C, header and CUDA file is as
# clang-format-14 writes it under the committed .clang-format. Fails (never
# skips) when clang-format-14 or the git checkout is missing; prints the files
# that differ and the command that fixes them.
set -u
SRC=$1
CF=$(command -v clang-format-14 || command -v clang-format || true)
[ -n "$CF" ] || { echo "FAIL: clang-format-14 not found (apt-get install clang-format-14)"; exit 1; }
cd "$SRC" || exit 1
files=$(git ls-files '*.c' '*.h' '*.cuh' '*.cu' 2> /dev/null) || { echo "FAIL: $SRC is not a git checkout"; exit 1; }
[ -n "$files" ] || { echo "FAIL: no C sources listed by git in $SRC"; exit 1; }
bad=0 n=0
for f in $files; do
  n=$((n + 1))
  if ! "$CF" --dry-run --Werror "$f" > /dev/null 2>&1; then
    echo "not formatted: $f"
    bad=$((bad + 1))
  fi
done
echo "$n files checked, $bad not formatted"
[ $bad = 0 ] || { echo "fix: $CF -i \$(git ls-files '*.c' '*.h' '*.cuh' '*.cu')"; exit 1; }
