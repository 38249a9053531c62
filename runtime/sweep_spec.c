/* sweep_spec.c - parser of `cram sweep` SPEC files; see sweep_spec.h and
 * docs/sweep.md. A SPEC is line-based: one directive and its words per line,
 * `#` to the end of a line is a comment. */
#include "sweep_spec.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schedule.h"

#define MAX_WORDS 64

typedef struct word {
  const char *s; /* NUL-terminated copy inside the line buffer */
  int col;       /* 1-based column */
} word;

typedef struct parser {
  const char *path;
  char *dir; /* the SPEC's folder, "" for the working directory */
  int line;
  cram_sweep_spec *spec;
  cram_err *err;
  int seen_base, seen_data, seen_target, seen_seed, seen_eval, seen_title, finetune_line, classifier_line;
} parser;

static cram_status fail(parser *p, int col, const char *fmt, const char *a, const char *b) {
  char msg[512];
  snprintf(msg, sizeof msg, fmt, a ? a : "", b ? b : "");
  return cram_err_set(p->err, CRAM_E_ARG, "%s:%d:%d: %s", p->path, p->line, col, msg);
}

static char *dupstr(const char *s) {
  size_t n = strlen(s) + 1;
  char *d = malloc(n);
  if (d) memcpy(d, s, n);
  return d;
}

/* A path from the SPEC, relative ones anchored at the SPEC's folder. */
static char *resolve(const parser *p, const char *s) {
  if (s[0] == '/' || !p->dir[0]) return dupstr(s);
  size_t n = strlen(p->dir) + strlen(s) + 2;
  char *r = malloc(n);
  if (r) snprintf(r, n, "%s/%s", p->dir, s);
  return r;
}

/* Splits `line` in place into words; returns the count or -1 when too many. */
static int split_words(char *line, word *w) {
  int n = 0;
  char *c = line;
  for (;;) {
    while (*c == ' ' || *c == '\t') c++;
    if (!*c || *c == '#' || *c == '\n' || *c == '\r') break;
    if (n == MAX_WORDS) return -1;
    w[n].s = c;
    w[n].col = (int)(c - line) + 1;
    n++;
    while (*c && *c != ' ' && *c != '\t' && *c != '\n' && *c != '\r' && *c != '#') c++;
    if (*c == '#') {
      *c = 0;
      break;
    }
    if (*c) *c++ = 0;
  }
  return n;
}

static int valid_name(const char *s) {
  if (!*s || strlen(s) >= CRAM_SWEEP_NAME_MAX || s[0] == '.' || s[0] == '-') return 0;
  for (; *s; s++)
    if (!isalnum((unsigned char)*s) && !strchr("_.=+-", *s)) return 0;
  return 1;
}

/* "k=v" with k an identifier and v a non-empty value without commas. */
static int valid_define(const char *s) {
  const char *eq = strchr(s, '=');
  if (!eq || eq == s || !eq[1] || strchr(eq + 1, ',')) return 0;
  for (const char *c = s; c < eq; c++)
    if (!isalnum((unsigned char)*c) && *c != '_') return 0;
  return !isdigit((unsigned char)s[0]);
}

/* A count with an optional k/M/G suffix (powers of ten): 2M = 2000000. */
static int parse_count(const char *s, uint64_t *out) {
  errno = 0;
  char *end;
  double v = strtod(s, &end);
  if (end == s || errno) return -1;
  double mult = 1;
  if (*end == 'k' || *end == 'K') mult = 1e3, end++;
  else if (*end == 'M') mult = 1e6, end++;
  else if (*end == 'G') mult = 1e9, end++;
  double x = v * mult, r = nearbyint(x);
  if (*end || !(v > 0) || x > 1e18 || r < 1 || fabs(x - r) > 1e-9 * x) return -1; /* 1.2M is whole; 1.5 is not */
  *out = (uint64_t)r;
  return 0;
}

static cram_sweep_variant *new_variant(parser *p, int col, const char *name) {
  cram_sweep_spec *s = p->spec;
  if (!valid_name(name)) {
    fail(p, col, "'%s' is not a usable variant name (letters, digits and _ . = + -, at most 63)", name, NULL);
    return NULL;
  }
  for (int i = 0; i < s->nvariants; i++)
    if (strcmp(s->variants[i].name, name) == 0) {
      char l[16];
      snprintf(l, sizeof l, "%d", s->variants[i].line);
      fail(p, col, "variant '%s' is already defined (line %s)", name, l);
      return NULL;
    }
  if (s->nvariants == CRAM_SWEEP_MAX_VARIANTS) {
    char m[16];
    snprintf(m, sizeof m, "%d", CRAM_SWEEP_MAX_VARIANTS);
    fail(p, col, "more than %s variants", m, NULL);
    return NULL;
  }
  cram_sweep_variant *v = &s->variants[s->nvariants++];
  memset(v, 0, sizeof *v);
  snprintf(v->name, sizeof v->name, "%s", name);
  v->line = p->line;
  return v;
}

