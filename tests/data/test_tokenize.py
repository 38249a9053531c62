"""test_tokenize.py - unit tests of tools/cram_tokenize.py (the tokenizer half of `cram data`).

Covers the reference normalisation (quotes, accents, case, spaces, non-ASCII),
WordPiece segmentation with a hand-written vocabulary (known splits, [UNK],
round trip through the decoder), training (special tokens at ids 0..4,
reproducible ids), loading vocab.txt vs tokenizer.json, and corpus reading
(directories, README skipping, JSONL, .gz, .zst, document splitting).
Run by ctest (tests/data/CMakeLists.txt) with plain unittest.
"""
from __future__ import annotations

import gzip
import io
import json
import struct
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
sys.path.insert(0, str(ROOT / "tools"))

import cram_tokenize as ct  # noqa: E402


class Normalisation(unittest.TestCase):
    def n(self, s: str) -> str:
        return ct.normalize(s)

    def test_lowercase_and_accents(self) -> None:
        self.assertEqual(self.n("Crème Brûlée"), "creme brulee")
        self.assertEqual(self.n("ÉCOLE Naïve façade"), "ecole naive facade")
        self.assertEqual(self.n("Ångström São Zürich"), "angstrom sao zurich")

    def test_quotes(self) -> None:
        self.assertEqual(self.n("``quoted''"), '"quoted"')
        self.assertEqual(self.n("it's 'single'"), "it's 'single'")
        self.assertEqual(self.n("a ``` b"), 'a "` b')

    def test_spaces(self) -> None:
        self.assertEqual(self.n("a    b  c d"), "a b c d")
        self.assertEqual(self.n("tab\t\tstays"), "tab\t\tstays")  # only spaces are collapsed
        self.assertEqual(self.n("line\n\nbreaks"), "line\n\nbreaks")

    def test_non_ascii_deleted(self) -> None:
        self.assertEqual(self.n("日本語 text"), " text")
        self.assertEqual(self.n("price 5€ 🙂!"), "price 5 !")
        self.assertEqual(self.n("em—dash"), "emdash")
        self.assertEqual(self.n("ÆØ"), "")  # no ASCII decomposition: deleted
        # collapse runs before deletion, as the reference: deletion can leave two spaces
        self.assertEqual(self.n("a € b"), "a  b")

    def test_ascii_control_kept(self) -> None:
        self.assertEqual(self.n("a\x02b"), "a\x02b")

    def test_cli(self) -> None:
        out = subprocess.run(
            [sys.executable, str(ROOT / "tools/cram_tokenize.py"), "normalize", "--json", "Héllo  ``World''"],
            capture_output=True, text=True, check=True,
        ).stdout
        self.assertEqual(json.loads(out), 'hello "world"')


