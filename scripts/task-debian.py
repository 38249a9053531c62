#!/usr/bin/env python3
"""task-debian.py - two labelled tasks in GLUE layouts, built offline from
Debian data on this machine (run by scripts/task-debian.sh; docs/finetune.md).

debian-section/  (SST-2 layout: sentence<TAB>label)
    A package's one-line description -> the coarse archive section it is
    filed in: 1 = leisure and media (games, sound, video, graphics), 0 =
    science and engineering (science, math, electronics, hamradio). Source:
    apt's package index (every installable package of the release, from
    /var/lib/apt/lists). Exact duplicate descriptions are dropped, the larger
    class is cut to the smaller by name hash (balanced), and the split is by
    a hash of the *source* package name (all binaries of one source on one
    side, so "foo (data files)" cannot leak between train and dev).

wordnet-wic/  (MRPC layout: Quality, #1 ID, #2 ID, #1 String, #2 String)
    Word in Context, as the WiC benchmark is built: two WordNet example
    sentences that both contain a word; 1 = the word has the same sense in
    both (both examples of one synset), 0 = different senses of the word
    with the same part of speech. Each string starts with the word and a
    colon ("bank: they pulled the canoe up on the bank"), since the pair
    alone does not say which word is asked about. Balanced; split by a hash
    of the word (no word in both train and dev). Source: wordnet-base.

Deterministic: the same inputs give byte-identical files.
"""
import hashlib
import os
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

DEV_PERCENT = 10


def h(s: str) -> int:
    return int.from_bytes(hashlib.sha1(s.encode()).digest()[:8], "big")


def is_dev(key: str) -> bool:
    return h("split:" + key) % 100 < DEV_PERCENT


def clean(s: str) -> str:
    return re.sub(r"\s+", " ", s).strip()


