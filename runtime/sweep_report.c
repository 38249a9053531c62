/* sweep_report.c - the results of a sweep: one table as Markdown, CSV and
 * JSON, the ranking against the base, fairness warnings, and the loss plots.
 * Every file is written to a temporary name and renamed, so an interrupted
 * report never leaves half a table. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chart.h"
#include "sweep.h"
#include "sweep_json.h"

#define PATHMAX 4096

typedef struct out_file {
  char path[PATHMAX], tmp[PATHMAX + 8];
  FILE *f;
} out_file;

static cram_status open_out(out_file *o, const char *dir, const char *name, cram_err *err) {
  snprintf(o->path, sizeof o->path, "%s/%s", dir, name);
  snprintf(o->tmp, sizeof o->tmp, "%s.tmp", o->path);
  o->f = fopen(o->tmp, "w");
  return o->f ? CRAM_OK : cram_err_set(err, CRAM_E_IO, "%s: %s", o->tmp, strerror(errno));
}

static cram_status close_out(out_file *o, cram_err *err) {
  if (fclose(o->f) != 0 || rename(o->tmp, o->path) != 0) {
    int e = errno;
    remove(o->tmp);
    return cram_err_set(err, CRAM_E_IO, "%s: %s", o->path, strerror(e));
  }
  return CRAM_OK;
}

static void fmt(char *b, size_t n, double v, const char *f) {
  if (isfinite(v)) snprintf(b, n, f, v);
  else snprintf(b, n, "-");
}

/* Order of rows in the tables: finished rows by held-out loss, then the rest
 * in SPEC order. */
static void ranking(const cram_sweep_row *rows, int n, int *order) {
  for (int i = 0; i < n; i++) order[i] = i;
  for (int i = 1; i < n; i++) { /* insertion sort: n is small and the order stable */
    int k = order[i], j = i;
    double lk = rows[k].outcome == CRAM_ROW_DONE ? rows[k].heldout_loss : INFINITY;
    while (j > 0) {
      int p = order[j - 1];
      double lp = rows[p].outcome == CRAM_ROW_DONE ? rows[p].heldout_loss : INFINITY;
      if (!(lk < lp)) break;
      order[j] = p;
      j--;
    }
    order[j] = k;
  }
}

