/* test_mlm.c: runtime/mlm.h — exact per-sequence counts of the reference
 * collator (n positions, round(0.8n) [MASK], round(0.9n)-round(0.8n) random,
 * rest kept), distinct positions, targets, reproducibility per (seed, k),
 * uniformity of positions, Python rounding, data order permutation.
 * Prints "N passed, M failed". */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "mlm.h"
#include "train.h"

#include "check.h"

int main(void) {
  CHECK(cram_mlm_round(25.6) == 26 && cram_mlm_round(28.8) == 29);
  CHECK(cram_mlm_round(2.5) == 2 && cram_mlm_round(3.5) == 4 && cram_mlm_round(0.5) == 0);
  cram_mlm m;
  cram_err err = { 0 };
  CHECK(cram_mlm_init(&m, 128, 32768, 32, 4, 1, &err) == CRAM_OK);
  CHECK(m.n == 32 && m.n_mask == 26 && m.n_random == 3);
  CHECK(cram_mlm_init(&m, 16, 64, 17, 4, 1, &err) != CRAM_OK);
  CHECK(cram_mlm_init(&m, 16, 64, 4, 64, 1, &err) != CRAM_OK && strstr(err.msg, "MASK"));

  /* Inputs: never the mask id, so a kept or random token is distinguishable
     * by target vs token; ids 5.. */
  uint16_t in[128];
  int32_t tok[128], tgt[128], tok2[128], tgt2[128];
  cram_mlm_init(&m, 128, 32768, 32, 4, 123, &err);
  long pos_hist[128] = { 0 };
  int exact = 1, repro = 1, targets_ok = 1;
  long n_exact26 = 0;
  long changed_random = 0;
  for (uint64_t k = 0; k < 4000; k++) {
    for (int i = 0; i < 128; i++) in[i] = (uint16_t)(5 + (k * 131 + (uint64_t)i * 17) % 30000);
    if (cram_mlm_apply(&m, k, in, tok, tgt) != 0) exact = 0;
    int nt = 0, nmask = 0, nkeep_or_rand = 0;
    for (int i = 0; i < 128; i++) {
      if (tgt[i] != CRAM_MLM_IGNORE) {
        nt++;
        pos_hist[i]++;
        if (tgt[i] != in[i]) targets_ok = 0;
        if (tok[i] == 4) nmask++;
        else {
          nkeep_or_rand++;
          if (tok[i] != in[i]) changed_random++;
        }
      } else if (tok[i] != in[i]) targets_ok = 0;
    }
    /* a random replacement may draw the [MASK] id itself (p = 3/32768) */
    if (nt != 32 || nmask < 26 || nmask > 29 || nmask + nkeep_or_rand != 32) exact = 0;
    if (nmask == 26) n_exact26++;
    cram_mlm_apply(&m, k, in, tok2, tgt2);
    if (memcmp(tok, tok2, sizeof tok) || memcmp(tgt, tgt2, sizeof tgt)) repro = 0;
  }
  CHECK(exact);
  CHECK(n_exact26 >= 3990);
  CHECK(targets_ok);
  CHECK(repro);
  /* 3 random ids per sequence, of which ~3/30000 collide with the original. */
  CHECK(changed_random > 4000 * 3 * 0.99 && changed_random <= 4000 * 3);
  /* positions uniform: expected 4000*32/128 = 1000 each */
  double chi = 0;
  for (int i = 0; i < 128; i++) chi += (pos_hist[i] - 1000.0) * (pos_hist[i] - 1000.0) / 1000.0;
  CHECK(chi < 200); /* 127 dof: mean 127, sd ~16 */
  /* different seeds / different k differ */
  cram_mlm m2;
  cram_mlm_init(&m2, 128, 32768, 32, 4, 124, &err);
  cram_mlm_apply(&m, 7, in, tok, tgt);
  cram_mlm_apply(&m2, 7, in, tok2, tgt2);
  CHECK(memcmp(tgt, tgt2, sizeof tgt) != 0);
  cram_mlm_apply(&m, 8, in, tok2, tgt2);
  CHECK(memcmp(tgt, tgt2, sizeof tgt) != 0);
  /* token out of range */
  in[5] = 40000;
  CHECK(cram_mlm_apply(&m, 0, in, tok, tgt) == -1);
  /* long sequences use the rejection path; counts still exact and distinct */
  static uint16_t lin[2048];
  static int32_t ltok[2048], ltgt[2048];
  cram_mlm ml;
  CHECK(cram_mlm_init(&ml, 2048, 100, 512, 4, 9, &err) == CRAM_OK);
  for (int i = 0; i < 2048; i++) lin[i] = (uint16_t)(5 + i % 90);
  cram_mlm_apply(&ml, 3, lin, ltok, ltgt);
  int lt = 0, lm = 0;
  for (int i = 0; i < 2048; i++) lt += ltgt[i] != CRAM_MLM_IGNORE, lm += ltgt[i] != CRAM_MLM_IGNORE && ltok[i] == 4;
  CHECK(lt == 512 && lm == (int)cram_mlm_round(0.8 * 512));
  /* data order: identity without shuffle, a permutation per epoch with it */
  CHECK(cram_data_index(1234, 1000, 5, 0) == 234);
  static unsigned char seen[1000];
  int perm = 1, ident = 1;
  for (uint64_t e = 0; e < 3; e++) {
    memset(seen, 0, sizeof seen);
    for (uint64_t i = 0; i < 1000; i++) {
      uint64_t x = cram_data_index(e * 1000 + i, 1000, 5, 1);
      if (x >= 1000 || seen[x]) perm = 0;
      else seen[x] = 1;
      if (x != i) ident = 0;
    }
  }
  CHECK(perm && !ident);
  CHECK(cram_data_index(17, 1000, 5, 1) != cram_data_index(1017, 1000, 5, 1) ||
        cram_data_index(18, 1000, 5, 1) != cram_data_index(1018, 1000, 5, 1));
  return check_summary("test_mlm");
}
