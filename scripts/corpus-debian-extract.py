#!/usr/bin/env python3
"""corpus-debian-extract.py - turn installed Debian documentation packages into
plain-text documents (JSONL, one {"text": ...} per document) for `cram data`.

Why: CI and development machines have no network except the package archive,
yet the data pipeline should be exercised on ~100 MB of real English text, not
a toy. Debian ships a lot of it: Webster 1913 (dict-gcide), the Linux kernel
documentation (linux-doc-6.1, reStructuredText), the Python manual sources
(python3.11-doc), Perl's POD manuals (perl-doc), the King James Bible
(bible-kjv), fortune cookies (fortunes), WordNet glosses (wordnet-base), the
PostgreSQL manual (postgresql-doc-15), git's manual (git-doc) and the Debian
Reference (debian-reference-en).
Markup (RST directives/roles/literal blocks, POD commands/formatting codes,
HTML tags, AsciiDoc blocks, dictionary pronunciation codes and source tags)
is stripped; code blocks are
dropped, since they are not prose. scripts/corpus-debian.sh installs the
packages and runs this; docs/data.md records the measured result.

Usage: corpus-debian-extract.py OUT_DIR   (writes OUT_DIR/<source>.jsonl)
"""
from __future__ import annotations

import argparse
import gzip
import html.parser
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Callable, Iterator

# ---------------------------------------------------------------------------
# reStructuredText -> text

RST_TEXT_DIRECTIVES = {
    "note", "warning", "attention", "caution", "danger", "error", "hint", "important", "tip",
    "seealso", "admonition", "versionadded", "versionchanged", "deprecated", "rubric", "topic",
    "sidebar", "epigraph", "highlights", "pull-quote", "centered", "glossary", "describe",
    "function", "method", "class", "attribute", "data", "exception", "module", "decorator",
    "c:function", "c:type", "c:macro", "c:member", "c:var", "c:struct", "c:enum", "c:union",
    "opcodeenv", "opcode", "cmdoption", "option", "envvar",
}
UNDERLINE = re.compile(r"""^\s*([=\-~^"'`#*+_.:<>])\1{2,}\s*$""")
SIMPLE_TABLE = re.compile(r"^\s*[=\-]{3,}(\s+[=\-]{3,})+\s*$")
GRID_LINE = re.compile(r"^\s*[+|]([-=+|: ]*)$|^\s*\+[-=]")
FIELD = re.compile(r"^\s*:[\w .-]+:(\s.*)?$")
DIRECTIVE = re.compile(r"^(\s*)\.\.\s+(?:\|[^|]+\|\s+)?([\w:.-]+)::\s*(.*)$")


def rst_inline(s: str) -> str:
    s = re.sub(r":[\w:.+-]+:`~?!?([^`<]*?)\s*<[^`>]*>`", r"\1", s)  # :role:`text <target>`
    s = re.sub(r":[\w:.+-]+:`~?!?([^`]*)`", r"\1", s)  # :role:`text`
    s = re.sub(r"``([^`]+)``", r"\1", s)  # ``literal``
    s = re.sub(r"`([^`<]*?)\s*<[^`>]*>`__?", r"\1", s)  # `text <url>`_
    s = re.sub(r"`([^`]+)`_{0,2}", r"\1", s)  # `text`_ / `text`
    s = re.sub(r"\*\*([^*]+)\*\*", r"\1", s)
    s = re.sub(r"(?<![\w*])\*([^*\s][^*]*)\*(?![\w*])", r"\1", s)
    s = re.sub(r"\[(#\w*|\d+|\*)\]_", "", s)  # footnote references
    s = re.sub(r"\|([\w -]+)\|", r"\1", s)  # substitutions
    s = re.sub(r"(\w)\\ ", r"\1", s)  # escaped spaces
    return s


