/* shard.h - the cram token shard format: writer, mmap reader, shard sets.
 *
 * A shard is one file: a 128-byte little-endian header followed by
 * seq_count * seq_len uint16 token ids (the payload). The trainer mmaps shards
 * and hands sequences straight to the compiled step, so the format is flat,
 * aligned and self-describing; the header carries everything needed to refuse
 * a shard that does not belong to the model (vocab size, sequence length,
 * tokenizer hash, special-token ids) and a CRC32 of the payload so corruption
 * is caught before training. Byte layout: docs/data.md "Shard format".
 *
 * Files of one prepared dataset live in one directory and are named
 * "<split>-NNNNN.shard" (split = "train" or "heldout", NNNNN = shard index). */
#ifndef CRAM_SHARD_H
#define CRAM_SHARD_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"

#define CRAM_SHARD_MAGIC       "CRAMSHRD" /* 8 bytes, no terminator in the file */
#define CRAM_SHARD_VERSION     1u
#define CRAM_SHARD_HEADER_SIZE 128u
#define CRAM_DTYPE_U16         1u /* the only token dtype of version 1 */
#define CRAM_NO_TOKEN          0xffffffffu

enum cram_split { CRAM_SPLIT_TRAIN = 0, CRAM_SPLIT_HELDOUT = 1 };
enum cram_order { CRAM_ORDER_INPUT = 0, CRAM_ORDER_CURRICULUM = 1, CRAM_ORDER_SHUFFLE = 2 };

typedef struct cram_shard_header {
  uint32_t version;                                 /* CRAM_SHARD_VERSION */
  uint32_t header_size;                             /* CRAM_SHARD_HEADER_SIZE */
  uint32_t vocab_size;                              /* every token id < vocab_size */
  uint32_t dtype;                                   /* CRAM_DTYPE_U16 */
  uint32_t seq_len;                                 /* tokens per sequence */
  uint32_t flags;                                   /* reserved, 0 */
  uint64_t seq_count;                               /* sequences in this shard */
  uint64_t payload_bytes;                           /* seq_count * seq_len * 2 */
  uint32_t payload_crc32;                           /* CRC32 of the payload bytes */
  uint32_t header_crc32;                            /* CRC32 of the 128 header bytes with this field zeroed */
  uint64_t tokenizer_hash;                          /* FNV-1a 64 of the tokenizer's vocab.txt bytes */
  uint32_t pad_id, unk_id, cls_id, sep_id, mask_id; /* CRAM_NO_TOKEN if absent */
  uint32_t shard_index;                             /* 0-based index within its split */
  uint32_t shard_count;                             /* shards in its split */
  uint32_t split;                                   /* enum cram_split */
  uint32_t order;                                   /* enum cram_order */
  uint32_t order_token;                             /* curriculum token id, CRAM_NO_TOKEN otherwise */
  uint64_t seed;                                    /* shuffle seed (0 unless order == shuffle) */
} cram_shard_header;

/* Serialise / parse the 128 header bytes. decode checks magic, version,
 * header size, header CRC, dtype and internal consistency; `path` only names
 * the file in messages. */
void cram_shard_header_encode(const cram_shard_header *h, unsigned char out[CRAM_SHARD_HEADER_SIZE]);
cram_status cram_shard_header_decode(const unsigned char *buf, size_t n, const char *path, cram_shard_header *h, cram_err *err);

/* What the caller expects; 0 in a field means "any". */
typedef struct cram_shard_expect {
  uint32_t vocab_size;
  uint32_t seq_len;
  uint64_t tokenizer_hash;
} cram_shard_expect;

/* What an open checks beyond the header. The payload checks are the default:
 * every open (the trainer's, eval's, bench's) reads the whole payload once,
 * recomputes its CRC32 and checks every token id < vocab_size (docs/data.md:
 * about 0.1 s for 36 MB), so a corrupt shard is refused before it is used.
 * Only a caller that wants the header alone says CRAM_VERIFY_HEADER_ONLY
 * (`cram shards --no-verify`). */
enum {
  CRAM_VERIFY_CHECKSUM = 1u,    /* recompute the payload CRC32 (reads the whole file) */
  CRAM_VERIFY_TOKENS = 2u,      /* check every token id < vocab_size */
  CRAM_VERIFY_ALL = 3u,         /* both: what 0 means too */
  CRAM_VERIFY_HEADER_ONLY = 4u, /* neither: header, size and expectations only */
};

typedef struct cram_shard {
  char *path;
  void *map;
  size_t map_size;
  cram_shard_header h;
  const uint16_t *tokens; /* seq_count * seq_len ids, read-only mapping */
} cram_shard;

/* Open and validate one shard (size, header, expectations, payload checks
 * unless CRAM_VERIFY_HEADER_ONLY). On failure *s is left closed and err names
 * the file. */
cram_status cram_shard_open(cram_shard *s, const char *path, const cram_shard_expect *expect, unsigned verify, cram_err *err);
void cram_shard_close(cram_shard *s);
static inline const uint16_t *cram_shard_seq(const cram_shard *s, uint64_t i) { return s->tokens + i * s->h.seq_len; }

/* Atomic writer: tokens go to "<path>.tmp", finish() writes the header,
 * fsyncs, renames onto <path> and fsyncs the directory; abort() unlinks. */
typedef struct cram_shard_writer {
  char *path;
  char *tmp_path;
  int fd;
  cram_shard_header h;
  uint32_t crc;
  unsigned char *buf;
  size_t buf_len, buf_cap;
} cram_shard_writer;

/* `tmpl` supplies every header field except seq_count, payload_bytes and the
 * checksums, which the writer computes. */
cram_status cram_shard_writer_open(cram_shard_writer *w, const char *path, const cram_shard_header *tmpl, cram_err *err);
cram_status cram_shard_writer_append(cram_shard_writer *w, const uint16_t *seqs, uint64_t nseq, cram_err *err);
cram_status cram_shard_writer_finish(cram_shard_writer *w, cram_err *err);
void cram_shard_writer_abort(cram_shard_writer *w);

/* All shards of one split in a directory, opened together and checked for
 * agreement (same vocab, seq_len, tokenizer, shard_count, indices 0..n-1).
 * A train split without a single sequence is refused (nothing to train on);
 * an empty held-out split opens, and its users say when it is too small. */
typedef struct cram_dataset {
  cram_shard *shards;
  size_t nshards;
  uint64_t *first_seq; /* global index of each shard's first sequence */
  uint64_t seq_count;
  uint32_t seq_len, vocab_size;
  uint64_t tokenizer_hash;
} cram_dataset;

cram_status cram_dataset_open(cram_dataset *d, const char *dir, const char *split, const cram_shard_expect *expect,
                              unsigned verify, cram_err *err);
const uint16_t *cram_dataset_seq(const cram_dataset *d, uint64_t i);
/* The file holding global sequence i (for messages), with i's index within
 * it in *local (if non-NULL); NULL when i is out of range. */
const char *cram_dataset_seq_path(const cram_dataset *d, uint64_t i, uint64_t *local);
void cram_dataset_close(cram_dataset *d);

/* "<dir>/<split>-<index:05>.shard", malloc'd. */
char *cram_shard_name(const char *dir, const char *split, uint32_t index);

/* fsync a directory so a rename inside it is durable. */
cram_status cram_fsync_dir(const char *dir, cram_err *err);

#endif