static cram_status add_define(parser *p, cram_sweep_variant *v, const word *w, const char *def) {
  if (!valid_define(def)) return fail(p, w->col, "expected -D name=value, got '%s'", def, NULL);
  if (v->ndefines == CRAM_SWEEP_MAX_DEFINES) return fail(p, w->col, "too many -D overrides for '%s'", v->name, NULL);
  if (!(v->defines[v->ndefines] = dupstr(def))) return cram_err_set(p->err, CRAM_E_NOMEM, "out of memory");
  v->ndefines++;
  return CRAM_OK;
}

/* [PATH] [-D k=v | -Dk=v]... starting at word i; a PATH may only come first. */
static cram_status model_and_defines(parser *p, cram_sweep_variant *v, const word *w, int i, int n, int allow_path) {
  for (; i < n; i++) {
    const char *a = w[i].s;
    if (strcmp(a, "-D") == 0) {
      if (i + 1 == n) return fail(p, w[i].col, "-D needs name=value", NULL, NULL);
      cram_status st = add_define(p, v, &w[i + 1], w[i + 1].s);
      if (st) return st;
      i++;
    } else if (strncmp(a, "-D", 2) == 0) {
      cram_status st = add_define(p, v, &w[i], a + 2);
      if (st) return st;
    } else if (allow_path && !v->model && a[0] != '-') {
      if (!(v->model = resolve(p, a))) return cram_err_set(p->err, CRAM_E_NOMEM, "out of memory");
    } else {
      return fail(p, w[i].col, "unexpected '%s' (expected -D name=value%s)", a,
                  allow_path && !v->model ? " or a .cram path" : "");
    }
  }
  return CRAM_OK;
}

/* grid NAME [PATH] k=v1,v2 k2=w1,w2 ...: one variant per combination. */
static cram_status grid(parser *p, const word *w, int n) {
  if (n < 3) return fail(p, w[0].col, "grid needs a name and at least one axis like layers=2,4", NULL, NULL);
  int first = 2;
  const char *model = NULL;
  if (!strchr(w[2].s, '=')) model = w[2].s, first = 3;
  int axes = n - first;
  if (axes < 1) return fail(p, w[0].col, "grid needs at least one axis like layers=2,4", NULL, NULL);
  if (axes > CRAM_SWEEP_MAX_DEFINES) return fail(p, w[first].col, "too many grid axes", NULL, NULL);
  int count[CRAM_SWEEP_MAX_DEFINES];
  uint64_t total = 1;
  for (int a = 0; a < axes; a++) {
    const char *s = w[first + a].s, *eq = strchr(s, '=');
    if (!eq || eq == s || !eq[1]) return fail(p, w[first + a].col, "expected an axis like hidden=128,256, got '%s'", s, NULL);
    count[a] = 1;
    for (const char *c = eq + 1; *c; c++) {
      if (*c == ',' && (c[1] == ',' || !c[1] || c[-1] == '=')) return fail(p, w[first + a].col, "empty value in '%s'", s, NULL);
      count[a] += *c == ',';
    }
    total *= (uint64_t)count[a];
    if (total > CRAM_SWEEP_MAX_VARIANTS) return fail(p, w[0].col, "grid '%s' has too many combinations", w[1].s, NULL);
  }
  int idx[CRAM_SWEEP_MAX_DEFINES] = { 0 };
  for (uint64_t k = 0; k < total; k++) {
    char name[256], def[CRAM_SWEEP_MAX_DEFINES][128];
    size_t off = (size_t)snprintf(name, sizeof name, "%s", w[1].s);
    for (int a = 0; a < axes; a++) {
      const char *s = w[first + a].s, *eq = strchr(s, '=');
      const char *v = eq + 1;
      for (int j = 0; j < idx[a]; j++) v = strchr(v, ',') + 1;
      size_t vl = strcspn(v, ",");
      snprintf(def[a], sizeof def[a], "%.*s=%.*s", (int)(eq - s), s, (int)vl, v);
      if (off < sizeof name) off += (size_t)snprintf(name + off, sizeof name - off, ".%s", def[a]);
    }
    cram_sweep_variant *var = new_variant(p, w[1].col, name);
    if (!var) return p->err ? p->err->status : CRAM_E_ARG;
    if (model && !(var->model = resolve(p, model))) return cram_err_set(p->err, CRAM_E_NOMEM, "out of memory");
    for (int a = 0; a < axes; a++) {
      cram_status st = add_define(p, var, &w[first + a], def[a]);
      if (st) return st;
    }
    for (int a = axes - 1; a >= 0; a--) { /* odometer: last axis fastest */
      if (++idx[a] < count[a]) break;
      idx[a] = 0;
    }
  }
  return CRAM_OK;
}