def strip_rst(text: str) -> str:
    out: list[str] = []
    skip_deeper_than: int | None = None  # drop lines indented more than this (block bodies)
    for raw in text.splitlines():
        line = raw.expandtabs(8).rstrip()
        stripped = line.strip()
        indent = len(line) - len(line.lstrip())
        if skip_deeper_than is not None:
            if not stripped or indent > skip_deeper_than:
                continue
            skip_deeper_than = None
        if not stripped:
            out.append("")
            continue
        m = DIRECTIVE.match(line)
        if m:
            name, arg = m.group(2).lower(), m.group(3)
            if name in RST_TEXT_DIRECTIVES:
                if arg and name != "module":
                    out.append(arg)
            else:
                skip_deeper_than = indent  # code-block, toctree, image, table, raw, ...
            continue
        if stripped.startswith(".."):  # comment, target, footnote, substitution definition
            skip_deeper_than = indent
            continue
        if UNDERLINE.match(line) or SIMPLE_TABLE.match(line) or GRID_LINE.match(line) or FIELD.match(line):
            continue
        if stripped.endswith("::"):  # a literal (code) block follows
            keep = stripped[:-2].rstrip()
            if keep:
                out.append(keep + ":")
            skip_deeper_than = indent
            continue
        if stripped.startswith(">>>"):  # doctest
            skip_deeper_than = indent
            continue
        out.append(stripped)
    return tidy(rst_inline("\n".join(out)))


def tidy(text: str) -> str:
    text = re.sub(r"[ \t]+", " ", text)
    text = re.sub(r" ?\n ?", "\n", text)
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip()


# ---------------------------------------------------------------------------
# POD -> text

POD_DROP = {"=cut", "=pod", "=over", "=back", "=encoding", "=for"}


def pod_codes(s: str) -> str:
    def code(letter: str, body: str) -> str:
        body = body.strip()
        if letter in "XZ":
            return ""
        if letter == "E":
            return {"gt": ">", "lt": "<", "verbar": "|", "sol": "/", "quot": '"', "amp": "&"}.get(body, "")
        if letter == "L":
            if "|" in body:
                return body.split("|", 1)[0]
            return body.replace('"', "").replace("/", " ").strip()
        return body

    s = re.sub(r"([A-Z])<<+\s+(.*?)\s+>>+", lambda m: code(m.group(1), m.group(2)), s, flags=re.S)
    prev = None
    while prev != s:
        prev = s
        s = re.sub(r"([A-Z])<([^<>]*)>", lambda m: code(m.group(1), m.group(2)), s)
    return s


def strip_pod(text: str) -> str:
    out: list[str] = []
    in_begin = False
    for para in re.split(r"\n\s*\n", text):
        if not para.strip():
            continue
        first = para.split(None, 1)[0] if para.strip() else ""
        if para.startswith("="):
            if first == "=begin":
                in_begin = True
            elif first == "=end":
                in_begin = False
            elif first in ("=head1", "=head2", "=head3", "=head4", "=item"):
                rest = para[len(first):].strip()
                if rest and rest not in ("*", "-") and not re.fullmatch(r"\d+\.?", rest):
                    out.append(pod_codes(rest.lstrip("*- ")))
            continue  # =cut, =pod, =over, =back, ...
        if in_begin or para[0] in " \t":  # =begin blocks and verbatim (code) paragraphs
            continue
        out.append(pod_codes(para))
    return tidy("\n\n".join(out))


# ---------------------------------------------------------------------------
# HTML -> text (PostgreSQL manual, Debian Reference)


class HtmlText(html.parser.HTMLParser):
    """Text of an HTML page without scripts, styles, code listings and navigation."""

    SKIP = {"script", "style", "pre", "head", "title"}
    BLOCK = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "dt", "dd", "table", "section", "blockquote"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        cls = dict(attrs).get("class") or ""
        if tag in self.SKIP or (tag == "div" and cls in ("navheader", "navfooter")) or (self.skip and tag == "div"):
            self.skip += 1
        elif tag in self.BLOCK:
            self.parts.append("\n\n" if tag in ("p", "h1", "h2", "h3", "h4", "table") else "\n")

    def handle_endtag(self, tag: str) -> None:
        if self.skip and (tag in self.SKIP or tag == "div"):
            self.skip -= 1

    def handle_data(self, data: str) -> None:
        if not self.skip:
            self.parts.append(data.replace("\n", " "))


def strip_html(text: str) -> str:
    p = HtmlText()
    p.feed(text)
    p.close()
    return tidy("".join(p.parts))


# ---------------------------------------------------------------------------
# AsciiDoc -> text (git manual)


