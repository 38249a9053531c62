/* sweep_downstream.c - the downstream half of a sweep (`downstream` in the
 * SPEC, docs/sweep.md): after pretraining, each variant's encoder is
 * finetuned on one GLUE-layout task by `cram finetune` (a child process, as
 * training is) and the dev metric becomes a column of its row. The
 * classifier is compiled with the variant's -D overrides of the dims it
 * declares (so depth and width variants get a matching encoder), then the
 * `downstream` line's own. A classifier that does not fit a variant (another
 * encoder: give it one with `classifier NAME FILE`) or a failed run is a note
 * in the row; the sweep goes on. Results are kept in the variant's
 * downstream.json under a key of everything they depend on, so a re-run
 * finetunes only what changed. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checksum.h"
#include "json.h"
#include "sweep_impl.h"

/* Whether `name` is a dim the .cram text declares on a `dims` line. */
static int declares_dim(const char *text, const char *name, size_t len) {
  for (const char *line = text; line && *line; line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
    while (*line == ' ' || *line == '\t') line++;
    if (strncmp(line, "dims", 4) != 0 || (line[4] != ' ' && line[4] != '\t')) continue;
    for (const char *c = line + 4; *c && *c != '\n' && *c != '#';) {
      while (*c == ' ' || *c == '\t') c++;
      const char *w = c;
      while (*c && *c != ' ' && *c != '\t' && *c != '\n' && *c != '#') c++;
      const char *eq = memchr(w, '=', (size_t)(c - w));
      if (eq && (size_t)(eq - w) == len && strncmp(w, name, len) == 0) return 1;
    }
  }
  return 0;
}

/* The classifier's -D list: the variant's overrides of dims it declares and
 * the downstream line doesn't set, then the downstream line's. */
static int classifier_defines(const cram_sweep_downstream *ds, const cram_sweep_variant *v, const char *text, char **out) {
  int n = 0;
  for (int i = 0; i < v->ndefines; i++) {
    size_t kl = strcspn(v->defines[i], "=");
    int overridden = 0;
    for (int j = 0; j < ds->ndefines; j++) overridden |= strncmp(ds->defines[j], v->defines[i], kl + 1) == 0;
    if (!overridden && declares_dim(text, v->defines[i], kl)) out[n++] = v->defines[i];
  }
  for (int j = 0; j < ds->ndefines; j++) out[n++] = ds->defines[j];
  return n;
}

/* The mean of the dev metrics `cram finetune` printed ("TASK FILE: SCORE after ..."), NAN if none. */
static double dev_score(const char *log) {
  char *t = sweep_slurp(log, NULL);
  double sum = 0;
  int n = 0;
  for (char *line = t; line && *line;) {
    char *end = strchr(line, '\n');
    if (end) *end = 0;
    char *colon = strstr(line, ": "), *after = strstr(line, " after ");
    char *num_end;
    double v = colon && after > colon ? strtod(colon + 2, &num_end) : NAN;
    if (isfinite(v) && num_end == after) sum += v, n++;
    line = end ? end + 1 : NULL;
  }
  free(t);
  return n ? sum / n : NAN;
}

/* downstream.json: {"key":"...","score":X,"why":"..."} */
static int load_result(const char *path, const char *key, cram_sweep_row *row) {
  char *t = sweep_slurp(path, NULL);
  char want[64];
  snprintf(want, sizeof want, "\"key\":\"%s\"", key);
  int ok = t && strstr(t, want);
  if (ok) {
    row->downstream = cram_json_num(t, "score");
    const char *w = strstr(t, "\"why\":\"");
    size_t k = 0;
    for (w = w ? w + 7 : ""; *w && *w != '"' && k + 1 < sizeof row->downstream_why; w++) /* saved without escapes */
      row->downstream_why[k++] = *w;
    row->downstream_why[k] = 0;
  }
  free(t);
  return ok;
}

static cram_status save_result(const char *path, const char *key, const cram_sweep_row *row, cram_err *err) {
  char tmp[PATHMAX + 8];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  FILE *f = fopen(tmp, "w");
  if (!f) return cram_err_set(err, CRAM_E_IO, "%s: %s", tmp, strerror(errno));
  fprintf(f, "{\"key\":\"%s\",\"score\":", key);
  if (isfinite(row->downstream)) fprintf(f, "%.9g", row->downstream);
  else fputs("null", f);
  fputs(",\"why\":\"", f);
  for (const char *c = row->downstream_why; *c; c++) fputc(*c == '"' || *c == '\\' ? '\'' : *c, f);
  fputs("\"}\n", f);
  if (fclose(f) != 0 || rename(tmp, path) != 0) return cram_err_set(err, CRAM_E_IO, "%s: %s", path, strerror(errno));
  return CRAM_OK;
}

