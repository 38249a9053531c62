/* glue.c - GLUE task table, TSV readers and pair encoding (glue.h). */
#include "glue.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define B01 \
  { "0", "1", NULL }
#define NLI2 \
  { "entailment", "not_entailment", NULL }
const cram_glue_task cram_glue_tasks[CRAM_GLUE_NTASKS] = {
  { "CoLA", "cola", 0, 2, B01, NULL, NULL, NULL, 3, 1, 4, { "dev.tsv", NULL }, CRAM_GLUE_MCC },
  { "SST-2", "sst2", 1, 2, B01, "sentence", NULL, "label", 0, 0, 0, { "dev.tsv", NULL }, CRAM_GLUE_ACC },
  { "MRPC", "mrpc", 1, 2, B01, "#1 String", "#2 String", "Quality", 0, 0, 0, { "dev.tsv", NULL }, CRAM_GLUE_F1_ACC },
  { "STS-B",
    "stsb",
    1,
    0,
    { NULL, NULL, NULL },
    "sentence1",
    "sentence2",
    "score",
    0,
    0,
    0,
    { "dev.tsv", NULL },
    CRAM_GLUE_CORR },
  { "QQP", "qqp", 1, 2, B01, "question1", "question2", "is_duplicate", 0, 0, 0, { "dev.tsv", NULL }, CRAM_GLUE_F1_ACC },
  { "MNLI",
    "mnli",
    1,
    3,
    { "contradiction", "entailment", "neutral" },
    "sentence1",
    "sentence2",
    "gold_label",
    0,
    0,
    0,
    { "dev_matched.tsv", "dev_mismatched.tsv" },
    CRAM_GLUE_ACC },
  { "QNLI", "qnli", 1, 2, NLI2, "question", "sentence", "label", 0, 0, 0, { "dev.tsv", NULL }, CRAM_GLUE_ACC },
  { "RTE", "rte", 1, 2, NLI2, "sentence1", "sentence2", "label", 0, 0, 0, { "dev.tsv", NULL }, CRAM_GLUE_ACC },
};

/* Equal ignoring case and '-' ("SST-2" = "sst2"). */
static int same_name(const char *a, const char *b) {
  for (;;) {
    while (*a == '-') a++;
    while (*b == '-') b++;
    if (tolower((unsigned char)*a) != tolower((unsigned char)*b)) return 0;
    if (!*a) return 1;
    a++, b++;
  }
}

const cram_glue_task *cram_glue_task_find(const char *name) {
  for (int i = 0; i < CRAM_GLUE_NTASKS; i++)
    if (same_name(name, cram_glue_tasks[i].name) || same_name(name, cram_glue_tasks[i].key)) return &cram_glue_tasks[i];
  return NULL;
}

void cram_glue_split_free(cram_glue_split *s) {
  free(s->text);
  free(s->ex);
  memset(s, 0, sizeof *s);
}

/* Splits line[0..n) at tabs into at most max fields (the last keeps any
 * further tabs when keep_rest); returns the field count (max + 1 = more). */
static int split_tabs(char *line, size_t n, char **f, size_t *fl, int max, int keep_rest) {
  int k = 0;
  size_t s = 0;
  for (size_t i = 0; i <= n; i++) {
    if (i < n && (line[i] != '\t' || (keep_rest && k == max - 1))) continue;
    if (k == max) return max + 1;
    f[k] = line + s, fl[k] = i - s, k++;
    s = i + 1;
  }
  return k;
}

static int find_col(char **f, const size_t *fl, int nf, const char *name) {
  for (int i = 0; i < nf; i++)
    if (fl[i] == strlen(name) && memcmp(f[i], name, fl[i]) == 0) return i;
  return -1;
}

#define MAX_COLS 32

