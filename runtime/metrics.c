/* metrics.c - GLUE metrics (metrics.h). */
#include "metrics.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

double cram_metric_accuracy(const int32_t *pred, const int32_t *gold, size_t n) {
  size_t ok = 0;
  for (size_t i = 0; i < n; i++) ok += pred[i] == gold[i];
  return n ? (double)ok / (double)n : 0.0;
}

/* Confusion counts of the positive class 1. */
static void confusion(const int32_t *pred, const int32_t *gold, size_t n, double *tp, double *tn, double *fp, double *fn) {
  *tp = *tn = *fp = *fn = 0;
  for (size_t i = 0; i < n; i++) {
    int p = pred[i] == 1, g = gold[i] == 1;
    *tp += p && g, *tn += !p && !g, *fp += p && !g, *fn += !p && g;
  }
}

double cram_metric_mcc(const int32_t *pred, const int32_t *gold, size_t n) {
  double tp, tn, fp, fn;
  confusion(pred, gold, n, &tp, &tn, &fp, &fn);
  double den = (tp + fp) * (tp + fn) * (tn + fp) * (tn + fn);
  return den > 0 ? (tp * tn - fp * fn) / sqrt(den) : 0.0;
}

double cram_metric_f1(const int32_t *pred, const int32_t *gold, size_t n) {
  double tp, tn, fp, fn;
  confusion(pred, gold, n, &tp, &tn, &fp, &fn);
  return tp > 0 ? 2 * tp / (2 * tp + fp + fn) : 0.0;
}

double cram_metric_pearson(const double *x, const double *y, size_t n) {
  if (n < 2) return 0.0;
  double mx = 0, my = 0;
  for (size_t i = 0; i < n; i++) mx += x[i], my += y[i];
  mx /= (double)n, my /= (double)n;
  double sxy = 0, sxx = 0, syy = 0;
  for (size_t i = 0; i < n; i++) {
    double dx = x[i] - mx, dy = y[i] - my;
    sxy += dx * dy, sxx += dx * dx, syy += dy * dy;
  }
  if (!(sxx > 0) || !(syy > 0)) return 0.0;
  double r = sxy / sqrt(sxx * syy);
  return r > 1 ? 1 : r < -1 ? -1 : r;
}

typedef struct {
  double v;
  size_t i;
} keyed;
static int by_value(const void *a, const void *b) {
  const keyed *x = a, *y = b;
  return x->v < y->v ? -1 : x->v > y->v ? 1 : (x->i > y->i) - (x->i < y->i);
}

int cram_metric_ranks(const double *x, size_t n, double *r) {
  keyed *k = malloc((n ? n : 1) * sizeof *k);
  if (!k) return -1;
  for (size_t i = 0; i < n; i++) k[i] = (keyed){ x[i], i };
  qsort(k, n, sizeof *k, by_value);
  for (size_t s = 0; s < n;) {
    size_t e = s + 1;
    while (e < n && k[e].v == k[s].v) e++;
    double avg = (double)(s + 1 + e) / 2.0; /* mean of the 1-based ranks s+1 .. e */
    for (size_t j = s; j < e; j++) r[k[j].i] = avg;
    s = e;
  }
  free(k);
  return 0;
}

double cram_metric_spearman(const double *x, const double *y, size_t n) {
  double *rx = malloc((n ? n : 1) * sizeof *rx), *ry = malloc((n ? n : 1) * sizeof *ry);
  double r = NAN;
  if (rx && ry && !cram_metric_ranks(x, n, rx) && !cram_metric_ranks(y, n, ry)) r = cram_metric_pearson(rx, ry, n);
  free(rx), free(ry);
  return r;
}

double cram_metric_glue_average(const double *scores, size_t n) {
  double s = 0;
  for (size_t i = 0; i < n; i++) s += scores[i];
  return n ? s / (double)n : NAN;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

double cram_metric_median(const double *x, size_t n) {
  if (n == 0) return NAN;
  double *c = malloc(n * sizeof *c);
  if (!c) return NAN;
  memcpy(c, x, n * sizeof *c);
  qsort(c, n, sizeof *c, cmp_double);
  double m = n % 2 ? c[n / 2] : (c[n / 2 - 1] + c[n / 2]) / 2.0;
  free(c);
  return m;
}
