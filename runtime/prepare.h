/* prepare.h - the C half of `cram data`: read a token stream, filter, dedup,
 * split, pack, order and write shards.
 *
 * Why split this way: tokenisation (normalisation, WordPiece training and
 * encoding) is done by Hugging Face `tokenizers` in tools/cram_tokenize.py,
 * which emits one record per document on a pipe; everything that decides
 * what the trainer will see (filtering, packing, ordering, the held-out
 * split, the shard bytes) is here, in C, deterministic and unit-tested
 * without Python. The stream format is documented in docs/data.md
 * ("Token stream") and summarised below.
 *
 *   stream  := "CRAMTOKS" u32(version=1) record* 'E'-record
 *   record  := 'S' u32 n bytes[n]                     stage label (UTF-8)
 *            | 'P' u64 done u64 total                  input bytes progress
 *            | 'V' u32 vocab u32 pad unk cls sep mask order_token
 *            | 'D' u64 nchars u32 ntok u16 ids[ntok]    one document
 *            | 'E' u64 documents u64 input_bytes       end of stream
 * All integers little-endian; 'V' precedes every 'D'; ids < vocab. */
#ifndef CRAM_PREPARE_H
#define CRAM_PREPARE_H

#include <signal.h>
#include <stdint.h>

#include "shard.h"
#include "status.h"

#define CRAM_STREAM_MAGIC   "CRAMTOKS"
#define CRAM_STREAM_VERSION 1u

typedef struct cram_prepare_stats {
  uint64_t docs_read;      /* 'D' records received */
  uint64_t docs_filtered;  /* dropped by the token/char ratio filter (incl. empty) */
  uint64_t docs_duplicate; /* dropped as exact duplicates */
  uint64_t docs_train, docs_heldout;
  uint64_t chars;            /* characters of all documents read */
  uint64_t tokens_read;      /* tokens of all documents read ([SEP] not counted) */
  uint64_t tokens_kept;      /* tokens of kept documents, [SEP]s included */
  uint64_t tokens_remainder; /* kept tokens lost in the final partial sequences */
  uint64_t seqs_train, seqs_heldout;
  uint32_t shards_train, shards_heldout;
  uint64_t input_bytes;  /* bytes of input files, as reported by the tool */
  uint64_t output_bytes; /* bytes of shards written */
  uint32_t vocab_size;
  uint64_t tokenizer_hash;
  uint32_t special[5]; /* pad unk cls sep mask */
  uint32_t order_token;
} cram_prepare_stats;

typedef void (*cram_progress_fn)(void *ctx, const char *stage, uint64_t done, uint64_t total, const cram_prepare_stats *st);

typedef struct cram_prepare_opts {
  const char *out_dir;       /* exists; holds vocab.txt written by the tool */
  uint32_t seq_len;          /* 128 */
  double filter_ratio;       /* 0.3; <= 0 disables */
  int dedup;                 /* exact-duplicate removal */
  int order;                 /* enum cram_order */
  uint64_t seed;             /* for CRAM_ORDER_SHUFFLE */
  double heldout_fraction;   /* of kept documents, 0..1 */
  uint64_t shard_seqs;       /* sequences per shard file (> 0) */
  cram_progress_fn progress; /* may be NULL; called from the reading thread */
  void *progress_ctx;
  volatile sig_atomic_t *stop; /* may be NULL; non-zero = abort (CRAM_E_INTERRUPTED) */
} cram_prepare_opts;

void cram_prepare_opts_default(cram_prepare_opts *o);

/* Consume the stream on fd until 'E' and write <out_dir>/{train,heldout}-NNNNN.shard
 * and <out_dir>/dataset.json atomically. Shards of an earlier run beyond the
 * new shard counts are removed. */
cram_status cram_prepare_from_fd(int fd, const cram_prepare_opts *o, cram_prepare_stats *st, cram_err *err);

#endif
