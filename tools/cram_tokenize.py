#!/usr/bin/env python3
"""cram_tokenize.py - the tokenizer half of `cram data` (Hugging Face `tokenizers`).

What it does: reads a corpus (text files, directories, JSONL with a "text"
field, optionally .gz/.zst), normalises it exactly as the Cramming reference
does, trains a WordPiece vocabulary (or loads a tokenizer.json / vocab.txt),
writes tokenizer.json + vocab.txt, and streams every document's token ids to
stdout in the binary "token stream" format that runtime/prepare.c reads.

Why a separate Python tool: WordPiece training and fast tokenisation come from
the `tokenizers` library (Rust, the reference's own tokenizer); everything that
decides what the trainer sees (filtering, packing, ordering, splitting, the
shard bytes) is C in libcramrt, so training never needs Python. Normally run by
`cram data`; the `normalize`, `encode` and `train` subcommands are for people
and tests. Format and pipeline: docs/data.md.
"""
from __future__ import annotations

import argparse
import gzip
import io
import json
import os
import re
import struct
import subprocess
import sys
import time
from array import array
from pathlib import Path
from typing import BinaryIO, Iterable, Iterator, NoReturn, Sequence

# Special tokens of a trained tokenizer, at these fixed ids (docs/data.md).
SPECIAL_TOKENS: list[str] = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
# Names also accepted when loading someone else's tokenizer.
SPECIAL_ALIASES: dict[str, list[str]] = {
    "[PAD]": ["<pad>"],
    "[UNK]": ["<unk>"],
    "[CLS]": ["<cls>", "<s>"],
    "[SEP]": ["<sep>", "</s>"],
    "[MASK]": ["<mask>"],
}
NO_TOKEN = 0xFFFFFFFF
STREAM_MAGIC = b"CRAMTOKS"
STREAM_VERSION = 1
MAX_VOCAB = 65536  # shards store uint16 ids
BATCH_DOCS = 512
BATCH_CHARS = 4 << 20


def fail(msg: str, code: int = 1) -> NoReturn:
    """One-line error on stderr and exit: this is a CLI tool, not a library."""
    print(f"cram_tokenize: {msg}", file=sys.stderr)
    sys.exit(code)


try:
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
except ImportError:  # pragma: no cover - exercised only without the package
    fail("the Python package `tokenizers` is missing (pip install tokenizers)", 3)


# ---------------------------------------------------------------------------
# Normalisation and the tokenizer pipeline (reference: _get_sane_normalizers
# with force_english_keyboard=True, pre-tokenizer Whitespace, WordPiece "##").


def build_normalizer() -> normalizers.Normalizer:
    """`` and '' -> ", NFD, lowercase, strip accents, collapse runs of spaces, drop non-ASCII."""
    return normalizers.Sequence(
        [
            normalizers.Replace("``", '"'),
            normalizers.Replace("''", '"'),
            normalizers.NFD(),
            normalizers.Lowercase(),
            normalizers.StripAccents(),
            normalizers.Replace(Regex(" {2,}"), " "),
            normalizers.Replace(Regex(r"[^\x00-\x7F]+"), ""),
        ]
    )


def normalize(text: str) -> str:
    return build_normalizer().normalize_str(text)


def make_tokenizer(vocab: dict[str, int] | None) -> Tokenizer:
    """Our standard pipeline around a WordPiece model (untrained if vocab is None)."""
    if vocab is None:
        model = models.WordPiece(unk_token="[UNK]", continuing_subword_prefix="##", max_input_chars_per_word=100)
    else:
        unk = next((t for t in ["[UNK]"] + SPECIAL_ALIASES["[UNK]"] if t in vocab), "[UNK]")
        model = models.WordPiece(vocab, unk_token=unk, continuing_subword_prefix="##", max_input_chars_per_word=100)
    tok = Tokenizer(model)
    tok.normalizer = build_normalizer()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.decoder = decoders.WordPiece(prefix="##")
    return tok


def canonical_vocab(tokens: Iterable[str]) -> dict[str, int]:
    """Specials at 0..4, then the other tokens in a fixed order.

    `tokenizers` assigns the ids of continuation characters ("##e") in hash-map
    order, so ids differ from run to run although WordPiece segmentation only
    depends on the *set* of tokens. Re-numbering makes ids reproducible: words
    first, then "##" pieces, each by (length, text)."""
    rest = sorted((t for t in set(tokens) if t not in SPECIAL_TOKENS), key=lambda t: (t.startswith("##"), len(t), t))
    return {t: i for i, t in enumerate(SPECIAL_TOKENS + rest)}


