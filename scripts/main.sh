#!/usr/bin/env bash
# The main job, as far as cramc goes today:
#   1. build cramc and the cram runtime (release, build/)
#   2. prepare the embedded corpus sample into token shards (data/sample/)
#   3. compile the crammed BERT and print its summary (119,589,889 parameters)
#   4. lower the tiny CPU default model to IR (build/tiny.ir)
# Training (`cram train step.so`) needs code generation, which is not built yet.
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
