/* pack.h - the document -> sequence stage of `cram data`, in pieces that can
 * be tested one by one: the compression-ratio filter, exact-duplicate
 * detection, the held-out split, packing into fixed-length sequences, and the
 * two sequence orders (the reference's curriculum, or a seeded shuffle).
 * Semantics follow the Cramming reference (docs/data.md "Pipeline"). */
#ifndef CRAM_PACK_H
#define CRAM_PACK_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"

/* Filter (paper sec. "Data", reference remove_trash): keep a document iff
 * ntok < ratio * nchars, i.e. drop it when tokens/chars >= ratio. ratio <= 0
 * disables the filter. Empty documents (nchars == 0) are always dropped. */
int cram_filter_keep(uint64_t ntok, uint64_t nchars, double ratio);

/* Held-out split: among the documents that survive filtering, document number
 * i (0-based) is held out iff floor((i+1)*f) > floor(i*f). This takes exactly
 * floor(n*f) of n documents, evenly spread, with no randomness, so a split is
 * reproducible from the input alone. */
int cram_heldout_pick(uint64_t doc_index, double fraction);

/* Set of 64-bit document fingerprints for exact-duplicate removal. */
typedef struct cram_hashset {
  uint64_t *slots; /* 0 marks an empty slot; key 0 is remapped */
  size_t cap, count;
} cram_hashset;
void cram_hashset_init(cram_hashset *s);
void cram_hashset_free(cram_hashset *s);
/* 1 if newly inserted, 0 if already present, -1 out of memory. */
int cram_hashset_insert(cram_hashset *s, uint64_t key);

/* Fingerprint of a tokenised document (FNV-1a 64 over its uint16 ids). */
uint64_t cram_doc_fingerprint(const uint16_t *ids, size_t n);

/* Packer: documents are appended with one [SEP] after each, the stream is cut
 * into seq_len-token sequences; each full sequence goes to emit(). Whatever is
 * left at the end (< seq_len tokens) is the dropped remainder. */
typedef cram_status (*cram_emit_fn)(void *ctx, const uint16_t *seq, cram_err *err);
typedef struct cram_packer {
  uint32_t seq_len;
  uint16_t sep_id;
  uint16_t *cur;
  uint32_t fill;
  cram_emit_fn emit;
  void *ctx;
  uint64_t seqs;   /* sequences emitted */
  uint64_t tokens; /* tokens added, [SEP]s included */
} cram_packer;
cram_status cram_packer_init(cram_packer *p, uint32_t seq_len, uint16_t sep_id, cram_emit_fn emit, void *ctx, cram_err *err);
cram_status cram_packer_add(cram_packer *p, const uint16_t *ids, size_t n, cram_err *err);
static inline uint32_t cram_packer_remainder(const cram_packer *p) { return p->fill; }
void cram_packer_free(cram_packer *p);

/* Count of `token` in a sequence (the curriculum key). */
uint32_t cram_count_token(const uint16_t *seq, uint32_t n, uint32_t token);

/* Curriculum order (reference _sort_tokenized_dataset_by_token): perm gets the
 * sequence indices sorted by key DESCENDING, ties kept in input order (stable).
 * Keys must be <= max_key. Counting sort: O(n + max_key). */
cram_status cram_order_by_key_desc(const uint32_t *keys, uint64_t n, uint32_t max_key, uint64_t *perm, cram_err *err);
/* Seeded Fisher-Yates shuffle of 0..n-1 (splitmix64 generator, unbiased
 * bounded draws); identical output for identical (n, seed) on every host. */
void cram_order_shuffle(uint64_t *perm, uint64_t n, uint64_t seed);

/* splitmix64 step, exposed for tests. */
uint64_t cram_splitmix64(uint64_t *state);

#endif
