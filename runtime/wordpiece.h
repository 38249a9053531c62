/* wordpiece.h - WordPiece encoding in C with a `cram data` vocabulary.
 *
 * Why in C: finetuning tokenises a few hundred thousand short GLUE sentences
 * and must not need Python at training time. Encoding (unlike training a
 * vocabulary) is small and fully specified, so runtime/wordpiece.c reproduces
 * tools/cram_tokenize.py's pipeline exactly: the reference normaliser
 * (`` and '' -> ", NFD, lowercase, strip accents, drop non-ASCII; collapsing
 * spaces cannot change ids), the Whitespace pre-tokenizer (\w+|[^\w\s]+),
 * greedy longest-match WordPiece with "##" continuations, [UNK] for a word
 * that cannot be split or is longer than 100 characters. tests/data checks
 * it id for id against Hugging Face `tokenizers` (docs/finetune.md). */
#ifndef CRAM_WORDPIECE_H
#define CRAM_WORDPIECE_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"

typedef struct cram_wordpiece cram_wordpiece;

/* Ids of the special tokens ([PAD] [UNK] [CLS] [SEP] [MASK] or the
 * reference's <pad> <unk> <cls> <sep> <mask>); UINT32_MAX when absent. */
typedef struct cram_wp_specials {
  uint32_t pad, unk, cls, sep, mask;
} cram_wp_specials;

/* A growable id list. */
typedef struct cram_idvec {
  int32_t *ids;
  size_t n, cap;
} cram_idvec;

/* Loads a vocab.txt (one token per "\n"-terminated line, id = line number,
 * as `cram data` writes it). Needs [UNK], [CLS] and [SEP]. */
cram_status cram_wordpiece_load(const char *vocab_path, cram_wordpiece **out, cram_err *err);
void cram_wordpiece_free(cram_wordpiece *wp);
uint32_t cram_wordpiece_size(const cram_wordpiece *wp);
cram_wp_specials cram_wordpiece_specials(const cram_wordpiece *wp);
/* FNV-1a 64 of the vocabulary file's bytes (recorded in finetune runs). */
uint64_t cram_wordpiece_hash(const cram_wordpiece *wp);
/* Id of token `tok` (exact text), or -1. */
int64_t cram_wordpiece_id(const cram_wordpiece *wp, const char *tok, size_t len);

/* Appends the ids of UTF-8 text[0..len) (no special tokens added). Invalid
 * UTF-8 bytes are dropped, as the normaliser drops U+FFFD. */
cram_status cram_wordpiece_encode(const cram_wordpiece *wp, const char *text, size_t len, cram_idvec *out, cram_err *err);

void cram_idvec_free(cram_idvec *v);
int cram_idvec_push(cram_idvec *v, int32_t id); /* 0, or -1 when out of memory */

#endif
