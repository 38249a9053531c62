/* test_data_pack.c: unit tests for the C half of `cram data` (runtime/pack.h,
 * runtime/prepare.h), no Python involved: the ratio filter threshold, the
 * held-out split, duplicate detection, packing invariants (every sequence
 * exactly seq_len, one [SEP] after each document, only the final remainder
 * lost), curriculum order (descending, stable) and the seeded shuffle, and
 * cram_prepare_from_fd() end to end on synthetic token streams, including
 * malformed streams and re-runs over an existing output directory.
 * Prints "N passed, M failed"; exit status 1 on any failure. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pack.h"
#include "prepare.h"
#include "shard.h"

#include "check.h"

static char tmpdir[256];

/* deterministic test data */
static uint64_t rng = 12345;
static uint32_t rnd(uint32_t n) { return (uint32_t)(cram_splitmix64(&rng) % n); }

static void test_filter(void) {
  /* keep iff ntok < ratio * nchars (the reference's rule) */
  CHECK(cram_filter_keep(29, 100, 0.3));
  CHECK(!cram_filter_keep(30, 100, 0.3)); /* ratio exactly t: dropped */
  CHECK(!cram_filter_keep(31, 100, 0.3));
  CHECK(cram_filter_keep(299, 1000, 0.3));
  CHECK(!cram_filter_keep(300, 1000, 0.3));
  CHECK(cram_filter_keep(1000, 100, 0));  /* disabled */
  CHECK(cram_filter_keep(1000, 100, -1)); /* disabled */
  CHECK(!cram_filter_keep(0, 0, 0.3));    /* empty document */
  CHECK(!cram_filter_keep(0, 0, 0));
  CHECK(cram_filter_keep(0, 10, 0.3));
}

static void test_heldout(void) {
  int picks = 0, max_gap = 0, last = -1, ok = 1;
  for (int i = 0; i < 1000; i++)
    if (cram_heldout_pick((uint64_t)i, 0.1)) {
      picks++;
      if (last >= 0 && i - last > max_gap) max_gap = i - last;
      if (last >= 0) ok &= i - last == 10;
      last = i;
    }
  CHECK(picks == 100);
  CHECK(ok); /* evenly spaced */
  picks = 0;
  for (int i = 0; i < 1000; i++) picks += cram_heldout_pick((uint64_t)i, 0.0);
  CHECK(picks == 0);
  picks = 0;
  for (int i = 0; i < 777; i++) picks += cram_heldout_pick((uint64_t)i, 0.01);
  CHECK(picks == 7); /* floor(777 * 0.01) */
  picks = 0;
  for (int i = 0; i < 10; i++) picks += cram_heldout_pick((uint64_t)i, 0.5);
  CHECK(picks == 5);
  CHECK(!cram_heldout_pick(0, 0.5) && cram_heldout_pick(1, 0.5));
}

static void test_hashset(void) {
  cram_hashset s;
  cram_hashset_init(&s);
  CHECK(cram_hashset_insert(&s, 42) == 1);
  CHECK(cram_hashset_insert(&s, 42) == 0);
  CHECK(cram_hashset_insert(&s, 0) == 1);
  CHECK(cram_hashset_insert(&s, 0) == 0);
  int fresh = 1;
  for (uint64_t i = 1000; i < 101000; i++) fresh &= cram_hashset_insert(&s, i * 0x9e3779b97f4a7c15ull) == 1;
  CHECK(fresh);
  int dup = 1;
  for (uint64_t i = 1000; i < 101000; i++) dup &= cram_hashset_insert(&s, i * 0x9e3779b97f4a7c15ull) == 0;
  CHECK(dup);
  CHECK(s.count == 100002);
  cram_hashset_free(&s);

  uint16_t a[] = { 5, 6, 7 }, b[] = { 5, 6, 7 }, c[] = { 5, 7, 6 };
  CHECK(cram_doc_fingerprint(a, 3) == cram_doc_fingerprint(b, 3));
  CHECK(cram_doc_fingerprint(a, 3) != cram_doc_fingerprint(c, 3));
  CHECK(cram_doc_fingerprint(a, 2) != cram_doc_fingerprint(a, 3));
  CHECK(cram_doc_fingerprint(a, 0) != cram_doc_fingerprint(a, 1));
}

