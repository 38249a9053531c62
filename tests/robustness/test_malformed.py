#!/usr/bin/env python3
"""test_malformed.py CRAM FIXTURE_SO MKSHARDS CC - malformed inputs to every
`cram` command that reads them, built here from good ones:

  shards       truncations, payload bit flips, every header field (with the
               header CRC recomputed, so the field's own check must catch it),
               a wrong header CRC, empty train sets, huge counts;
  checkpoints  truncations, bit flips, every metadata value out of range or of
               the wrong type, invalid UTF-8, missing and misshapen tensors,
               data offsets past the end, another run's data on --resume;
  artifacts    truncations, another machine, another step ABI version, a
               parameter of 2^62 elements, not ELF at all.

Each must give exit status 1, exactly one line on stderr naming the file and
the problem, and leave every existing file as it was (the run directory, the
checkpoint, an --out file). The step ABI version is read from cram_step.h,
never written here. Prints "N passed, M failed"; exit 1 on any failure."""
import hashlib
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib

CRAM, FX, MK, CC = sys.argv[1:5]
SRC = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
T = tempfile.mkdtemp(prefix="test_malformed.")
npass = nfail = 0


def fail(what):
    global nfail
    nfail += 1
    print("FAIL:", what, file=sys.stderr)


def tree_digest(path):
    """Names and contents of every file under path (what must not change)."""
    h = hashlib.sha256()
    if os.path.isfile(path):
        h.update(open(path, "rb").read())
        return h.hexdigest()
    for root, dirs, files in sorted(os.walk(path)):
        dirs.sort()
        for f in sorted(files):
            p = os.path.join(root, f)
            h.update(p.encode() + b"\0" + open(p, "rb").read())
    return h.hexdigest()


def refused(label, args, names, needle, untouched=()):
    """cram ARGS exits 1 with one stderr line containing `names` and `needle`;
    the paths in `untouched` are byte-identical afterwards."""
    global npass
    before = {p: tree_digest(p) if os.path.exists(p) else None for p in untouched}
    r = subprocess.run([CRAM] + args, capture_output=True, text=True, errors="replace", timeout=60)
    lines = r.stderr.splitlines()
    problems = []
    if r.returncode != 1:
        problems.append(f"exit {r.returncode}")
    if len(lines) != 1:
        problems.append(f"{len(lines)} stderr lines")
    msg = lines[0] if lines else ""
    if names not in msg:
        problems.append(f"does not name {names}")
    if needle and not re.search(needle, msg):
        problems.append(f"does not say /{needle}/")
    for p, d in before.items():
        now = tree_digest(p) if os.path.exists(p) else None
        if now != d:
            problems.append(f"{p} changed")
    if problems:
        fail(f"{label}: {', '.join(problems)}: cram {' '.join(args)}\n  stderr: {r.stderr.strip()[:400]}")
    else:
        npass += 1