class WordPiece(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.tok = ct.load_tokenizer(FIXTURES / "vocab-known.txt")

    def enc(self, s: str) -> list[str]:
        return self.tok.encode(s, add_special_tokens=False).tokens

    def test_known_splits(self) -> None:
        self.assertEqual(self.enc("unaffable"), ["un", "##aff", "##able"])
        self.assertEqual(self.enc("The UNAFFABLE!"), ["the", "un", "##aff", "##able", "!"])
        self.assertEqual(self.enc("running wanted"), ["runn", "##ing", "want", "##ed"])
        self.assertEqual(self.enc("abba"), ["a", "##b", "##b", "##a"])

    def test_punctuation_pretokenisation(self) -> None:
        # Whitespace() splits on \w+|[^\w\s]+: punctuation is cut from words...
        self.assertEqual(self.enc('"a" b.'), ['"', "a", '"', "b", "."])
        # ...but a run of punctuation is one pre-token, split by WordPiece like a word
        # (here ',"' has no '##"' piece, so the run becomes [UNK], as in the reference)
        self.assertEqual(self.enc('"a," b.'), ['"', "a", "[UNK]", "b", "."])

    def test_unknown_word_is_one_unk(self) -> None:
        self.assertEqual(self.enc("the xyz a"), ["the", "[UNK]", "a"])

    def test_ids_follow_vocab_lines(self) -> None:
        ids = self.tok.encode("the unaffable", add_special_tokens=False).ids
        lines = (FIXTURES / "vocab-known.txt").read_text().split("\n")
        self.assertEqual([lines[i] for i in ids], ["the", "un", "##aff", "##able"])

    def test_round_trip(self) -> None:
        # words made of known pieces decode back to the normalised text
        text = "The Unaffable wanted a BAB."
        enc = self.tok.encode(text, add_special_tokens=False)
        self.assertNotIn(1, enc.ids)
        self.assertEqual(self.tok.decode(enc.ids), ct.normalize(text))

    def test_special_ids(self) -> None:
        self.assertEqual(ct.special_ids(self.tok), [0, 1, 2, 3, 4])


class Training(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        files = ct.list_files([str(FIXTURES / "corpus")])
        cls.docs = list(ct.DocumentReader(files, "file", None))
        cls.tok = ct.train_tokenizer(iter(cls.docs), 600, 0)

    def test_size_and_specials(self) -> None:
        self.assertEqual(self.tok.get_vocab_size(), 600)
        vocab = ct.vocab_in_id_order(self.tok)
        self.assertEqual(vocab[:5], ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"])
        self.assertEqual(ct.special_ids(self.tok), [0, 1, 2, 3, 4])

    def test_vocab_is_ascii_and_lowercase(self) -> None:
        for t in ct.vocab_in_id_order(self.tok)[5:]:
            self.assertTrue(t.isascii(), t)
            self.assertEqual(t, t.lower())

    def test_no_unk_on_training_text(self) -> None:
        for d in self.docs:
            self.assertNotIn(1, self.tok.encode(d, add_special_tokens=False).ids)

    def test_canonical_numbering(self) -> None:
        # tokenizers numbers "##x" pieces in hash-map order; canonical_vocab makes
        # ids a function of the token set alone.
        toks = ["##b", "b", "[SEP]", "ab", "a", "[PAD]", "##a", "[MASK]", "[UNK]", "[CLS]", "abc"]
        want = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "b", "ab", "abc", "##a", "##b"]
        self.assertEqual(list(ct.canonical_vocab(toks)), want)
        self.assertEqual(ct.canonical_vocab(reversed(toks)), ct.canonical_vocab(toks))
        self.assertEqual(list(ct.canonical_vocab(toks).values()), list(range(len(want))))

    def test_training_is_stable(self) -> None:
        # Not bit-reproducible in general (ties between equally frequent merges are
        # broken in hash-map order inside tokenizers), but nearly the same vocabulary.
        again = ct.train_tokenizer(iter(self.docs), 600, 0)
        a, b = set(ct.vocab_in_id_order(self.tok)), set(ct.vocab_in_id_order(again))
        self.assertEqual(len(a), len(b))
        self.assertGreater(len(a & b), 0.9 * len(a))
        self.assertEqual(ct.special_ids(again), [0, 1, 2, 3, 4])

    def test_save_and_reload(self) -> None:
        with tempfile.TemporaryDirectory() as d:
            ct.save_tokenizer(self.tok, Path(d))
            from_txt = ct.load_tokenizer(Path(d) / "vocab.txt")
            from_json = ct.load_tokenizer(Path(d) / "tokenizer.json")
            lines = (Path(d) / "vocab.txt").read_text(encoding="utf-8").split("\n")
            self.assertEqual(len(lines), 601)  # 600 tokens + final newline
            for doc in self.docs[:4]:
                want = self.tok.encode(doc, add_special_tokens=False).ids
                self.assertEqual(from_txt.encode(doc, add_special_tokens=False).ids, want)
                self.assertEqual(from_json.encode(doc, add_special_tokens=False).ids, want)


class Reading(unittest.TestCase):
    def test_directory_walk(self) -> None:
        with tempfile.TemporaryDirectory() as d:
            p = Path(d)
            (p / "b").mkdir()
            (p / "a.txt").write_text("one")
            (p / "b" / "c.txt").write_text("two")
            (p / ".hidden").write_text("no")
            (p / "README.md").write_text("no")
            (p / "LICENSE").write_text("no")
            files = ct.list_files([d])
            self.assertEqual([f.relative_to(p).as_posix() for f in files], ["a.txt", "b/c.txt"])
            # named explicitly, a README is read
            self.assertEqual(len(ct.list_files([str(p / "README.md")])), 1)

    def test_formats(self) -> None:
        files = ct.list_files([str(FIXTURES / "corpus")])
        docs = list(ct.DocumentReader(files, "file", None))
        # accents.txt, docs.jsonl (5), more.jsonl.gz (2), paragraphs.txt, sotu x2, zst (1)
        self.assertEqual(len(docs), 1 + 5 + 2 + 1 + 2 + 1)
        self.assertIn("Gzip compressed JSONL works. It holds two documents.", docs)
        self.assertIn("Zstandard compressed JSONL works too. Periods help the curriculum.", docs)

    def test_doc_split(self) -> None:
        f = [FIXTURES / "corpus" / "paragraphs.txt"]
        self.assertEqual(len(list(ct.DocumentReader(f, "file", None))), 1)
        self.assertEqual(len(list(ct.DocumentReader(f, "paragraph", None))), 2)
        self.assertEqual(len(list(ct.DocumentReader(f, "line", None))), 3)  # blank line skipped

    def test_max_docs_and_progress(self) -> None:
        files = ct.list_files([str(FIXTURES / "corpus")])
        r = ct.DocumentReader(files, "file", 3)
        self.assertEqual(len(list(r)), 3)
        r = ct.DocumentReader(files, "file", None)
        list(r)
        self.assertEqual(r.done_bytes, r.total_bytes)

    def test_bad_jsonl_is_a_clear_error(self) -> None:
        with tempfile.TemporaryDirectory() as d:
            p = Path(d) / "bad.jsonl"
            p.write_text('{"text": "ok"}\n{"nope": 1}\n')
            r = subprocess.run(
                [sys.executable, str(ROOT / "tools/cram_tokenize.py"), "train", str(p), "--out-dir", d],
                capture_output=True, text=True,
            )
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("bad.jsonl:2:", r.stderr)
            self.assertIn('"text"', r.stderr)


class Stream(unittest.TestCase):
    def test_stream_records(self) -> None:
        with tempfile.TemporaryDirectory() as d:
            out = subprocess.run(
                [sys.executable, str(ROOT / "tools/cram_tokenize.py"), "stream", "--out-dir", d,
                 "--tokenizer", str(FIXTURES / "vocab-known.txt"), str(FIXTURES / "corpus" / "docs.jsonl")],
                capture_output=True, check=True,
            ).stdout
            b = io.BytesIO(out)
            self.assertEqual(b.read(8), b"CRAMTOKS")
            self.assertEqual(struct.unpack("<I", b.read(4))[0], 1)
            tags = []
            docs = []
            while True:
                t = b.read(1)
                if not t:
                    break
                tags.append(t)
                if t == b"S":
                    (n,) = struct.unpack("<I", b.read(4))
                    b.read(n)
                elif t == b"P":
                    b.read(16)
                elif t == b"V":
                    v = struct.unpack("<7I", b.read(28))
                    self.assertEqual(v[:6], (23, 0, 1, 2, 3, 4))
                    self.assertEqual(v[6], 9)  # "." is line 10 of vocab-known.txt
                elif t == b"D":
                    nchars, ntok = struct.unpack("<QI", b.read(12))
                    docs.append((nchars, struct.unpack(f"<{ntok}H", b.read(2 * ntok))))
                elif t == b"E":
                    ndocs, _ = struct.unpack("<QQ", b.read(16))
                    self.assertEqual(ndocs, 5)
                else:
                    self.fail(f"unknown tag {t!r}")
            self.assertEqual(tags[-1], b"E")
            self.assertEqual(len(docs), 5)
            first = json.loads((FIXTURES / "corpus" / "docs.jsonl").read_text().split("\n")[0])["text"]
            self.assertEqual(docs[0][0], len(first))
            self.assertEqual(Path(d, "vocab.txt").read_text(), (FIXTURES / "vocab-known.txt").read_text())


if __name__ == "__main__":
    unittest.main()
