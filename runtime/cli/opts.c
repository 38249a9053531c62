/* opts.c - the option table every `cram` subcommand declares once: the parser
 * (cli_parse) and the help text (cli_usage) both read it, so an option cannot
 * be documented and not parsed, or parsed and not documented. Numbers are
 * bounded by the table; a mistyped option gets a did-you-mean. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../schedule.h"
#include "cli.h"

/* Optimal-string-alignment distance, capped: option names are short. */
static size_t edit_distance(const char *a, const char *b) {
  size_t n = strlen(a), m = strlen(b);
  if (n > 63 || m > 63) return 64;
  size_t d[64][64];
  for (size_t i = 0; i <= n; i++) d[i][0] = i;
  for (size_t j = 0; j <= m; j++) d[0][j] = j;
  for (size_t i = 1; i <= n; i++)
    for (size_t j = 1; j <= m; j++) {
      size_t c = a[i - 1] != b[j - 1];
      size_t v = d[i - 1][j] + 1;
      if (d[i][j - 1] + 1 < v) v = d[i][j - 1] + 1;
      if (d[i - 1][j - 1] + c < v) v = d[i - 1][j - 1] + c;
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < v) v = d[i - 2][j - 2] + 1;
      d[i][j] = v;
    }
  return d[n][m];
}

const char *cli_suggest(const cli_opt *opts, size_t n, const char *arg) {
  char name[64];
  size_t len = strcspn(arg, "=");
  if (len >= sizeof name) return NULL;
  memcpy(name, arg, len);
  name[len] = 0;
  const char *best = NULL;
  size_t bd = 3; /* at most two edits, or a unique prefix */
  for (size_t i = 0; i < n; i++) {
    size_t dd = edit_distance(name, opts[i].name);
    if (dd < bd) bd = dd, best = opts[i].name;
  }
  if (best) return best;
  for (size_t i = 0; i < n; i++)
    if (len > 3 && strncmp(opts[i].name, name, len) == 0) {
      if (best) return NULL; /* ambiguous */
      best = opts[i].name;
    }
  return best;
}

static int bad_value(const char *cmd, const cli_opt *o, const char *v, const char *what) {
  fprintf(stderr, "cram %s: %s: %s, got '%s'\n", cmd, o->name, what, v);
  return 2;
}

/* Parses v into o->dst; 0 or 2 (usage error printed). */
static int set_value(const char *cmd, const cli_opt *o, const char *v) {
  char what[160];
  cram_err e = { 0 };
  double x = 0;
  uint64_t u = 0;
  switch (o->kind) {
  case CLI_STR:
    if (!*v) return bad_value(cmd, o, v, "expected a non-empty value");
    *(const char **)o->dst = v;
    return 0;
  case CLI_U64:
    if (cli_parse_u64(v, &u) || (double)u < o->min || (double)u > o->max) {
      snprintf(what, sizeof what, "expected an integer in [%.0f, %.0f]", o->min, o->max);
      return bad_value(cmd, o, v, what);
    }
    *(uint64_t *)o->dst = u;
    return 0;
  case CLI_F64:
    if (cli_parse_double(v, &x) || !isfinite(x) || x < o->min || x > o->max || (o->open_min && !(x > o->min))) {
      snprintf(what, sizeof what, "expected a number in %s%g, %g]", o->open_min ? "(" : "[", o->min, o->max);
      return bad_value(cmd, o, v, what);
    }
    *(double *)o->dst = x;
    return 0;
  case CLI_DURATION:
    if (o->min <= 0 && strcmp(v, "0") == 0) x = 0;
    else if (cram_parse_duration(v, &x, &e) || x > o->max) {
      snprintf(what, sizeof what, "expected a duration like 30s, 90m, 24h (at most %gs)%s", o->max, o->min <= 0 ? ", or 0" : "");
      return bad_value(cmd, o, v, what);
    }
    *(double *)o->dst = x;
    return 0;
  case CLI_COUNT:
    if (cram_parse_count(v, &x, &e) || x < o->min || x > o->max) {
      snprintf(what, sizeof what, "expected a count like 20M, 1.5G or 3e17 in [%g, %g]", o->min, o->max);
      return bad_value(cmd, o, v, what);
    }
    *(double *)o->dst = x;
    return 0;
  case CLI_CHOICE:
    for (size_t i = 0; o->choices && o->choices[i]; i++)
      if (strcmp(v, o->choices[i]) == 0) {
        *(int *)o->dst = (int)i;
        return 0;
      }
    snprintf(what, sizeof what, "expected one of");
    for (size_t i = 0; o->choices && o->choices[i]; i++) {
      size_t l = strlen(what);
      snprintf(what + l, sizeof what - l, "%s %s", i ? "," : "", o->choices[i]);
    }
    return bad_value(cmd, o, v, what);
  case CLI_LIST:
    if (!*v) return bad_value(cmd, o, v, "expected a non-empty value");
    if (*o->count >= (int)o->max) {
      snprintf(what, sizeof what, "given more than %.0f times", o->max);
      return bad_value(cmd, o, v, what);
    }
    ((const char **)o->dst)[(*o->count)++] = v;
    return 0;
  case CLI_FLAG: break;
  }
  return 0;
}

