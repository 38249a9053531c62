/* pack.c - filter, dedup set, held-out split, packer and orderings (pack.h). */
#include "pack.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "checksum.h"

int cram_filter_keep(uint64_t ntok, uint64_t nchars, double ratio) {
  if (nchars == 0) return 0;
  if (!(ratio > 0)) return 1;
  return (double)ntok < ratio * (double)nchars;
}

int cram_heldout_pick(uint64_t doc_index, double fraction) {
  if (!(fraction > 0)) return 0;
  if (fraction >= 1) return 1;
  double a = floor((double)doc_index * fraction);
  double b = floor((double)(doc_index + 1) * fraction);
  return b > a;
}

/* ---- hash set ------------------------------------------------------------ */

void cram_hashset_init(cram_hashset *s) { memset(s, 0, sizeof *s); }
void cram_hashset_free(cram_hashset *s) {
  free(s->slots);
  memset(s, 0, sizeof *s);
}

static uint64_t mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  x ^= x >> 31;
  return x;
}

static void hs_put(uint64_t *slots, size_t cap, uint64_t key) {
  size_t i = (size_t)mix64(key) & (cap - 1);
  while (slots[i] != 0 && slots[i] != key) i = (i + 1) & (cap - 1);
  slots[i] = key;
}

int cram_hashset_insert(cram_hashset *s, uint64_t key) {
  if (key == 0) key = 0x9e3779b97f4a7c15ull; /* 0 marks empty slots */
  if ((s->count + 1) * 2 > s->cap) {
    size_t ncap = s->cap ? s->cap * 2 : 1024;
    uint64_t *ns = calloc(ncap, sizeof *ns);
    if (!ns) return -1;
    for (size_t i = 0; i < s->cap; i++)
      if (s->slots[i]) hs_put(ns, ncap, s->slots[i]);
    free(s->slots);
    s->slots = ns;
    s->cap = ncap;
  }
  size_t i = (size_t)mix64(key) & (s->cap - 1);
  while (s->slots[i] != 0) {
    if (s->slots[i] == key) return 0;
    i = (i + 1) & (s->cap - 1);
  }
  s->slots[i] = key;
  s->count++;
  return 1;
}

uint64_t cram_doc_fingerprint(const uint16_t *ids, size_t n) {
  uint64_t h = CRAM_FNV1A64_INIT;
  for (size_t i = 0; i < n; i++) {
    unsigned char b[2] = { (unsigned char)(ids[i] & 0xff), (unsigned char)(ids[i] >> 8) };
    h = cram_fnv1a64(h, b, 2);
  }
  /* fold in the length so prefixes differ even in degenerate cases */
  return mix64(h ^ (uint64_t)n);
}

/* ---- packer -------------------------------------------------------------- */

cram_status cram_packer_init(cram_packer *p, uint32_t seq_len, uint16_t sep_id, cram_emit_fn emit, void *ctx, cram_err *err) {
  memset(p, 0, sizeof *p);
  if (seq_len == 0) return cram_err_set(err, CRAM_E_ARG, "sequence length must be > 0");
  p->cur = malloc((size_t)seq_len * sizeof *p->cur);
  if (!p->cur) return cram_err_set(err, CRAM_E_NOMEM, "out of memory");
  p->seq_len = seq_len;
  p->sep_id = sep_id;
  p->emit = emit;
  p->ctx = ctx;
  return CRAM_OK;
}

void cram_packer_free(cram_packer *p) {
  free(p->cur);
  memset(p, 0, sizeof *p);
}

static cram_status packer_push(cram_packer *p, const uint16_t *ids, size_t n, cram_err *err) {
  while (n) {
    size_t room = p->seq_len - p->fill;
    size_t k = n < room ? n : room;
    memcpy(p->cur + p->fill, ids, k * sizeof *ids);
    p->fill += (uint32_t)k;
    ids += k;
    n -= k;
    p->tokens += k;
    if (p->fill == p->seq_len) {
      cram_status r = p->emit(p->ctx, p->cur, err);
      if (r != CRAM_OK) return r;
      p->seqs++;
      p->fill = 0;
    }
  }
  return CRAM_OK;
}

cram_status cram_packer_add(cram_packer *p, const uint16_t *ids, size_t n, cram_err *err) {
  cram_status r = packer_push(p, ids, n, err);
  if (r != CRAM_OK) return r;
  return packer_push(p, &p->sep_id, 1, err);
}

/* ---- ordering -------------------------------------------------------------- */

uint32_t cram_count_token(const uint16_t *seq, uint32_t n, uint32_t token) {
  uint32_t c = 0;
  for (uint32_t i = 0; i < n; i++) c += seq[i] == token;
  return c;
}

cram_status cram_order_by_key_desc(const uint32_t *keys, uint64_t n, uint32_t max_key, uint64_t *perm, cram_err *err) {
  uint64_t *start = calloc((size_t)max_key + 2, sizeof *start);
  if (!start) return cram_err_set(err, CRAM_E_NOMEM, "out of memory");
  for (uint64_t i = 0; i < n; i++) {
    if (keys[i] > max_key) {
      free(start);
      return cram_err_set(err, CRAM_E_ARG, "sort key %u > max %u", keys[i], max_key);
    }
    start[max_key - keys[i] + 1]++; /* bucket b = max_key - key: larger keys first */
  }
  for (uint32_t b = 1; b <= max_key + 1; b++) start[b] += start[b - 1];
  for (uint64_t i = 0; i < n; i++) perm[start[max_key - keys[i]]++] = i;
  free(start);
  return CRAM_OK;
}

uint64_t cram_splitmix64(uint64_t *state) {
  uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/* uniform in [0, bound) by rejection (no modulo bias) */
static uint64_t bounded(uint64_t *state, uint64_t bound) {
  uint64_t limit = UINT64_MAX - UINT64_MAX % bound;
  uint64_t x;
  do x = cram_splitmix64(state);
  while (x >= limit);
  return x % bound;
}

void cram_order_shuffle(uint64_t *perm, uint64_t n, uint64_t seed) {
  uint64_t state = seed;
  for (uint64_t i = 0; i < n; i++) perm[i] = i;
  for (uint64_t i = n; i > 1; i--) {
    uint64_t j = bounded(&state, i);
    uint64_t t = perm[i - 1];
    perm[i - 1] = perm[j];
    perm[j] = t;
  }
}
