#!/bin/sh
# task-debian.sh - build the two offline finetuning tasks (GLUE layouts) from
# Debian data on this machine: OUT_DIR/debian-section (SST-2 layout: package
# description -> coarse archive section) and OUT_DIR/wordnet-wic (MRPC layout:
# does a word have the same sense in two WordNet examples). How they are
# built, sizes, class balance and majority baselines: docs/finetune.md.
#
# Needs apt's package index (/var/lib/apt/lists, `apt-get update`), lz4 (or
# xz/gzip, whichever compresses the index) and wordnet-base, which it installs
# when missing (apt-get, root or sudo). Then e.g.
#   build/runtime/cram finetune cls.so --task OUT_DIR/debian-section --layout sst2 --vocab V
set -eu

OUT=${1:-data/tasks}
HERE=$(cd "$(dirname "$0")" && pwd)

if ! dpkg-query -W -f='${Status}' wordnet-base 2>/dev/null | grep -q "install ok installed"; then
    echo "task-debian: installing wordnet-base" >&2
    SUDO=""
    [ "$(id -u)" = 0 ] || SUDO=sudo
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends wordnet-base
fi

python3 "$HERE/task-debian.py" "$OUT"
