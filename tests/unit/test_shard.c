/* test_shard.c: unit tests for the token shard format in libcramrt
 * (runtime/shard.h, runtime/checksum.h): CRC32 and FNV-1a known values,
 * header encode/decode round trip, the atomic writer, the mmap reader, every
 * validation failure (truncated, trailing bytes, bad magic, bad version,
 * corrupt header, payload checksum mismatch, token out of range, vocab /
 * seq_len / tokenizer expectations) with an error message that names the
 * file, and shard sets (cram_dataset). Prints "N passed, M failed"; exit
 * status 1 on any failure. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checksum.h"
#include "shard.h"

#include "check.h"

static char tmpdir[256];

static char *path_in(const char *name) {
  static char buf[4][1024];
  static int k;
  k = (k + 1) % 4;
  snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
  return buf[k];
}

static int file_exists(const char *p) {
  struct stat st;
  return stat(p, &st) == 0;
}

static unsigned char *slurp(const char *p, size_t *n) {
  *n = 0;
  FILE *f = fopen(p, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long len = ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char *b = malloc((size_t)len + 1);
  *n = fread(b, 1, (size_t)len, f);
  fclose(f);
  return b;
}

static void spit(const char *p, const unsigned char *b, size_t n) {
  FILE *f = fopen(p, "wb");
  fwrite(b, 1, n, f);
  fclose(f);
}

static cram_shard_header tmpl_header(uint32_t vocab, uint32_t seq_len) {
  cram_shard_header h;
  memset(&h, 0, sizeof h);
  h.vocab_size = vocab;
  h.seq_len = seq_len;
  h.tokenizer_hash = 0x1122334455667788ull;
  h.pad_id = 0;
  h.unk_id = 1;
  h.cls_id = 2;
  h.sep_id = 3;
  h.mask_id = 4;
  h.shard_index = 0;
  h.shard_count = 1;
  h.split = CRAM_SPLIT_TRAIN;
  h.order = CRAM_ORDER_CURRICULUM;
  h.order_token = 7;
  return h;
}

/* writes nseq sequences whose tokens are (i*seq_len + j) % vocab */
static cram_status write_shard(const char *path, const cram_shard_header *tmpl, uint64_t nseq) {
  cram_shard_writer w;
  cram_err err;
  cram_status r = cram_shard_writer_open(&w, path, tmpl, &err);
  if (r != CRAM_OK) return r;
  uint16_t *seq = malloc(tmpl->seq_len * sizeof *seq);
  for (uint64_t i = 0; i < nseq && r == CRAM_OK; i++) {
    for (uint32_t j = 0; j < tmpl->seq_len; j++) seq[j] = (uint16_t)((i * tmpl->seq_len + j) % tmpl->vocab_size);
    r = cram_shard_writer_append(&w, seq, 1, &err);
  }
  free(seq);
  if (r != CRAM_OK) {
    cram_shard_writer_abort(&w);
    return r;
  }
  return cram_shard_writer_finish(&w, &err);
}

static void test_checksums(void) {
  CHECK(cram_crc32(0, "123456789", 9) == 0xCBF43926u);
  CHECK(cram_crc32(0, "", 0) == 0);
  CHECK(cram_crc32(cram_crc32(0, "1234", 4), "56789", 5) == 0xCBF43926u);
  CHECK(cram_crc32(0, "The quick brown fox jumps over the lazy dog", 43) == 0x414FA339u);
  CHECK(cram_fnv1a64(CRAM_FNV1A64_INIT, "", 0) == 0xcbf29ce484222325ull);
  CHECK(cram_fnv1a64(CRAM_FNV1A64_INIT, "a", 1) == 0xaf63dc4c8601ec8cull);
  CHECK(cram_fnv1a64(CRAM_FNV1A64_INIT, "foobar", 6) == 0x85944171f73967e8ull);
}