static cram_status once(parser *p, int *seen, const word *w) {
  if (*seen) return fail(p, w->col, "'%s' given twice", w->s, NULL);
  *seen = 1;
  return CRAM_OK;
}

/* Flags the sweep sets itself may not come through `train` / `finetune`. */
static const char *const reserved_train_flags[] = { "--data",       "--out",       "--resume", "--force", "--seed",
                                                    "--budget",     "--steps",     "--tokens", "--flops", "--stop-at",
                                                    "--eval-every", "--eval-seqs", "--quiet",  NULL };
static const char *const reserved_finetune_flags[] = { "--task",   "--vocab", "--init",  "--out",
                                                       "--resume", "--seed",  "--quiet", NULL };

/* Words 1.. of a `train` / `finetune` line appended to args[*n], none of them reserved. */
static cram_status pass_through(parser *p, const word *w, int n, const char *const *reserved, char **args, int *nargs) {
  for (int i = 1; i < n; i++) {
    for (const char *const *r = reserved; *r; r++) {
      size_t l = strlen(*r);
      if (strncmp(w[i].s, *r, l) == 0 && (w[i].s[l] == 0 || w[i].s[l] == '='))
        return fail(p, w[i].col, "'%s' is set by the sweep itself (see docs/sweep.md)", *r, NULL);
    }
    if (*nargs == CRAM_SWEEP_MAX_ARGS) return fail(p, w[i].col, "too many %s arguments", w[0].s, NULL);
    if (!(args[*nargs] = dupstr(w[i].s))) return cram_err_set(p->err, CRAM_E_NOMEM, "out of memory");
    ++*nargs;
  }
  return CRAM_OK;
}

/* downstream TASK_DIR CLASSIFIER.cram [-D k=v]... */
static cram_status downstream(parser *p, const word *w, int n) {
  cram_sweep_downstream *ds = &p->spec->downstream;
  if (ds->task) return fail(p, w[0].col, "'downstream' given twice (one task per sweep)", NULL, NULL);
  if (n < 3) return fail(p, w[0].col, "'downstream' needs a task directory and a classifier .cram", NULL, NULL);
  ds->line = p->line;
  if (!(ds->task = resolve(p, w[1].s))) return cram_err_set(p->err, CRAM_E_NOMEM, "out of memory");
  cram_sweep_variant tmp = { .name = "downstream" }; /* reuses the -D parser */
  cram_status st = model_and_defines(p, &tmp, w, 2, n, 1);
  ds->model = tmp.model;
  ds->ndefines = tmp.ndefines;
  memcpy(ds->defines, tmp.defines, sizeof ds->defines);
  return st;
}

/* classifier NAME CLASSIFIER.cram: a variant whose encoder the spec's classifier does not match */
static cram_status classifier(parser *p, const word *w, int n) {
  if (n != 3) return fail(p, w[0].col, "'classifier' takes a variant name and a .cram path", NULL, NULL);
  cram_sweep_spec *s = p->spec;
  for (int i = 0; i < s->nvariants; i++) {
    if (strcmp(s->variants[i].name, w[1].s) != 0) continue;
    if (s->variants[i].classifier) return fail(p, w[1].col, "variant '%s' already has a classifier", w[1].s, NULL);
    if (!p->classifier_line) p->classifier_line = p->line;
    return (s->variants[i].classifier = resolve(p, w[2].s)) ? CRAM_OK : cram_err_set(p->err, CRAM_E_NOMEM, "out of memory");
  }
  return fail(p, w[1].col, "no variant '%s' above this line", w[1].s, NULL);
}

