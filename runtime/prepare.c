/* prepare.c - token stream -> filtered, packed, ordered, checksummed shards.
 * See prepare.h for the stream grammar and docs/data.md for the pipeline. */
#include "prepare.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checksum.h"
#include "pack.h"

void cram_prepare_opts_default(cram_prepare_opts *o) {
  memset(o, 0, sizeof *o);
  o->seq_len = 128;
  o->filter_ratio = 0.3;
  o->order = CRAM_ORDER_CURRICULUM;
  o->heldout_fraction = 0.01;
  o->shard_seqs = 262144; /* 64 MiB of tokens at seq_len 128 */
}

/* ---- buffered stream reader ------------------------------------------------ */

typedef struct reader {
  int fd;
  unsigned char buf[1 << 16];
  size_t pos, len;
  int eof;
  volatile sig_atomic_t *stop;
} reader;

/* 1 = got n bytes, 0 = clean EOF before the first byte, <0 = error (status negated) */
static int rd_exact(reader *r, void *dst, size_t n, cram_err *err) {
  unsigned char *d = dst;
  size_t got = 0;
  while (got < n) {
    if (r->pos == r->len) {
      if (r->stop && *r->stop) return -(int)cram_err_set(err, CRAM_E_INTERRUPTED, "interrupted");
      ssize_t k = read(r->fd, r->buf, sizeof r->buf);
      if (k < 0) {
        if (errno == EINTR) continue;
        return -(int)cram_err_set(err, CRAM_E_IO, "reading the token stream: %s", strerror(errno));
      }
      if (k == 0) {
        if (got == 0) return 0;
        return -(int)cram_err_set(err, CRAM_E_STREAM, "token stream ended in the middle of a record");
      }
      r->pos = 0;
      r->len = (size_t)k;
    }
    size_t k = r->len - r->pos;
    if (k > n - got) k = n - got;
    memcpy(d + got, r->buf + r->pos, k);
    r->pos += k;
    got += k;
  }
  return 1;
}

