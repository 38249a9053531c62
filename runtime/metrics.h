/* metrics.h - the GLUE metrics, as GLUE (and Hugging Face `evaluate`, which
 * the Cramming reference calls) define them, in double precision.
 *
 * Degenerate inputs never give NaN: where a formula divides by zero the
 * result is 0, as scikit-learn returns for Matthews correlation and F1 (one
 * class only, constant predictions), and 0 for a correlation with a constant
 * side (scipy would return NaN; a constant predictor carries no
 * information, so 0 is what the GLUE average should see). */
#ifndef CRAM_METRICS_H
#define CRAM_METRICS_H

#include <stddef.h>
#include <stdint.h>

double cram_metric_accuracy(const int32_t *pred, const int32_t *gold, size_t n);
/* Binary Matthews correlation (positive class 1). */
double cram_metric_mcc(const int32_t *pred, const int32_t *gold, size_t n);
/* F1 of the positive class 1. */
double cram_metric_f1(const int32_t *pred, const int32_t *gold, size_t n);
double cram_metric_pearson(const double *x, const double *y, size_t n);
/* Pearson correlation of the ranks, ties given their average rank. */
double cram_metric_spearman(const double *x, const double *y, size_t n);
/* Ranks (1-based, ties averaged) of x[0..n) into r; 0, or -1 when out of memory. */
int cram_metric_ranks(const double *x, size_t n, double *r);

/* The GLUE average of the paper's table: the mean of the given task scores
 * (each one number, MNLI matched and mismatched counted as two, no WNLI);
 * NaN when n == 0. */
double cram_metric_glue_average(const double *scores, size_t n);

/* Median (mean of the two middle values for even n); NaN when n == 0. */
double cram_metric_median(const double *x, size_t n);

#endif