def train_tokenizer(texts: Iterable[str], vocab_size: int, min_frequency: int) -> Tokenizer:
    trainer = trainers.WordPieceTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=SPECIAL_TOKENS,
        continuing_subword_prefix="##",
        show_progress=False,
    )
    tok = make_tokenizer(None)
    tok.train_from_iterator(texts, trainer=trainer)
    return make_tokenizer(canonical_vocab(tok.get_vocab(with_added_tokens=True)))


def read_vocab_txt(path: Path) -> dict[str, int]:
    vocab: dict[str, int] = {}
    with open(path, encoding="utf-8", newline="") as f:
        text = f.read()
    lines = text.split("\n")  # only "\n" ends a line: tokens may hold other control characters
    if lines and lines[-1] == "":
        lines.pop()
    for line in lines:
        tok = line[:-1] if line.endswith("\r") else line
        if tok in vocab:
            fail(f"{path}: duplicate token {tok!r} on line {len(vocab) + 1}")
        vocab[tok] = len(vocab)
    if not vocab:
        fail(f"{path}: empty vocabulary")
    return vocab


def load_tokenizer(path: Path) -> Tokenizer:
    """A tokenizer.json (used as is) or a BERT-style vocab.txt (our pipeline around it)."""
    if path.suffix == ".json":
        try:
            tok = Tokenizer.from_file(str(path))
        except Exception as e:  # tokenizers raises a plain Exception
            fail(f"{path}: cannot load tokenizer.json: {e}")
        if type(tok.model).__name__ != "WordPiece":
            fail(f"{path}: model is {type(tok.model).__name__}, cram data expects WordPiece")
        return tok
    return make_tokenizer(read_vocab_txt(path))


def special_ids(tok: Tokenizer) -> list[int]:
    """Ids of [PAD] [UNK] [CLS] [SEP] [MASK] (or their aliases), NO_TOKEN if absent."""
    vocab = tok.get_vocab(with_added_tokens=True)
    out = []
    for name in SPECIAL_TOKENS:
        ids = [vocab[n] for n in [name] + SPECIAL_ALIASES[name] if n in vocab]
        out.append(ids[0] if ids else NO_TOKEN)
    return out


def vocab_in_id_order(tok: Tokenizer) -> list[str]:
    vocab = tok.get_vocab(with_added_tokens=True)
    by_id = sorted(vocab.items(), key=lambda kv: kv[1])
    if [i for _, i in by_id] != list(range(len(by_id))):
        fail("tokenizer ids are not contiguous from 0")
    for t, _ in by_id:
        if "\n" in t or "\r" in t:
            fail(f"token {t!r} contains a line break; cannot write vocab.txt")
    return [t for t, _ in by_id]


def atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def save_tokenizer(tok: Tokenizer, out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write(out_dir / "tokenizer.json", tok.to_str(pretty=True).encode("utf-8"))
    atomic_write(out_dir / "vocab.txt", "".join(t + "\n" for t in vocab_in_id_order(tok)).encode("utf-8"))


# ---------------------------------------------------------------------------
# Reading documents.

COMPRESSED = (".gz", ".zst")
JSONL = (".jsonl", ".json", ".ndjson")


def skipped_in_dirs(name: str) -> bool:
    """Hidden files and README/LICENSE files are not corpus documents when a
    directory is walked (a file named explicitly is always read)."""
    stem = name.split(".", 1)[0].upper()
    return name.startswith(".") or stem in ("README", "LICENSE", "COPYING")


def list_files(inputs: Sequence[str]) -> list[Path]:
    """Files named, plus every file under named directories (see skipped_in_dirs), sorted."""
    files: list[Path] = []
    for name in inputs:
        p = Path(name)
        if p.is_dir():
            found, skipped = [], []
            for root, dirs, names in os.walk(p):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                found += [Path(root) / n for n in names if not skipped_in_dirs(n)]
                skipped += [Path(root) / n for n in names if skipped_in_dirs(n)]
            files += sorted(found)
            if skipped:  # said, not silent: a README may be what the user meant to train on
                shown = ", ".join(str(f) for f in sorted(skipped)[:5]) + (", ..." if len(skipped) > 5 else "")
                print(f"cram_tokenize: note: {p}: skipped {len(skipped)} README/LICENSE/COPYING or hidden "
                      f"file(s), not corpus documents: {shown} (name a file to read it)", file=sys.stderr)
        elif p.is_file():
            files.append(p)
        else:
            fail(f"{p}: no such file or directory")
    return files


def base_suffix(path: Path) -> str:
    """Suffix that decides the format, ignoring a compression suffix."""
    name = path.name[: -len(path.suffix)] if path.suffix in COMPRESSED else path.name
    return Path(name).suffix.lower()


class RawFile:
    """A file opened for decompressed reading, with the on-disk read position."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.raw = open(path, "rb")
        self.proc: subprocess.Popen[bytes] | None = None
        self.stream: BinaryIO
        if path.suffix == ".gz":
            self.stream = gzip.GzipFile(fileobj=self.raw)  # type: ignore[assignment]
        elif path.suffix == ".zst":
            try:
                import zstandard  # optional; the zstd CLI is the fallback

                self.stream = zstandard.ZstdDecompressor().stream_reader(self.raw)  # type: ignore[assignment]
            except ImportError:
                try:
                    # zstd reads our descriptor directly, so its offset still measures progress
                    self.proc = subprocess.Popen(["zstd", "-dc"], stdin=self.raw, stdout=subprocess.PIPE)
                except FileNotFoundError:
                    fail(f"{path}: .zst input needs the `zstd` program or the Python package `zstandard`")
                assert self.proc.stdout is not None
                self.stream = self.proc.stdout
        else:
            self.stream = self.raw

    def position(self) -> int:
        try:
            return os.lseek(self.raw.fileno(), 0, os.SEEK_CUR)
        except OSError:
            return 0

    def close(self) -> None:
        self.stream.close()
        if self.proc is not None:
            if self.proc.wait() != 0:
                fail(f"{self.path}: zstd failed to decompress (exit status {self.proc.returncode})")
        self.raw.close()


class DocumentReader:
    """Iterates documents of all input files; tracks input bytes for progress."""

    def __init__(self, files: list[Path], doc_split: str, max_docs: int | None) -> None:
        self.files = files
        self.doc_split = doc_split
        self.max_docs = max_docs
        self.total_bytes = sum(f.stat().st_size for f in files)
        self.done_bytes = 0  # bytes of fully read files
        self.current: RawFile | None = None

    def position(self) -> int:
        cur = self.current.position() if self.current is not None else 0
        return min(self.done_bytes + cur, self.total_bytes)

    def _docs_of(self, rf: RawFile) -> Iterator[str]:
        path = rf.path
        if base_suffix(path) in JSONL:
            # closing the wrapper closes rf.stream too; RawFile.close() tolerates that
            with io.TextIOWrapper(rf.stream, encoding="utf-8", errors="replace") as text_stream:  # type: ignore[arg-type]
                for lineno, line in enumerate(text_stream, 1):
                    if not line.strip():
                        continue
                    try:
                        obj = json.loads(line)
                    except json.JSONDecodeError as e:
                        fail(f"{path}:{lineno}: invalid JSON ({e.msg})")
                    if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
                        fail(f'{path}:{lineno}: JSONL record without a string "text" field')
                    yield obj["text"]
            return
        text = rf.stream.read().decode("utf-8", errors="replace")
        if self.doc_split == "file":
            yield text
        elif self.doc_split == "paragraph":
            yield from re.split(r"\n[ \t\r\f\v]*\n", text)
        else:
            yield from text.splitlines()

    def __iter__(self) -> Iterator[str]:
        count = 0
        self.done_bytes = 0
        for path in self.files:
            self.current = RawFile(path)
            try:
                for doc in self._docs_of(self.current):
                    if not doc.strip():
                        continue  # whitespace-only documents do not exist for us
                    yield doc
                    count += 1
                    if self.max_docs is not None and count >= self.max_docs:
                        return
            finally:
                self.current.close()
                self.current = None
            self.done_bytes += path.stat().st_size


# ---------------------------------------------------------------------------
# The token stream (read by runtime/prepare.c; grammar in prepare.h).


class StreamWriter:
    def __init__(self, out: BinaryIO) -> None:
        self.out = out
        self.out.write(STREAM_MAGIC + struct.pack("<I", STREAM_VERSION))
        self.last_progress = 0.0

    def stage(self, label: str) -> None:
        b = label.encode("utf-8")
        self.out.write(b"S" + struct.pack("<I", len(b)) + b)
        self.out.flush()

    def progress(self, done: int, total: int, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self.last_progress >= 0.05:
            self.last_progress = now
            self.out.write(b"P" + struct.pack("<QQ", done, total))
            self.out.flush()

    def vocab(self, size: int, specials: list[int], order_token: int) -> None:
        self.out.write(b"V" + struct.pack("<7I", size, *specials, order_token))
        self.out.flush()

    def doc(self, nchars: int, ids: list[int]) -> None:
        self.out.write(b"D" + struct.pack("<QI", nchars, len(ids)) + array("H", ids).tobytes())

    def end(self, docs: int, input_bytes: int) -> None:
        self.out.write(b"E" + struct.pack("<QQ", docs, input_bytes))
        self.out.flush()


def cmd_stream(args: argparse.Namespace) -> int:
    out_dir = Path(args.out_dir)
    files = list_files(args.inputs)
    if not files:
        fail("no input files found")
    reader = DocumentReader(files, args.doc_split, args.max_docs)
    stream = StreamWriter(sys.stdout.buffer)

    if args.tokenizer:
        stream.stage("loading tokenizer")
        tok = load_tokenizer(Path(args.tokenizer))
    else:
        stream.stage("training tokenizer")

        def texts() -> Iterator[str]:
            for doc in reader:
                stream.progress(reader.position(), reader.total_bytes)
                yield doc

        tok = train_tokenizer(texts(), args.vocab_size, args.min_frequency)
        stream.progress(reader.total_bytes, reader.total_bytes, force=True)
    size = tok.get_vocab_size(with_added_tokens=True)
    if size > MAX_VOCAB:
        fail(f"vocabulary of {size} tokens does not fit uint16 shards (max {MAX_VOCAB})")
    specials = special_ids(tok)
    if specials[3] == NO_TOKEN:
        fail("the tokenizer has no [SEP] (or <sep>, </s>) token, needed between documents")
    save_tokenizer(tok, out_dir)
    order_id = tok.token_to_id(args.order_token)
    stream.vocab(size, specials, NO_TOKEN if order_id is None else order_id)

    stream.stage("tokenizing")
    ndocs = 0
    batch: list[str] = []
    batch_chars = 0

    def flush() -> None:
        nonlocal batch, batch_chars
        for text, enc in zip(batch, tok.encode_batch(batch, add_special_tokens=False)):
            stream.doc(len(text), enc.ids)
        batch, batch_chars = [], 0

    for doc in reader:
        batch.append(doc)
        batch_chars += len(doc)
        ndocs += 1
        if len(batch) >= BATCH_DOCS or batch_chars >= BATCH_CHARS:
            flush()
            stream.progress(reader.position(), reader.total_bytes)
    flush()
    stream.progress(reader.total_bytes, reader.total_bytes, force=True)
    stream.end(ndocs, reader.total_bytes)
    return 0


# ---------------------------------------------------------------------------
# Human / test subcommands.


def cmd_normalize(args: argparse.Namespace) -> int:
    texts = args.text if args.text else [sys.stdin.read()]
    for t in texts:
        print(json.dumps(normalize(t)) if args.json else normalize(t))
    return 0


def cmd_encode(args: argparse.Namespace) -> int:
    tok = load_tokenizer(Path(args.tokenizer))
    texts = args.text if args.text else [sys.stdin.read()]
    for t in texts:
        enc = tok.encode(t, add_special_tokens=False)
        print(json.dumps({"tokens": enc.tokens, "ids": enc.ids}))
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    reader = DocumentReader(list_files(args.inputs), args.doc_split, args.max_docs)
    tok = train_tokenizer(iter(reader), args.vocab_size, args.min_frequency)
    save_tokenizer(tok, Path(args.out_dir))
    print(f"{args.out_dir}: vocab {tok.get_vocab_size(with_added_tokens=True)} (tokenizer.json, vocab.txt)")
    return 0


def vocab_size_arg(s: str) -> int:
    v = int(s)
    if not 16 <= v <= MAX_VOCAB:
        raise argparse.ArgumentTypeError(f"vocab size must be 16..{MAX_VOCAB}")
    return v


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="cram_tokenize.py", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)

    def corpus_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("inputs", nargs="+", help="files or directories")
        p.add_argument("--out-dir", required=True)
        p.add_argument("--vocab-size", type=vocab_size_arg, default=32768)
        p.add_argument("--min-frequency", type=int, default=0)
        p.add_argument("--doc-split", choices=["file", "paragraph", "line"], default="file")
        p.add_argument("--max-docs", type=int, default=None)

    p = sub.add_parser("stream", help="train/load, save the tokenizer, stream token ids (used by cram data)")
    corpus_args(p)
    p.add_argument("--tokenizer", help="existing tokenizer.json or vocab.txt (no training)")
    p.add_argument("--order-token", default=".")
    p.set_defaults(fn=cmd_stream)

    p = sub.add_parser("train", help="train a tokenizer and save tokenizer.json + vocab.txt")
    corpus_args(p)
    p.set_defaults(fn=cmd_train)

    p = sub.add_parser("normalize", help="print the normalised form of each TEXT (or stdin)")
    p.add_argument("text", nargs="*")
    p.add_argument("--json", action="store_true", help="print JSON strings (shows control characters)")
    p.set_defaults(fn=cmd_normalize)

    p = sub.add_parser("encode", help="tokenise each TEXT (or stdin) with a tokenizer; JSON lines")
    p.add_argument("--tokenizer", required=True)
    p.add_argument("text", nargs="*")
    p.set_defaults(fn=cmd_encode)

    args = ap.parse_args(argv)
    try:
        return int(args.fn(args))
    except BrokenPipeError:
        # cram data stopped reading (it reports why); do not add a traceback
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