static uint32_t le32(const unsigned char *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t le64(const unsigned char *p) { return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32; }

/* ---- per-split sequence sink (temp file + curriculum keys) ----------------- */

typedef struct sink {
  char *tmp_path;
  FILE *f;
  uint32_t *keys;
  uint64_t nkeys, capkeys;
  uint32_t order_token;
  uint32_t seq_len;
  int want_keys;
} sink;

static cram_status sink_open(sink *s, const char *dir, const char *name, cram_err *err) {
  size_t n = strlen(dir) + strlen(name) + 2;
  s->tmp_path = malloc(n);
  if (!s->tmp_path) return cram_err_set(err, CRAM_E_NOMEM, "out of memory");
  snprintf(s->tmp_path, n, "%s/%s", dir, name);
  s->f = fopen(s->tmp_path, "w+b");
  if (!s->f) return cram_err_set(err, CRAM_E_IO, "%s: cannot create: %s", s->tmp_path, strerror(errno));
  return CRAM_OK;
}

static void sink_close(sink *s) {
  if (s->f) fclose(s->f);
  if (s->tmp_path) unlink(s->tmp_path);
  free(s->tmp_path);
  free(s->keys);
  memset(s, 0, sizeof *s);
}

static cram_status sink_emit(void *ctx, const uint16_t *seq, cram_err *err) {
  sink *s = ctx;
  if (fwrite(seq, sizeof *seq, s->seq_len, s->f) != s->seq_len)
    return cram_err_set(err, CRAM_E_IO, "%s: write failed: %s", s->tmp_path, strerror(errno));
  if (s->want_keys) {
    if (s->nkeys == s->capkeys) {
      uint64_t nc = s->capkeys ? 2 * s->capkeys : 4096;
      uint32_t *nk = realloc(s->keys, (size_t)nc * sizeof *nk);
      if (!nk) return cram_err_set(err, CRAM_E_NOMEM, "out of memory");
      s->keys = nk;
      s->capkeys = nc;
    }
    s->keys[s->nkeys++] = s->order_token == CRAM_NO_TOKEN ? 0 : cram_count_token(seq, s->seq_len, s->order_token);
  }
  return CRAM_OK;
}

/* Write the sequences of a sink as shards of `split`, in the order of perm
 * (NULL = input order). */
static cram_status write_split(sink *s, uint64_t nseq, const uint64_t *perm, const char *dir, const char *split,
                               const cram_shard_header *tmpl, uint64_t shard_seqs, uint32_t *nshards_out, uint64_t *bytes_out,
                               cram_err *err) {
  if (fflush(s->f) != 0) return cram_err_set(err, CRAM_E_IO, "%s: write failed: %s", s->tmp_path, strerror(errno));
  uint64_t nshards = nseq == 0 ? 1 : (nseq + shard_seqs - 1) / shard_seqs;
  if (nshards > 99999) return cram_err_set(err, CRAM_E_ARG, "%s: %" PRIu64 " shards needed; raise --shard-size", dir, nshards);
  size_t seq_bytes = (size_t)s->seq_len * 2u;
  size_t map_size = (size_t)(nseq * seq_bytes);
  const unsigned char *map = NULL;
  if (map_size) {
    map = mmap(NULL, map_size, PROT_READ, MAP_SHARED, fileno(s->f), 0);
    if (map == MAP_FAILED) return cram_err_set(err, CRAM_E_IO, "%s: mmap failed: %s", s->tmp_path, strerror(errno));
  }
  cram_status r = CRAM_OK;
  uint64_t next = 0;
  for (uint64_t k = 0; k < nshards && r == CRAM_OK; k++) {
    cram_shard_header h = *tmpl;
    h.shard_index = (uint32_t)k;
    h.shard_count = (uint32_t)nshards;
    char *path = cram_shard_name(dir, split, (uint32_t)k);
    if (!path) {
      r = cram_err_set(err, CRAM_E_NOMEM, "out of memory");
      break;
    }
    cram_shard_writer w;
    r = cram_shard_writer_open(&w, path, &h, err);
    uint64_t end = next + shard_seqs < nseq ? next + shard_seqs : nseq;
    for (; r == CRAM_OK && next < end; next++) {
      uint64_t src = perm ? perm[next] : next;
      r = cram_shard_writer_append(&w, (const uint16_t *)(map + src * seq_bytes), 1, err);
    }
    if (r == CRAM_OK) {
      uint64_t count = w.h.seq_count;
      r = cram_shard_writer_finish(&w, err);
      *bytes_out += CRAM_SHARD_HEADER_SIZE + count * seq_bytes;
    } else if (w.fd >= 0 || w.tmp_path) {
      cram_shard_writer_abort(&w);
    }
    free(path);
  }
  if (map) munmap((void *)map, map_size);
  *nshards_out = (uint32_t)nshards;
  if (r != CRAM_OK) return r;
  /* drop shards of an earlier, larger run so the directory stays consistent */
  for (uint32_t k = (uint32_t)nshards; k < 99999; k++) {
    char *path = cram_shard_name(dir, split, k);
    if (!path) break;
    int gone = unlink(path) != 0;
    free(path);
    if (gone) break;
  }
  return CRAM_OK;
}

/* ---- vocab hash ------------------------------------------------------------ */

static cram_status hash_vocab(const char *dir, uint32_t vocab, uint64_t *hash, cram_err *err) {
  size_t n = strlen(dir) + 16;
  char *path = malloc(n);
  if (!path) return cram_err_set(err, CRAM_E_NOMEM, "out of memory");
  snprintf(path, n, "%s/vocab.txt", dir);
  FILE *f = fopen(path, "rb");
  if (!f) {
    cram_status r = cram_err_set(err, CRAM_E_IO, "%s: cannot open (written by the tokenizer tool): %s", path, strerror(errno));
    free(path);
    return r;
  }
  unsigned char buf[1 << 15];
  uint64_t h = CRAM_FNV1A64_INIT, lines = 0;
  size_t k;
  while ((k = fread(buf, 1, sizeof buf, f)) > 0) {
    h = cram_fnv1a64(h, buf, k);
    for (size_t i = 0; i < k; i++) lines += buf[i] == '\n';
  }
  int bad = ferror(f);
  fclose(f);
  cram_status r = CRAM_OK;
  if (bad) r = cram_err_set(err, CRAM_E_IO, "%s: read failed", path);
  else if (lines != vocab)
    r =
      cram_err_set(err, CRAM_E_STREAM, "%s: %" PRIu64 " lines but the tokenizer reports %" PRIu32 " tokens", path, lines, vocab);
  free(path);
  *hash = h;
  return r;
}

/* ---- dataset.json ---------------------------------------------------------- */

static const char *order_name(int order) {
  return order == CRAM_ORDER_CURRICULUM ? "curriculum" : order == CRAM_ORDER_SHUFFLE ? "shuffle" : "input";
}

static void json_shards(FILE *f, const char *split, uint32_t n) {
  fprintf(f, "[");
  for (uint32_t k = 0; k < n; k++) fprintf(f, "%s\"%s-%05" PRIu32 ".shard\"", k ? ", " : "", split, k);
  fprintf(f, "]");
}

static cram_status write_manifest(const cram_prepare_opts *o, const cram_prepare_stats *st, cram_err *err) {
  size_t n = strlen(o->out_dir) + 32;
  char *path = malloc(n), *tmp = malloc(n);
  if (!path || !tmp) {
    free(path);
    free(tmp);
    return cram_err_set(err, CRAM_E_NOMEM, "out of memory");
  }
  snprintf(path, n, "%s/dataset.json", o->out_dir);
  snprintf(tmp, n, "%s/dataset.json.tmp", o->out_dir);
  cram_status r = CRAM_OK;
  FILE *f = fopen(tmp, "wb");
  if (!f) {
    r = cram_err_set(err, CRAM_E_IO, "%s: cannot create: %s", tmp, strerror(errno));
    goto done;
  }
  /* Deterministic content only (no timings): it is part of the golden output. */
  fprintf(f, "{\n  \"format\": \"cram-shards\",\n  \"format_version\": %u,\n", CRAM_SHARD_VERSION);
  fprintf(f, "  \"vocab_size\": %" PRIu32 ",\n  \"seq_len\": %" PRIu32 ",\n", st->vocab_size, o->seq_len);
  fprintf(f, "  \"tokenizer_hash\": \"%016" PRIx64 "\",\n", st->tokenizer_hash);
  fprintf(f,
          "  \"special_tokens\": {\"pad\": %" PRId64 ", \"unk\": %" PRId64 ", \"cls\": %" PRId64 ", \"sep\": %" PRId64
          ", \"mask\": %" PRId64 "},\n",
          st->special[0] == CRAM_NO_TOKEN ? -1 : (int64_t)st->special[0],
          st->special[1] == CRAM_NO_TOKEN ? -1 : (int64_t)st->special[1],
          st->special[2] == CRAM_NO_TOKEN ? -1 : (int64_t)st->special[2], (int64_t)st->special[3],
          st->special[4] == CRAM_NO_TOKEN ? -1 : (int64_t)st->special[4]);
  fprintf(f, "  \"order\": \"%s\",\n  \"order_token\": %" PRId64 ",\n  \"seed\": %" PRIu64 ",\n", order_name(o->order),
          st->order_token == CRAM_NO_TOKEN ? -1 : (int64_t)st->order_token, o->order == CRAM_ORDER_SHUFFLE ? o->seed : 0);
  fprintf(f, "  \"filter_ratio\": %.6g,\n  \"dedup\": %s,\n  \"heldout_fraction\": %.6g,\n", o->filter_ratio,
          o->dedup ? "true" : "false", o->heldout_fraction);
  fprintf(f,
          "  \"documents\": {\"read\": %" PRIu64 ", \"dropped_filter\": %" PRIu64 ", \"dropped_duplicate\": %" PRIu64
          ", \"train\": %" PRIu64 ", \"heldout\": %" PRIu64 "},\n",
          st->docs_read, st->docs_filtered, st->docs_duplicate, st->docs_train, st->docs_heldout);
  fprintf(f, "  \"characters\": %" PRIu64 ",\n", st->chars);
  fprintf(f, "  \"tokens\": {\"read\": %" PRIu64 ", \"kept_with_sep\": %" PRIu64 ", \"dropped_remainder\": %" PRIu64 "},\n",
          st->tokens_read, st->tokens_kept, st->tokens_remainder);
  fprintf(f, "  \"train\": {\"sequences\": %" PRIu64 ", \"shards\": ", st->seqs_train);
  json_shards(f, "train", st->shards_train);
  fprintf(f, "},\n  \"heldout\": {\"sequences\": %" PRIu64 ", \"shards\": ", st->seqs_heldout);
  json_shards(f, "heldout", st->shards_heldout);
  fprintf(f, "}\n}\n");
  if (fflush(f) != 0 || fsync(fileno(f)) != 0) {
    r = cram_err_set(err, CRAM_E_IO, "%s: write failed: %s", tmp, strerror(errno));
    fclose(f);
    unlink(tmp);
    goto done;
  }
  if (fclose(f) != 0 || rename(tmp, path) != 0) {
    r = cram_err_set(err, CRAM_E_IO, "%s: write failed: %s", path, strerror(errno));
    unlink(tmp);
    goto done;
  }
  r = cram_fsync_dir(o->out_dir, err);
done:
  free(path);
  free(tmp);
  return r;
}

/* ---- main loop ------------------------------------------------------------- */

cram_status cram_prepare_from_fd(int fd, const cram_prepare_opts *o, cram_prepare_stats *st, cram_err *err) {
  memset(st, 0, sizeof *st);
  if (!o->out_dir || o->seq_len == 0 || o->shard_seqs == 0 || o->heldout_fraction < 0 || o->heldout_fraction > 1 ||
      o->order < 0 || o->order > 2)
    return cram_err_set(err, CRAM_E_ARG, "invalid prepare options");
  reader *rd = calloc(1, sizeof *rd);
  if (!rd) return cram_err_set(err, CRAM_E_NOMEM, "out of memory");
  rd->fd = fd;
  rd->stop = o->stop;
  sink train = { 0 }, held = { 0 };
  cram_packer ptrain = { 0 }, pheld = { 0 };
  cram_hashset seen;
  cram_hashset_init(&seen);
  uint16_t *ids = NULL;
  size_t ids_cap = 0;
  uint64_t *perm = NULL;
  char label[256] = "tokenizing";
  int have_vocab = 0, ended = 0;
  uint64_t kept_index = 0;
  cram_status r = CRAM_OK;
  int k;
  unsigned char hdr[12];

  k = rd_exact(rd, hdr, 12, err);
  if (k <= 0) {
    r = k == 0 ? cram_err_set(err, CRAM_E_STREAM, "the tokenizer tool produced no output") : (cram_status)-k;
    goto out;
  }
  if (memcmp(hdr, CRAM_STREAM_MAGIC, 8) != 0 || le32(hdr + 8) != CRAM_STREAM_VERSION) {
    r = cram_err_set(err, CRAM_E_STREAM, "token stream: bad magic or version (tool and cram out of sync?)");
    goto out;
  }
  if ((r = sink_open(&train, o->out_dir, ".train.tokens.tmp", err)) != CRAM_OK) goto out;
  if ((r = sink_open(&held, o->out_dir, ".heldout.tokens.tmp", err)) != CRAM_OK) goto out;
  train.seq_len = held.seq_len = o->seq_len;
  train.want_keys = o->order == CRAM_ORDER_CURRICULUM;

  while (!ended) {
    unsigned char tag;
    k = rd_exact(rd, &tag, 1, err);
    if (k < 0) {
      r = (cram_status)-k;
      goto out;
    }
    if (k == 0) {
      r = cram_err_set(err, CRAM_E_STREAM, "token stream ended before its end record (tool crashed?)");
      goto out;
    }
    unsigned char b[32];
    switch (tag) {
    case 'S': {
      if ((k = rd_exact(rd, b, 4, err)) <= 0) goto short_rec;
      uint32_t n = le32(b);
      if (n >= sizeof label) {
        r = cram_err_set(err, CRAM_E_STREAM, "token stream: stage label too long");
        goto out;
      }
      if (n && (k = rd_exact(rd, label, n, err)) <= 0) goto short_rec;
      label[n] = 0;
      if (o->progress) o->progress(o->progress_ctx, label, 0, 0, st);
      break;
    }
    case 'P':
      if ((k = rd_exact(rd, b, 16, err)) <= 0) goto short_rec;
      if (o->progress) o->progress(o->progress_ctx, label, le64(b), le64(b + 8), st);
      break;
    case 'V': {
      if ((k = rd_exact(rd, b, 28, err)) <= 0) goto short_rec;
      if (have_vocab) {
        r = cram_err_set(err, CRAM_E_STREAM, "token stream: second vocab record");
        goto out;
      }
      st->vocab_size = le32(b);
      for (int i = 0; i < 5; i++) st->special[i] = le32(b + 4 + 4 * i);
      st->order_token = le32(b + 24);
      if (st->vocab_size == 0 || st->vocab_size > 65536u) {
        r = cram_err_set(err, CRAM_E_STREAM, "vocab size %" PRIu32 " not in 1..65536 (uint16 tokens)", st->vocab_size);
        goto out;
      }
      for (int i = 0; i < 5; i++)
        if (st->special[i] != CRAM_NO_TOKEN && st->special[i] >= st->vocab_size) {
          r = cram_err_set(err, CRAM_E_STREAM, "special-token id %" PRIu32 " >= vocab size", st->special[i]);
          goto out;
        }
      if (st->special[3] == CRAM_NO_TOKEN) {
        r = cram_err_set(err, CRAM_E_STREAM, "the tokenizer has no [SEP] token (needed between documents)");
        goto out;
      }
      if (st->order_token != CRAM_NO_TOKEN && st->order_token >= st->vocab_size) {
        r = cram_err_set(err, CRAM_E_STREAM, "order token id out of range");
        goto out;
      }
      if (o->order == CRAM_ORDER_CURRICULUM && st->order_token == CRAM_NO_TOKEN) {
        r = cram_err_set(err, CRAM_E_ARG, "the curriculum token is not in the vocabulary (see --order-token)");
        goto out;
      }
      if ((r = hash_vocab(o->out_dir, st->vocab_size, &st->tokenizer_hash, err)) != CRAM_OK) goto out;
      train.order_token = held.order_token = st->order_token;
      uint16_t sep = (uint16_t)st->special[3];
      if ((r = cram_packer_init(&ptrain, o->seq_len, sep, sink_emit, &train, err)) != CRAM_OK) goto out;
      if ((r = cram_packer_init(&pheld, o->seq_len, sep, sink_emit, &held, err)) != CRAM_OK) goto out;
      have_vocab = 1;
      break;
    }
    case 'D': {
      if ((k = rd_exact(rd, b, 12, err)) <= 0) goto short_rec;
      if (!have_vocab) {
        r = cram_err_set(err, CRAM_E_STREAM, "token stream: document before vocab record");
        goto out;
      }
      uint64_t nchars = le64(b);
      uint32_t ntok = le32(b + 8);
      if (ntok > (1u << 30)) {
        r = cram_err_set(err, CRAM_E_STREAM, "token stream: document of %" PRIu32 " tokens", ntok);
        goto out;
      }
      if (ntok > ids_cap) {
        size_t nc = ids_cap ? ids_cap : 4096;
        while (nc < ntok) nc *= 2;
        uint16_t *ni = realloc(ids, nc * sizeof *ni);
        if (!ni) {
          r = cram_err_set(err, CRAM_E_NOMEM, "out of memory");
          goto out;
        }
        ids = ni;
        ids_cap = nc;
      }
      if (ntok && (k = rd_exact(rd, ids, (size_t)ntok * 2u, err)) <= 0) goto short_rec;
      /* the stream is little-endian, as is the host (checked in shard.c) */
      for (uint32_t i = 0; i < ntok; i++)
        if (ids[i] >= st->vocab_size) {
          r = cram_err_set(err, CRAM_E_STREAM, "token stream: id %u >= vocab size %" PRIu32, ids[i], st->vocab_size);
          goto out;
        }
      st->docs_read++;
      st->chars += nchars;
      st->tokens_read += ntok;
      if (!cram_filter_keep(ntok, nchars, o->filter_ratio)) {
        st->docs_filtered++;
        break;
      }
      if (o->dedup) {
        int ins = cram_hashset_insert(&seen, cram_doc_fingerprint(ids, ntok));
        if (ins < 0) {
          r = cram_err_set(err, CRAM_E_NOMEM, "out of memory");
          goto out;
        }
        if (ins == 0) {
          st->docs_duplicate++;
          break;
        }
      }
      st->tokens_kept += (uint64_t)ntok + 1;
      if (cram_heldout_pick(kept_index++, o->heldout_fraction)) {
        st->docs_heldout++;
        r = cram_packer_add(&pheld, ids, ntok, err);
      } else {
        st->docs_train++;
        r = cram_packer_add(&ptrain, ids, ntok, err);
      }
      if (r != CRAM_OK) goto out;
      break;
    }
    case 'E':
      if ((k = rd_exact(rd, b, 16, err)) <= 0) goto short_rec;
      if (!have_vocab) {
        r = cram_err_set(err, CRAM_E_STREAM, "token stream: no vocab record");
        goto out;
      }
      if (le64(b) != st->docs_read) {
        r = cram_err_set(err, CRAM_E_STREAM, "token stream: tool sent %" PRIu64 " documents but %" PRIu64 " arrived", le64(b),
                         st->docs_read);
        goto out;
      }
      st->input_bytes = le64(b + 8);
      ended = 1;
      break;
    default: r = cram_err_set(err, CRAM_E_STREAM, "token stream: unknown record tag 0x%02x", tag); goto out;
    }
  }
  {
    /* trailing bytes after 'E' mean the two sides disagree on the format */
    unsigned char extra;
    k = rd_exact(rd, &extra, 1, err);
    if (k != 0) {
      r = k < 0 ? (cram_status)-k : cram_err_set(err, CRAM_E_STREAM, "token stream: data after the end record");
      goto out;
    }
  }
  st->seqs_train = ptrain.seqs;
  st->seqs_heldout = pheld.seqs;
  st->tokens_remainder = cram_packer_remainder(&ptrain) + (uint64_t)cram_packer_remainder(&pheld);

  /* Nothing to train on: refuse before any shard is written, so an earlier
     * dataset in out_dir stays whole and no empty set passes for a valid one. */
  if (st->seqs_train == 0) {
    r = cram_err_set(err, CRAM_E_DATASET,
                     "no train sequence: %" PRIu64 " tokens kept (with [SEP]), fewer than one sequence of %" PRIu32
                     " tokens; no shard written (give more text or a smaller --seq-len)",
                     st->tokens_kept, o->seq_len);
    goto out;
  }
  if (o->progress) o->progress(o->progress_ctx, "writing shards", 0, 0, st);
  cram_shard_header tmpl;
  memset(&tmpl, 0, sizeof tmpl);
  tmpl.vocab_size = st->vocab_size;
  tmpl.seq_len = o->seq_len;
  tmpl.tokenizer_hash = st->tokenizer_hash;
  tmpl.pad_id = st->special[0];
  tmpl.unk_id = st->special[1];
  tmpl.cls_id = st->special[2];
  tmpl.sep_id = st->special[3];
  tmpl.mask_id = st->special[4];

  /* train split, in the requested order */
  if (o->order != CRAM_ORDER_INPUT && st->seqs_train) {
    perm = malloc((size_t)st->seqs_train * sizeof *perm);
    if (!perm) {
      r = cram_err_set(err, CRAM_E_NOMEM, "out of memory");
      goto out;
    }
    if (o->order == CRAM_ORDER_CURRICULUM) r = cram_order_by_key_desc(train.keys, st->seqs_train, o->seq_len, perm, err);
    else cram_order_shuffle(perm, st->seqs_train, o->seed);
    if (r != CRAM_OK) goto out;
  }
  tmpl.split = CRAM_SPLIT_TRAIN;
  tmpl.order = (uint32_t)o->order;
  tmpl.order_token = o->order == CRAM_ORDER_CURRICULUM ? st->order_token : CRAM_NO_TOKEN;
  tmpl.seed = o->order == CRAM_ORDER_SHUFFLE ? o->seed : 0;
  r = write_split(&train, st->seqs_train, perm, o->out_dir, "train", &tmpl, o->shard_seqs, &st->shards_train, &st->output_bytes,
                  err);
  if (r != CRAM_OK) goto out;
  /* held-out split: input order (evaluation does not need a curriculum) */
  tmpl.split = CRAM_SPLIT_HELDOUT;
  tmpl.order = CRAM_ORDER_INPUT;
  tmpl.order_token = CRAM_NO_TOKEN;
  tmpl.seed = 0;
  r = write_split(&held, st->seqs_heldout, NULL, o->out_dir, "heldout", &tmpl, o->shard_seqs, &st->shards_heldout,
                  &st->output_bytes, err);
  if (r != CRAM_OK) goto out;
  r = write_manifest(o, st, err);
  goto out;

short_rec:
  r = k == 0 ? cram_err_set(err, CRAM_E_STREAM, "token stream ended in the middle of a record") : (cram_status)-k;
out:
  free(perm);
  free(ids);
  cram_hashset_free(&seen);
  cram_packer_free(&ptrain);
  cram_packer_free(&pheld);
  sink_close(&train);
  sink_close(&held);
  free(rd);
  return r;
}