static cram_status directive(parser *p, word *w, int n) {
  cram_sweep_spec *s = p->spec;
  const char *d = w[0].s;
  cram_status st;
#define NEED(k, what) \
  if (n != (k) + 1) return fail(p, w[0].col, "'%s' takes " what, d, NULL)
  if (strcmp(d, "sweep") == 0) {
    if ((st = once(p, &p->seen_title, &w[0]))) return st;
    if (n < 2) return fail(p, w[0].col, "'sweep' needs a title", NULL, NULL);
    size_t len = 0;
    for (int i = 1; i < n; i++) len += strlen(w[i].s) + 1;
    free(s->title);
    if (!(s->title = malloc(len))) return cram_err_set(p->err, CRAM_E_NOMEM, "out of memory");
    s->title[0] = 0;
    for (int i = 1; i < n; i++) {
      if (i > 1) strcat(s->title, " ");
      strcat(s->title, w[i].s);
    }
    return CRAM_OK;
  }
  if (strcmp(d, "base") == 0) {
    if ((st = once(p, &p->seen_base, &w[0]))) return st;
    if (n < 2) return fail(p, w[0].col, "'base' needs a .cram path", NULL, NULL);
    cram_sweep_variant *b = &s->variants[0];
    b->line = p->line;
    return model_and_defines(p, b, w, 1, n, 1);
  }
  if (strcmp(d, "data") == 0) {
    if ((st = once(p, &p->seen_data, &w[0]))) return st;
    NEED(1, "one directory");
    return (s->data = resolve(p, w[1].s)) ? CRAM_OK : cram_err_set(p->err, CRAM_E_NOMEM, "out of memory");
  }
  if (strcmp(d, "target") == 0) {
    if ((st = once(p, &p->seen_target, &w[0]))) return st;
    NEED(1, "one of cpu, interp, cuda");
    if (strcmp(w[1].s, "cpu") && strcmp(w[1].s, "interp") && strcmp(w[1].s, "cuda"))
      return fail(p, w[1].col, "unknown target '%s' (cpu, interp or cuda)", w[1].s, NULL);
    free(s->target);
    return (s->target = dupstr(w[1].s)) ? CRAM_OK : cram_err_set(p->err, CRAM_E_NOMEM, "out of memory");
  }
  if (strcmp(d, "budget") == 0) {
    NEED(2, "a kind and a value: tokens 2M, steps 200, flops 3e15 or time 30m");
    if (strcmp(w[1].s, "time") == 0) {
      if (s->budget_s > 0) return fail(p, w[1].col, "budget time given twice", NULL, NULL);
      cram_err e = { 0 };
      if (cram_parse_duration(w[2].s, &s->budget_s, &e) || !(s->budget_s > 0))
        return fail(p, w[2].col, "expected a duration like 30m, 90s, 2h, got '%s'", w[2].s, NULL);
      return CRAM_OK;
    }
    int kind = strcmp(w[1].s, "tokens") == 0 ? 1 : strcmp(w[1].s, "steps") == 0 ? 2 : strcmp(w[1].s, "flops") == 0 ? 3 : 0;
    if (!kind) return fail(p, w[1].col, "unknown budget kind '%s' (tokens, steps, flops or time)", w[1].s, NULL);
    if (s->budget_tokens || s->budget_steps || s->budget_flops > 0)
      return fail(p, w[1].col, "one of budget tokens, steps or flops (with 'budget time' as a deadline if wanted)", NULL, NULL);
    if (kind == 3) {
      char *end;
      errno = 0;
      s->budget_flops = strtod(w[2].s, &end);
      if (*end || errno || !(s->budget_flops >= 1) || s->budget_flops > 1e30)
        return fail(p, w[2].col, "expected a FLOP count like 3e15, got '%s'", w[2].s, NULL);
    } else if (parse_count(w[2].s, kind == 1 ? &s->budget_tokens : &s->budget_steps)) {
      return fail(p, w[2].col, "expected a positive count like 200, 5k, 2M, got '%s'", w[2].s, NULL);
    }
    return CRAM_OK;
  }
  if (strcmp(d, "seed") == 0 || strcmp(d, "eval") == 0) {
    int is_seed = d[0] == 's';
    if ((st = once(p, is_seed ? &p->seen_seed : &p->seen_eval, &w[0]))) return st;
    if (is_seed ? n != 2 : n != 2 && !(n == 4 && strcmp(w[2].s, "every") == 0))
      return fail(p, w[0].col, is_seed ? "'seed' takes one number" : "'eval' takes N [every K]", NULL, NULL);
    uint64_t v[2] = { 0, 0 };
    for (int k = 1; k < n; k += 2) {
      char *end;
      errno = 0;
      v[k / 2] = strtoull(w[k].s, &end, 10);
      if (*end || end == w[k].s || errno || w[k].s[0] == '-' || (k == 3 && v[1] == 0))
        return fail(p, w[k].col, k == 3 ? "expected a positive integer, got '%s'" : "expected a non-negative integer, got '%s'",
                    w[k].s, NULL);
    }
    if (is_seed) s->seed = v[0];
    else s->eval_seqs = v[0], s->eval_every = v[1];
    return CRAM_OK;
  }
  if (strcmp(d, "train") == 0) return pass_through(p, w, n, reserved_train_flags, s->train_args, &s->ntrain_args);
  if (strcmp(d, "finetune") == 0) {
    if (!p->finetune_line) p->finetune_line = p->line;
    return pass_through(p, w, n, reserved_finetune_flags, s->downstream.args, &s->downstream.nargs);
  }
  if (strcmp(d, "downstream") == 0) return downstream(p, w, n);
  if (strcmp(d, "classifier") == 0) return classifier(p, w, n);
  if (strcmp(d, "variant") == 0) {
    if (n < 2) return fail(p, w[0].col, "'variant' needs a name", NULL, NULL);
    if (strcmp(w[1].s, "base") == 0) return fail(p, w[1].col, "'base' is the base model's row", NULL, NULL);
    cram_sweep_variant *v = new_variant(p, w[1].col, w[1].s);
    if (!v) return p->err ? p->err->status : CRAM_E_ARG;
    if (n == 2) return fail(p, w[1].col, "variant '%s' changes nothing: give a .cram path and/or -D overrides", w[1].s, NULL);
    return model_and_defines(p, v, w, 2, n, 1);
  }
  if (strcmp(d, "grid") == 0) return grid(p, w, n);
  return fail(p, w[0].col,
              "unknown directive '%s' (sweep, base, data, target, budget, seed, eval, train, variant, grid, downstream,"
              " finetune, classifier)",
              d, NULL);
#undef NEED
}