/* packer sink collecting sequences into one array */
typedef struct collect {
  uint16_t *toks;
  size_t n, cap;
  uint32_t seq_len;
  int fail_after; /* emit fails after this many sequences (-1 never) */
  int emitted;
} collect;

static cram_status collect_emit(void *ctx, const uint16_t *seq, cram_err *err) {
  collect *c = ctx;
  if (c->fail_after >= 0 && c->emitted >= c->fail_after) return cram_err_set(err, CRAM_E_IO, "sink full");
  if (c->n + c->seq_len > c->cap) {
    c->cap = (c->cap + c->seq_len) * 2;
    c->toks = realloc(c->toks, c->cap * sizeof *c->toks);
  }
  memcpy(c->toks + c->n, seq, c->seq_len * sizeof *seq);
  c->n += c->seq_len;
  c->emitted++;
  return CRAM_OK;
}

static void test_packer(void) {
  const uint32_t L = 16;
  const uint16_t SEP = 3;
  collect c = { NULL, 0, 0, L, -1, 0 };
  cram_packer p;
  cram_err err;
  CHECK(cram_packer_init(&p, L, SEP, collect_emit, &c, &err) == CRAM_OK);
  /* reference stream: every document followed by SEP */
  uint16_t *ref = malloc(100000 * sizeof *ref);
  size_t nref = 0;
  uint16_t doc[300];
  int ndocs = 200;
  for (int d = 0; d < ndocs; d++) {
    uint32_t n = rnd(40); /* includes empty documents and ones longer than L */
    for (uint32_t i = 0; i < n; i++) doc[i] = (uint16_t)(10 + rnd(1000));
    memcpy(ref + nref, doc, n * sizeof *doc);
    nref += n;
    ref[nref++] = SEP;
    CHECK(cram_packer_add(&p, doc, n, &err) == CRAM_OK);
  }
  CHECK(p.tokens == nref);
  CHECK(c.n == p.seqs * L);                       /* every sequence exactly L */
  CHECK(c.n + cram_packer_remainder(&p) == nref); /* only the remainder is lost */
  CHECK(cram_packer_remainder(&p) < L);
  CHECK(memcmp(c.toks, ref, c.n * sizeof *ref) == 0); /* order and content preserved */
  size_t seps = 0;
  for (size_t i = 0; i < c.n; i++) seps += c.toks[i] == SEP;
  size_t seps_ref = 0;
  for (size_t i = 0; i < c.n; i++) seps_ref += ref[i] == SEP;
  CHECK(seps == seps_ref);
  cram_packer_free(&p);
  free(c.toks);

  /* exact multiple: nothing lost */
  collect c2 = { NULL, 0, 0, 4, -1, 0 };
  CHECK(cram_packer_init(&p, 4, SEP, collect_emit, &c2, &err) == CRAM_OK);
  uint16_t d3[3] = { 7, 8, 9 };
  CHECK(cram_packer_add(&p, d3, 3, &err) == CRAM_OK);
  CHECK(cram_packer_add(&p, d3, 3, &err) == CRAM_OK);
  CHECK(p.seqs == 2 && cram_packer_remainder(&p) == 0);
  uint16_t want[8] = { 7, 8, 9, 3, 7, 8, 9, 3 };
  CHECK(c2.n == 8 && memcmp(c2.toks, want, sizeof want) == 0);
  cram_packer_free(&p);
  free(c2.toks);

  /* emit errors propagate */
  collect c3 = { NULL, 0, 0, 4, 1, 0 };
  CHECK(cram_packer_init(&p, 4, SEP, collect_emit, &c3, &err) == CRAM_OK);
  uint16_t d9[9] = { 1, 2, 3, 4, 5, 6, 7, 8, 9 };
  CHECK(cram_packer_add(&p, d9, 9, &err) == CRAM_E_IO);
  cram_packer_free(&p);
  free(c3.toks);
  CHECK(cram_packer_init(&p, 0, SEP, collect_emit, &c3, &err) == CRAM_E_ARG);
  free(ref);
}