int cli_parse(const cli_command *c, int argc, char **argv, const char **pos, size_t *npos) {
  size_t maxpos = *npos, np = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
      cli_usage(c, stdout);
      return -1;
    }
    if (strcmp(a, "--") == 0) {
      for (i++; i < argc; i++) {
        if (np == maxpos) goto too_many;
        pos[np++] = argv[i];
      }
      break;
    }
    if (a[0] != '-' || !a[1]) {
      if (np == maxpos) goto too_many;
      pos[np++] = a;
      continue;
    }
    const cli_opt *o = NULL;
    size_t len = strcspn(a, "=");
    for (size_t k = 0; k < c->nopts && !o; k++)
      if (strlen(c->opts[k].name) == len && strncmp(a, c->opts[k].name, len) == 0) o = &c->opts[k];
    if (!o) {
      const char *s = cli_suggest(c->opts, c->nopts, a);
      if (s) fprintf(stderr, "cram %s: unknown option '%s'; did you mean '%s'? (see cram %s --help)\n", c->name, a, s, c->name);
      else fprintf(stderr, "cram %s: unknown option '%s' (see cram %s --help)\n", c->name, a, c->name);
      return 2;
    }
    if (o->seen) *o->seen = 1;
    if (o->kind == CLI_FLAG) {
      if (a[len] == '=') {
        fprintf(stderr, "cram %s: %s takes no value\n", c->name, o->name);
        return 2;
      }
      *(int *)o->dst = 1;
      continue;
    }
    const char *v;
    if (a[len] == '=') v = a + len + 1;
    else if (i + 1 < argc) v = argv[++i];
    else {
      fprintf(stderr, "cram %s: %s needs a value (%s)\n", c->name, o->name, o->arg ? o->arg : "?");
      return 2;
    }
    int r = set_value(c->name, o, v);
    if (r) return r;
  }
  *npos = np;
  return 0;
too_many:
  fprintf(stderr, "cram %s: too many arguments (see cram %s --help)\n", c->name, c->name);
  return 2;
}

void cli_usage(const cli_command *c, FILE *f) {
  fputs(c->synopsis, f);
  if (c->nopts == 0 || !c->opts[0].section) fputs("options:\n", f);
  for (size_t k = 0; k < c->nopts; k++) {
    const cli_opt *o = &c->opts[k];
    if (o->section) fprintf(f, "%s:\n", o->section);
    char head[64];
    snprintf(head, sizeof head, "%s%s%s", o->name, o->arg ? " " : "", o->arg ? o->arg : "");
    /* help lines after the first are indented under the first */
    const char *h = o->help;
    size_t l = strcspn(h, "\n");
    if (strlen(head) > 18) fprintf(f, "  %s\n  %-18s %.*s\n", head, "", (int)l, h);
    else fprintf(f, "  %-18s %.*s\n", head, (int)l, h);
    for (h += l; *h == '\n'; h += l) {
      h++;
      l = strcspn(h, "\n");
      fprintf(f, "  %-18s %.*s\n", "", (int)l, h);
    }
  }
  fputs("  -h, --help         this help\n", f);
  if (c->epilog) fputs(c->epilog, f);
}