cram_status cram_sweep_spec_parse(const char *path, const char *text, cram_sweep_spec *spec, cram_err *err) {
  memset(spec, 0, sizeof *spec);
  parser p = { .path = path, .spec = spec, .err = err };
  cram_err local = { 0 };
  if (!p.err) p.err = &local;
  const char *slash = strrchr(path, '/');
  size_t dl = slash ? (size_t)(slash - path) : 0;
  p.dir = malloc(dl + 1);
  spec->path = dupstr(path);
  spec->nvariants = 1; /* the base row */
  snprintf(spec->variants[0].name, sizeof spec->variants[0].name, "base");
  if (!p.dir || !spec->path) {
    free(p.dir);
    cram_sweep_spec_free(spec);
    return cram_err_set(p.err, CRAM_E_NOMEM, "out of memory");
  }
  memcpy(p.dir, path, dl);
  p.dir[dl] = 0;
  if (dl == 0 && slash) strcpy(p.dir, "/"); /* a SPEC at the root */
  cram_status st = CRAM_OK;
  const char *c = text;
  char line[4096];
  word w[MAX_WORDS];
  while (*c && !st) {
    p.line++;
    size_t len = strcspn(c, "\n");
    if (len >= sizeof line) {
      st = fail(&p, 1, "line longer than %s characters", "4095", NULL);
      break;
    }
    memcpy(line, c, len);
    line[len] = 0;
    c += len + (c[len] == '\n');
    int n = split_words(line, w);
    if (n < 0) st = fail(&p, 1, "too many words on one line", NULL, NULL);
    else if (n > 0) st = directive(&p, w, n);
  }
  p.line++;
  if (!st && !p.seen_base) st = fail(&p, 1, "no 'base' line: the sweep needs a base model", NULL, NULL);
  else if (!st && !p.seen_data) st = fail(&p, 1, "no 'data' line: the sweep needs a token shard directory", NULL, NULL);
  else if (!st && !spec->budget_s && !spec->budget_tokens && !spec->budget_steps && !(spec->budget_flops > 0))
    st =
      fail(&p, 1, "no 'budget' line: give 'budget tokens N', 'budget steps N', 'budget flops X' or 'budget time T'", NULL, NULL);
  if (!st && !spec->downstream.task && (p.finetune_line || p.classifier_line)) {
    p.line = p.finetune_line ? p.finetune_line : p.classifier_line;
    st = fail(&p, 1, "'%s' without a 'downstream' line", p.finetune_line ? "finetune" : "classifier", NULL);
  }
  if (!st && !spec->target && !(spec->target = dupstr("cpu"))) st = cram_err_set(p.err, CRAM_E_NOMEM, "out of memory");
  if (!st && !spec->title) {
    const char *b = slash ? slash + 1 : path;
    if (!(spec->title = dupstr(b))) st = cram_err_set(p.err, CRAM_E_NOMEM, "out of memory");
  }
  /* variants without a file use the base's; their -D overrides come after the base's */
  const cram_sweep_variant *b = &spec->variants[0];
  for (int i = 1; !st && i < spec->nvariants; i++) {
    cram_sweep_variant *v = &spec->variants[i];
    if (!v->model && !(v->model = dupstr(b->model))) st = cram_err_set(p.err, CRAM_E_NOMEM, "out of memory");
    if (!st && v->ndefines + b->ndefines > CRAM_SWEEP_MAX_DEFINES) { /* an upper bound of the merged count */
      p.line = v->line;
      st = fail(&p, 1, "variant '%s' has too many -D overrides with the base's", v->name, NULL);
    }
    if (st) break;
    /* the base's overrides first, then the variant's; a variant's k=v replaces the base's k */
    char *merged[CRAM_SWEEP_MAX_DEFINES];
    int m = 0;
    for (int k = 0; !st && k < b->ndefines; k++) {
      size_t kl = strcspn(b->defines[k], "=");
      int replaced = 0;
      for (int j = 0; j < v->ndefines; j++) replaced |= strncmp(v->defines[j], b->defines[k], kl + 1) == 0;
      if (replaced) continue;
      if (!(merged[m] = dupstr(b->defines[k]))) st = cram_err_set(p.err, CRAM_E_NOMEM, "out of memory");
      else m++;
    }
    for (int j = 0; j < v->ndefines; j++) merged[m++] = v->defines[j];
    memcpy(v->defines, merged, (size_t)m * sizeof *merged);
    v->ndefines = m;
  }
  free(p.dir);
  if (st) cram_sweep_spec_free(spec);
  return st;
}

