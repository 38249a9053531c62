/* glue_run.c - `cram glue`: compile per task shape, finetune per seed, the table (glue_run.h). */
#include "glue_run.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "json.h"
#include "loader.h"
#include "metrics.h"

#define PATHMAX 4096

static const char *metric_name(const cram_glue_task *t) {
  switch (t->metric) {
  case CRAM_GLUE_MCC: return "MCC";
  case CRAM_GLUE_F1_ACC: return "F1";
  case CRAM_GLUE_CORR: return "Spearman";
  default: return "accuracy";
  }
}

static int is_dir(const char *p) {
  struct stat sb;
  return stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
}

static int wanted(const char *list, const cram_glue_task *t) {
  if (!list) return 1;
  for (const char *p = list; *p;) {
    size_t n = strcspn(p, ",");
    char one[32];
    snprintf(one, sizeof one, "%.*s", (int)(n < 31 ? n : 31), p);
    if (cram_glue_task_find(one) == t) return 1;
    p += n + (p[n] == ',');
  }
  return 0;
}

static void find_cramc(const cram_glue_opts *o, char *out, size_t cap) {
  const char *env = getenv("CRAMC"), *slash = o->cram_path ? strrchr(o->cram_path, '/') : NULL;
  if (o->cramc) {
    snprintf(out, cap, "%s", o->cramc);
    return;
  }
  if (env && *env) {
    snprintf(out, cap, "%s", env);
    return;
  }
  const char *rel[] = { "cramc", "../driver/cramc" }; /* installed side by side; the build tree */
  for (int i = 0; slash && i < 2; i++) {
    snprintf(out, cap, "%.*s/%s", (int)(slash - o->cram_path), o->cram_path, rel[i]);
    if (access(out, X_OK) == 0) return;
  }
  snprintf(out, cap, "cramc");
}

/* Compiles `model` for `classes` (0: the regression model, no classes dim)
 * into dst (log beside it) unless it is there. */
static cram_status compile(const cram_glue_opts *o, const char *model, int classes, const char *dst, cram_err *err) {
  if (access(dst, R_OK) == 0) return CRAM_OK;
  char cramc[PATHMAX], cls[32], batch[32], log[PATHMAX + 8], tmp[PATHMAX + 8];
  find_cramc(o, cramc, sizeof cramc);
  snprintf(cls, sizeof cls, "classes=%d", classes);
  snprintf(batch, sizeof batch, "batch=%u", o->batch);
  snprintf(log, sizeof log, "%s.log", dst);
  snprintf(tmp, sizeof tmp, "%s.tmp", dst);
  char *argv[16 + 2 * CRAM_GLUE_MAX_DEFINES];
  int a = 0;
  argv[a++] = cramc;
  argv[a++] = (char *)model;
  if (classes) argv[a++] = "-D", argv[a++] = cls;
  argv[a++] = "-D", argv[a++] = batch;
  for (int i = 0; i < o->ndefines; i++) argv[a++] = "-D", argv[a++] = (char *)o->defines[i];
  if (o->target) argv[a++] = "--target", argv[a++] = (char *)o->target;
  argv[a++] = "-o", argv[a++] = tmp;
  argv[a] = NULL;
  if (o->log) fprintf(o->log, "glue: compiling %s with %s-D %s (%s)\n", model, classes ? cls : "", batch, log);
  pid_t pid = fork();
  if (pid < 0) return cram_err_set(err, CRAM_E_IO, "fork: %s", strerror(errno));
  if (pid == 0) {
    int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0666);
    if (fd >= 0) dup2(fd, 1), dup2(fd, 2), close(fd);
    execvp(cramc, argv);
    fprintf(stderr, "cannot run %s: %s\n", cramc, strerror(errno));
    _exit(127);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    char line[300] = "";
    FILE *f = fopen(log, "r");
    while (f && fgets(line, sizeof line, f) && !strstr(line, "error")) {}
    if (f) fclose(f);
    line[strcspn(line, "\n")] = '\0';
    unlink(tmp);
    return cram_err_set(err, CRAM_E_CHILD, "compiling %s failed: %s (%s)", model, *line ? line : "see the log", log);
  }
  if (rename(tmp, dst) != 0) return cram_err_set(err, CRAM_E_IO, "%s: %s", dst, strerror(errno));
  return CRAM_OK;
}

static int mkdirs(const char *p) { return mkdir(p, 0777) == 0 || errno == EEXIST ? 0 : -1; }