cram_status sweep_downstream(const cram_sweep_spec *s, const cram_sweep_opts *o, const cram_sweep_variant *v, const char *cramc,
                             const char *vdir, const char *run, uint64_t rkey, cram_sweep_row *row, cram_err *err) {
  const cram_sweep_downstream *ds = &s->downstream;
  const char *cls = v->classifier ? v->classifier : ds->model;
  row->downstream = NAN;
  row->downstream_why[0] = 0;
  char *text = sweep_slurp(cls, NULL);
  if (!text) return cram_err_set(err, CRAM_E_IO, "%s: %s", cls, strerror(errno ? errno : EIO));
  char *defs[2 * CRAM_SWEEP_MAX_DEFINES];
  int nd = classifier_defines(ds, v, text, defs);
  free(text);
  uint64_t ckey;
  cram_status st = sweep_build_key(s, cls, defs, nd, cramc, &ckey, err);
  if (st) return st;
  /* the result's key: the classifier build, the pretraining result, the task and the finetune flags */
  char b[64];
  snprintf(b, sizeof b, "%016" PRIx64 " %016" PRIx64 " %" PRIu64, ckey, rkey, s->seed);
  uint64_t h = sweep_hash_str(sweep_hash_str(CRAM_FNV1A64_INIT, b), ds->task);
  for (int i = 0; i < ds->nargs; i++) h = sweep_hash_str(h, ds->args[i]);
  char key[17], result[PATHMAX], log[PATHMAX], clog[PATHMAX], ftdir[PATHMAX], keyfile[PATHMAX], ckpt[PATHMAX + 32];
  snprintf(key, sizeof key, "%016" PRIx64, h);
  int bad = snprintf(result, sizeof result, "%s/downstream.json", vdir) >= (int)sizeof result;
  bad |= snprintf(log, sizeof log, "%s/finetune.log", vdir) >= (int)sizeof log;
  bad |= snprintf(clog, sizeof clog, "%s/classifier.log", vdir) >= (int)sizeof clog;
  bad |= snprintf(ftdir, sizeof ftdir, "%s/finetune", vdir) >= (int)sizeof ftdir;
  bad |= snprintf(keyfile, sizeof keyfile, "%s/finetune.key", vdir) >= (int)sizeof keyfile;
  if (bad) return cram_err_set(err, CRAM_E_ARG, "%s: path too long", vdir);
  if (load_result(result, key, row)) {
    sweep_say(o, "%s: downstream kept", v->name);
    return CRAM_OK;
  }
  char label[CRAM_SWEEP_NAME_MAX + 16];
  snprintf(label, sizeof label, "%s (classifier)", v->name);
  sweep_build_req req = { label, cls, defs, nd, ckey, clog };
  sweep_build_out out;
  if ((st = sweep_build(s, o, cramc, &req, &out, err))) return st;
  if (out.refused) {
    snprintf(row->downstream_why, sizeof row->downstream_why, "classifier: %.240s", out.why);
    return save_result(result, key, row, err);
  }
  /* a finetuning run of another key starts over; one of this key resumes from its checkpoint */
  snprintf(ckpt, sizeof ckpt, "%s/checkpoint.safetensors", ftdir);
  char *old = sweep_slurp(keyfile, NULL);
  int resume = old && strncmp(old, key, 16) == 0 && sweep_exists(ckpt);
  free(old);
  if (!resume) {
    char m[PATHMAX + 32];
    snprintf(m, sizeof m, "%s/metrics.jsonl", ftdir);
    remove(ckpt), remove(m), remove(log);
    FILE *kf = fopen(keyfile, "w");
    if (kf) fprintf(kf, "%s\n", key), fclose(kf);
  }
  char seed[32];
  snprintf(seed, sizeof seed, "%" PRIu64, s->seed);
  char *argv[MAX_ARGV];
  int a = 0;
  argv[a++] = (char *)o->cram, argv[a++] = "finetune", argv[a++] = out.so, argv[a++] = "--task", argv[a++] = ds->task;
  argv[a++] = "--vocab", argv[a++] = s->data, argv[a++] = "--init", argv[a++] = (char *)run, argv[a++] = "--out";
  argv[a++] = ftdir, argv[a++] = "--seed", argv[a++] = seed, argv[a++] = "--quiet";
  if (resume) argv[a++] = "--resume";
  for (int i = 0; i < ds->nargs; i++) argv[a++] = ds->args[i];
  argv[a] = NULL;
  sweep_say(o, "%s: %s finetuning on %s", v->name, resume ? "resuming" : "starting", ds->task);
  child_result r;
  if ((st = sweep_run_child(o, argv, log, &r, err))) return st;
  if (o->stop && *o->stop)
    return cram_err_set(err, CRAM_E_INTERRUPTED, "interrupted while finetuning %s (kept in %s)", v->name, ftdir);
  row->downstream = r.code == 0 ? dev_score(log) : NAN;
  if (r.code != 0) sweep_log_tail(log, 1, row->downstream_why, sizeof row->downstream_why);
  else if (!isfinite(row->downstream))
    snprintf(row->downstream_why, sizeof row->downstream_why, "cram finetune printed no dev score (see finetune.log)");
  if (r.code != 0 && !row->downstream_why[0])
    snprintf(row->downstream_why, sizeof row->downstream_why, "cram finetune exited with status %d", r.code);
  return save_result(result, key, row, err);
}