static cram_status parse_label(const cram_glue_task *t, const char *path, uint32_t line, const char *s, size_t n, float *out,
                               cram_err *err) {
  if (t->nclasses == 0) {
    char buf[64], *end;
    if (n == 0 || n >= sizeof buf) goto bad;
    memcpy(buf, s, n), buf[n] = '\0';
    errno = 0;
    double v = strtod(buf, &end);
    if (*end || errno || !isfinite(v)) goto bad;
    *out = (float)v;
    return CRAM_OK;
  }
  for (int c = 0; c < t->nclasses; c++)
    if (strlen(t->labels[c]) == n && memcmp(t->labels[c], s, n) == 0) return *out = (float)c, CRAM_OK;
bad:;
  char allowed[128] = "a number";
  if (t->nclasses) {
    allowed[0] = '\0';
    for (int c = 0; c < t->nclasses; c++)
      snprintf(allowed + strlen(allowed), sizeof allowed - strlen(allowed), "%s%s", c ? ", " : "", t->labels[c]);
  }
  return cram_err_set(err, CRAM_E_DATASET, "%s:%u: label '%.*s' is not %s%s", path, line, (int)(n > 40 ? 40 : n), s,
                      t->nclasses ? "one of " : "", allowed);
}

cram_status cram_glue_read(const cram_glue_task *t, const char *path, cram_glue_split *out, cram_err *err) {
  memset(out, 0, sizeof *out);
  FILE *fp = fopen(path, "rb");
  if (!fp) return cram_err_set(err, CRAM_E_IO, "%s: %s", path, strerror(errno));
  size_t cap = 1 << 16, n = 0;
  char *text = malloc(cap + 1);
  for (size_t r; text && (r = fread(text + n, 1, cap - n, fp)) > 0;) {
    n += r;
    if (n == cap) {
      char *nt = realloc(text, (cap *= 2) + 1);
      if (!nt) free(text);
      text = nt;
    }
  }
  int rerr = ferror(fp);
  fclose(fp);
  if (!text) return cram_err_set(err, CRAM_E_NOMEM, "%s: out of memory", path);
  if (rerr) {
    free(text);
    return cram_err_set(err, CRAM_E_IO, "%s: read error", path);
  }
  text[n] = '\0';
  out->text = text;
  size_t lines = 1;
  for (size_t i = 0; i < n; i++) lines += text[i] == '\n';
  if (!(out->ex = malloc(lines * sizeof *out->ex))) {
    cram_glue_split_free(out);
    return cram_err_set(err, CRAM_E_NOMEM, "%s: out of memory", path);
  }
  char *f[MAX_COLS + 1];
  size_t fl[MAX_COLS + 1];
  int ia = t->idx_a, ib = -1, il = t->idx_label, ncols = t->ncols;
  size_t pos = n >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0 ? 3 : 0;
  cram_status st = CRAM_OK;
  for (uint32_t line = 1; pos < n; line++) {
    size_t e = pos;
    while (e < n && text[e] != '\n') e++;
    size_t len = e - pos;
    if (len && text[pos + len - 1] == '\r') len--;
    char *l = text + pos;
    pos = e + 1;
    if (t->header && line == 1) {
      ncols = split_tabs(l, len, f, fl, MAX_COLS, 0);
      ia = find_col(f, fl, ncols, t->col_a);
      ib = t->col_b ? find_col(f, fl, ncols, t->col_b) : -1;
      il = find_col(f, fl, ncols, t->col_label);
      if (ncols > MAX_COLS || ia < 0 || il < 0 || (t->col_b && ib < 0)) {
        st = cram_err_set(err, CRAM_E_DATASET, "%s:1: header lacks the %s columns '%s'%s%s%s, '%s' (is this %s's %s?)", path,
                          t->name, t->col_a, t->col_b ? ", '" : "", t->col_b ? t->col_b : "", t->col_b ? "'" : "", t->col_label,
                          t->name, t->header ? "train.tsv/dev.tsv" : "file");
        break;
      }
      continue;
    }
    int nf = split_tabs(l, len, f, fl, ncols, !t->header);
    if (nf != ncols) {
      st = cram_err_set(err, CRAM_E_DATASET, "%s:%u: %s%d fields, %s rows have %d", path, line, nf > ncols ? "more than " : "",
                        nf > ncols ? ncols : nf, t->name, ncols);
      break;
    }
    cram_glue_example *x = &out->ex[out->n];
    x->line = line;
    x->a = (uint32_t)(f[ia] - text), x->alen = (uint32_t)fl[ia];
    x->b = ib >= 0 ? (uint32_t)(f[ib] - text) : 0, x->blen = ib >= 0 ? (uint32_t)fl[ib] : 0;
    if ((st = parse_label(t, path, line, f[il], fl[il], &x->label, err)) != CRAM_OK) break;
    if (t->nclasses) out->counts[(int)x->label]++;
    out->n++;
  }
  if (st == CRAM_OK && out->n == 0)
    st = cram_err_set(err, CRAM_E_DATASET, "%s: no examples%s", path, t->header ? " after the header" : "");
  if (st != CRAM_OK) cram_glue_split_free(out);
  return st;
}

