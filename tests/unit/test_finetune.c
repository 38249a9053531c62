/* test_finetune.c - the finetuning schedule (runtime/finetune.c, cram_ft_lr)
 * against Hugging Face's get_cosine_schedule_with_warmup as the reference
 * calls it (LambdaLR: update k uses the factor of step k - 1), and the
 * recipe's defaults. The loop itself is tested end to end by
 * tests/finetune/test_finetune_cli.sh. */
#include <math.h>

#include "check.h"
#include "finetune.h"

#define NEAR(a, b) (fabs((a) - (b)) < 1e-12)

int main(void) {
  /* 100 updates, warm-up int(0.1 * 100) = 10. */
  CHECK(cram_ft_lr(4e-5, 0.1, 100, 1) == 0.0);       /* factor(0) = 0/10 */
  CHECK(NEAR(cram_ft_lr(4e-5, 0.1, 100, 6), 2e-5));  /* factor(5) = 5/10 */
  CHECK(NEAR(cram_ft_lr(4e-5, 0.1, 100, 11), 4e-5)); /* factor(10): progress 0 -> 1 */
  CHECK(NEAR(cram_ft_lr(4e-5, 0.1, 100, 56), 2e-5)); /* progress 45/90: cos(pi/2) */
  CHECK(NEAR(cram_ft_lr(4e-5, 0.1, 100, 100), 4e-5 * 0.5 * (1 + cos(3.14159265358979323846 * 89.0 / 90.0))));
  CHECK(cram_ft_lr(4e-5, 0.1, 100, 101) == 0.0 || cram_ft_lr(4e-5, 0.1, 100, 101) < 1e-12);
  /* No warm-up: the first update at the peak. int(0.1 * 7) = 0. */
  CHECK(NEAR(cram_ft_lr(1e-3, 0.1, 7, 1), 1e-3));
  CHECK(NEAR(cram_ft_lr(1e-3, 0.0, 10, 1), 1e-3));
  /* Monotone after the warm-up. */
  int mono = 1;
  for (uint64_t k = 12; k <= 100; k++) mono &= cram_ft_lr(4e-5, 0.1, 100, k) <= cram_ft_lr(4e-5, 0.1, 100, k - 1);
  CHECK(mono);

  cram_ft_config c;
  cram_ft_config_default(&c);
  CHECK(c.lr == 4e-5 && c.warmup == 0.1 && c.epochs == 5 && c.dropout == 1);
  CHECK(c.beta1 == 0.9 && c.beta2 == 0.98 && c.eps == 1e-6 && c.weight_decay == 0.0);
  return check_summary("test_finetune");
}