static void md_table(FILE *f, const cram_sweep_row *rows, int n, const int *order) {
  const cram_sweep_row *base = &rows[0];
  int have_base = base->outcome == CRAM_ROW_DONE && isfinite(base->heldout_loss);
  fprintf(f, "| rank | variant | outcome | params | GFLOP/token | tok/s | tokens | train s | train loss | "
             "held-out loss | vs base | held-out acc | peak MiB | compile s | load |\n");
  fprintf(f, "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
  int rank = 0;
  for (int i = 0; i < n; i++) {
    const cram_sweep_row *r = &rows[order[i]];
    char c[11][32];
    fmt(c[0], 32, r->flops_per_token / 1e9, "%.4f");
    fmt(c[1], 32, r->tok_s, "%.0f");
    fmt(c[2], 32, r->train_s, "%.1f");
    fmt(c[3], 32, r->train_loss, "%.4f");
    fmt(c[4], 32, r->heldout_loss, "%.4f");
    fmt(c[5], 32, have_base && r->outcome == CRAM_ROW_DONE ? r->heldout_loss - base->heldout_loss : NAN, "%+.4f");
    fmt(c[6], 32, r->peak_rss_mib, "%.0f");
    fmt(c[7], 32, r->compile_s, "%.1f");
    fmt(c[8], 32, r->load_mean, "%.2f");
    fmt(c[10], 32, r->heldout_accuracy, "%.4f");
    if (r->outcome == CRAM_ROW_DONE) snprintf(c[9], 32, "%d", ++rank);
    else snprintf(c[9], 32, "-");
    fprintf(f, "| %s | %s%s | %s | %" PRId64 " | %s | %s | %" PRIu64 " | %s | %s | %s | %s | %s | %s | %s | %s |\n", c[9],
            r->name, order[i] == 0 ? " (base)" : "", cram_sweep_outcome_str(r->outcome), r->params, c[0], c[1], r->tokens, c[2],
            c[3], c[4], c[5], c[10], c[6], c[7], c[8]);
  }
  int notes = 0;
  for (int i = 0; i < n; i++) {
    const cram_sweep_row *r = &rows[order[i]];
    if (!r->why[0]) continue;
    if (!notes++) fprintf(f, "\n");
    fprintf(f, "- **%s** (%s): `", r->name, cram_sweep_outcome_str(r->outcome));
    for (const char *c = r->why; *c; c++) fputc(*c == '`' ? '\'' : *c, f);
    fprintf(f, "`\n");
  }
}

/* The downstream table: the pretrained variants by their finetuned dev metric
 * (higher is better: every GLUE metric is), with the difference to the base. */
static void md_downstream(FILE *f, const cram_sweep_spec *s, const cram_sweep_row *rows, int n) {
  const char *task = strrchr(s->downstream.task, '/');
  task = task && task[1] ? task + 1 : s->downstream.task;
  int *ord = malloc((size_t)n * sizeof *ord), m = 0;
  if (!ord) return;
  for (int i = 0; i < n; i++)
    if (rows[i].outcome == CRAM_ROW_DONE) ord[m++] = i;
  for (int i = 1; i < m; i++) /* insertion sort: scores descending, rows without one last, then SPEC order */
    for (int j = i; j > 0; j--) {
      double a = rows[ord[j - 1]].downstream, b = rows[ord[j]].downstream;
      if (!(isfinite(b) && (!isfinite(a) || b > a))) break;
      int t = ord[j - 1];
      ord[j - 1] = ord[j], ord[j] = t;
    }
  double base = rows[0].downstream;
  fprintf(f, "\n## Downstream: %s\n\n", task);
  fprintf(f, "Each pretrained encoder finetuned with `cram finetune` on `%s` (dev metric, higher is better).\n\n",
          s->downstream.task);
  fprintf(f, "| rank | variant | %s dev | vs base | note |\n|---|---|---|---|---|\n", task);
  for (int i = 0, rank = 0; i < m; i++) {
    const cram_sweep_row *r = &rows[ord[i]];
    char sc[32], d[32], rk[16] = "-";
    fmt(sc, sizeof sc, r->downstream, "%.2f");
    fmt(d, sizeof d, isfinite(base) ? r->downstream - base : NAN, "%+.2f");
    if (isfinite(r->downstream)) snprintf(rk, sizeof rk, "%d", ++rank);
    fprintf(f, "| %s | %s%s | %s | %s | ", rk, r->name, ord[i] == 0 ? " (base)" : "", sc, d);
    for (const char *c = r->downstream_why; *c; c++) fputc(*c == '|' ? '/' : *c, f);
    fputs(" |\n", f);
  }
  free(ord);
}

static void csv_field(FILE *f, const char *s) {
  fputc('"', f);
  for (; *s; s++) {
    if (*s == '"') fputc('"', f);
    fputc(*s, f);
  }
  fputc('"', f);
}

static void csv_num(FILE *f, double v, const char *fm) {
  fputc(',', f);
  if (isfinite(v)) fprintf(f, fm, v);
}

static void csv_table(FILE *f, const cram_sweep_row *rows, int n, const int *order) {
  fprintf(
    f, "variant,outcome,params,flops_per_token,tok_s,tokens,steps,train_s,train_loss,heldout_loss,heldout_accuracy,heldout_seqs,"
       "peak_rss_mib,compile_s,load_mean,why,downstream,downstream_why\n");
  for (int i = 0; i < n; i++) {
    const cram_sweep_row *r = &rows[order[i]];
    csv_field(f, r->name);
    fprintf(f, ",%s,%" PRId64, cram_sweep_outcome_str(r->outcome), r->params);
    csv_num(f, r->flops_per_token, "%.9g");
    csv_num(f, r->tok_s, "%.6g");
    fprintf(f, ",%" PRIu64 ",%" PRIu64, r->tokens, r->steps);
    csv_num(f, r->train_s, "%.6g");
    csv_num(f, r->train_loss, "%.9g");
    csv_num(f, r->heldout_loss, "%.9g");
    csv_num(f, r->heldout_accuracy, "%.9g");
    fprintf(f, ",%" PRIu64, r->heldout_seqs);
    csv_num(f, r->peak_rss_mib, "%.6g");
    csv_num(f, r->compile_s, "%.6g");
    csv_num(f, r->load_mean, "%.4g");
    fputc(',', f);
    csv_field(f, r->why);
    csv_num(f, r->downstream, "%.6g");
    fputc(',', f);
    csv_field(f, r->downstream_why);
    fputc('\n', f);
  }
}

/* Fairness: did the variants get the same budget under similar conditions?
 * Writes warnings as Markdown list items and through the log. */
static int fairness(FILE *f, const cram_sweep_spec *s, const cram_sweep_opts *o, const cram_sweep_row *rows, int n) {
  double tmin = INFINITY, tmax = 0, lmin = INFINITY, lmax = -INFINITY;
  int done = 0;
  for (int i = 0; i < n; i++) {
    if (rows[i].outcome != CRAM_ROW_DONE) continue;
    done++;
    tmin = fmin(tmin, rows[i].train_s), tmax = fmax(tmax, rows[i].train_s);
    if (isfinite(rows[i].load_mean)) lmin = fmin(lmin, rows[i].load_mean), lmax = fmax(lmax, rows[i].load_mean);
  }
  int w = 0;
  char line[512];
  if (done >= 2 && s->budget_s > 0 && tmin < 0.9 * tmax) {
    snprintf(line, sizeof line, "variants trained for %.0f s to %.0f s under a %.0f s wall-clock budget", tmin, tmax,
             s->budget_s);
    fprintf(f, "- warning: %s\n", line), w++;
    if (o->log) o->log(line, o->user);
  }
  if (done >= 2 && isfinite(lmin) && lmax - lmin > 0.5 && lmax > 1.25 * lmin) {
    snprintf(line, sizeof line,
             "machine load differed between variants (mean 1-minute load %.2f to %.2f): wall-clock budgets "
             "and tok/s are not comparable; prefer 'budget tokens'",
             lmin, lmax);
    fprintf(f, "- warning: %s\n", line), w++;
    if (o->log) o->log(line, o->user);
  }
  return w;
}

/* One variant's curve from its metrics.jsonl: held-out loss where the run
 * evaluated during training ("eval_loss" lines), else the training loss
 * smoothed by an exponential moving average (alpha 0.1) so variants can be
 * told apart. x[0] = seconds, x[1] = tokens. */
typedef struct curve {
  double *x[2], *y;
  size_t n;
  int heldout;
} curve;

static void read_curve(const char *out_dir, const char *name, curve *c) {
  memset(c, 0, sizeof *c);
  char path[PATHMAX];
  if (snprintf(path, sizeof path, "%s/variants/%s/run/metrics.jsonl", out_dir, name) >= (int)sizeof path) return;
  FILE *f = fopen(path, "r");
  if (!f) return;
  char line[4096];
  size_t cap = 0;
  double ema = NAN;
  while (fgets(line, sizeof line, f)) {
    double ev = cram_json_num(line, "eval_loss"), loss = cram_json_num(line, "loss");
    int is_eval = isfinite(ev);
    if (is_eval && !c->heldout) c->heldout = 1, c->n = 0; /* held-out points replace the training curve */
    if (c->heldout && !is_eval) continue;
    double y = is_eval ? ev : loss;
    if (!is_eval && isfinite(y)) y = ema = isfinite(ema) ? 0.9 * ema + 0.1 * y : y;
    if (c->n == cap) {
      cap = cap ? 2 * cap : 256;
      double *a = realloc(c->x[0], cap * sizeof *a), *b = a ? realloc(c->x[1], cap * sizeof *b) : NULL;
      if (a) c->x[0] = a;
      if (b) c->x[1] = b;
      double *d = b ? realloc(c->y, cap * sizeof *d) : NULL;
      if (!d) break;
      c->y = d;
    }
    c->x[0][c->n] = cram_json_num(line, "time");
    c->x[1][c->n] = cram_json_num(line, "tokens");
    c->y[c->n++] = y;
  }
  fclose(f);
}

static cram_status loss_plot(const cram_sweep_spec *s, const cram_sweep_opts *o, const cram_sweep_row *rows, cram_err *err) {
  int n = s->nvariants, heldout = 1;
  curve *cv = calloc((size_t)n, sizeof *cv);
  cram_series *ser[2] = { calloc((size_t)n, sizeof(cram_series)), calloc((size_t)n, sizeof(cram_series)) };
  cram_status st = CRAM_OK;
  if (!cv || !ser[0] || !ser[1]) st = cram_err_set(err, CRAM_E_NOMEM, "out of memory");
  size_t ns = 0;
  for (int i = 0; !st && i < n; i++) {
    read_curve(o->out_dir, rows[i].name, &cv[i]);
    if (!cv[i].n) continue;
    heldout &= cv[i].heldout;
    for (int a = 0; a < 2; a++) ser[a][ns] = (cram_series){ rows[i].name, cv[i].x[a], cv[i].y, cv[i].n };
    ns++;
  }
  out_file svg;
  if (!st && !(st = open_out(&svg, o->out_dir, "loss.svg", err))) {
    const char *what = ns && heldout ? "held-out MLM loss" : "training MLM loss (EMA 0.1)";
    cram_chart ch[2] = { { what, "training time (s)", "loss", ser[0], ns }, { what, "tokens seen", "loss", ser[1], ns } };
    cram_chart_svg(svg.f, s->title, ch, 2);
    st = close_out(&svg, err);
    char png[PATHMAX];
    if (!st && snprintf(png, sizeof png, "%s/loss.png", o->out_dir) < (int)sizeof png)
      st = cram_chart_png(png, s->title, ch, 2, err); /* the same figure for those who would rather open an image */
  }
  for (int i = 0; cv && i < n; i++) free(cv[i].x[0]), free(cv[i].x[1]), free(cv[i].y);
  free(cv);
  free(ser[0]);
  free(ser[1]);
  return st;
}

cram_status cram_sweep_report(const cram_sweep_spec *s, const cram_sweep_opts *o, const cram_sweep_row *rows, cram_err *err) {
  int n = s->nvariants, *order = malloc((size_t)n * sizeof *order);
  if (!order) return cram_err_set(err, CRAM_E_NOMEM, "out of memory");
  ranking(rows, n, order);
  out_file md, csv, js;
  cram_status st = open_out(&md, o->out_dir, "results.md", err);
  if (!st) {
    fprintf(md.f, "# %s\n\n", s->title);
    fprintf(md.f, "Target `%s`, seed %" PRIu64 ", budget:", s->target, s->seed);
    if (s->budget_s > 0) fprintf(md.f, " %.0f s wall clock", s->budget_s);
    if (s->budget_tokens) fprintf(md.f, " %" PRIu64 " tokens", s->budget_tokens);
    if (s->budget_steps) fprintf(md.f, " %" PRIu64 " updates", s->budget_steps);
    if (s->budget_flops > 0) fprintf(md.f, " %.3g model FLOPs", s->budget_flops);
    fprintf(md.f, "; data `%s`; ranked by held-out MLM loss (lower is better).\n\n", s->data);
    md_table(md.f, rows, n, order);
    if (s->downstream.task) md_downstream(md.f, s, rows, n);
    fprintf(md.f, "\n");
    fairness(md.f, s, o, rows, n);
    fprintf(md.f, "\n![held-out loss](loss.svg)\n");
    st = close_out(&md, err);
  }
  if (!st && !(st = open_out(&csv, o->out_dir, "results.csv", err))) {
    csv_table(csv.f, rows, n, order);
    st = close_out(&csv, err);
  }
  if (!st && !(st = open_out(&js, o->out_dir, "results.json", err))) {
    fputs("{\"title\":", js.f);
    cram_json_put_str(js.f, s->title);
    fputs(",\"target\":", js.f);
    cram_json_put_str(js.f, s->target);
    fprintf(js.f,
            ",\"seed\":%" PRIu64 ",\"budget_s\":%.17g,\"budget_tokens\":%" PRIu64 ",\"budget_steps\":%" PRIu64
            ",\"budget_flops\":%.17g,\"rows\":[\n",
            s->seed, s->budget_s, s->budget_tokens, s->budget_steps, s->budget_flops);
    for (int i = 0; i < n; i++) {
      cram_sweep_row_json(js.f, &rows[order[i]]);
      fputs(i + 1 < n ? ",\n" : "\n", js.f);
    }
    fputs("]}\n", js.f);
    st = close_out(&js, err);
  }
  if (!st) st = loss_plot(s, o, rows, err);
  free(order);
  return st;
}
