#!/usr/bin/env bash
# The main job, as far as cramc goes today:
#   1. build cramc and the cram runtime (release, build/)
#   2. prepare the embedded corpus sample into token shards (data/sample/)
#   3. compile the crammed BERT and print its summary (119,589,889 parameters)
#   4. lower the tiny CPU default model to IR (build/tiny.ir)
#   5. compile tiny to a step.so with the cpu target (generated C + OpenBLAS)
#      and train it on data/sample for TINY_STEPS updates (default 600: about
#      2 minutes on 2 cores), printing the first and last loss, with a
#      checkpoint, metrics.jsonl and `cram plot` in build/tiny-run/.
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS=${JOBS:-2}

cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$JOBS"

echo "== cram data: corpus/sample -> data/sample"
build/runtime/cram data corpus/sample --vocab-size 8192 --out data/sample

echo "== cramc models/bert_crammed.cram --summary"
build/driver/cramc models/bert_crammed.cram --summary

echo "== cramc models/tiny.cram --emit=ir -o build/tiny.ir"
build/driver/cramc models/tiny.cram --emit=ir -o build/tiny.ir
echo "wrote build/tiny.ir ($(grep -c '^%' build/tiny.ir) nodes)"

# The cpu target (generated C kernels + OpenBLAS); TINY_TARGET=interp builds the
# reference-interpreter artifact instead (docs/codegen.md).
TARGET=${TINY_TARGET:-cpu}
echo "== cramc models/tiny.cram --target $TARGET -o build/tiny.so"
build/driver/cramc models/tiny.cram --target "$TARGET" -o build/tiny.so
build/runtime/cram info build/tiny.so > build/tiny.info && head -8 build/tiny.info

STEPS=${TINY_STEPS:-600}  # ~2 minutes with the cpu target (about 0.2 s per update)
echo "== cram train build/tiny.so --data data/sample --steps $STEPS"
rm -rf build/tiny-run
build/runtime/cram train build/tiny.so --data data/sample --out build/tiny-run --steps "$STEPS" \
    --batch 8 --ramp 0 --lr 2e-3 --progress-every 30s
loss() { sed -E 's/.*"loss":([^,]*),.*/\1/' | head -1; }
first=$(head -1 build/tiny-run/metrics.jsonl | loss)
last=$(tail -1 build/tiny-run/metrics.jsonl | loss)
echo "tiny ($TARGET step.so): loss $first at update 1 -> $last at update $STEPS"
build/runtime/cram plot build/tiny-run