/* ---- encoding ------------------------------------------------------------------------ */

void cram_glue_encoded_free(cram_glue_encoded *e) {
  free(e->tokens), free(e->len), free(e->label);
  memset(e, 0, sizeof *e);
}

cram_status cram_glue_encode(const cram_wordpiece *wp, const cram_glue_split *s, uint32_t seq, cram_glue_encoded *out,
                             cram_err *err) {
  memset(out, 0, sizeof *out);
  if (seq < 4 || seq > UINT16_MAX) return cram_err_set(err, CRAM_E_ARG, "sequence length %u is not in 4..65535", seq);
  out->tokens = malloc((s->n ? s->n : 1) * seq * sizeof *out->tokens);
  out->len = malloc((s->n ? s->n : 1) * sizeof *out->len);
  out->label = malloc((s->n ? s->n : 1) * sizeof *out->label);
  cram_idvec a = { 0 }, b = { 0 };
  cram_status st = CRAM_OK;
  if (!out->tokens || !out->len || !out->label) st = cram_err_set(err, CRAM_E_NOMEM, "tokenizing: out of memory");
  cram_wp_specials sp = cram_wordpiece_specials(wp);
  int32_t pad = sp.pad == UINT32_MAX ? 0 : (int32_t)sp.pad;
  for (size_t i = 0; i < s->n && st == CRAM_OK; i++) {
    const cram_glue_example *x = &s->ex[i];
    a.n = b.n = 0;
    int pair = x->b > 0;
    if ((st = cram_wordpiece_encode(wp, s->text + x->a, x->alen, &a, err)) != CRAM_OK) break;
    if (pair && (st = cram_wordpiece_encode(wp, s->text + x->b, x->blen, &b, err)) != CRAM_OK) break;
    size_t budget = seq - (pair ? 3 : 2), na = a.n, nb = b.n;
    if (na + nb > budget) out->truncated++;
    while (na + nb > budget) { /* longest first; b on a tie */
      if (na > nb) na--;
      else nb--;
    }
    int32_t *t = out->tokens + i * seq;
    size_t k = 0;
    t[k++] = (int32_t)sp.cls;
    memcpy(t + k, a.ids, na * sizeof *t), k += na;
    t[k++] = (int32_t)sp.sep;
    if (pair) {
      memcpy(t + k, b.ids, nb * sizeof *t), k += nb;
      t[k++] = (int32_t)sp.sep;
    }
    out->len[i] = (uint16_t)k;
    for (; k < seq; k++) t[k] = pad;
    out->label[i] = x->label;
  }
  cram_idvec_free(&a), cram_idvec_free(&b);
  if (st != CRAM_OK) {
    cram_glue_encoded_free(out);
    return st;
  }
  out->n = s->n;
  out->seq = seq;
  return CRAM_OK;
}

void cram_glue_mask(const cram_glue_encoded *e, size_t i, float *mask) {
  for (uint32_t k = 0; k < e->seq; k++) mask[k] = k < e->len[i] ? 0.0f : -10000.0f;
}
