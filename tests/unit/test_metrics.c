/* test_metrics.c - the GLUE metrics (runtime/metrics.c) against values
 * worked out by hand, and their degenerate cases (no NaN anywhere). */
#include <math.h>

#include "check.h"
#include "metrics.h"

#define NEAR(a, b) (fabs((a) - (b)) < 1e-9)

int main(void) {
  /* tp = 2 (items 0, 4), fp = 1 (1), tn = 1 (2), fn = 1 (3). */
  const int32_t pred[] = { 1, 1, 0, 0, 1 }, gold[] = { 1, 0, 0, 1, 1 };
  CHECK(NEAR(cram_metric_accuracy(pred, gold, 5), 0.6));
  CHECK(NEAR(cram_metric_mcc(pred, gold, 5), 1.0 / 6.0)); /* (2*1 - 1*1) / sqrt(3*3*2*2) */
  CHECK(NEAR(cram_metric_f1(pred, gold, 5), 4.0 / 6.0));  /* 2tp / (2tp + fp + fn) */
  const int32_t inv[] = { 0, 0, 1, 1, 0 };
  CHECK(NEAR(cram_metric_mcc(inv, gold, 5), -1.0 / 6.0));
  CHECK(NEAR(cram_metric_mcc(gold, gold, 5), 1.0));

  /* Degenerate: one class only, constant predictions -> 0, never NaN. */
  const int32_t ones[] = { 1, 1, 1, 1, 1 }, zeros[] = { 0, 0, 0, 0, 0 };
  CHECK(cram_metric_mcc(ones, gold, 5) == 0.0);
  CHECK(cram_metric_mcc(zeros, gold, 5) == 0.0);
  CHECK(cram_metric_mcc(ones, ones, 5) == 0.0);
  CHECK(cram_metric_f1(zeros, gold, 5) == 0.0);
  CHECK(cram_metric_f1(zeros, zeros, 5) == 0.0);
  CHECK(NEAR(cram_metric_f1(ones, ones, 5), 1.0));
  CHECK(NEAR(cram_metric_f1(ones, gold, 5), 2.0 * 3 / (2.0 * 3 + 2)));
  CHECK(cram_metric_accuracy(pred, gold, 0) == 0.0);

  /* Three classes (MNLI): accuracy only. */
  const int32_t p3[] = { 0, 1, 2, 2, 1, 0 }, g3[] = { 0, 1, 1, 2, 2, 0 };
  CHECK(NEAR(cram_metric_accuracy(p3, g3, 6), 4.0 / 6.0));

  /* Pearson: sxy = 11, sxx = 5, syy = 26. */
  const double x[] = { 1, 2, 3, 4 }, y[] = { 2, 4, 5, 9 };
  CHECK(NEAR(cram_metric_pearson(x, y, 4), 11.0 / sqrt(130.0)));
  /* Spearman with a tie: ranks x = 1, 2.5, 2.5, 4; y = 1, 3, 2, 4 -> 4.5 / sqrt(4.5 * 5). */
  const double xt[] = { 1, 2, 2, 3 }, yt[] = { 10, 30, 20, 40 };
  CHECK(NEAR(cram_metric_spearman(xt, yt, 4), 4.5 / sqrt(22.5)));
  double r[4];
  CHECK(cram_metric_ranks(xt, 4, r) == 0 && r[0] == 1 && r[1] == 2.5 && r[2] == 2.5 && r[3] == 4);
  const double y3[] = { 5, 5, 5, 1 }; /* three-way tie: ranks 3, 3, 3, 1 */
  CHECK(cram_metric_ranks(y3, 4, r) == 0 && r[0] == 3 && r[1] == 3 && r[2] == 3 && r[3] == 1);
  /* Monotone but not linear: Spearman 1, Pearson below 1. */
  const double sq[] = { 1, 4, 9, 16 };
  CHECK(NEAR(cram_metric_spearman(x, sq, 4), 1.0));
  CHECK(cram_metric_pearson(x, sq, 4) < 1.0);
  /* Constant predictions (a collapsed regression head): 0, no NaN. */
  const double c[] = { 2.5, 2.5, 2.5, 2.5 };
  CHECK(cram_metric_pearson(c, y, 4) == 0.0);
  CHECK(cram_metric_spearman(c, y, 4) == 0.0);
  CHECK(cram_metric_pearson(x, y, 1) == 0.0);

  /* The GLUE average of the model card's table (9 numbers, MNLI m and mm both): 80.72. */
  const double card[] = { 84.1, 84.6, 87.5, 90.2, 92.0, 53.3, 87.4, 88.9, 58.5 };
  CHECK(NEAR(cram_metric_glue_average(card, 9), 726.5 / 9.0));
  CHECK(isnan(cram_metric_glue_average(card, 0)));
  const double m3[] = { 3, 1, 2 }, m4[] = { 4, 1, 3, 2 };
  CHECK(cram_metric_median(m3, 3) == 2.0 && cram_metric_median(m4, 4) == 2.5);
  return check_summary("test_metrics");
}
