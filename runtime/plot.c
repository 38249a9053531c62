/* plot.c - metrics of several runs as one figure; see plot.h. */
#include "plot.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chart.h"
#include "json.h"

/* One run's columns. */
typedef struct run {
  double *x, *loss, *eval, *lr, *batch;
  size_t n, cap;
  int has_eval;
  char label[160], eval_label[176];
} run;

static void run_free(run *r) {
  free(r->x), free(r->loss), free(r->eval), free(r->lr), free(r->batch);
  memset(r, 0, sizeof *r);
}

static int grow(run *r) {
  size_t cap = r->cap ? 2 * r->cap : 1024;
  double **cols[] = { &r->x, &r->loss, &r->eval, &r->lr, &r->batch };
  for (size_t c = 0; c < sizeof cols / sizeof cols[0]; c++) {
    double *q = realloc(*cols[c], cap * sizeof(double));
    if (!q) return -1;
    *cols[c] = q;
  }
  r->cap = cap;
  return 0;
}

static cram_status read_run(const char *dir, const cram_plot_opts *o, run *r, cram_err *err) {
  char path[4096];
  snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
  FILE *in = fopen(path, "r");
  if (!in) return cram_err_set(err, CRAM_E_IO, "%s: %s", path, strerror(errno));
  static const char *const key[] = { "time", "tokens", "step" };
  char line[4096];
  double ema = NAN;
  while (fgets(line, sizeof line, in)) {
    if (line[0] != '{') continue;
    double x = cram_json_num(line, key[o->x]);
    if (!isfinite(x)) continue;
    if (r->n == r->cap && grow(r)) {
      fclose(in);
      return cram_err_set(err, CRAM_E_NOMEM, "%s: out of memory", path);
    }
    double loss = cram_json_num(line, "loss"), skipped = cram_json_num(line, "skipped");
    if (isfinite(loss) && o->smooth > 0) loss = ema = isfinite(ema) ? o->smooth * ema + (1 - o->smooth) * loss : loss;
    size_t i = r->n++;
    r->x[i] = x;
    r->loss[i] = loss;
    r->eval[i] = cram_json_num(line, "eval_loss");
    r->has_eval |= isfinite(r->eval[i]);
    r->lr[i] = skipped == 1 ? NAN : cram_json_num(line, "lr"); /* a skipped update has no learning rate */
    r->batch[i] = cram_json_num(line, "batch");
  }
  fclose(in);
  if (r->n == 0) return cram_err_set(err, CRAM_E_ARG, "%s: no metrics lines to plot", path);
  snprintf(r->label, sizeof r->label, "%s", dir);
  snprintf(r->eval_label, sizeof r->eval_label, "%s held-out", dir);
  return CRAM_OK;
}

cram_status cram_plot(const char *const *runs, size_t nruns, const char *out_path, const cram_plot_opts *o, size_t *npoints,
                      cram_err *err) {
  if (nruns == 0) return cram_err_set(err, CRAM_E_ARG, "no runs to plot");
  run *R = calloc(nruns, sizeof *R);
  cram_series *s = calloc(4 * nruns, sizeof *s);
  double **ex = calloc(nruns, sizeof *ex), **ey = calloc(nruns, sizeof *ey);
  cram_status r = CRAM_OK;
  FILE *f = NULL;
  char tmp[4096];
  snprintf(tmp, sizeof tmp, "%s.tmp", out_path);
  if (!R || !s || !ex || !ey) {
    r = cram_err_set(err, CRAM_E_NOMEM, "out of memory");
    goto out;
  }
  size_t total = 0, nloss = 0;
  for (size_t i = 0; i < nruns; i++) {
    if ((r = read_run(runs[i], o, &R[i], err))) goto out;
    total += R[i].n;
  }
  /* series: loss (+ held-out), lr, batch */
  for (size_t i = 0; i < nruns; i++) {
    s[nloss++] = (cram_series){ R[i].label, R[i].x, R[i].loss, R[i].n };
    if (!R[i].has_eval) continue;
    ex[i] = malloc(R[i].n * sizeof(double)), ey[i] = malloc(R[i].n * sizeof(double));
    if (!ex[i] || !ey[i]) {
      r = cram_err_set(err, CRAM_E_NOMEM, "out of memory");
      goto out;
    }
    size_t k = 0;
    for (size_t j = 0; j < R[i].n; j++)
      if (isfinite(R[i].eval[j])) ex[i][k] = R[i].x[j], ey[i][k++] = R[i].eval[j];
    s[nloss++] = (cram_series){ R[i].eval_label, ex[i], ey[i], k };
  }
  cram_series *lr = s + nloss, *bs = lr + nruns;
  for (size_t i = 0; i < nruns; i++) {
    lr[i] = (cram_series){ R[i].label, R[i].x, R[i].lr, R[i].n };
    bs[i] = (cram_series){ R[i].label, R[i].x, R[i].batch, R[i].n };
  }
  static const char *const xl[] = { "training time (s)", "tokens seen", "updates" };
  char loss_title[64];
  snprintf(loss_title, sizeof loss_title, o->smooth > 0 ? "MLM loss (EMA %.3g)" : "MLM loss", o->smooth);
  cram_chart ch[3] = { { loss_title, xl[o->x], "loss", s, nloss },
                       { "learning rate", xl[o->x], "lr", lr, nruns },
                       { "batch size", xl[o->x], "sequences", bs, nruns } };
  char heading[256];
  if (nruns == 1) snprintf(heading, sizeof heading, "%s (%zu updates)", runs[0], R[0].n);
  else snprintf(heading, sizeof heading, "%zu runs", nruns);
  if (o->png) {
    r = cram_chart_png(tmp, heading, ch, 3, err);
    if (r) goto out;
  } else {
    if (!(f = fopen(tmp, "w"))) {
      r = cram_err_set(err, CRAM_E_IO, "%s: %s", tmp, strerror(errno));
      goto out;
    }
    cram_chart_svg(f, heading, ch, 3);
    int bad = ferror(f);
    if (fclose(f) != 0 || bad) {
      f = NULL;
      r = cram_err_set(err, CRAM_E_IO, "%s: %s", tmp, strerror(errno));
      goto out;
    }
    f = NULL;
  }
  if (rename(tmp, out_path) != 0) {
    r = cram_err_set(err, CRAM_E_IO, "%s: %s", out_path, strerror(errno));
    goto out;
  }
  if (npoints) *npoints = total;
out:
  if (f) fclose(f);
  if (r) remove(tmp);
  for (size_t i = 0; R && i < nruns; i++) {
    run_free(&R[i]);
    if (ex) free(ex[i]);
    if (ey) free(ey[i]);
  }
  free(R), free(s), free(ex), free(ey);
  return r;
}
