"""test_cram_data.py - end-to-end tests of `cram data` and `cram shards` (the CLI).

Shards are read back with an independent Python reader (struct + zlib.crc32)
and compared with an independent computation of what they must contain:
packing invariants (every sequence exactly seq_len, one [SEP] after each
document, only the final remainder lost), the ratio filter threshold, dedup,
the held-out split, curriculum and shuffle order, special-token ids, the
tokenizer hash, a golden hash of the bytes produced from a committed input,
clear errors for corrupted/truncated shards, CLI usage errors, and the
embedded default preparation (corpus/sample, vocab 8192) in well under a minute.

The cram binary comes from $CRAM_BIN (set by ctest), else build-data/ or build/.
Set CRAM_UPDATE_GOLDEN=1 to rewrite tests/data/golden/fixture.sha256.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import unittest
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
FIXTURES = HERE / "fixtures"
CORPUS = FIXTURES / "corpus"
VOCAB = FIXTURES / "vocab-2000.txt"
GOLDEN = HERE / "golden" / "fixture.sha256"
sys.path.insert(0, str(ROOT / "tools"))

import cram_tokenize as ct  # noqa: E402


def cram_bin() -> str:
    env = os.environ.get("CRAM_BIN")
    if env:
        return env
    for b in ("build-data", "build"):
        p = ROOT / b / "runtime" / "cram"
        if p.exists():
            return str(p)
    raise unittest.SkipTest("cram binary not found (set CRAM_BIN)")


HEADER = struct.Struct("<8s6I2Q2IQ5I5IQ16s")
assert HEADER.size == 128


class Shard:
    """Independent reader of the shard format of docs/data.md."""

    def __init__(self, path: Path) -> None:
        data = path.read_bytes()
        f = HEADER.unpack_from(data)
        (self.magic, self.version, self.header_size, self.vocab, self.dtype, self.seq_len, self.flags,
         self.seq_count, self.payload_bytes, self.payload_crc, self.header_crc, self.tokenizer_hash,
         pad, unk, cls, sep, mask, self.shard_index, self.shard_count, self.split, self.order,
         self.order_token, self.seed, reserved) = f
        self.specials = [pad, unk, cls, sep, mask]
        assert self.magic == b"CRAMSHRD"
        assert reserved == bytes(16)
        zeroed = bytearray(data[:128])
        zeroed[52:56] = bytes(4)
        assert zlib.crc32(bytes(zeroed)) == self.header_crc, "header crc"
        payload = data[128:]
        assert len(payload) == self.payload_bytes == self.seq_count * self.seq_len * 2
        assert zlib.crc32(payload) == self.payload_crc, "payload crc"
        n = self.seq_count * self.seq_len
        self.tokens = list(struct.unpack(f"<{n}H", payload))
        self.seqs = [self.tokens[i: i + self.seq_len] for i in range(0, n, self.seq_len)]


def fnv1a64(data: bytes) -> int:
    h = 0xCBF29CE484222325
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def run_cram(*args: str, check: bool = True, env: dict | None = None) -> subprocess.CompletedProcess:
    r = subprocess.run([cram_bin(), *args], capture_output=True, text=True, cwd=ROOT,
                       env={**os.environ, **(env or {})})
    if check and r.returncode != 0:
        raise AssertionError(f"cram {' '.join(args)} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
    return r


def fixture_docs() -> list[str]:
    return list(ct.DocumentReader(ct.list_files([str(CORPUS)]), "file", None))


class Cli(unittest.TestCase):
    def test_help(self) -> None:
        r = run_cram("--help")
        self.assertIn("data", r.stdout)
        self.assertIn("shards", r.stdout)
        r = run_cram("data", "--help")
        for opt in ("--vocab-size", "--tokenizer", "--seq-len", "--filter-ratio", "--dedup", "--order",
                    "--heldout", "--tokenizer-tool", "[PAD]=0"):
            self.assertIn(opt, r.stdout)
        self.assertIn("--expect-vocab", run_cram("shards", "--help").stdout)
        self.assertEqual(run_cram("help", "data").returncode, 0)

    def test_usage_errors(self) -> None:
        cases = [
            ((), "usage"),
            (("bogus",), "unknown command 'bogus'"),
            (("data", str(CORPUS)), "--out DIR is required"),
            (("data", "--out", "/tmp/x"), "no input"),
            (("data", str(CORPUS), "--out", "/tmp/x", "--order", "weird"), "--order: expected one of curriculum, shuffle, input"),
            (("data", str(CORPUS), "--out", "/tmp/x", "--vocab-size", "70000"), "--vocab-size"),
            (("data", str(CORPUS), "--out", "/tmp/x", "--seq-len"), "needs a value"),
            (("data", str(CORPUS), "--out", "/tmp/x", "--frobnicate"), "unknown option"),
            (("data", "/nonexistent/corpus", "--out", "/tmp/x"), "/nonexistent/corpus"),
            (("shards",), "no shard file"),
        ]
        for args, needle in cases:
            r = run_cram(*args, check=False)
            self.assertEqual(r.returncode, 2, (args, r.stderr))
            self.assertIn(needle, r.stderr, args)
            self.assertEqual(len(r.stderr.strip().splitlines()) if args else 1, 1, r.stderr)

    def test_tool_errors(self) -> None:
        with tempfile.TemporaryDirectory() as d:
            r = run_cram("data", str(CORPUS), "--out", d, "--tokenizer-tool", "/nonexistent/tool.py", check=False)
            self.assertEqual(r.returncode, 1)
            self.assertIn("not found", r.stderr)
            r = run_cram("data", str(CORPUS), "--out", d, check=False, env={"CRAM_PYTHON": "/nonexistent/python"})
            self.assertEqual(r.returncode, 1)
            self.assertIn("cannot run /nonexistent/python", r.stderr)
            bad = Path(d) / "bad.jsonl"
            bad.write_text('{"text": "fine"}\nnot json\n')
            r = run_cram("data", str(bad), "--out", d, "--tokenizer", str(VOCAB), check=False)
            self.assertEqual(r.returncode, 1)
            self.assertIn("bad.jsonl:2: invalid JSON", r.stderr)
            self.assertIn("tokenizer tool", r.stderr)
            self.assertFalse(list(Path(d).glob("*.shard")))
            self.assertFalse(list(Path(d).glob(".*.tmp")))


class Prepared(unittest.TestCase):
    """Runs cram data on the fixture corpus with the committed vocab-2000."""

    L = 32

    def setUp(self) -> None:
        self.tmp = tempfile.mkdtemp(prefix="cram-data-test.")
        self.tok = ct.load_tokenizer(VOCAB)
        self.docs = fixture_docs()
        self.ids = [self.tok.encode(d, add_special_tokens=False).ids for d in self.docs]

    def tearDown(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)

    def prepare(self, *extra: str, name: str = "out") -> tuple[Path, dict]:
        out = Path(self.tmp) / name
        run_cram("data", str(CORPUS), "--tokenizer", str(VOCAB), "--seq-len", str(self.L), "--out", str(out),
                 "--quiet", *extra)
        return out, json.loads((out / "dataset.json").read_text())

    def test_packing_invariants(self) -> None:
        out, meta = self.prepare("--order", "input", "--heldout", "0", "--no-filter")
        s = Shard(out / "train-00000.shard")
        stream = [t for ids in self.ids for t in ids + [3]]
        n = len(stream) // self.L
        self.assertEqual(s.seq_count, n)
        self.assertTrue(all(len(q) == self.L for q in s.seqs))
        self.assertEqual(s.tokens, stream[: n * self.L])  # nothing reordered, nothing lost but the tail
        self.assertEqual(meta["tokens"]["dropped_remainder"], len(stream) - n * self.L)
        self.assertLess(meta["tokens"]["dropped_remainder"], self.L)
        self.assertEqual(meta["tokens"]["kept_with_sep"], len(stream))
        self.assertEqual(s.tokens.count(3), stream[: n * self.L].count(3))
        self.assertNotIn(0, s.tokens)  # no padding anywhere
        self.assertEqual(meta["documents"]["read"], len(self.docs))
        self.assertEqual(Shard(out / "heldout-00000.shard").seq_count, 0)

    def test_header_fields(self) -> None:
        out, meta = self.prepare()
        s = Shard(out / "train-00000.shard")
        self.assertEqual((s.version, s.header_size, s.dtype, s.flags), (1, 128, 1, 0))
        self.assertEqual(s.vocab, 2000)
        self.assertEqual(s.seq_len, self.L)
        self.assertEqual(s.specials, [0, 1, 2, 3, 4])
        self.assertEqual(s.tokenizer_hash, fnv1a64(VOCAB.read_bytes()))
        self.assertEqual(meta["tokenizer_hash"], f"{s.tokenizer_hash:016x}")
        self.assertEqual((s.split, s.shard_index, s.shard_count), (0, 0, 1))
        self.assertEqual(s.order, 1)
        self.assertEqual(s.order_token, self.tok.token_to_id("."))
        self.assertEqual((out / "vocab.txt").read_bytes(), VOCAB.read_bytes())
        self.assertTrue((out / "tokenizer.json").exists())

    def test_filter_threshold(self) -> None:
        ratios = [len(ids) / len(d) for ids, d in zip(self.ids, self.docs)]
        for t in (0.3, 0.25, 0.2):
            want = sum(r >= t for r in ratios)
            _, meta = self.prepare("--filter-ratio", str(t), "--order", "input", name=f"f{t}")
            self.assertEqual(meta["documents"]["dropped_filter"], want, t)
        self.assertGreaterEqual(sum(r >= 0.3 for r in ratios), 1)  # the gibberish document
        self.assertLess(sum(r >= 0.3 for r in ratios), len(ratios))
        _, meta = self.prepare("--no-filter", name="nf")
        self.assertEqual(meta["documents"]["dropped_filter"], 0)
        # the kept stream is exactly the documents under the threshold
        out, meta = self.prepare("--order", "input", "--heldout", "0", name="f-exact")
        stream = [t for ids, r in zip(self.ids, ratios) if r < 0.3 for t in ids + [3]]
        self.assertEqual(Shard(out / "train-00000.shard").tokens, stream[: len(stream) // self.L * self.L])

    def test_dedup(self) -> None:
        _, meta = self.prepare("--no-filter", name="nodedup")
        self.assertEqual(meta["documents"]["dropped_duplicate"], 0)
        _, meta = self.prepare("--no-filter", "--dedup", name="dedup")
        self.assertEqual(meta["documents"]["dropped_duplicate"], 1)  # docs.jsonl repeats one document

    def test_heldout(self) -> None:
        out, meta = self.prepare("--heldout", "0.25", "--no-filter", "--order", "input")
        kept = len(self.docs)
        self.assertEqual(meta["documents"]["heldout"], kept // 4)
        h = Shard(out / "heldout-00000.shard")
        self.assertEqual(h.split, 1)
        self.assertEqual(h.order, 0)
        held = [t for i, ids in enumerate(self.ids) if (i + 1) // 4 > i // 4 for t in ids + [3]]
        self.assertEqual(h.tokens, held[: len(held) // self.L * self.L])

    def test_curriculum_order(self) -> None:
        out, _ = self.prepare("--no-filter", "--heldout", "0")
        dot = self.tok.token_to_id(".")
        s = Shard(out / "train-00000.shard")
        counts = [q.count(dot) for q in s.seqs]
        self.assertEqual(counts, sorted(counts, reverse=True))
        ref, _ = self.prepare("--no-filter", "--heldout", "0", "--order", "input", name="ref")
        r = Shard(ref / "train-00000.shard")
        # stable: equal counts keep input order
        want = sorted(r.seqs, key=lambda q: -q.count(dot))
        self.assertEqual(s.seqs, want)
        # another order token
        out2, _ = self.prepare("--no-filter", "--heldout", "0", "--order-token", ",", name="comma")
        comma = self.tok.token_to_id(",")
        c = [q.count(comma) for q in Shard(out2 / "train-00000.shard").seqs]
        self.assertEqual(c, sorted(c, reverse=True))

    def test_shuffle(self) -> None:
        a, _ = self.prepare("--order", "shuffle", "--seed", "5", name="a")
        b, _ = self.prepare("--order", "shuffle", "--seed", "5", name="b")
        c, _ = self.prepare("--order", "shuffle", "--seed", "6", name="c")
        i, _ = self.prepare("--order", "input", name="i")
        sa = Shard(a / "train-00000.shard")
        self.assertEqual((a / "train-00000.shard").read_bytes(), (b / "train-00000.shard").read_bytes())
        self.assertNotEqual(sa.tokens, Shard(c / "train-00000.shard").tokens)
        self.assertEqual(sorted(sa.seqs), sorted(Shard(i / "train-00000.shard").seqs))
        self.assertEqual((sa.order, sa.seed), (2, 5))

    def test_multiple_shards(self) -> None:
        out, meta = self.prepare("--shard-size", "100", "--order", "input")
        n = meta["train"]["sequences"]
        names = meta["train"]["shards"]
        self.assertEqual(len(names), (n + 99) // 100)
        self.assertGreater(len(names), 1)
        total = []
        for k, name in enumerate(names):
            s = Shard(out / name)
            self.assertEqual((s.shard_index, s.shard_count), (k, len(names)))
            total += s.seqs
        self.assertEqual(len(total), n)
        r = run_cram("shards", str(out))
        self.assertIn(f"train: {len(names)} shards, {n} sequences", r.stdout)

    def test_golden(self) -> None:
        """A fixed input and tokenizer give the same bytes on every run and host."""
        digests = []
        for run in range(2):
            out, _ = self.prepare("--heldout", "0.2", name=f"golden{run}")
            h = hashlib.sha256()
            for name in ("train-00000.shard", "heldout-00000.shard", "dataset.json"):
                h.update((out / name).read_bytes())
            digests.append(h.hexdigest())
        self.assertEqual(digests[0], digests[1])
        if os.environ.get("CRAM_UPDATE_GOLDEN"):
            GOLDEN.parent.mkdir(exist_ok=True)
            GOLDEN.write_text(digests[0] + "\n")
        self.assertEqual(digests[0], GOLDEN.read_text().strip(),
                         "shard bytes changed: if intended, rerun with CRAM_UPDATE_GOLDEN=1 and explain in the commit")


class Corruption(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.tmp = tempfile.mkdtemp(prefix="cram-corrupt-test.")
        cls.out = Path(cls.tmp) / "out"
        run_cram("data", str(CORPUS), "--tokenizer", str(VOCAB), "--seq-len", "32", "--out", str(cls.out), "--quiet")
        cls.good = (cls.out / "train-00000.shard").read_bytes()

    @classmethod
    def tearDownClass(cls) -> None:
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def check_bad(self, name: str, data: bytes, needle: str, *extra: str) -> None:
        p = Path(self.tmp) / name
        p.write_bytes(data)
        r = run_cram("shards", str(p), *extra, check=False)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        line = r.stderr.strip()
        self.assertEqual(len(line.splitlines()), 1, line)
        self.assertIn(str(p), line)  # names the file
        self.assertIn(needle, line)

    def test_good(self) -> None:
        r = run_cram("shards", str(self.out))
        self.assertIn("train-00000.shard: ok", r.stdout)
        self.assertIn("heldout-00000.shard: ok", r.stdout)

    def test_bad_files(self) -> None:
        g = self.good
        flip = bytearray(g)
        flip[128 + 100] ^= 0x01
        self.check_bad("flip.shard", bytes(flip), "checksum mismatch")
        self.check_bad("trunc.shard", g[:-1], "truncated")
        self.check_bad("trunc-header.shard", g[:50], "truncated")
        self.check_bad("empty.shard", b"", "truncated")
        self.check_bad("magic.shard", b"NOTASHRD" + g[8:], "bad magic")
        v = bytearray(g)
        v[8] = 7
        self.check_bad("version.shard", bytes(v), "unsupported shard format version 7")
        h = bytearray(g)
        h[16] ^= 0x40  # vocab size, header CRC no longer matches
        self.check_bad("header.shard", bytes(h), "header checksum mismatch")
        self.check_bad("trailing.shard", g + b"\0\0", "trailing")
        self.check_bad("vocab.shard", g, "vocab size 2000 but 2001 expected", "--expect-vocab", "2001")
        self.check_bad("seqlen.shard", g, "sequence length 32 but 128 expected", "--expect-seq-len", "128")

    def test_missing_shard_in_set(self) -> None:
        d = Path(self.tmp) / "set"
        run_cram("data", str(CORPUS), "--tokenizer", str(VOCAB), "--seq-len", "8", "--shard-size", "300",
                 "--out", str(d), "--quiet")
        (d / "train-00001.shard").unlink()
        r = run_cram("shards", str(d), check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("train-00001.shard is missing", r.stderr)


class Training(unittest.TestCase):
    def test_skipped_files_are_reported(self) -> None:
        """README/LICENSE files under a corpus directory are skipped, and cram data says so."""
        with tempfile.TemporaryDirectory() as src, tempfile.TemporaryDirectory() as d:
            for f in sorted(CORPUS.iterdir())[:3]:
                if f.is_file():
                    Path(src, f.name).write_bytes(f.read_bytes())
            Path(src, "README.md").write_text("about this corpus\n")
            r = run_cram("data", src, "--vocab-size", "300", "--seq-len", "32", "--no-filter", "--out", d, "--quiet")
            self.assertIn("skipped 1 README/LICENSE/COPYING or hidden file(s)", r.stderr)
            self.assertIn("README.md", r.stderr)

    def test_trained_tokenizer(self) -> None:
        with tempfile.TemporaryDirectory() as d:
            run_cram("data", str(CORPUS), "--vocab-size", "600", "--seq-len", "64", "--no-filter", "--out", d, "--quiet")
            vocab = Path(d, "vocab.txt").read_bytes()
            self.assertEqual(vocab.count(b"\n"), 600)
            self.assertTrue(vocab.startswith(b"[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n"))
            s = Shard(Path(d) / "train-00000.shard")
            self.assertEqual((s.vocab, s.seq_len, s.specials), (600, 64, [0, 1, 2, 3, 4]))
            self.assertEqual(s.tokenizer_hash, fnv1a64(vocab))
            self.assertLess(max(s.tokens), 600)

    def test_embedded_default(self) -> None:
        """The documented default preparation for models/tiny.cram: vocab 8192, seq 128."""
        with tempfile.TemporaryDirectory() as d:
            t0 = time.monotonic()
            r = run_cram("data", "corpus/sample", "--vocab-size", "8192", "--out", d)
            elapsed = time.monotonic() - t0
            self.assertLess(elapsed, 60)
            meta = json.loads(Path(d, "dataset.json").read_text())
            self.assertEqual((meta["vocab_size"], meta["seq_len"]), (8192, 128))
            self.assertEqual(meta["documents"]["read"], 112)
            self.assertGreater(meta["train"]["sequences"], 6000)
            self.assertGreater(meta["heldout"]["sequences"], 0)
            self.assertIn("sequences", r.stdout)
            run_cram("shards", d, "--expect-vocab", "8192", "--expect-seq-len", "128")


if __name__ == "__main__":
    unittest.main()
