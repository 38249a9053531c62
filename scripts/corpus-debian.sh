#!/bin/sh
# corpus-debian.sh - build a ~100 MB real-English corpus offline from Debian
# packages, for exercising `cram data` at scale where The Pile is not at hand.
#
# Installs (apt-get, needs root and an apt index) dict-gcide, linux-doc-6.1,
# python3.11-doc, perl-doc, bible-kjv(-text), fortunes, wordnet-base,
# postgresql-doc-15, git-doc and debian-reference-en, then
# runs scripts/corpus-debian-extract.py, which strips markup and writes one
# JSONL file per source into OUT_DIR (default data/corpus-debian, gitignored).
# Then prepare it, e.g.:
#   build/runtime/cram data data/corpus-debian --out data/debian-shards
# Measured sizes and token counts: docs/data.md.
set -eu

OUT=${1:-data/corpus-debian}
HERE=$(cd "$(dirname "$0")" && pwd)
PACKAGES="dict-gcide linux-doc-6.1 python3.11-doc perl-doc bible-kjv bible-kjv-text fortunes wordnet-base postgresql-doc-15 git-doc debian-reference-en"

missing=""
for p in $PACKAGES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    echo "corpus-debian: installing$missing" >&2
    SUDO=""
    [ "$(id -u)" = 0 ] || SUDO=sudo
    # Debian's docker images exclude /usr/share/doc via dpkg path filters; lift
    # them for these packages or the documentation files would not be unpacked.
    if [ -d /etc/dpkg/dpkg.cfg.d ] && grep -rqs "path-exclude.*/usr/share/doc" /etc/dpkg/dpkg.cfg.d; then
        echo "corpus-debian: warning: dpkg excludes /usr/share/doc (see /etc/dpkg/dpkg.cfg.d); documentation may be missing" >&2
    fi
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends $missing
fi

python3 "$HERE/corpus-debian-extract.py" "$OUT"
du -sh "$OUT"