static void test_order(void) {
  uint32_t keys[] = { 1, 3, 3, 0, 2, 3 };
  uint64_t perm[6];
  cram_err err;
  CHECK(cram_order_by_key_desc(keys, 6, 3, perm, &err) == CRAM_OK);
  uint64_t want[6] = { 1, 2, 5, 4, 0, 3 };
  CHECK(memcmp(perm, want, sizeof want) == 0);
  CHECK(cram_order_by_key_desc(keys, 6, 2, perm, &err) == CRAM_E_ARG); /* key > max */

  enum { N = 5000 };
  uint32_t *k = malloc(N * sizeof *k);
  uint64_t *pm = malloc(N * sizeof *pm);
  for (int i = 0; i < N; i++) k[i] = rnd(20);
  CHECK(cram_order_by_key_desc(k, N, 128, pm, &err) == CRAM_OK);
  int sorted = 1, stable = 1;
  char *seen = calloc(N, 1);
  for (int i = 0; i < N; i++) {
    seen[pm[i]]++;
    if (i) {
      sorted &= k[pm[i - 1]] >= k[pm[i]];
      if (k[pm[i - 1]] == k[pm[i]]) stable &= pm[i - 1] < pm[i];
    }
  }
  int perm_ok = 1;
  for (int i = 0; i < N; i++) perm_ok &= seen[i] == 1;
  CHECK(sorted && stable && perm_ok);

  /* shuffle: a permutation, deterministic by seed, seed-dependent */
  uint64_t *a = malloc(N * sizeof *a), *b = malloc(N * sizeof *b);
  cram_order_shuffle(a, N, 7);
  cram_order_shuffle(b, N, 7);
  CHECK(memcmp(a, b, N * sizeof *a) == 0);
  memset(seen, 0, N);
  for (int i = 0; i < N; i++) seen[a[i]]++;
  perm_ok = 1;
  for (int i = 0; i < N; i++) perm_ok &= seen[i] == 1;
  CHECK(perm_ok);
  cram_order_shuffle(b, N, 8);
  CHECK(memcmp(a, b, N * sizeof *a) != 0);
  int moved = 0;
  for (int i = 0; i < N; i++) moved += a[i] != (uint64_t)i;
  CHECK(moved > N / 2);
  /* golden: the generator and the draw are part of the shard format's reproducibility */
  uint64_t g[8];
  cram_order_shuffle(g, 8, 0);
  uint64_t state = 0;
  CHECK(cram_splitmix64(&state) == 0xe220a8397b1dcdafull); /* splitmix64 reference value */
  uint64_t g2[8];
  cram_order_shuffle(g2, 8, 0);
  CHECK(memcmp(g, g2, sizeof g) == 0);
  cram_order_shuffle(a, 0, 1);
  cram_order_shuffle(a, 1, 1);
  CHECK(a[0] == 0);
  free(k);
  free(pm);
  free(seen);
  free(a);
  free(b);
}

/* ---- synthetic token streams -------------------------------------------------- */

typedef struct buf {
  unsigned char *p;
  size_t n, cap;
} buf;

static void put(buf *b, const void *d, size_t n) {
  if (b->n + n > b->cap) {
    b->cap = (b->n + n) * 2 + 64;
    b->p = realloc(b->p, b->cap);
  }
  memcpy(b->p + b->n, d, n);
  b->n += n;
}
static void put32(buf *b, uint32_t v) {
  unsigned char x[4] = { (unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16), (unsigned char)(v >> 24) };
  put(b, x, 4);
}
static void put64(buf *b, uint64_t v) {
  put32(b, (uint32_t)v);
  put32(b, (uint32_t)(v >> 32));
}
static void s_begin(buf *b) {
  put(b, "CRAMTOKS", 8);
  put32(b, 1);
}
static void s_vocab(buf *b, uint32_t vocab, uint32_t order_token) {
  put(b, "V", 1);
  put32(b, vocab);
  for (uint32_t i = 0; i < 5; i++) put32(b, i);
  put32(b, order_token);
}
static void s_doc(buf *b, uint64_t nchars, const uint16_t *ids, uint32_t n) {
  put(b, "D", 1);
  put64(b, nchars);
  put32(b, n);
  for (uint32_t i = 0; i < n; i++) {
    unsigned char x[2] = { (unsigned char)ids[i], (unsigned char)(ids[i] >> 8) };
    put(b, x, 2);
  }
}
static void s_end(buf *b, uint64_t docs) {
  put(b, "E", 1);
  put64(b, docs);
  put64(b, 12345);
}