def strip_asciidoc(text: str) -> str:
    out: list[str] = []
    fence: str | None = None
    for line in text.splitlines():
        s = line.rstrip()
        if fence is not None:
            if s == fence:
                fence = None
            continue
        if re.fullmatch(r"(-{4,}|\.{4,}|={4,}|\+{4,}|/{4,}|_{4,})", s) and not (out and out[-1].strip() and len(s) == len(out[-1].strip())):
            fence = s  # listing / literal / comment block: code, dropped
            continue
        if re.fullmatch(r"[=\-~^+]{3,}", s):  # section underline
            continue
        if re.match(r"^(\[\[.*\]\]|\[[\w ,=\"]*\]|:[\w-]+:.*|include::.*|ifn?def::.*|endif::.*|//.*)$", s):
            continue
        if line.startswith((" ", "\t")) and s.strip():  # indented literal paragraph
            continue
        out.append(s)
    t = "\n".join(out)
    t = re.sub(r"(?:linkgit|link|gitlink):([\w.-]+)\[[^\]]*\]", r"\1", t)
    t = re.sub(r"\{[\w-]+\}", "", t)
    t = re.sub(r"`([^`]*)`", r"\1", t)
    t = re.sub(r"(?<!\w)'([^'\n]+)'(?!\w)", r"\1", t)
    t = re.sub(r"(?<!\w)\*([^*\n]+)\*(?!\w)", r"\1", t)
    t = re.sub(r"^=+ ", "", t, flags=re.M)
    return tidy(t)


# ---------------------------------------------------------------------------
# Sources: each yields document strings.


def files_of(package: str, pattern: str) -> list[Path]:
    listing = subprocess.run(["dpkg", "-L", package], capture_output=True, text=True, check=True).stdout
    rx = re.compile(pattern)
    return sorted(Path(p) for p in listing.splitlines() if rx.search(p) and Path(p).is_file())


def read_maybe_gz(path: Path) -> str:
    data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    return data.decode("utf-8", errors="replace")


def gcide() -> Iterator[str]:
    """Webster 1913 (+ later supplements): one document per dictionary entry."""
    data = gzip.decompress(Path("/usr/share/dictd/gcide.dict.dz").read_bytes())
    b64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

    def num(s: str) -> int:
        v = 0
        for ch in s:
            v = v * 64 + b64.index(ch)
        return v

    seen: set[tuple[int, int]] = set()
    for line in Path("/usr/share/dictd/gcide.index").read_text(encoding="utf-8", errors="replace").splitlines():
        parts = line.split("\t")
        if len(parts) != 3 or parts[0].startswith("00-database"):
            continue
        key = (num(parts[1]), num(parts[2]))
        if key in seen:  # several headwords can point at one entry
            continue
        seen.add(key)
        entry = data[key[0] : key[0] + key[1]].decode("utf-8", errors="replace")
        entry = re.sub(r"^\s*\[[^\]\n]*\]\s*$", "", entry, flags=re.M)  # [1913 Webster], [PJC] ...
        entry = re.sub(r"\\[^\\\n]*\\", "", entry)  # \Ab"a*ca\ hyphenation
        entry = re.sub(r"\((?:[^()\n]*\[[^\]\n]{1,3}\])+[^()\n]*\)", "", entry)  # ([a^]b"[.a]) pronunciation
        entry = re.sub(r"\[(\w)[\^=.\-~\"'`:,]{1,2}\]", r"\1", entry)  # [a^] letter codes
        entry = entry.replace("{", "").replace("}", "")
        yield tidy(entry)


def linux_doc() -> Iterator[str]:
    """Kernel documentation: RST files (markup stripped) and plain .txt files."""
    base = r"/usr/share/doc/linux-doc-6\.1/Documentation/(?!devicetree/|ABI/|translations/)"
    for p in files_of("linux-doc-6.1", base + r".*\.rst\.gz$"):
        yield strip_rst(read_maybe_gz(p))
    for p in files_of("linux-doc-6.1", base + r".*\.txt\.gz$"):
        yield tidy(read_maybe_gz(p))


def python_doc() -> Iterator[str]:
    """The Python 3.11 manual, from its RST sources."""
    for p in files_of("python3.11-doc", r"/html/_sources/.*\.rst\.txt$"):
        yield strip_rst(read_maybe_gz(p))


def perl_doc() -> Iterator[str]:
    """Perl manual pages, from POD."""
    for p in files_of("perl-doc", r"\.pod(\.gz)?$"):
        yield strip_pod(read_maybe_gz(p))