static void test_header_roundtrip(void) {
  cram_shard_header h = tmpl_header(32768, 128), g;
  h.version = CRAM_SHARD_VERSION;
  h.header_size = CRAM_SHARD_HEADER_SIZE;
  h.dtype = CRAM_DTYPE_U16;
  h.seq_count = 3;
  h.payload_bytes = 3 * 128 * 2;
  h.payload_crc32 = 0xdeadbeef;
  h.shard_index = 2;
  h.shard_count = 5;
  h.split = CRAM_SPLIT_HELDOUT;
  h.order = CRAM_ORDER_SHUFFLE;
  h.seed = 0xfedcba9876543210ull;
  unsigned char buf[CRAM_SHARD_HEADER_SIZE];
  cram_shard_header_encode(&h, buf);
  CHECK(memcmp(buf, "CRAMSHRD", 8) == 0);
  CHECK(buf[8] == 1 && buf[9] == 0 && buf[12] == 128 && buf[16] == 0x00 && buf[17] == 0x80);
  cram_err err;
  CHECK(cram_shard_header_decode(buf, sizeof buf, "x", &g, &err) == CRAM_OK);
  h.header_crc32 = g.header_crc32;
  CHECK(memcmp(&h, &g, sizeof h) == 0);
  for (int i = 112; i < 128; i++) CHECK(buf[i] == 0);
  /* inconsistent payload size is rejected even with a valid header CRC */
  h.payload_bytes = 5;
  cram_shard_header_encode(&h, buf);
  CHECK(cram_shard_header_decode(buf, sizeof buf, "x", &g, &err) == CRAM_E_HEADER);
  CHECK(strstr(err.msg, "payload size") != NULL);
  /* special id out of range */
  h = tmpl_header(100, 8);
  h.version = CRAM_SHARD_VERSION;
  h.header_size = CRAM_SHARD_HEADER_SIZE;
  h.dtype = CRAM_DTYPE_U16;
  h.mask_id = 100;
  cram_shard_header_encode(&h, buf);
  CHECK(cram_shard_header_decode(buf, sizeof buf, "x", &g, &err) == CRAM_E_HEADER);
  /* a reserved byte set, with the header CRC recomputed over it (found by fuzz_shard:
     * the codec would not keep it, so the header cannot be ours) */
  h.mask_id = 4;
  cram_shard_header_encode(&h, buf);
  buf[120] = 7;
  buf[52] = buf[53] = buf[54] = buf[55] = 0;
  uint32_t crc = cram_crc32(0, buf, sizeof buf);
  for (int i = 0; i < 4; i++) buf[52 + i] = (unsigned char)(crc >> (8 * i));
  CHECK(cram_shard_header_decode(buf, sizeof buf, "x", &g, &err) == CRAM_E_HEADER);
  CHECK(strstr(err.msg, "reserved byte 120") != NULL);
}

static void test_write_read(void) {
  const char *p = path_in("a.shard");
  cram_shard_header t = tmpl_header(1000, 16);
  CHECK(write_shard(p, &t, 10) == CRAM_OK);
  CHECK(file_exists(p));
  CHECK(!file_exists(path_in("a.shard.tmp")));
  cram_shard s;
  cram_err err;
  cram_shard_expect ex = { 1000, 16, 0x1122334455667788ull };
  CHECK(cram_shard_open(&s, p, &ex, CRAM_VERIFY_CHECKSUM | CRAM_VERIFY_TOKENS, &err) == CRAM_OK);
  CHECK(s.h.seq_count == 10 && s.h.seq_len == 16 && s.h.vocab_size == 1000);
  CHECK(s.h.sep_id == 3 && s.h.mask_id == 4 && s.h.order == CRAM_ORDER_CURRICULUM && s.h.order_token == 7);
  CHECK(s.map_size == 128 + 10 * 16 * 2);
  int ok = 1;
  for (uint64_t i = 0; i < 10; i++)
    for (uint32_t j = 0; j < 16; j++) ok &= cram_shard_seq(&s, i)[j] == (uint16_t)((i * 16 + j) % 1000);
  CHECK(ok);
  CHECK(cram_crc32(0, s.tokens, 320) == s.h.payload_crc32);
  cram_shard_close(&s);

  /* an empty shard is valid */
  const char *e = path_in("empty.shard");
  CHECK(write_shard(e, &t, 0) == CRAM_OK);
  CHECK(cram_shard_open(&s, e, NULL, CRAM_VERIFY_CHECKSUM, &err) == CRAM_OK);
  CHECK(s.h.seq_count == 0 && s.h.payload_crc32 == 0);
  cram_shard_close(&s);

  /* the writer refuses out-of-range tokens and abort leaves nothing behind */
  cram_shard_writer w;
  CHECK(cram_shard_writer_open(&w, path_in("bad.shard"), &t, &err) == CRAM_OK);
  CHECK(file_exists(path_in("bad.shard.tmp")));
  uint16_t seq[16] = { 0 };
  seq[5] = 1000;
  CHECK(cram_shard_writer_append(&w, seq, 1, &err) == CRAM_E_TOKEN_RANGE);
  cram_shard_writer_abort(&w);
  CHECK(!file_exists(path_in("bad.shard.tmp")) && !file_exists(path_in("bad.shard")));

  /* writer error: directory does not exist */
  CHECK(cram_shard_writer_open(&w, path_in("nodir/x.shard"), &t, &err) == CRAM_E_IO);
  CHECK(strstr(err.msg, "nodir/x.shard.tmp") != NULL);
}