cram_status cram_glue_run(const cram_glue_opts *o, cram_glue_table *t, cram_err *err) {
  memset(t, 0, sizeof *t);
  if (o->seeds < 1 || o->seeds > CRAM_GLUE_MAX_SEEDS)
    return cram_err_set(err, CRAM_E_ARG, "--seeds must be 1..%d", CRAM_GLUE_MAX_SEEDS);
  if (!is_dir(o->glue_dir)) return cram_err_set(err, CRAM_E_IO, "%s: not a directory", o->glue_dir);
  if (mkdirs(o->out_dir)) return cram_err_set(err, CRAM_E_IO, "%s: %s", o->out_dir, strerror(errno));
  char reg[PATHMAX];
  const char *slash = strrchr(o->model, '/');
  if (o->regression_model) snprintf(reg, sizeof reg, "%s", o->regression_model);
  else snprintf(reg, sizeof reg, "%.*sfinetune_regression.cram", slash ? (int)(slash - o->model + 1) : 0, o->model);
  cram_status r = CRAM_OK;
  int row = 0;
  for (int k = 0; k < CRAM_GLUE_NTASKS && r == CRAM_OK; k++) {
    const cram_glue_task *task = &cram_glue_tasks[k];
    int ndev = task->dev[1] ? 2 : 1;
    cram_glue_row *rw = &t->rows[row];
    for (int d = 0; d < ndev; d++) {
      snprintf(rw[d].name, sizeof rw[d].name, "%s%s", task->name, ndev == 1 ? "" : d ? "-mm" : "-m");
      rw[d].metric = metric_name(task);
    }
    row += ndev;
    char dir[PATHMAX], tdir[PATHMAX];
    snprintf(dir, sizeof dir, "%s/%s", o->glue_dir, task->name);
    const char *why = !wanted(o->tasks, task)                    ? "not in --tasks"
                      : !is_dir(dir)                             ? "not in the GLUE directory"
                      : task->nclasses == 0 && access(reg, R_OK) ? "no regression model (--regression-model)"
                                                                 : NULL;
    if (why) {
      for (int d = 0; d < ndev; d++) snprintf(rw[d].why, sizeof rw[d].why, "%s", why);
      if (o->log) fprintf(o->log, "glue: %s skipped: %s\n", task->name, why);
      continue;
    }
    char so[PATHMAX];
    if (task->nclasses) snprintf(so, sizeof so, "%s/classifier-%d.so", o->out_dir, task->nclasses);
    else snprintf(so, sizeof so, "%s/regression.so", o->out_dir);
    if ((r = compile(o, task->nclasses ? o->model : reg, task->nclasses, so, err)) != CRAM_OK) break;
    cram_step_lib lib;
    if ((r = cram_step_load(&lib, so, err)) != CRAM_OK) break;
    snprintf(tdir, sizeof tdir, "%s/%s", o->out_dir, task->name);
    if (mkdirs(tdir)) r = cram_err_set(err, CRAM_E_IO, "%s: %s", tdir, strerror(errno));
    for (uint32_t s = 0; s < o->seeds && r == CRAM_OK; s++) {
      cram_ft_config c = o->ft;
      char run[PATHMAX + 32], logp[PATHMAX + 48];
      snprintf(run, sizeof run, "%s/seed-%u", tdir, s);
      snprintf(logp, sizeof logp, "%s/seed-%u.log", tdir, s);
      c.task_dir = dir, c.task = task, c.out_dir = run, c.seed = o->ft.seed + s, c.resume = 0;
      char old[PATHMAX + 64];
      snprintf(old, sizeof old, "%s/checkpoint.safetensors", run);
      unlink(old); /* a rerun of cram glue finetunes again */
      FILE *lf = fopen(logp, "w");
      c.log = lf;
      cram_ft_result res;
      r = cram_finetune(lib.api, &c, &res, err);
      if (lf) fclose(lf);
      if (r != CRAM_OK) break;
      for (int d = 0; d < ndev && d < (int)res.ndev; d++) {
        rw[d].value[rw[d].nseeds++] = res.dev[d].score;
        rw[d].majority = res.dev[d].majority;
      }
      if (o->log && ndev > 1)
        fprintf(o->log, "glue: %s seed %u: %s %.2f / %.2f\n", task->name, s, rw[0].metric, res.dev[0].score, res.dev[1].score);
      else if (o->log) fprintf(o->log, "glue: %s seed %u: %s %.2f\n", task->name, s, rw[0].metric, res.dev[0].score);
      if (res.ndev == 0) {
        r = cram_err_set(err, CRAM_E_ARG, "%s: no epoch completed (--max-steps too small?)", task->name);
        break;
      }
    }
    cram_step_unload(&lib);
    for (int d = 0; d < ndev && r == CRAM_OK; d++) {
      rw[d].done = 1;
      rw[d].median = cram_metric_median(rw[d].value, rw[d].nseeds);
    }
  }
  double s[CRAM_GLUE_ROWS];
  for (int i = 0; i < CRAM_GLUE_ROWS; i++)
    if (t->rows[i].done) s[t->ndone++] = t->rows[i].median;
  t->average = cram_metric_glue_average(s, t->ndone);
  return r;
}

/* ---- reports ------------------------------------------------------------------------ */

