/* sweep_json.c - see sweep_json.h. */
#include "sweep_json.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static void num(FILE *f, const char *key, double v, int last) {
  if (isfinite(v)) fprintf(f, "\"%s\":%.9g%s", key, v, last ? "" : ",");
  else fprintf(f, "\"%s\":null%s", key, last ? "" : ",");
}

void cram_sweep_row_json(FILE *f, const cram_sweep_row *r) {
  fputs("{\"variant\":", f);
  cram_json_put_str(f, r->name);
  fputs(",\"outcome\":", f);
  cram_json_put_str(f, cram_sweep_outcome_str(r->outcome));
  fputs(",\"why\":", f);
  cram_json_put_str(f, r->why);
  fprintf(f, ",\"params\":%" PRId64 ",", r->params);
  num(f, "flops_per_token", r->flops_per_token, 0);
  num(f, "compile_s", r->compile_s, 0);
  num(f, "train_s", r->train_s, 0);
  fprintf(f, "\"tokens\":%" PRIu64 ",\"steps\":%" PRIu64 ",", r->tokens, r->steps);
  num(f, "tok_s", r->tok_s, 0);
  num(f, "train_loss", r->train_loss, 0);
  num(f, "heldout_loss", r->heldout_loss, 0);
  num(f, "heldout_accuracy", r->heldout_accuracy, 0);
  num(f, "downstream", r->downstream, 0);
  fputs("\"downstream_why\":", f);
  cram_json_put_str(f, r->downstream_why);
  fputc(',', f);
  fprintf(f, "\"heldout_seqs\":%" PRIu64 ",", r->heldout_seqs);
  num(f, "peak_rss_mib", r->peak_rss_mib, 0);
  num(f, "load_mean", r->load_mean, 1);
  fputc('}', f);
}

static cram_sweep_outcome outcome_of(const char *s) {
  for (int o = CRAM_ROW_DONE; o <= CRAM_ROW_PENDING; o++)
    if (strcmp(s, cram_sweep_outcome_str((cram_sweep_outcome)o)) == 0) return (cram_sweep_outcome)o;
  return CRAM_ROW_PENDING;
}

int cram_sweep_row_load(const char *path, uint64_t key, cram_sweep_row *r) {
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  char b[4096];
  size_t n = fread(b, 1, sizeof b - 1, f);
  fclose(f);
  b[n] = 0;
  char k[32], want[32], outcome[32];
  snprintf(want, sizeof want, "%016" PRIx64, key);
  if (cram_json_str(b, "key", k, sizeof k) || strcmp(k, want) != 0) return -1;
  memset(r, 0, sizeof *r);
  if (cram_json_str(b, "variant", r->name, sizeof r->name) || cram_json_str(b, "outcome", outcome, sizeof outcome)) return -1;
  r->outcome = outcome_of(outcome);
  cram_json_str(b, "why", r->why, sizeof r->why);
  double p = cram_json_num(b, "params"), t = cram_json_num(b, "tokens"), s = cram_json_num(b, "steps"),
         h = cram_json_num(b, "heldout_seqs");
  r->params = isfinite(p) ? (int64_t)p : 0;
  r->tokens = isfinite(t) ? (uint64_t)t : 0;
  r->steps = isfinite(s) ? (uint64_t)s : 0;
  r->heldout_seqs = isfinite(h) ? (uint64_t)h : 0;
  r->flops_per_token = cram_json_num(b, "flops_per_token");
  r->compile_s = cram_json_num(b, "compile_s");
  r->train_s = cram_json_num(b, "train_s");
  r->tok_s = cram_json_num(b, "tok_s");
  r->train_loss = cram_json_num(b, "train_loss");
  r->heldout_loss = cram_json_num(b, "heldout_loss");
  r->heldout_accuracy = cram_json_num(b, "heldout_accuracy");
  r->downstream = cram_json_num(b, "downstream");
  cram_json_str(b, "downstream_why", r->downstream_why, sizeof r->downstream_why);
  r->peak_rss_mib = cram_json_num(b, "peak_rss_mib");
  r->load_mean = cram_json_num(b, "load_mean");
  return r->outcome == CRAM_ROW_PENDING ? -1 : 0;
}

cram_status cram_sweep_row_save(const char *path, uint64_t key, const cram_sweep_row *r, cram_err *err) {
  char tmp[4200];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  FILE *f = fopen(tmp, "w");
  if (!f) return cram_err_set(err, CRAM_E_IO, "%s: %s", tmp, strerror(errno));
  fprintf(f, "{\"key\":\"%016" PRIx64 "\",\"row\":", key);
  cram_sweep_row_json(f, r);
  fputs("}\n", f);
  if (fclose(f) != 0 || rename(tmp, path) != 0) {
    int e = errno;
    remove(tmp);
    return cram_err_set(err, CRAM_E_IO, "%s: %s", path, strerror(e));
  }
  return CRAM_OK;
}