/* Open a corrupted copy of a.shard and check status and message. */
static void expect_bad(const char *name, const unsigned char *b, size_t n, const cram_shard_expect *ex, unsigned verify,
                       cram_status want, const char *needle) {
  const char *p = path_in(name);
  spit(p, b, n);
  cram_shard s;
  cram_err err = { 0 };
  cram_status r = cram_shard_open(&s, p, ex, verify, &err);
  CHECK(r == want);
  CHECK(strstr(err.msg, p) != NULL); /* the message names the file */
  CHECK(needle == NULL || strstr(err.msg, needle) != NULL);
  CHECK(s.map == NULL && s.path == NULL); /* nothing leaked on failure */
  if (r != want || (needle && !strstr(err.msg, needle)))
    fprintf(stderr, "  %s: got %s: %s\n", name, cram_status_name(r), err.msg);
}

static void test_corruption(void) {
  size_t n = 0;
  unsigned char *orig = slurp(path_in("a.shard"), &n);
  CHECK(orig != NULL && n == 128 + 320);
  unsigned char *b = malloc(n + 1);
  unsigned verify = CRAM_VERIFY_CHECKSUM | CRAM_VERIFY_TOKENS;

  expect_bad("t0.shard", orig, 0, NULL, verify, CRAM_E_TRUNCATED, "truncated");
  expect_bad("t1.shard", orig, 100, NULL, verify, CRAM_E_TRUNCATED, "truncated");
  expect_bad("t2.shard", orig, n - 2, NULL, verify, CRAM_E_TRUNCATED, "truncated");
  expect_bad("t3.shard", orig, 128, NULL, verify, CRAM_E_TRUNCATED, "truncated");
  memcpy(b, orig, n);
  b[n] = 0;
  expect_bad("trail.shard", b, n + 1, NULL, verify, CRAM_E_HEADER, "trailing");

  memcpy(b, orig, n);
  b[0] = 'X';
  expect_bad("magic.shard", b, n, NULL, verify, CRAM_E_MAGIC, "magic");
  memcpy(b, "PK\3\4", 4);
  expect_bad("zip.shard", b, n, NULL, verify, CRAM_E_MAGIC, "not a cram token shard");

  memcpy(b, orig, n);
  b[8] = 2; /* version 2 */
  expect_bad("version.shard", b, n, NULL, verify, CRAM_E_VERSION, "version 2");

  memcpy(b, orig, n);
  b[32] ^= 1; /* seq_count, header CRC now wrong */
  expect_bad("hdrcrc.shard", b, n, NULL, verify, CRAM_E_HEADER, "header checksum");

  memcpy(b, orig, n);
  b[128 + 77] ^= 0x10; /* a payload bit */
  expect_bad("payload.shard", b, n, NULL, verify, CRAM_E_CHECKSUM, "checksum mismatch");
  {
    /* the message quotes the header's CRC (it said 00000000: formatted
         * after the header had been cleared) */
    char want[64];
    snprintf(want, sizeof want, "header says %02x%02x%02x%02x", orig[51], orig[50], orig[49], orig[48]);
    expect_bad("payload.shard", b, n, NULL, verify, CRAM_E_CHECKSUM, want);
    /* verification is the default: open with no flags (the trainer's,
         * eval's and bench's) refuses the flipped bit too */
    expect_bad("payload.shard", b, n, NULL, 0, CRAM_E_CHECKSUM, "checksum mismatch");
    /* only a header-only open lets it through */
    const char *p = path_in("payload.shard");
    cram_shard s;
    cram_err err;
    CHECK(cram_shard_open(&s, p, NULL, CRAM_VERIFY_HEADER_ONLY, &err) == CRAM_OK);
    cram_shard_close(&s);
  }
  /* a truncated payload: the message gives the header's counts (it said
     * "0 sequences of 0 tokens") */
  expect_bad("t4.shard", orig, n - 2, NULL, verify, CRAM_E_TRUNCATED, "(10 sequences of 16 tokens)");

  /* a token >= vocab with consistent checksums: only the token scan finds it */
  {
    memcpy(b, orig, n);
    b[128 + 10] = 0xff;
    b[128 + 11] = 0xff;
    cram_shard_header h;
    cram_err err;
    CHECK(cram_shard_header_decode(b, n, "x", &h, &err) == CRAM_OK);
    h.payload_crc32 = cram_crc32(0, b + 128, n - 128);
    cram_shard_header_encode(&h, b);
    expect_bad("range.shard", b, n, NULL, verify, CRAM_E_TOKEN_RANGE, "65535");
    expect_bad("range.shard", b, n, NULL, 0, CRAM_E_TOKEN_RANGE, "in sequence 0 (position 5)");
  }

  cram_shard_expect ev = { 999, 0, 0 };
  expect_bad("vocab.shard", orig, n, &ev, verify, CRAM_E_VOCAB, "vocab size 1000 but 999 expected");
  cram_shard_expect es = { 0, 128, 0 };
  expect_bad("seqlen.shard", orig, n, &es, verify, CRAM_E_SEQLEN, "sequence length 16");
  cram_shard_expect et = { 0, 0, 42 };
  expect_bad("tok.shard", orig, n, &et, verify, CRAM_E_TOKENIZER, "tokenizer hash");

  cram_shard s;
  cram_err err;
  CHECK(cram_shard_open(&s, path_in("missing.shard"), NULL, verify, &err) == CRAM_E_IO);
  CHECK(strstr(err.msg, "missing.shard") != NULL);
  CHECK(cram_shard_open(&s, tmpdir, NULL, verify, &err) == CRAM_E_IO); /* a directory */
  free(b);
  free(orig);
}

