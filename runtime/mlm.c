/* mlm.c - reference MLM collator with fixed counts; see mlm.h. */
#include "mlm.h"

#include <math.h>
#include <string.h>

static uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

uint64_t cram_rng_u64(uint64_t key, uint64_t counter) { return mix64(key + (counter + 1) * 0x9e3779b97f4a7c15ull); }

uint64_t cram_rng_key(uint64_t seed, uint64_t stream, uint64_t index) {
  return mix64(mix64(seed ^ 0x6a09e667f3bcc909ull) ^ mix64(stream * 0x9e3779b97f4a7c15ull + 0x3c6ef372fe94f82bull) ^
               (index * 0xd1b54a32d192ed03ull));
}

/* Uniform in [0, bound) by rejection (no modulo bias). */
static uint32_t uniform(uint64_t key, uint64_t *ctr, uint32_t bound) {
  uint64_t lim = UINT64_MAX - UINT64_MAX % bound;
  for (;;) {
    uint64_t r = cram_rng_u64(key, (*ctr)++);
    if (r < lim) return (uint32_t)(r % bound);
  }
}

uint32_t cram_mlm_round(double x) {
  if (!(x > 0)) return 0;
  double f = floor(x), d = x - f;
  if (d > 0.5 || (d == 0.5 && fmod(f, 2.0) != 0)) f += 1;
  return (uint32_t)f;
}

cram_status cram_mlm_init(cram_mlm *m, uint32_t seq_len, uint32_t vocab, uint32_t n, uint32_t mask_id, uint64_t seed,
                          cram_err *err) {
  memset(m, 0, sizeof *m);
  if (seq_len == 0 || seq_len > 65536) return cram_err_set(err, CRAM_E_ARG, "masking: bad sequence length %u", seq_len);
  if (vocab == 0) return cram_err_set(err, CRAM_E_ARG, "masking: vocabulary size is 0");
  if (n > seq_len)
    return cram_err_set(err, CRAM_E_ARG, "masking: %u predictions per sequence but sequences have %u tokens", n, seq_len);
  if (mask_id >= vocab) return cram_err_set(err, CRAM_E_ARG, "masking: no [MASK] token id below the vocabulary size %u", vocab);
  m->seq_len = seq_len;
  m->vocab = vocab;
  m->n = n;
  m->n_mask = cram_mlm_round(0.8 * n);
  m->n_random = cram_mlm_round(0.9 * n) - m->n_mask;
  m->mask_id = mask_id;
  m->seed = seed;
  return CRAM_OK;
}

int cram_mlm_apply(const cram_mlm *m, uint64_t k, const uint16_t *in, int32_t *tokens, int32_t *targets) {
  uint32_t S = m->seq_len;
  for (uint32_t i = 0; i < S; i++) {
    if (in[i] >= m->vocab) return -1;
    tokens[i] = in[i];
    targets[i] = CRAM_MLM_IGNORE;
  }
  uint64_t key = cram_rng_key(m->seed, 1, k), ctr = 0;
  /* Positions: partial Fisher-Yates (the j-th pick is uniform among the
     * positions not yet picked), i.e. a uniformly random ordered subset like
     * the reference's argsort of random keys. Sequences longer than 1024 draw
     * by rejection instead of keeping a permutation buffer. */
  uint32_t perm[1024];
  if (S <= 1024) {
    for (uint32_t i = 0; i < S; i++) perm[i] = i;
    for (uint32_t j = 0; j < m->n; j++) {
      uint32_t r = j + uniform(key, &ctr, S - j);
      uint32_t t = perm[j];
      perm[j] = perm[r];
      perm[r] = t;
    }
  }
  for (uint32_t j = 0; j < m->n; j++) {
    uint32_t p;
    if (S <= 1024) p = perm[j];
    else do
        p = uniform(key, &ctr, S);
      while (targets[p] != CRAM_MLM_IGNORE);
    targets[p] = in[p];
    if (j < m->n_mask) tokens[p] = (int32_t)m->mask_id;
    else if (j < m->n_mask + m->n_random) tokens[p] = (int32_t)uniform(key, &ctr, m->vocab);
  }
  return 0;
}