cram_status cram_sweep_spec_load(const char *path, cram_sweep_spec *spec, cram_err *err) {
  memset(spec, 0, sizeof *spec);
  FILE *f = fopen(path, "rb");
  if (!f) return cram_err_set(err, CRAM_E_IO, "%s: %s", path, strerror(errno));
  char *text = NULL;
  size_t n = 0, cap = 0;
  for (;;) {
    if (n + 4096 + 1 > cap) {
      cap = cap ? cap * 2 : 8192;
      char *t = cap > (1u << 20) ? NULL : realloc(text, cap);
      if (!t) {
        free(text);
        fclose(f);
        return cram_err_set(err, CRAM_E_ARG, "%s: not a sweep SPEC (over 512 KiB)", path);
      }
      text = t;
    }
    size_t r = fread(text + n, 1, 4096, f);
    n += r;
    if (r < 4096) break;
  }
  int bad = ferror(f);
  fclose(f);
  if (bad) {
    free(text);
    return cram_err_set(err, CRAM_E_IO, "%s: read error", path);
  }
  text[n] = 0;
  if (strlen(text) != n) {
    free(text);
    return cram_err_set(err, CRAM_E_ARG, "%s: not a text file (NUL byte)", path);
  }
  cram_status st = cram_sweep_spec_parse(path, text, spec, err);
  free(text);
  return st;
}

void cram_sweep_spec_free(cram_sweep_spec *spec) {
  free(spec->path);
  free(spec->title);
  free(spec->data);
  free(spec->target);
  for (int i = 0; i < spec->ntrain_args; i++) free(spec->train_args[i]);
  free(spec->downstream.task);
  free(spec->downstream.model);
  for (int i = 0; i < spec->downstream.ndefines; i++) free(spec->downstream.defines[i]);
  for (int i = 0; i < spec->downstream.nargs; i++) free(spec->downstream.args[i]);
  for (int i = 0; i < spec->nvariants; i++) {
    free(spec->variants[i].model);
    free(spec->variants[i].classifier);
    for (int k = 0; k < spec->variants[i].ndefines; k++) free(spec->variants[i].defines[k]);
  }
  memset(spec, 0, sizeof *spec);
}
