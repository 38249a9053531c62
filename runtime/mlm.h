/* mlm.h - MLM masking, the reference collator with fixed counts per sequence
 * (cramming backend/utils.py PatchedDataCollatorForLanguageModeling):
 * exactly n positions of each sequence are chosen uniformly without
 * replacement; in the (random) order chosen, the first round(0.8 n) become
 * [MASK], the next round(0.9 n) - round(0.8 n) a uniform random id in
 * [0, vocab), the rest keep their token. targets = original id at the chosen
 * positions, -100 elsewhere. Special tokens are not excluded (as reference).
 *
 * Randomness is counter-based: sequence number k of the training stream is
 * masked from a generator keyed by (seed, k) alone, so masking is
 * reproducible and a resumed run needs only k. round() is Python's
 * (half to even), so counts equal the reference's. */
#ifndef CRAM_MLM_H
#define CRAM_MLM_H

#include <stdint.h>

#include "status.h"

#define CRAM_MLM_IGNORE (-100)

typedef struct cram_mlm {
  uint32_t seq_len, vocab;
  uint32_t n;        /* positions per sequence */
  uint32_t n_mask;   /* round(0.8 n) -> mask_id */
  uint32_t n_random; /* round(0.9 n) - round(0.8 n) -> random id */
  uint32_t mask_id;
  uint64_t seed;
} cram_mlm;

/* Python round(): half to even. */
uint32_t cram_mlm_round(double x);

/* n = number of positions per sequence (the model's `masked` dim, or
 * round(p * seq_len)); mask_id must be < vocab. */
cram_status cram_mlm_init(cram_mlm *m, uint32_t seq_len, uint32_t vocab, uint32_t n, uint32_t mask_id, uint64_t seed,
                          cram_err *err);

/* Masks sequence `in` (stream index k) into tokens/targets (seq_len each).
 * Returns 0, or -1 if a token of `in` is >= vocab. */
int cram_mlm_apply(const cram_mlm *m, uint64_t k, const uint16_t *in, int32_t *tokens, int32_t *targets);

/* Counter-based generator (splitmix64 of a key and a counter), exposed for
 * the data order and tests. */
uint64_t cram_rng_u64(uint64_t key, uint64_t counter);
uint64_t cram_rng_key(uint64_t seed, uint64_t stream, uint64_t index);

#endif
