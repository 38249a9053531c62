/* sweep_json.c - see sweep_json.h. */
#include "sweep_json.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Start of the value of "key": (after the colon and spaces), or NULL. */
static const char *value_of(const char *obj, const char *key) {
    size_t kl = strlen(key);
    for (const char *p = strchr(obj, '"'); p; p = strchr(p + 1, '"')) {
        if (strncmp(p + 1, key, kl) == 0 && p[kl + 1] == '"') {
            const char *c = p + kl + 2;
            while (*c == ' ') c++;
            if (*c != ':') continue;
            c++;
            while (*c == ' ') c++;
            return c;
        }
    }
    return NULL;
}

double cram_json_num(const char *obj, const char *key) {
    const char *v = value_of(obj, key);
    if (!v || strncmp(v, "null", 4) == 0) return NAN;
    char *end;
    double x = strtod(v, &end);
    return end == v ? NAN : x;
}

int cram_json_str(const char *obj, const char *key, char *out, size_t cap) {
    const char *v = value_of(obj, key);
    if (!v || *v != '"' || cap == 0) return -1;
    size_t o = 0;
    for (v++; *v && *v != '"'; v++) {
        char c = *v;
        if (c == '\\' && v[1]) {
            v++;
            c = *v == 'n' ? '\n' : *v == 't' ? '\t' : *v == 'u' ? '?' : *v;
            if (*v == 'u') v += strnlen(v + 1, 4) ;
        }
        if (o + 1 < cap) out[o++] = c;
    }
    out[o] = 0;
    return 0;
}

void cram_json_put_str(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
        else if (c == '\n') fputs("\\n", f);
        else if (c == '\t') fputs("\\t", f);
        else if (c < 0x20) fprintf(f, "\\u%04x", c);
        else fputc(c, f);
    }
    fputc('"', f);
}

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
    if (cram_json_str(b, "variant", r->name, sizeof r->name) || cram_json_str(b, "outcome", outcome, sizeof outcome))
        return -1;
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
