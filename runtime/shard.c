/* shard.c - token shard header codec, atomic writer, mmap reader, shard sets.
 * Format and rationale: shard.h and docs/data.md. */
#include "shard.h"

#include <dirent.h>
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

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "cram shards are little-endian and mapped in place: big-endian hosts are not supported"
#endif

/* ---- little-endian field codec ---------------------------------------- */

static void put32(unsigned char *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static void put64(unsigned char *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static uint32_t get32(const unsigned char *p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; i--) v = (v << 8) | p[i];
  return v;
}
static uint64_t get64(const unsigned char *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
  return v;
}

enum {
  OFF_MAGIC = 0,
  OFF_VERSION = 8,
  OFF_HEADER_SIZE = 12,
  OFF_VOCAB = 16,
  OFF_DTYPE = 20,
  OFF_SEQ_LEN = 24,
  OFF_FLAGS = 28,
  OFF_SEQ_COUNT = 32,
  OFF_PAYLOAD_BYTES = 40,
  OFF_PAYLOAD_CRC = 48,
  OFF_HEADER_CRC = 52,
  OFF_TOK_HASH = 56,
  OFF_PAD = 64,
  OFF_UNK = 68,
  OFF_CLS = 72,
  OFF_SEP = 76,
  OFF_MASK = 80,
  OFF_SHARD_INDEX = 84,
  OFF_SHARD_COUNT = 88,
  OFF_SPLIT = 92,
  OFF_ORDER = 96,
  OFF_ORDER_TOKEN = 100,
  OFF_SEED = 104,
  OFF_RESERVED = 112
};

void cram_shard_header_encode(const cram_shard_header *h, unsigned char out[CRAM_SHARD_HEADER_SIZE]) {
  memset(out, 0, CRAM_SHARD_HEADER_SIZE);
  memcpy(out + OFF_MAGIC, CRAM_SHARD_MAGIC, 8);
  put32(out + OFF_VERSION, h->version);
  put32(out + OFF_HEADER_SIZE, h->header_size);
  put32(out + OFF_VOCAB, h->vocab_size);
  put32(out + OFF_DTYPE, h->dtype);
  put32(out + OFF_SEQ_LEN, h->seq_len);
  put32(out + OFF_FLAGS, h->flags);
  put64(out + OFF_SEQ_COUNT, h->seq_count);
  put64(out + OFF_PAYLOAD_BYTES, h->payload_bytes);
  put32(out + OFF_PAYLOAD_CRC, h->payload_crc32);
  put64(out + OFF_TOK_HASH, h->tokenizer_hash);
  put32(out + OFF_PAD, h->pad_id);
  put32(out + OFF_UNK, h->unk_id);
  put32(out + OFF_CLS, h->cls_id);
  put32(out + OFF_SEP, h->sep_id);
  put32(out + OFF_MASK, h->mask_id);
  put32(out + OFF_SHARD_INDEX, h->shard_index);
  put32(out + OFF_SHARD_COUNT, h->shard_count);
  put32(out + OFF_SPLIT, h->split);
  put32(out + OFF_ORDER, h->order);
  put32(out + OFF_ORDER_TOKEN, h->order_token);
  put64(out + OFF_SEED, h->seed);
  /* header CRC over all 128 bytes with its own field zero */
  put32(out + OFF_HEADER_CRC, cram_crc32(0, out, CRAM_SHARD_HEADER_SIZE));
}

static int special_ok(uint32_t id, uint32_t vocab) { return id == CRAM_NO_TOKEN || id < vocab; }

cram_status cram_shard_header_decode(const unsigned char *buf, size_t n, const char *path, cram_shard_header *h, cram_err *err) {
  if (n < CRAM_SHARD_HEADER_SIZE)
    return cram_err_set(err, CRAM_E_TRUNCATED, "%s: truncated: %zu bytes, shorter than the %u-byte shard header", path, n,
                        CRAM_SHARD_HEADER_SIZE);
  if (memcmp(buf + OFF_MAGIC, CRAM_SHARD_MAGIC, 8) != 0)
    return cram_err_set(err, CRAM_E_MAGIC, "%s: bad magic: not a cram token shard (expected \"%s\")", path, CRAM_SHARD_MAGIC);
  memset(h, 0, sizeof *h);
  h->version = get32(buf + OFF_VERSION);
  if (h->version != CRAM_SHARD_VERSION)
    return cram_err_set(err, CRAM_E_VERSION, "%s: unsupported shard format version %" PRIu32 " (this build reads version %u)",
                        path, h->version, CRAM_SHARD_VERSION);
  h->header_size = get32(buf + OFF_HEADER_SIZE);
  if (h->header_size != CRAM_SHARD_HEADER_SIZE)
    return cram_err_set(err, CRAM_E_HEADER, "%s: bad header: header size %" PRIu32 " != %u", path, h->header_size,
                        CRAM_SHARD_HEADER_SIZE);
  unsigned char tmp[CRAM_SHARD_HEADER_SIZE];
  memcpy(tmp, buf, sizeof tmp);
  uint32_t stored = get32(tmp + OFF_HEADER_CRC);
  put32(tmp + OFF_HEADER_CRC, 0);
  uint32_t actual = cram_crc32(0, tmp, sizeof tmp);
  if (stored != actual)
    return cram_err_set(err, CRAM_E_HEADER,
                        "%s: bad header: header checksum mismatch (stored %08" PRIx32 ", computed %08" PRIx32
                        "): the header is corrupt",
                        path, stored, actual);
  h->header_crc32 = stored;
  for (size_t i = OFF_RESERVED; i < CRAM_SHARD_HEADER_SIZE; i++)
    if (buf[i] != 0) /* docs/data.md: zero; the codec does not keep them, so a header that uses them is not ours */
      return cram_err_set(err, CRAM_E_HEADER, "%s: bad header: reserved byte %zu is %u, not 0 (a shard from a newer format?)",
                          path, i, buf[i]);
  h->vocab_size = get32(buf + OFF_VOCAB);
  h->dtype = get32(buf + OFF_DTYPE);
  h->seq_len = get32(buf + OFF_SEQ_LEN);
  h->flags = get32(buf + OFF_FLAGS);
  h->seq_count = get64(buf + OFF_SEQ_COUNT);
  h->payload_bytes = get64(buf + OFF_PAYLOAD_BYTES);
  h->payload_crc32 = get32(buf + OFF_PAYLOAD_CRC);
  h->tokenizer_hash = get64(buf + OFF_TOK_HASH);
  h->pad_id = get32(buf + OFF_PAD);
  h->unk_id = get32(buf + OFF_UNK);
  h->cls_id = get32(buf + OFF_CLS);
  h->sep_id = get32(buf + OFF_SEP);
  h->mask_id = get32(buf + OFF_MASK);
  h->shard_index = get32(buf + OFF_SHARD_INDEX);
  h->shard_count = get32(buf + OFF_SHARD_COUNT);
  h->split = get32(buf + OFF_SPLIT);
  h->order = get32(buf + OFF_ORDER);
  h->order_token = get32(buf + OFF_ORDER_TOKEN);
  h->seed = get64(buf + OFF_SEED);

  if (h->dtype != CRAM_DTYPE_U16)
    return cram_err_set(err, CRAM_E_HEADER, "%s: bad header: token dtype %" PRIu32 " (only 1 = uint16 is defined)", path,
                        h->dtype);
  if (h->vocab_size == 0 || h->vocab_size > 65536u)
    return cram_err_set(err, CRAM_E_HEADER, "%s: bad header: vocab size %" PRIu32 " not in 1..65536", path, h->vocab_size);
  if (h->seq_len == 0) return cram_err_set(err, CRAM_E_HEADER, "%s: bad header: sequence length 0", path);
  if (h->seq_count > (UINT64_MAX / 2) / h->seq_len || h->payload_bytes != h->seq_count * h->seq_len * 2u)
    return cram_err_set(err, CRAM_E_HEADER,
                        "%s: bad header: payload size %" PRIu64 " != %" PRIu64 " sequences x %" PRIu32 " tokens x 2 bytes", path,
                        h->payload_bytes, h->seq_count, h->seq_len);
  if (!special_ok(h->pad_id, h->vocab_size) || !special_ok(h->unk_id, h->vocab_size) || !special_ok(h->cls_id, h->vocab_size) ||
      !special_ok(h->sep_id, h->vocab_size) || !special_ok(h->mask_id, h->vocab_size) ||
      !special_ok(h->order_token, h->vocab_size))
    return cram_err_set(err, CRAM_E_HEADER, "%s: bad header: a special-token id is >= vocab size %" PRIu32, path, h->vocab_size);
  if (h->shard_count == 0 || h->shard_index >= h->shard_count || h->split > 1 || h->order > 2)
    return cram_err_set(err, CRAM_E_HEADER, "%s: bad header: shard %" PRIu32 "/%" PRIu32 ", split %" PRIu32 ", order %" PRIu32,
                        path, h->shard_index, h->shard_count, h->split, h->order);
  return CRAM_OK;
}

/* ---- reader ------------------------------------------------------------ */

void cram_shard_close(cram_shard *s) {
  if (!s) return;
  if (s->map && s->map != MAP_FAILED) munmap(s->map, s->map_size);
  free(s->path);
  memset(s, 0, sizeof *s);
}

cram_status cram_shard_open(cram_shard *s, const char *path, const cram_shard_expect *expect, unsigned verify, cram_err *err) {
  memset(s, 0, sizeof *s);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return cram_err_set(err, CRAM_E_IO, "%s: cannot open: %s", path, strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int e = errno;
    close(fd);
    return cram_err_set(err, CRAM_E_IO, "%s: cannot stat: %s", path, strerror(e));
  }
  if (!S_ISREG(st.st_mode)) {
    close(fd);
    return cram_err_set(err, CRAM_E_IO, "%s: not a regular file", path);
  }
  size_t size = (size_t)st.st_size;
  if (size < CRAM_SHARD_HEADER_SIZE) {
    close(fd);
    return cram_err_set(err, CRAM_E_TRUNCATED, "%s: truncated: %zu bytes, shorter than the %u-byte shard header", path, size,
                        CRAM_SHARD_HEADER_SIZE);
  }
  void *map = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
  int e = errno;
  close(fd);
  if (map == MAP_FAILED) return cram_err_set(err, CRAM_E_IO, "%s: mmap failed: %s", path, strerror(e));
  s->map = map;
  s->map_size = size;
  s->path = strdup(path);
  if (!s->path) {
    cram_shard_close(s);
    return cram_err_set(err, CRAM_E_NOMEM, "%s: out of memory", path);
  }
  cram_status st2 = cram_shard_header_decode(map, size, path, &s->h, err);
  if (st2 != CRAM_OK) {
    cram_shard_close(s);
    return st2;
  }
  /* A copy of the header: every message below is formatted before
     * cram_shard_close clears *s. */
  const cram_shard_header hc = s->h, *h = &hc;
  uint64_t want = (uint64_t)CRAM_SHARD_HEADER_SIZE + h->payload_bytes;
  if ((uint64_t)size < want) {
    cram_shard_close(s);
    return cram_err_set(err, CRAM_E_TRUNCATED,
                        "%s: truncated: %zu bytes, header declares %" PRIu64 " (%" PRIu64 " sequences of %" PRIu32 " tokens)",
                        path, size, want, h->seq_count, h->seq_len);
  }
  if ((uint64_t)size > want) {
    cram_shard_close(s);
    return cram_err_set(err, CRAM_E_HEADER, "%s: bad size: %zu bytes, header declares %" PRIu64 " (trailing data)", path, size,
                        want);
  }
  if (!(verify & CRAM_VERIFY_HEADER_ONLY)) verify |= CRAM_VERIFY_ALL;
  if (expect) {
    cram_status bad = CRAM_OK;
    if (expect->vocab_size && expect->vocab_size != h->vocab_size)
      bad = cram_err_set(err, CRAM_E_VOCAB,
                         "%s: vocab size %" PRIu32 " but %" PRIu32 " expected "
                         "(shards prepared with another tokenizer?)",
                         path, h->vocab_size, expect->vocab_size);
    else if (expect->seq_len && expect->seq_len != h->seq_len)
      bad = cram_err_set(err, CRAM_E_SEQLEN, "%s: sequence length %" PRIu32 " but %" PRIu32 " expected", path, h->seq_len,
                         expect->seq_len);
    else if (expect->tokenizer_hash && expect->tokenizer_hash != h->tokenizer_hash)
      bad = cram_err_set(err, CRAM_E_TOKENIZER,
                         "%s: tokenizer hash %016" PRIx64 " but %016" PRIx64 " expected "
                         "(shards prepared with another vocab.txt)",
                         path, h->tokenizer_hash, expect->tokenizer_hash);
    if (bad != CRAM_OK) {
      cram_shard_close(s);
      return bad;
    }
  }
  s->tokens = (const uint16_t *)((const unsigned char *)map + CRAM_SHARD_HEADER_SIZE);
  if (verify & CRAM_VERIFY_CHECKSUM) {
    uint32_t crc = cram_crc32(0, s->tokens, (size_t)h->payload_bytes);
    if (crc != h->payload_crc32) {
      cram_shard_close(s);
      return cram_err_set(err, CRAM_E_CHECKSUM,
                          "%s: checksum mismatch: payload CRC32 %08" PRIx32 ", header says %08" PRIx32 " (file corrupt)", path,
                          crc, h->payload_crc32);
    }
  }
  if (verify & CRAM_VERIFY_TOKENS) {
    uint64_t n = h->seq_count * h->seq_len;
    for (uint64_t i = 0; i < n; i++) {
      if (s->tokens[i] >= h->vocab_size) {
        cram_status r = cram_err_set(err, CRAM_E_TOKEN_RANGE,
                                     "%s: token %u in sequence %" PRIu64 " (position %" PRIu64 ") is >= vocab size %" PRIu32,
                                     path, s->tokens[i], i / h->seq_len, i, h->vocab_size);
        cram_shard_close(s);
        return r;
      }
    }
  }
  return CRAM_OK;
}

/* ---- writer ------------------------------------------------------------ */

static cram_status write_all(int fd, const void *data, size_t n, const char *path, cram_err *err) {
  const unsigned char *p = data;
  while (n) {
    ssize_t k = write(fd, p, n);
    if (k < 0) {
      if (errno == EINTR) continue;
      return cram_err_set(err, CRAM_E_IO, "%s: write failed: %s", path, strerror(errno));
    }
    p += k;
    n -= (size_t)k;
  }
  return CRAM_OK;
}

static char *dir_of(const char *path) {
  const char *slash = strrchr(path, '/');
  if (!slash) return strdup(".");
  if (slash == path) return strdup("/");
  size_t n = (size_t)(slash - path);
  char *d = malloc(n + 1);
  if (d) {
    memcpy(d, path, n);
    d[n] = 0;
  }
  return d;
}

cram_status cram_fsync_dir(const char *dir, cram_err *err) {
  int fd = open(dir, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return cram_err_set(err, CRAM_E_IO, "%s: cannot open directory: %s", dir, strerror(errno));
  int r = fsync(fd);
  int e = errno;
  close(fd);
  /* Some file systems refuse fsync on directories (EINVAL): not an error. */
  if (r != 0 && e != EINVAL && e != EROFS) return cram_err_set(err, CRAM_E_IO, "%s: fsync failed: %s", dir, strerror(e));
  return CRAM_OK;
}

#define WRITER_BUF (1u << 20)

cram_status cram_shard_writer_open(cram_shard_writer *w, const char *path, const cram_shard_header *tmpl, cram_err *err) {
  memset(w, 0, sizeof *w);
  w->fd = -1;
  if (tmpl->seq_len == 0 || tmpl->vocab_size == 0 || tmpl->vocab_size > 65536u)
    return cram_err_set(err, CRAM_E_ARG, "%s: bad shard parameters (seq_len %" PRIu32 ", vocab %" PRIu32 ")", path, tmpl->seq_len,
                        tmpl->vocab_size);
  w->h = *tmpl;
  w->h.version = CRAM_SHARD_VERSION;
  w->h.header_size = CRAM_SHARD_HEADER_SIZE;
  w->h.dtype = CRAM_DTYPE_U16;
  w->h.seq_count = 0;
  w->h.payload_bytes = 0;
  size_t n = strlen(path);
  w->path = strdup(path);
  w->tmp_path = malloc(n + 5);
  w->buf = malloc(WRITER_BUF);
  w->buf_cap = WRITER_BUF;
  if (!w->path || !w->tmp_path || !w->buf) {
    cram_shard_writer_abort(w);
    return cram_err_set(err, CRAM_E_NOMEM, "%s: out of memory", path);
  }
  memcpy(w->tmp_path, path, n);
  memcpy(w->tmp_path + n, ".tmp", 5);
  w->fd = open(w->tmp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (w->fd < 0) {
    cram_status r = cram_err_set(err, CRAM_E_IO, "%s: cannot create: %s", w->tmp_path, strerror(errno));
    cram_shard_writer_abort(w);
    return r;
  }
  unsigned char zero[CRAM_SHARD_HEADER_SIZE] = { 0 };
  cram_status r = write_all(w->fd, zero, sizeof zero, w->tmp_path, err);
  if (r != CRAM_OK) cram_shard_writer_abort(w);
  return r;
}

static cram_status writer_flush(cram_shard_writer *w, cram_err *err) {
  cram_status r = write_all(w->fd, w->buf, w->buf_len, w->tmp_path, err);
  w->buf_len = 0;
  return r;
}

cram_status cram_shard_writer_append(cram_shard_writer *w, const uint16_t *seqs, uint64_t nseq, cram_err *err) {
  uint64_t ntok = nseq * w->h.seq_len;
  for (uint64_t i = 0; i < ntok; i++) {
    if (seqs[i] >= w->h.vocab_size)
      return cram_err_set(err, CRAM_E_TOKEN_RANGE, "%s: token %u >= vocab size %" PRIu32, w->path, seqs[i], w->h.vocab_size);
  }
  const unsigned char *p = (const unsigned char *)seqs; /* little-endian host */
  size_t bytes = (size_t)(ntok * 2u);
  w->crc = cram_crc32(w->crc, p, bytes);
  while (bytes) {
    size_t room = w->buf_cap - w->buf_len;
    size_t k = bytes < room ? bytes : room;
    memcpy(w->buf + w->buf_len, p, k);
    w->buf_len += k;
    p += k;
    bytes -= k;
    if (w->buf_len == w->buf_cap) {
      cram_status r = writer_flush(w, err);
      if (r != CRAM_OK) return r;
    }
  }
  w->h.seq_count += nseq;
  return CRAM_OK;
}

cram_status cram_shard_writer_finish(cram_shard_writer *w, cram_err *err) {
  cram_status r = writer_flush(w, err);
  if (r != CRAM_OK) goto fail;
  w->h.payload_bytes = w->h.seq_count * w->h.seq_len * 2u;
  w->h.payload_crc32 = w->crc;
  unsigned char hdr[CRAM_SHARD_HEADER_SIZE];
  cram_shard_header_encode(&w->h, hdr);
  for (size_t off = 0; off < sizeof hdr;) {
    ssize_t k = pwrite(w->fd, hdr + off, sizeof hdr - off, (off_t)off);
    if (k < 0 && errno == EINTR) continue;
    if (k < 0) {
      r = cram_err_set(err, CRAM_E_IO, "%s: write failed: %s", w->tmp_path, strerror(errno));
      goto fail;
    }
    off += (size_t)k;
  }
  if (fsync(w->fd) != 0) {
    r = cram_err_set(err, CRAM_E_IO, "%s: fsync failed: %s", w->tmp_path, strerror(errno));
    goto fail;
  }
  if (close(w->fd) != 0) {
    w->fd = -1;
    r = cram_err_set(err, CRAM_E_IO, "%s: close failed: %s", w->tmp_path, strerror(errno));
    goto fail;
  }
  w->fd = -1;
  if (rename(w->tmp_path, w->path) != 0) {
    r = cram_err_set(err, CRAM_E_IO, "%s: rename to %s failed: %s", w->tmp_path, w->path, strerror(errno));
    goto fail;
  }
  char *dir = dir_of(w->path);
  r = dir ? cram_fsync_dir(dir, err) : cram_err_set(err, CRAM_E_NOMEM, "out of memory");
  free(dir);
  free(w->path);
  free(w->tmp_path);
  free(w->buf);
  w->path = w->tmp_path = NULL;
  w->buf = NULL;
  return r;
fail:
  cram_shard_writer_abort(w);
  return r;
}

void cram_shard_writer_abort(cram_shard_writer *w) {
  if (w->fd >= 0) close(w->fd);
  w->fd = -1;
  if (w->tmp_path) unlink(w->tmp_path);
  free(w->path);
  free(w->tmp_path);
  free(w->buf);
  w->path = w->tmp_path = NULL;
  w->buf = NULL;
}

/* ---- shard sets ---------------------------------------------------------- */

char *cram_shard_name(const char *dir, const char *split, uint32_t index) {
  size_t n = strlen(dir) + strlen(split) + 32;
  char *p = malloc(n);
  if (p) snprintf(p, n, "%s/%s-%05" PRIu32 ".shard", dir, split, index);
  return p;
}

/* "<split>-<digits>.shard" -> index, or -1 */
static long match_name(const char *name, const char *split) {
  size_t ls = strlen(split);
  if (strncmp(name, split, ls) != 0 || name[ls] != '-') return -1;
  const char *p = name + ls + 1;
  long v = 0;
  int digits = 0;
  while (*p >= '0' && *p <= '9') {
    if (v > 100000000L) return -1;
    v = v * 10 + (*p - '0');
    p++;
    digits++;
  }
  if (digits < 5 || strcmp(p, ".shard") != 0) return -1;
  return v;
}

void cram_dataset_close(cram_dataset *d) {
  if (!d) return;
  for (size_t i = 0; i < d->nshards; i++) cram_shard_close(&d->shards[i]);
  free(d->shards);
  free(d->first_seq);
  memset(d, 0, sizeof *d);
}

cram_status cram_dataset_open(cram_dataset *d, const char *dir, const char *split, const cram_shard_expect *expect,
                              unsigned verify, cram_err *err) {
  memset(d, 0, sizeof *d);
  uint32_t want_split;
  if (strcmp(split, "train") == 0) want_split = CRAM_SPLIT_TRAIN;
  else if (strcmp(split, "heldout") == 0) want_split = CRAM_SPLIT_HELDOUT;
  else return cram_err_set(err, CRAM_E_ARG, "unknown split '%s' (train or heldout)", split);

  DIR *dh = opendir(dir);
  if (!dh) return cram_err_set(err, CRAM_E_IO, "%s: cannot open directory: %s", dir, strerror(errno));
  size_t count = 0, cap = 0;
  long *idx = NULL;
  struct dirent *de;
  while ((de = readdir(dh)) != NULL) {
    long v = match_name(de->d_name, split);
    if (v < 0) continue;
    if (count == cap) {
      cap = cap ? 2 * cap : 16;
      long *nidx = realloc(idx, cap * sizeof *idx);
      if (!nidx) {
        free(idx);
        closedir(dh);
        return cram_err_set(err, CRAM_E_NOMEM, "%s: out of memory", dir);
      }
      idx = nidx;
    }
    idx[count++] = v;
  }
  closedir(dh);
  if (count == 0) {
    free(idx);
    return cram_err_set(err, CRAM_E_DATASET, "%s: no %s-NNNNN.shard files (run `cram data`)", dir, split);
  }
  /* insertion sort: shard counts are small */
  for (size_t i = 1; i < count; i++) {
    long v = idx[i];
    size_t j = i;
    while (j > 0 && idx[j - 1] > v) {
      idx[j] = idx[j - 1];
      j--;
    }
    idx[j] = v;
  }
  d->shards = calloc(count, sizeof *d->shards);
  d->first_seq = calloc(count, sizeof *d->first_seq);
  if (!d->shards || !d->first_seq) {
    free(idx);
    cram_dataset_close(d);
    return cram_err_set(err, CRAM_E_NOMEM, "%s: out of memory", dir);
  }
  cram_shard_expect ex = expect ? *expect : (cram_shard_expect){ 0 };
  cram_status r = CRAM_OK;
  for (size_t i = 0; i < count && r == CRAM_OK; i++)
    if ((long)i != idx[i])
      r = cram_err_set(err, CRAM_E_DATASET, "%s: %s-%05zu.shard is missing (the set has %s-%05ld.shard)", dir, split, i, split,
                       idx[count - 1]);
  for (size_t i = 0; i < count && r == CRAM_OK; i++) {
    char *path = cram_shard_name(dir, split, (uint32_t)idx[i]);
    if (!path) {
      r = cram_err_set(err, CRAM_E_NOMEM, "%s: out of memory", dir);
      break;
    }
    r = cram_shard_open(&d->shards[i], path, &ex, verify, err);
    if (r != CRAM_OK) {
      free(path);
      break;
    }
    d->nshards = i + 1;
    const cram_shard_header *h = &d->shards[i].h;
    if (h->shard_index != (uint32_t)i || h->shard_count != count || h->split != want_split) {
      r = cram_err_set(err, CRAM_E_DATASET,
                       "%s: header says shard %" PRIu32 " of %" PRIu32 " (split %" PRIu32 ") but the directory has %zu %s shards",
                       path, h->shard_index, h->shard_count, h->split, count, split);
      free(path);
      break;
    }
    free(path);
    /* later shards must agree with the first one */
    ex.vocab_size = h->vocab_size;
    ex.seq_len = h->seq_len;
    ex.tokenizer_hash = h->tokenizer_hash;
    d->first_seq[i] = d->seq_count;
    d->seq_count += h->seq_count;
  }
  free(idx);
  if (r == CRAM_OK && d->seq_count == 0 && want_split == CRAM_SPLIT_TRAIN)
    r = cram_err_set(err, CRAM_E_DATASET,
                     "%s: the train split has no sequences (%zu shard%s, all empty): the corpus was shorter "
                     "than one sequence of %" PRIu32 " tokens",
                     d->shards[0].path, d->nshards, d->nshards == 1 ? "" : "s", d->shards[0].h.seq_len);
  if (r != CRAM_OK) {
    cram_dataset_close(d);
    return r;
  }
  d->seq_len = d->shards[0].h.seq_len;
  d->vocab_size = d->shards[0].h.vocab_size;
  d->tokenizer_hash = d->shards[0].h.tokenizer_hash;
  return CRAM_OK;
}

/* Index of the last shard with first_seq <= i (i < seq_count). */
static size_t shard_of(const cram_dataset *d, uint64_t i) {
  size_t lo = 0, hi = d->nshards;
  while (hi - lo > 1) {
    size_t mid = lo + (hi - lo) / 2;
    if (d->first_seq[mid] <= i) lo = mid;
    else hi = mid;
  }
  return lo;
}

const uint16_t *cram_dataset_seq(const cram_dataset *d, uint64_t i) {
  if (i >= d->seq_count) return NULL;
  size_t k = shard_of(d, i);
  return cram_shard_seq(&d->shards[k], i - d->first_seq[k]);
}

const char *cram_dataset_seq_path(const cram_dataset *d, uint64_t i, uint64_t *local) {
  if (i >= d->seq_count) return NULL;
  size_t k = shard_of(d, i);
  if (local) *local = i - d->first_seq[k];
  return d->shards[k].path;
}