def bible() -> Iterator[str]:
    """King James Bible, one document per chapter (decoded with `bible`)."""
    out = subprocess.run(["bible", "-f", "Gen1:1-Rev22:21"], capture_output=True, text=True, check=True).stdout
    chapter: list[str] = []
    current = None
    for line in out.splitlines():
        m = re.match(r"^(\S+?)(\d+):(\d+) (.*)$", line)
        if not m:
            if chapter and line.strip():
                chapter[-1] += " " + line.strip()
            continue
        key = (m.group(1), m.group(2))
        if key != current and chapter:
            yield " ".join(chapter)
            chapter = []
        current = key
        chapter.append(m.group(4).strip())
    if chapter:
        yield " ".join(chapter)


def fortunes() -> Iterator[str]:
    """Fortune cookies (text collections only, no ASCII art): one document each."""
    for p in sorted(Path("/usr/share/games/fortunes").iterdir()):
        if p.suffix or p.is_symlink() or p.name in ("art", "ascii-art"):
            continue
        for cookie in re.split(r"^%\s*$", p.read_text(encoding="utf-8", errors="replace"), flags=re.M):
            cookie = tidy(cookie)
            if cookie:
                yield cookie


def wordnet() -> Iterator[str]:
    """WordNet 3.0 synsets as "word, word: gloss" lines, 50 synsets per document."""
    for pos in ("noun", "verb", "adj", "adv"):
        page: list[str] = []
        for line in Path(f"/usr/share/wordnet/data.{pos}").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("  ") or "|" not in line:
                continue  # license header
            fields, gloss = line.split("|", 1)
            f = fields.split()
            nwords = int(f[3], 16)
            words = [f[4 + 2 * i].replace("_", " ") for i in range(nwords)]
            words = [re.sub(r"\([a-z]+\)$", "", w) for w in words]  # adjective markers (a), (p)
            page.append(", ".join(words) + ": " + gloss.strip())
            if len(page) == 50:
                yield "\n".join(page)
                page = []
        if page:
            yield "\n".join(page)


def postgresql_doc() -> Iterator[str]:
    """The PostgreSQL 15 manual (HTML), one document per page."""
    for p in files_of("postgresql-doc-15", r"/html/.*\.html$"):
        yield strip_html(read_maybe_gz(p))


def git_doc() -> Iterator[str]:
    """Git manual pages and guides, from AsciiDoc sources."""
    for p in files_of("git-doc", r"/usr/share/doc/git-doc/.*\.txt$"):
        yield strip_asciidoc(read_maybe_gz(p))


def debian_reference() -> Iterator[str]:
    """The Debian Reference (HTML), one document per chapter."""
    for p in files_of("debian-reference-en", r"\.en\.html$"):
        yield strip_html(read_maybe_gz(p))


SOURCES: dict[str, Callable[[], Iterator[str]]] = {
    "gcide": gcide,
    "linux-doc": linux_doc,
    "python-doc": python_doc,
    "perl-doc": perl_doc,
    "bible-kjv": bible,
    "fortunes": fortunes,
    "wordnet": wordnet,
    "postgresql-doc": postgresql_doc,
    "git-doc": git_doc,
    "debian-reference": debian_reference,
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--only", nargs="*", choices=sorted(SOURCES), help="extract only these sources")
    args = ap.parse_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    total_docs = total_bytes = 0
    for name, fn in SOURCES.items():
        if args.only and name not in args.only:
            continue
        path = args.out_dir / f"{name}.jsonl"
        tmp = path.with_suffix(".jsonl.tmp")
        ndocs = nbytes = 0
        with open(tmp, "w", encoding="utf-8") as f:
            for doc in fn():
                if len(doc) < 2:
                    continue
                f.write(json.dumps({"text": doc}, ensure_ascii=False) + "\n")
                ndocs += 1
                nbytes += len(doc.encode("utf-8"))
        tmp.replace(path)
        print(f"{name:12s} {ndocs:8d} documents {nbytes / 1e6:8.1f} MB of text -> {path}")
        total_docs += ndocs
        total_bytes += nbytes
    print(f"{'total':12s} {total_docs:8d} documents {total_bytes / 1e6:8.1f} MB of text")
    return 0


if __name__ == "__main__":
    sys.exit(main())