static void test_dataset(void) {
  char dir[1024];
  snprintf(dir, sizeof dir, "%s/ds", tmpdir);
  mkdir(dir, 0755);
  cram_dataset d;
  cram_err err;
  CHECK(cram_dataset_open(&d, dir, "train", NULL, 0, &err) == CRAM_E_DATASET);
  CHECK(strstr(err.msg, dir) != NULL);
  uint64_t counts[3] = { 5, 0, 7 };
  uint64_t first = 0;
  for (uint32_t k = 0; k < 3; k++) {
    cram_shard_header t = tmpl_header(500, 8);
    t.shard_index = k;
    t.shard_count = 3;
    char *p = cram_shard_name(dir, "train", k);
    CHECK(write_shard(p, &t, counts[k]) == CRAM_OK);
    free(p);
  }
  (void)first;
  CHECK(cram_dataset_open(&d, dir, "train", NULL, CRAM_VERIFY_CHECKSUM, &err) == CRAM_OK);
  CHECK(d.nshards == 3 && d.seq_count == 12 && d.seq_len == 8 && d.vocab_size == 500);
  /* global index 5 is shard 2's first sequence (shard 1 is empty) */
  CHECK(cram_dataset_seq(&d, 0) == cram_shard_seq(&d.shards[0], 0));
  CHECK(cram_dataset_seq(&d, 4) == cram_shard_seq(&d.shards[0], 4));
  CHECK(cram_dataset_seq(&d, 5) == cram_shard_seq(&d.shards[2], 0));
  CHECK(cram_dataset_seq(&d, 11) == cram_shard_seq(&d.shards[2], 6));
  CHECK(cram_dataset_seq(&d, 12) == NULL);
  cram_dataset_close(&d);
  CHECK(cram_dataset_open(&d, dir, "heldout", NULL, 0, &err) == CRAM_E_DATASET);
  CHECK(cram_dataset_open(&d, dir, "bogus", NULL, 0, &err) == CRAM_E_ARG);

  /* a train split of empty shards is refused, naming a shard; an empty
     * held-out split opens (its users say when it is too small) */
  {
    char edir[1100];
    snprintf(edir, sizeof edir, "%s/empty", tmpdir);
    mkdir(edir, 0755);
    const char *splits[2] = { "train", "heldout" };
    for (int k = 0; k < 2; k++) {
      cram_shard_header t = tmpl_header(500, 8);
      t.split = (uint32_t)k;
      char *p = cram_shard_name(edir, splits[k], 0);
      CHECK(write_shard(p, &t, 0) == CRAM_OK);
      free(p);
    }
    CHECK(cram_dataset_open(&d, edir, "train", NULL, 0, &err) == CRAM_E_DATASET);
    CHECK(strstr(err.msg, "train-00000.shard: the train split has no sequences") != NULL);
    CHECK(cram_dataset_open(&d, edir, "heldout", NULL, 0, &err) == CRAM_OK);
    CHECK(d.seq_count == 0);
    cram_dataset_close(&d);
    for (int k = 0; k < 2; k++) {
      char *p = cram_shard_name(edir, splits[k], 0);
      unlink(p);
      free(p);
    }
    rmdir(edir);
  }

  /* expectation applies to every shard */
  cram_shard_expect ex = { 501, 0, 0 };
  CHECK(cram_dataset_open(&d, dir, "train", &ex, 0, &err) == CRAM_E_VOCAB);
  CHECK(strstr(err.msg, "train-00000.shard") != NULL);

  /* a shard from another tokenizer in the set */
  {
    cram_shard_header t = tmpl_header(500, 8);
    t.tokenizer_hash = 99;
    t.shard_index = 1;
    t.shard_count = 3;
    char *p = cram_shard_name(dir, "train", 1);
    CHECK(write_shard(p, &t, 1) == CRAM_OK);
    CHECK(cram_dataset_open(&d, dir, "train", NULL, 0, &err) == CRAM_E_TOKENIZER);
    CHECK(strstr(err.msg, "train-00001.shard") != NULL);
    free(p);
  }
  /* a missing middle shard */
  {
    char *p = cram_shard_name(dir, "train", 1);
    unlink(p);
    CHECK(cram_dataset_open(&d, dir, "train", NULL, 0, &err) == CRAM_E_DATASET);
    CHECK(strstr(err.msg, "missing") != NULL);
    free(p);
  }
  /* shard_count disagreeing with the directory */
  {
    char *p = cram_shard_name(dir, "train", 1);
    cram_shard_header t = tmpl_header(500, 8);
    t.shard_index = 1;
    t.shard_count = 4;
    CHECK(write_shard(p, &t, 1) == CRAM_OK);
    CHECK(cram_dataset_open(&d, dir, "train", NULL, 0, &err) == CRAM_E_DATASET);
    free(p);
  }
  for (uint32_t k = 0; k < 3; k++) {
    char *p = cram_shard_name(dir, "train", k);
    unlink(p);
    free(p);
  }
  rmdir(dir);
}

static void cleanup(void) {
  const char *names[] = { "a.shard",       "empty.shard", "t0.shard",    "t1.shard",     "t2.shard",      "t3.shard",
                          "t4.shard",      "trail.shard", "magic.shard", "zip.shard",    "version.shard", "hdrcrc.shard",
                          "payload.shard", "range.shard", "vocab.shard", "seqlen.shard", "tok.shard" };
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) unlink(path_in(names[i]));
  rmdir(tmpdir);
}

int main(void) {
  const char *base = getenv("TMPDIR");
  snprintf(tmpdir, sizeof tmpdir, "%s/test_shard.XXXXXX", base && *base ? base : "/tmp");
  if (!mkdtemp(tmpdir)) {
    perror("mkdtemp");
    return 1;
  }
  test_checksums();
  test_header_roundtrip();
  test_write_read();
  test_corruption();
  test_dataset();
  cleanup();
  return check_summary("test_shard");
}