def write(path: Path, header, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        if header:
            f.write("\t".join(header) + "\n")
        for r in rows:
            assert all("\t" not in c and "\n" not in c for c in r), r
            f.write("\t".join(r) + "\n")


def apt_index_text() -> str:
    lists = Path("/var/lib/apt/lists")
    files = sorted(p for p in lists.glob("*_main_binary-*_Packages*") if "security" not in p.name and "updates" not in p.name)
    if not files:
        sys.exit("task-debian: no apt package index in /var/lib/apt/lists (run apt-get update)")
    out = []
    for p in files:
        if p.suffix == ".lz4":
            out.append(subprocess.run(["lz4", "-dc", str(p)], check=True, capture_output=True).stdout.decode("utf-8", "replace"))
        elif p.suffix in (".xz", ".gz"):
            tool = {"xz": "xz", "gz": "gzip"}[p.suffix[1:]]
            out.append(subprocess.run([tool, "-dc", str(p)], check=True, capture_output=True).stdout.decode("utf-8", "replace"))
        else:
            out.append(p.read_text("utf-8", "replace"))
    return "\n".join(out)


LEISURE = {"games", "sound", "video", "graphics"}
SCIENCE = {"science", "math", "electronics", "hamradio"}


def section_task(out: Path):
    seen, rows = set(), {0: [], 1: []}
    for stanza in apt_index_text().split("\n\n"):
        f = {}
        for line in stanza.split("\n"):
            if ":" in line and not line.startswith(" "):
                k, v = line.split(":", 1)
                f[k] = v.strip()
        if "Package" not in f or "Description" not in f:
            continue
        sec = f.get("Section", "").split("/")[-1]
        label = 1 if sec in LEISURE else 0 if sec in SCIENCE else None
        desc = clean(f["Description"])
        if label is None or len(desc.split()) < 3 or desc.lower() in seen:
            continue
        seen.add(desc.lower())
        source = f.get("Source", f["Package"]).split()[0]
        rows[label].append((h("pick:" + f["Package"]), f["Package"], source, desc))
    n = min(len(rows[0]), len(rows[1]))
    split = {"train": [], "dev": []}
    for label in (0, 1):
        for _, pkg, source, desc in sorted(rows[label])[:n]:
            split["dev" if is_dev(source) else "train"].append((h("order:" + pkg), desc, str(label)))
    for name, r in split.items():
        write(out / f"{name}.tsv", ["sentence", "label"], [(d + " ", lab) for _, d, lab in sorted(r)])
    return {k: len(v) for k, v in split.items()}, n


POS = {"noun": "n", "verb": "v", "adj": "a", "adv": "r"}


def wordnet_examples(wn: Path):
    """(word, pos) -> {synset id: [example sentences containing the word]}"""
    by_word = defaultdict(lambda: defaultdict(list))
    for name, p in POS.items():
        for line in open(wn / f"data.{name}", encoding="latin-1"):
            if line.startswith("  ") or "|" not in line:
                continue
            head, gloss = line.split("|", 1)
            t = head.split()
            offset, wcnt = t[0], int(t[3], 16)
            words = {re.sub(r"\(.*\)$", "", t[4 + 2 * i]).lower() for i in range(wcnt)}
            examples = [clean(e) for e in re.findall(r'"([^"]+)"', gloss)]
            for w in words:
                if not re.fullmatch(r"[a-z]+", w) or len(w) < 3:
                    continue
                pat = re.compile(r"\b" + re.escape(w) + r"\b", re.I)
                for e in examples:
                    if pat.search(e) and "\t" not in e:
                        by_word[(w, p)][p + offset].append(e)
    return by_word


def wic_task(out: Path, wn: Path):
    pos_pairs, neg_pairs = [], []
    for (w, p), senses in sorted(wordnet_examples(wn).items()):
        ids = sorted(senses)
        for s in ids:
            ex = senses[s]
            for i in range(0, len(ex) - 1, 2):
                pos_pairs.append((w, s, s, ex[i], ex[i + 1]))
        for a in range(len(ids)):
            for b in range(a + 1, len(ids)):
                neg_pairs.append((w, ids[a], ids[b], senses[ids[a]][0], senses[ids[b]][0]))
    n = min(len(pos_pairs), len(neg_pairs))
    pick = lambda pairs: sorted(pairs, key=lambda x: h("pick:" + "|".join(x)))[:n]
    split = {"train": [], "dev": []}
    for label, pairs in ((1, pick(pos_pairs)), (0, pick(neg_pairs))):
        for w, s1, s2, e1, e2 in pairs:
            split["dev" if is_dev(w) else "train"].append((h("order:" + w + e1 + e2), str(label), s1, s2, f"{w}: {e1}", f"{w}: {e2}"))
    for name, r in split.items():
        write(out / f"{name}.tsv", ["Quality", "#1 ID", "#2 ID", "#1 String", "#2 String"], [x[1:] for x in sorted(r)])
    return {k: len(v) for k, v in split.items()}, n


def counts(path: Path, col: int):
    c = defaultdict(int)
    with open(path, encoding="utf-8") as f:
        next(f)
        for line in f:
            c[line.rstrip("\n").split("\t")[col]] += 1
    return dict(sorted(c.items()))


def main():
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "data/tasks")
    wn = Path(os.environ.get("WORDNET_DIR", "/usr/share/wordnet"))
    sizes, n = section_task(out / "debian-section")
    print(f"debian-section: {sizes} (balanced: {n} per class)")
    for s in ("train", "dev"):
        print(f"  {s}: labels {counts(out / 'debian-section' / f'{s}.tsv', 1)}")
    if (wn / "data.noun").exists():
        sizes, n = wic_task(out / "wordnet-wic", wn)
        print(f"wordnet-wic: {sizes} (balanced: {n} per class)")
        for s in ("train", "dev"):
            print(f"  {s}: labels {counts(out / 'wordnet-wic' / f'{s}.tsv', 0)}")
    else:
        print(f"wordnet-wic: skipped, no WordNet in {wn} (apt-get install wordnet-base)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
