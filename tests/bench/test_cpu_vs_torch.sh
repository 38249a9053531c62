#!/bin/bash
# test_cpu_vs_torch.sh CRAMC CRAM SOURCE_DIR CC - bench/cpu_vs_torch.sh runs end to
# end on a toy size (tiny.cram at toy dims, 1 and 2 threads, one round of one
# step each side) and prints its table: a header, one row per thread count with
# a number on the cram side and a ratio (or "n/a (no torch)" without torch), the
# machine line. Not a timing test: the numbers themselves are not checked.
# Also: usage errors exit 2. Prints "N passed, M failed".
CRAMC=$1 CRAM=$2 SRC=$3 BUILD_CC=${4:-cc}
T=$(mktemp -d /tmp/test_cpu_vs_torch.XXXXXX)
trap 'rm -rf "$T"' EXIT
pass=0 fail=0
check() { if eval "$1"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: $1" >&2; fi; }
export CC=$BUILD_CC
bash "$SRC/bench/cpu_vs_torch.sh" --cramc "$CRAMC" --cram "$CRAM" --toy --models tiny --threads "1 2" \
  --rounds 1 --steps 1 --warmup 0 --out "$T/out" > "$T/table.txt" 2> "$T/err.txt"
check "[ $? = 0 ]"
cat "$T/table.txt" "$T/err.txt"
check "grep -q '^| model | threads | cram cpu target tok/s | torch eager tok/s | ratio |$' $T/table.txt"
check "[ \$(grep -cE '^\| tiny \(toy dims\) \| [12] \| [0-9,]+ \| ([0-9,]+ \| [0-9.]+x|n/a \(no torch\) \| n/a) \|$' $T/table.txt) = 2 ]"
check "grep -q 'median of 1 interleaved rounds; .* load average before' $T/table.txt"
check "[ -f $T/out/tiny.t1.r1.cram.json ] && [ -f $T/out/tiny.t2.r1.cram.json ]"
if /usr/bin/python3 -c 'import torch' 2> /dev/null; then
  check "[ -f $T/out/tiny.t1.r1.torch.json ] && [ -f $T/out/tiny.t2.r1.torch.json ]"
else
  echo "note: /usr/bin/python3 has no torch: the torch column is n/a"
fi
bash "$SRC/bench/cpu_vs_torch.sh" --bogus > /dev/null 2>&1; check "[ $? = 2 ]"
bash "$SRC/bench/cpu_vs_torch.sh" --cramc "$CRAMC" --cram "$CRAM" --steps x > /dev/null 2>&1; check "[ $? = 2 ]"
bash "$SRC/bench/cpu_vs_torch.sh" --cramc "$CRAMC" --cram "$CRAM" --models nope > /dev/null 2>&1; check "[ $? = 2 ]"
echo "$pass passed, $fail failed"
[ $fail = 0 ]
