"""C WordPiece (runtime/wordpiece.c, `cram tokenize`) == Hugging Face
`tokenizers` with tools/cram_tokenize.py's pipeline, id for id, on the GLUE
fixtures, the embedded corpus and text made to hit every normaliser rule."""
import os
import subprocess
import sys
import unittest
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))
import cram_tokenize  # noqa: E402

CRAM = os.environ["CRAM_BIN"]
VOCAB = ROOT / "tests/data/fixtures/vocab-2000.txt"

EDGE = [
    "``Quoted'' and ```triple''' quotes",
    "Café crème brûlée, naïve Zoë, São Paulo, Ångström, İstanbul",
    "Kelvin \u212a, Ohm \u2126, ligature \ufb01ne, \u037e greek question mark, \u1fef varia",
    "emoji \U0001F600 and CJK \u4e2d\u6587 vanish",
    "tabs\tand\x0bvertical\x0cfeeds and control\x01chars and \x1c separators",
    "under_score snake_case_word x_1 __init__",
    "a" * 100 + " " + "b" * 101 + " " + "ab" * 60,
    "numbers 3.14159 1,000,000 -42 +7 1e-6",
    "punctuation!!! ?!... (brackets) [square] {curly} <angle> @#$%^&*",
    "multiple     spaces   and trailing   ",
    "",
    "UPPER lower MiXeD",
    "invalid utf-8 follows",
]


def fixture_texts():
    for tsv in sorted((ROOT / "tests/finetune/glue").rglob("*.tsv")):
        for line in tsv.read_text(encoding="utf-8-sig").splitlines():
            for field in line.split("\t"):
                yield field


def corpus_texts(limit=3000):
    n = 0
    for f in sorted((ROOT / "corpus").rglob("*")):
        if not f.is_file() or f.suffix in (".gz", ".zst"):
            continue
        for line in f.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.strip():
                yield line
                n += 1
                if n >= limit:
                    return


class WordPieceAgainstHF(unittest.TestCase):
    def test_same_ids(self):
        texts = [t for t in list(fixture_texts()) + list(corpus_texts()) + EDGE if "\n" not in t and "\r" not in t]
        self.assertGreater(len(texts), 200)
        out = subprocess.run([CRAM, "tokenize", "--vocab", str(VOCAB)], input="\n".join(texts).encode() + b"\n",
                             capture_output=True, check=True).stdout.decode().split("\n")
        tok = cram_tokenize.load_tokenizer(VOCAB)
        for i, t in enumerate(texts):
            want = " ".join(map(str, tok.encode(t, add_special_tokens=False).ids))
            self.assertEqual(out[i], want, f"text {i}: {t!r}")

    def test_invalid_utf8_dropped(self):
        # The Python tool decodes with errors="replace" and the normaliser deletes U+FFFD.
        raw = b"caf\xc3 ok \xff\xfe done\n"
        out = subprocess.run([CRAM, "tokenize", "--vocab", str(VOCAB)], input=raw, capture_output=True, check=True)
        tok = cram_tokenize.load_tokenizer(VOCAB)
        want = " ".join(map(str, tok.encode(raw.decode("utf-8", errors="replace"), add_special_tokens=False).ids))
        self.assertEqual(out.stdout.decode().strip(), want)


if __name__ == "__main__":
    unittest.main()