def run_ok(args):
    r = subprocess.run([CRAM] + args, capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        raise SystemExit(f"setup failed: cram {' '.join(args)}: {r.stderr}")
    return r


# ---- shards ---------------------------------------------------------------------

GOOD = os.path.join(T, "good")
subprocess.run([MK, GOOD, "40"], check=True, stdout=subprocess.DEVNULL)
SHARD = os.path.join(GOOD, "train-00000.shard")
good_shard = open(SHARD, "rb").read()

# field name -> (offset, struct format, bad value, what the message says)
FIELDS = [
    ("magic", 0, "8s", b"CRAMSHRX", "magic"),
    ("version", 8, "<I", 2, "version"),
    ("header_size", 12, "<I", 64, "header size"),
    ("vocab_size", 16, "<I", 0, "vocab size"),
    ("vocab_size", 16, "<I", 70000, "vocab size"),
    ("vocab_size", 16, "<I", 8, r"special-token|token \d+ in sequence"),
    ("dtype", 20, "<I", 2, "dtype"),
    ("seq_len", 24, "<I", 0, "sequence length 0"),
    ("seq_len", 24, "<I", 32, "payload size"),
    ("seq_count", 32, "<Q", 1 << 60, "payload size"),
    ("seq_count", 32, "<Q", 41, "payload size"),
    ("payload_bytes", 40, "<Q", 1 << 62, "payload size"),
    ("payload_crc32", 48, "<I", 0x12345678, "checksum mismatch.*header says 12345678"),
    ("pad_id", 64, "<I", 64, "special-token"),
    ("mask_id", 80, "<I", 1000, "special-token"),
    ("shard_index", 84, "<I", 7, "shard 7/2"),
    ("shard_count", 88, "<I", 0, "shard 0/0"),
    ("shard_count", 88, "<I", 3, "3 of 3|header says shard"),
    ("split", 92, "<I", 5, "split 5"),
    ("split", 92, "<I", 1, "split 1"),
    ("order", 96, "<I", 9, "order 9"),
    ("order_token", 100, "<I", 64, "special-token"),
]


def with_crc(h):
    """The header with its CRC field (52..56) recomputed."""
    h = bytearray(h)
    h[52:56] = b"\0\0\0\0"
    h[52:56] = struct.pack("<I", zlib.crc32(bytes(h)) & 0xFFFFFFFF)
    return bytes(h)


def shard_case(label, data, needle, name="train-00000.shard"):
    d = os.path.join(T, "s_" + re.sub(r"\W", "_", label))
    shutil.copytree(GOOD, d)
    path = os.path.join(d, name)
    with open(path, "wb") as f:
        f.write(data)
    run = os.path.join(T, "run_" + re.sub(r"\W", "_", label))
    refused(label + " (shards)", ["shards", d], path, needle, [d])
    if name.startswith("train"):  # what reads the train split
        refused(label + " (train)", ["train", FX, "--data", d, "--out", run, "--steps", "2", "--quiet"], path, needle,
                [d, run])
        refused(label + " (bench)", ["bench", FX, "--data", d, "--warmup", "0", "--steps", "1"], path, needle, [d])
    else:  # and the held-out one
        refused(label + " (eval)", ["eval", FX, "--data", d], path, needle, [d])
    shutil.rmtree(d)


# truncations: inside the header, at its end, inside the payload, one byte short
for n in (0, 1, 64, 127, 128, 129, len(good_shard) // 2, len(good_shard) - 1):
    shard_case(f"shard cut at {n}", good_shard[:n], "truncated")
shard_case("shard with a trailing byte", good_shard + b"\0", "trailing data")
# payload bit flips: the CRC catches them at open (the trainer did not look)
for pos in (128, 129, 128 + 77, len(good_shard) - 1):
    b = bytearray(good_shard)
    b[pos] ^= 0x04
    shard_case(f"payload bit flip at {pos}", bytes(b), "checksum mismatch")
# a header bit flip without fixing the CRC: the header checksum catches it
b = bytearray(good_shard)
b[33] ^= 0x01
shard_case("header bit flip", bytes(b), "header checksum mismatch")
# every header field, CRC recomputed: the field's own check must catch it
for field, off, fmt, val, needle in FIELDS:
    b = bytearray(good_shard)
    b[off:off + struct.calcsize(fmt)] = struct.pack(fmt, val)
    h = bytes(b[:128]) if field == "magic" else with_crc(bytes(b[:128]))
    shard_case(f"header {field}={val}", h + bytes(b[128:]), needle)
# a token id >= the header's vocab with the payload CRC fixed: the token scan
b = bytearray(good_shard)
b[128 + 6:128 + 8] = struct.pack("<H", 63)
vocab_small = bytearray(b[:128])
vocab_small[16:20] = struct.pack("<I", 63)
vocab_small[48:52] = struct.pack("<I", zlib.crc32(bytes(b[128:])) & 0xFFFFFFFF)
shard_case("token >= vocab", with_crc(bytes(vocab_small)) + bytes(b[128:]), r"token 63 in sequence 0")
# a held-out shard cut short: eval names it
held = open(os.path.join(GOOD, "heldout-00000.shard"), "rb").read()
shard_case("heldout cut", held[:200], "truncated", name="heldout-00000.shard")

# an empty train set: cram data-like shards of 0 sequences
EMPTY = os.path.join(T, "empty")
subprocess.run([MK, EMPTY, "0"], check=True, stdout=subprocess.DEVNULL)
ep = os.path.join(EMPTY, "train-00000.shard")
refused("empty train set (shards)", ["shards", EMPTY], ep, "no sequences", [EMPTY])
refused("empty train set (train)", ["train", FX, "--data", EMPTY, "--out", os.path.join(T, "er"), "--steps", "1"], ep,
        "no sequences", [EMPTY, os.path.join(T, "er")])
refused("empty train set (bench)", ["bench", FX, "--data", EMPTY, "--steps", "1"], ep, "no sequences", [EMPTY])

# ---- checkpoints ------------------------------------------------------------------

RUN = os.path.join(T, "run")
run_ok(["train", FX, "--data", GOOD, "--out", RUN, "--steps", "3", "--batch", "4", "--ramp", "0", "--quiet"])
CK = os.path.join(RUN, "checkpoint.safetensors")
good_ck = open(CK, "rb").read()
hlen = struct.unpack("<Q", good_ck[:8])[0]
header = good_ck[8:8 + hlen].decode()
EXPORT = os.path.join(T, "export.safetensors")
with open(EXPORT, "wb") as f:
    f.write(b"an earlier export that a failed one must not replace\n")


def ck_case(label, data, needle):
    run = os.path.join(T, "ck_" + re.sub(r"\W", "_", label))
    shutil.copytree(RUN, run)
    ck = os.path.join(run, "checkpoint.safetensors")
    with open(ck, "wb") as f:
        f.write(data)
    refused(label + " (resume)", ["train", FX, "--data", GOOD, "--resume", run, "--quiet"], ck, needle, [run])
    refused(label + " (eval)", ["eval", FX, "--data", GOOD, "--checkpoint", ck], ck, needle, [run])
    refused(label + " (export)", ["export", FX, run, "--out", EXPORT, "--names", "cramc"], ck, needle, [run, EXPORT])
    shutil.rmtree(run)


def with_header(h):
    """good_ck with its JSON header replaced (padded to 8 bytes as the writer does)."""
    hb = h.encode("utf-8", "surrogateescape")
    hb += b" " * (-len(hb) % 8)
    return struct.pack("<Q", len(hb)) + hb + good_ck[8 + hlen:]


def meta_set(key, value_json):
    h, k = re.subn(r'"%s":"[^"]*"' % re.escape(key), lambda _: '"%s":%s' % (key, value_json), header, count=1)
    assert k == 1, key
    return with_header(h)


for n in (0, 7, 8, 100, 8 + hlen, len(good_ck) - 1):
    ck_case(f"checkpoint cut at {n}", good_ck[:n], r"not a safetensors file|header length|data section|truncated")
for pos in (3, 8 + 1, 8 + hlen // 2):
    b = bytearray(good_ck)
    b[pos] ^= 0x20
    ck_case(f"checkpoint bit flip at {pos}", bytes(b), r"header|checkpoint")
ck_case("step as a number", meta_set("step", "4"), "value of 'step' is not a string")
for key, val, needle in [
    ("format", '"cram-checkpoint-9"', "checkpoint format 'cram-checkpoint-9'"),
    ("model", '"other"', "checkpoint of model 'other'"),
    ("model", '"\\u0007\\u00ff"', r"checkpoint of model '\\x07\\xc3\\xbf'"),
    ("source_hash", '"0"', "another source"),
    ("step", '"-1"', "'step' is not an integer"),
    ("step", '"99999999999999999999999"', "'step' is not an integer"),
    ("step", '"4x"', "'step' is not an integer"),
    ("step", '"9"', "progress is inconsistent"),
    ("batch", '"0"', "'batch' is 0"),
    ("batch", '"6"', "'batch' 6 is not a multiple"),
    ("mask_n", '"17"', "'mask_n' 17 exceeds"),
    ("mask_n", '"4294967296"', "'mask_n' 4294967296 is out of range"),
    ("ramp", '"2"', "'ramp' 2 is not in"),
    ("peak_lr", '"nan"', "'peak_lr' is not a finite number"),
    ("peak_lr", '"inf"', "'peak_lr' is not a finite number"),
    ("peak_lr", '"-1"', "'peak_lr' -1 is negative"),
    ("elapsed", '"-5"', "'elapsed' -5 is negative"),
    ("shuffle", '"2"', "'shuffle' is 2"),
    ("data_id", '"zz"', "'data_id' is not an integer"),
]:
    ck_case(f"metadata {key}={val}", meta_set(key, val), needle)
# invalid UTF-8 in a value is shown escaped, never raw
h = re.sub(r'"model":"[^"]*"', '"model":"\udcff\udcfe"', header, count=1)
ck_case("model invalid UTF-8", with_header(h), r"checkpoint of model '\\xff\\xfe'")
# a tensor missing, misshapen, or with offsets past the end
tname = re.search(r'"(param\.[^"]+)":\{', header).group(1)
ck_case("tensor missing", with_header(header.replace(f'"{tname}"', '"renamed.tensor"', 1)), f"no tensor '{tname}'")
m = re.search(r'"%s":\{"dtype":"F32","shape":\[(\d+),(\d+)\]' % re.escape(tname), header)
if m:
    a, b2 = int(m.group(1)), int(m.group(2))
    ck_case("tensor misshapen",
            with_header(header.replace(f"[{a},{b2}]", f"[{b2},{a}]", 1)) if a != b2 else with_header(header),
            "is not F32 of the parameter's shape" if a != b2 else None)
ck_case("offsets past the end", with_header(re.sub(r'"data_offsets":\[(\d+),(\d+)\]', '"data_offsets":[0,99999999999]',
                                                    header, count=1)), "outside the")
ck_case("huge shape", with_header(re.sub(r'"shape":\[[0-9,]*\]', '"shape":[4611686018427387904,4]', header, count=1)),
        "shape is too large")

# resuming on other data: another tokenizer, then other shards of the same one
OTHER = os.path.join(T, "other")
subprocess.run([MK, OTHER, "30"], check=True, stdout=subprocess.DEVNULL)
refused("resume on other shards", ["train", FX, "--data", OTHER, "--resume", RUN, "--quiet"], CK,
        "trained on 80 sequences.*holds 60", [RUN, OTHER])
TOK = os.path.join(T, "tok")
shutil.copytree(GOOD, TOK)
for name in os.listdir(TOK):
    p = os.path.join(TOK, name)
    b = bytearray(open(p, "rb").read())
    b[56:64] = struct.pack("<Q", 0xBEEF)
    open(p, "wb").write(with_crc(bytes(b[:128])) + bytes(b[128:]))
refused("resume on another tokenizer", ["train", FX, "--data", TOK, "--resume", RUN, "--quiet"], CK,
        f"tokenizer 0000000000001234, {TOK} has tokenizer 000000000000beef", [RUN, TOK])

# a stale temporary of a killed writer is removed at resume; a live writer's is not
dead = 4194304 + 17  # above any pid_max: never a live process
while os.path.exists(f"/proc/{dead}"):
    dead += 1
stale = f"{CK}.tmp.{dead}"
live = f"{CK}.tmp.{os.getpid()}"
for p in (stale, live):
    open(p, "wb").write(b"partial")
run_ok(["train", FX, "--data", GOOD, "--resume", RUN, "--stop-at", "4", "--quiet"])
if os.path.exists(stale) or not os.path.exists(live):
    fail(f"stale checkpoint temporary: stale kept {os.path.exists(stale)}, live removed {not os.path.exists(live)}")
else:
    npass += 1
os.unlink(live)

# ---- artifacts ---------------------------------------------------------------------

fx = open(FX, "rb").read()


def art_case(label, data, needle):
    so = os.path.join(T, re.sub(r"\W", "_", label) + ".so")
    with open(so, "wb") as f:
        f.write(data)
    refused(label + " (info)", ["info", so], so, needle)
    refused(label + " (eval)", ["eval", so, "--data", GOOD], so, needle, [GOOD])
    refused(label + " (bench)", ["bench", so, "--steps", "1"], so, needle)
    refused(label + " (train)", ["train", so, "--data", GOOD, "--out", os.path.join(T, "art_run"), "--steps", "1"], so,
            needle, [os.path.join(T, "art_run")])
    refused(label + " (export)", ["export", so, RUN, "--out", EXPORT, "--names", "cramc"], so, needle, [EXPORT, RUN])


for n in (0, 3, 16, 63, 64, 200, 4096, len(fx) // 2, len(fx) - 1):
    art_case(f"step.so cut at {n}", fx[:n], r"truncated|not a shared object|no ELF header")
b = bytearray(fx)
b[18:20] = struct.pack("<H", 183 if os.uname().machine != "aarch64" else 62)
art_case("another machine", bytes(b), "built for .* this cram runs on")
b = bytearray(fx)
b[4] = 1  # ELFCLASS32
art_case("32-bit ELF", bytes(b), "not a 64-bit little-endian shared object")
art_case("a text file", b"#!/bin/sh\necho not a library\n", "no ELF header")


def build(name, src):
    c, so = os.path.join(T, name + ".c"), os.path.join(T, name + ".so")
    open(c, "w").write(src)
    subprocess.run(CC.split() + ["-shared", "-fPIC", "-I", os.path.join(SRC, "runtime"), "-o", so, c], check=True)
    return open(so, "rb").read()


TABLE = """#include <stddef.h>
#include <string.h>
#include "cram_step.h"
static const cram_tensor_info ps[] = {{"w", CRAM_DT_F32, 2, {%s, %s}, %s, 1}};
static const cram_step_meta meta = {.abi_version = %s, .model = "m", .target = "cpu", .nparams = 1, .params = ps,
                                    .nparam_elems = %s};
static cram_step_rc f(void) { return CRAM_STEP_OK; }
/* every entry point (however many this ABI version has) set to f */
const cram_step_api *cram_step_entry(void) {
  static cram_step_api api;
  cram_step_rc (*fp)(void) = f;
  for (size_t o = offsetof(cram_step_api, create); o + sizeof fp <= sizeof api; o += sizeof fp)
    memcpy((char *)&api + o, &fp, sizeof fp);
  api.abi_version = %s;
  api.struct_size = sizeof api;
  api.meta = &meta;
  return &api;
}
"""
v = "CRAM_STEP_ABI_VERSION"
art_case("another step ABI", build("abi", TABLE % ("2", "2", "4", v + " + 1", "4", v + " + 1")),
         r"built for step ABI v\d+, this cram speaks v\d+")
big = "(INT64_C(1) << 31)"
art_case("parameter of 2^62 elements", build("huge", TABLE % (big, big, "(INT64_C(1) << 62)", v, "(INT64_C(1) << 62)", v)),
         "over 2\\^40 elements")

shutil.rmtree(T)
print(f"{npass} passed, {nfail} failed")
sys.exit(1 if nfail else 0)