static void write_vocab(const char *dir, uint32_t n) {
  char p[1024];
  snprintf(p, sizeof p, "%s/vocab.txt", dir);
  FILE *f = fopen(p, "w");
  for (uint32_t i = 0; i < n; i++) fprintf(f, "tok%u\n", i);
  fclose(f);
}

static cram_status run_stream(const buf *b, const cram_prepare_opts *o, cram_prepare_stats *st, cram_err *err) {
  char p[1024];
  snprintf(p, sizeof p, "%s/stream.bin", tmpdir);
  FILE *f = fopen(p, "wb");
  if (b->n) fwrite(b->p, 1, b->n, f); /* an empty stream has no buffer (fwrite's pointer is nonnull) */
  fclose(f);
  int fd = open(p, O_RDONLY);
  cram_status r = cram_prepare_from_fd(fd, o, st, err);
  close(fd);
  unlink(p);
  return r;
}

static int exists_in(const char *dir, const char *name) {
  char p[1024];
  snprintf(p, sizeof p, "%s/%s", dir, name);
  struct stat st;
  return stat(p, &st) == 0;
}

static void test_prepare(void) {
  char out[512];
  snprintf(out, sizeof out, "%s/out", tmpdir);
  mkdir(out, 0755);
  const uint32_t V = 64, L = 8, DOT = 10;
  write_vocab(out, V);

  /* 120 documents: every 10th has a high token/char ratio; doc 7 duplicates doc 5 */
  buf b = { 0 };
  s_begin(&b);
  put(&b, "S", 1);
  put32(&b, 4);
  put(&b, "test", 4);
  s_vocab(&b, V, DOT);
  uint16_t docs[120][30];
  uint32_t lens[120];
  uint64_t expect_kept_tokens = 0;
  int expect_filtered = 0;
  for (int d = 0; d < 120; d++) {
    lens[d] = 3 + rnd(27);
    for (uint32_t i = 0; i < lens[d]; i++) docs[d][i] = (uint16_t)(5 + rnd(V - 5));
    if (d == 7) {
      lens[7] = lens[5];
      memcpy(docs[7], docs[5], sizeof docs[5]);
    }
    uint64_t nchars = d % 10 == 9 ? lens[d] * 3 : lens[d] * 4; /* 0.33 vs 0.25 */
    if (d % 10 == 9) expect_filtered++;
    else if (d != 7) expect_kept_tokens += lens[d] + 1;
    s_doc(&b, nchars, docs[d], lens[d]);
    if (d == 50) {
      put(&b, "P", 1);
      put64(&b, 50);
      put64(&b, 100);
    }
  }
  s_end(&b, 120);

  cram_prepare_opts o;
  cram_prepare_opts_default(&o);
  o.out_dir = out;
  o.seq_len = L;
  o.dedup = 1;
  o.heldout_fraction = 0.1;
  o.shard_seqs = 50;
  cram_prepare_stats st;
  cram_err err = { 0 };
  cram_status r = run_stream(&b, &o, &st, &err);
  CHECK(r == CRAM_OK);
  if (r != CRAM_OK) fprintf(stderr, "  prepare: %s\n", err.msg);
  CHECK(st.docs_read == 120);
  CHECK(st.docs_filtered == (uint64_t)expect_filtered);
  CHECK(st.docs_duplicate == 1);
  CHECK(st.docs_train + st.docs_heldout == 120 - 12 - 1);
  CHECK(st.docs_heldout == (120 - 12 - 1) / 10);
  CHECK(st.tokens_kept == expect_kept_tokens);
  CHECK(st.tokens_kept == (st.seqs_train + st.seqs_heldout) * L + st.tokens_remainder);
  CHECK(st.tokens_remainder < 2 * L);
  CHECK(st.input_bytes == 12345);
  CHECK(st.vocab_size == V && st.tokenizer_hash != 0);
  CHECK(st.shards_train == (st.seqs_train + 49) / 50);
  CHECK(exists_in(out, "dataset.json"));
  CHECK(!exists_in(out, ".train.tokens.tmp") && !exists_in(out, ".heldout.tokens.tmp"));

  cram_dataset d;
  cram_shard_expect ex = { V, L, st.tokenizer_hash };
  CHECK(cram_dataset_open(&d, out, "train", &ex, CRAM_VERIFY_CHECKSUM | CRAM_VERIFY_TOKENS, &err) == CRAM_OK);
  CHECK(d.seq_count == st.seqs_train);
  /* curriculum: count of DOT per sequence never increases */
  int desc = 1;
  uint32_t prev = UINT32_MAX;
  for (uint64_t i = 0; i < d.seq_count; i++) {
    uint32_t c = cram_count_token(cram_dataset_seq(&d, i), L, DOT);
    desc &= c <= prev;
    prev = c;
  }
  CHECK(desc);
  CHECK(d.shards[0].h.order == CRAM_ORDER_CURRICULUM && d.shards[0].h.order_token == DOT);
  CHECK(d.shards[0].h.sep_id == 3 && d.shards[0].h.pad_id == 0 && d.shards[0].h.mask_id == 4);
  uint32_t ntrain_shards = (uint32_t)d.nshards;
  cram_dataset_close(&d);
  CHECK(cram_dataset_open(&d, out, "heldout", &ex, CRAM_VERIFY_CHECKSUM, &err) == CRAM_OK);
  CHECK(d.seq_count == st.seqs_heldout && d.shards[0].h.split == CRAM_SPLIT_HELDOUT);
  CHECK(d.shards[0].h.order == CRAM_ORDER_INPUT);
  cram_dataset_close(&d);

  /* input order: the train payload is exactly the packed kept train docs */
  o.order = CRAM_ORDER_INPUT;
  o.dedup = 0;
  o.heldout_fraction = 0;
  o.filter_ratio = 0;
  o.shard_seqs = 1000000; /* one shard now: stale shards of the first run must go */
  CHECK(run_stream(&b, &o, &st, &err) == CRAM_OK);
  CHECK(ntrain_shards > 1);
  CHECK(exists_in(out, "train-00000.shard") && !exists_in(out, "train-00001.shard"));
  CHECK(cram_dataset_open(&d, out, "train", NULL, CRAM_VERIFY_CHECKSUM, &err) == CRAM_OK);
  {
    uint16_t *ref = malloc(120 * 31 * sizeof *ref);
    size_t n = 0;
    for (int k = 0; k < 120; k++) {
      memcpy(ref + n, docs[k], lens[k] * sizeof *ref);
      n += lens[k];
      ref[n++] = 3;
    }
    CHECK(d.seq_count == n / L);
    CHECK(st.tokens_remainder == n % L);
    CHECK(memcmp(d.shards[0].tokens, ref, d.seq_count * L * 2) == 0);
    free(ref);
  }
  cram_dataset_close(&d);

  /* shuffle: same multiset of sequences, seed recorded, deterministic */
  o.order = CRAM_ORDER_SHUFFLE;
  o.seed = 99;
  CHECK(run_stream(&b, &o, &st, &err) == CRAM_OK);
  CHECK(cram_dataset_open(&d, out, "train", NULL, CRAM_VERIFY_CHECKSUM, &err) == CRAM_OK);
  CHECK(d.shards[0].h.order == CRAM_ORDER_SHUFFLE && d.shards[0].h.seed == 99);
  uint32_t crc1 = d.shards[0].h.payload_crc32;
  cram_dataset_close(&d);
  CHECK(run_stream(&b, &o, &st, &err) == CRAM_OK);
  CHECK(cram_dataset_open(&d, out, "train", NULL, 0, &err) == CRAM_OK);
  CHECK(d.shards[0].h.payload_crc32 == crc1);
  cram_dataset_close(&d);

  /* curriculum needs the order token */
  o.order = CRAM_ORDER_CURRICULUM;
  {
    buf nb = { 0 };
    s_begin(&nb);
    s_vocab(&nb, V, CRAM_NO_TOKEN);
    s_end(&nb, 0);
    CHECK(run_stream(&nb, &o, &st, &err) == CRAM_E_ARG);
    CHECK(strstr(err.msg, "--order-token") != NULL);
    free(nb.p);
  }
  /* an empty corpus is refused before any shard is written: the earlier
     * dataset in `out` stays as it was */
  {
    CHECK(cram_dataset_open(&d, out, "train", NULL, 0, &err) == CRAM_OK);
    uint64_t before = d.seq_count;
    cram_dataset_close(&d);
    buf nb = { 0 };
    s_begin(&nb);
    s_vocab(&nb, V, DOT);
    s_end(&nb, 0);
    CHECK(run_stream(&nb, &o, &st, &err) == CRAM_E_DATASET);
    CHECK(strstr(err.msg, "no train sequence") != NULL);
    CHECK(cram_dataset_open(&d, out, "train", NULL, 0, &err) == CRAM_OK);
    CHECK(d.seq_count == before && before > 0);
    cram_dataset_close(&d);
    free(nb.p);
  }

  /* malformed streams */
  struct {
    const char *what;
    int kind;
    const char *needle;
  } bad[] = {
    { "empty", 0, "no output" },
    { "bad magic", 1, "magic" },
    { "no end record", 2, "before its end record" },
    { "doc before vocab", 3, "before vocab" },
    { "token >= vocab", 4, ">= vocab" },
    { "truncated doc", 5, "middle of a record" },
    { "unknown tag", 6, "unknown record tag" },
    { "doc count mismatch", 7, "arrived" },
    { "trailing data", 8, "after the end record" },
    { "vocab.txt disagrees", 9, "lines" },
    { "vocab > 65536", 10, "65536" },
  };
  for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
    buf nb = { 0 };
    uint16_t ids[3] = { 5, 6, 7 };
    int kind = bad[k].kind;
    if (kind == 1) put(&nb, "CRAMTOKX\1\0\0\0", 12);
    else if (kind != 0) s_begin(&nb);
    if (kind == 3) s_doc(&nb, 10, ids, 3);
    if (kind >= 2 && kind != 3 && kind != 1) s_vocab(&nb, kind == 9 ? V + 1 : kind == 10 ? 70000 : V, DOT);
    if (kind == 4) ids[1] = (uint16_t)V;
    if (kind == 2 || kind == 4 || kind == 7 || kind == 8) s_doc(&nb, 10, ids, 3);
    if (kind == 5) {
      s_doc(&nb, 10, ids, 3);
      nb.n -= 3;
    }
    if (kind == 6) put(&nb, "Z", 1);
    if (kind == 7) s_end(&nb, 5);
    if (kind == 8) {
      s_end(&nb, 1);
      put(&nb, "x", 1);
    }
    err.msg[0] = 0;
    r = run_stream(&nb, &o, &st, &err);
    CHECK(r != CRAM_OK);
    CHECK(strstr(err.msg, bad[k].needle) != NULL);
    if (r == CRAM_OK || !strstr(err.msg, bad[k].needle))
      fprintf(stderr, "  stream '%s': got %s: %s\n", bad[k].what, cram_status_name(r), err.msg);
    CHECK(!exists_in(out, ".train.tokens.tmp"));
    free(nb.p);
  }
  /* stop flag */
  {
    volatile sig_atomic_t stop = 1;
    o.stop = &stop;
    r = run_stream(&b, &o, &st, &err);
    CHECK(r == CRAM_E_INTERRUPTED);
    o.stop = NULL;
  }
  free(b.p);

  /* clean up */
  const char *names[] = { "vocab.txt", "dataset.json", "train-00000.shard", "heldout-00000.shard" };
  for (size_t k = 0; k < 4; k++) {
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", out, names[k]);
    unlink(p);
  }
  rmdir(out);
}

int main(void) {
  const char *base = getenv("TMPDIR");
  snprintf(tmpdir, sizeof tmpdir, "%s/test_data_pack.XXXXXX", base && *base ? base : "/tmp");
  if (!mkdtemp(tmpdir)) {
    perror("mkdtemp");
    return 1;
  }
  test_filter();
  test_heldout();
  test_hashset();
  test_packer();
  test_order();
  test_prepare();
  rmdir(tmpdir);
  return check_summary("test_data_pack");
}