void cram_glue_print(FILE *f, const cram_glue_table *t, uint32_t seeds) {
  fprintf(f, "%-8s %-9s", "task", "metric");
  for (uint32_t s = 0; s < seeds; s++) fprintf(f, " %7s%-2u", "seed ", s);
  fprintf(f, " %8s %9s\n", "median", "majority");
  for (int i = 0; i < CRAM_GLUE_ROWS; i++) {
    const cram_glue_row *r = &t->rows[i];
    fprintf(f, "%-8s %-9s", r->name, r->metric);
    if (!r->done) {
      fprintf(f, " skipped: %s\n", r->why);
      continue;
    }
    for (uint32_t s = 0; s < seeds; s++) fprintf(f, " %9.2f", r->value[s]);
    fprintf(f, " %8.2f %9.2f\n", r->median, r->majority);
  }
  if (t->ndone) fprintf(f, "GLUE average (median per task, %u of %d scores): %.2f\n", t->ndone, CRAM_GLUE_ROWS, t->average);
  else fprintf(f, "GLUE average: no task ran\n");
}

static void json_num(FILE *f, double x) {
  if (isfinite(x)) fprintf(f, "%.4f", x);
  else fputs("null", f);
}

static cram_status close_report(FILE *f, const char *path, cram_err *err) {
  int bad = ferror(f);
  if (fclose(f) || bad) return cram_err_set(err, CRAM_E_IO, "%s: write error", path);
  return CRAM_OK;
}

cram_status cram_glue_write_json(const char *path, const cram_glue_opts *o, const cram_glue_table *t, cram_err *err) {
  FILE *f = fopen(path, "w");
  if (!f) return cram_err_set(err, CRAM_E_IO, "%s: %s", path, strerror(errno));
  fputs("{\"model\":", f), cram_json_put_str(f, o->model);
  fputs(",\"init\":", f), cram_json_put_str(f, o->ft.init ? o->ft.init : "random");
  fprintf(f, ",\"seeds\":%u,\"epochs\":%u,\"lr\":%.6g,\"batch\":%u,\"tasks\":[", o->seeds, o->ft.epochs, o->ft.lr, o->batch);
  for (int i = 0; i < CRAM_GLUE_ROWS; i++) {
    const cram_glue_row *r = &t->rows[i];
    fprintf(f, "%s\n{\"task\":", i ? "," : "");
    cram_json_put_str(f, r->name);
    fputs(",\"metric\":", f), cram_json_put_str(f, r->metric);
    if (!r->done) {
      fputs(",\"status\":\"skipped\",\"why\":", f), cram_json_put_str(f, r->why), fputs("}", f);
      continue;
    }
    fputs(",\"status\":\"done\",\"values\":[", f);
    for (uint32_t s = 0; s < r->nseeds; s++) fputs(s ? "," : "", f), json_num(f, r->value[s]);
    fputs("],\"median\":", f), json_num(f, r->median);
    fputs(",\"majority\":", f), json_num(f, r->majority), fputs("}", f);
  }
  fputs("],\n\"average\":", f), json_num(f, t->average);
  fprintf(f, ",\"scores_in_average\":%u}\n", t->ndone);
  return close_report(f, path, err);
}

cram_status cram_glue_write_md(const char *path, const cram_glue_opts *o, const cram_glue_table *t, cram_err *err) {
  FILE *f = fopen(path, "w");
  if (!f) return cram_err_set(err, CRAM_E_IO, "%s: %s", path, strerror(errno));
  fprintf(f, "GLUE dev, `%s` from `%s`, median of %u finetunings (%u epochs, lr %g, batch %u).\n\n| task | metric |", o->model,
          o->ft.init ? o->ft.init : "random init", o->seeds, o->ft.epochs, o->ft.lr, o->batch);
  for (uint32_t s = 0; s < o->seeds; s++) fprintf(f, " seed %u |", s);
  fputs(" median | majority |\n|---|---|", f);
  for (uint32_t s = 0; s < o->seeds; s++) fputs("---:|", f);
  fputs("---:|---:|\n", f);
  for (int i = 0; i < CRAM_GLUE_ROWS; i++) {
    const cram_glue_row *r = &t->rows[i];
    if (!r->done) continue;
    fprintf(f, "| %s | %s |", r->name, r->metric);
    for (uint32_t s = 0; s < o->seeds; s++) fprintf(f, " %.2f |", r->value[s]);
    fprintf(f, " **%.2f** | %.2f |\n", r->median, r->majority);
  }
  if (t->ndone) {
    fprintf(f, "| **average** | %u of %d scores |", t->ndone, CRAM_GLUE_ROWS);
    for (uint32_t s = 0; s < o->seeds; s++) fputs(" |", f);
    fprintf(f, " **%.2f** | |\n", t->average);
  }
  int skipped = 0;
  for (int i = 0; i < CRAM_GLUE_ROWS; i++)
    if (!t->rows[i].done) fprintf(f, "%s%s (%s)", skipped++ ? ", " : "\nSkipped: ", t->rows[i].name, t->rows[i].why);
  if (skipped) fputs(".\n", f);
  return close_report(f, path, err);
}
