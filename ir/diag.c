/* diag.c: see diag.h. Source lines are echoed with non-printable and non-ASCII
 * bytes shown as \xNN so a bad byte in the input can never garble the terminal
 * or produce invalid UTF-8 on our output. */
#include "diag.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

void diag_init(Diag *d, FILE *out) {
  memset(d, 0, sizeof *d);
  d->out = out;
  d->max_errors = 20;
}

void diag_add_source(Diag *d, const char *name, const char *text, size_t len) {
  if (d->nsrc == (int)(sizeof d->src / sizeof d->src[0])) return; /* caret display is best effort */
  d->src[d->nsrc++] = (DiagSource){ name, text, len };
}

static const DiagSource *find_source(const Diag *d, const char *name) {
  if (!name) return NULL;
  for (int i = 0; i < d->nsrc; i++)
    if (d->src[i].name == name || strcmp(d->src[i].name, name) == 0) return &d->src[i];
  return NULL;
}

static void put_escaped(FILE *f, unsigned char c) {
  if (c == '\t' || (c >= 0x20 && c < 0x7f)) fputc(c, f);
  else fprintf(f, "\\x%02X", c);
}

/* Print "  12 | text" and a caret line under column `col`. */
static void show_line(const Diag *d, SrcLoc loc) {
  const DiagSource *s = find_source(d, loc.file);
  if (!s || loc.line == 0) return;
  const char *p = s->text, *end = s->text + s->len;
  for (uint32_t l = 1; l < loc.line && p < end; p++)
    if (*p == '\n') l++;
  if (p > end) return;
  /* The line ends at \n or \r\n. A bare \r is not a line break to the lexer
   * (old Mac line endings read as one long line), so it is shown as \x0D and
   * the caret still lands under the byte it points at. */
  const char *e = p;
  bool bare_cr = false;
  for (; e < end && *e != '\n'; e++)
    if (*e == '\r') {
      if (e + 1 == end || e[1] == '\n') break;
      bare_cr = true;
    }
  fprintf(d->out, "%5u | ", loc.line);
  for (const char *q = p; q < e; q++) put_escaped(d->out, (unsigned char)*q);
  fprintf(d->out, "\n      | ");
  /* Pad under each byte before the caret column with what that byte printed
   * as: a tab stays a tab, a \xNN escape takes four columns. Walking the
   * line's bytes (not a width count) keeps us inside the line. */
  for (const char *q = p; q < e && (uint32_t)(q - p) + 1 < loc.col; q++) {
    unsigned char c = (unsigned char)*q;
    if (c == '\t') fputc('\t', d->out);
    else fputs((c >= 0x20 && c < 0x7f) ? " " : "    ", d->out);
  }
  fprintf(d->out, "^\n");
  if (bare_cr)
    fprintf(d->out, "      = note: this line holds bare carriage returns (\\x0D): cramc reads \\n or \\r\\n line endings\n");
}

static void vreport(Diag *d, SrcLoc loc, const char *kind, const char *fmt, va_list ap) {
  if (loc.file && loc.line) fprintf(d->out, "%s:%u:%u: %s: ", loc.file, loc.line, loc.col, kind);
  else if (loc.file) fprintf(d->out, "%s: %s: ", loc.file, kind);
  else fprintf(d->out, "cramc: %s: ", kind);
  vfprintf(d->out, fmt, ap);
  fputc('\n', d->out);
  show_line(d, loc);
}

void diag_error(Diag *d, SrcLoc loc, const char *fmt, ...) {
  d->nerrors++;
  if (d->max_errors && d->nerrors > d->max_errors) {
    if (d->nerrors == d->max_errors + 1) fprintf(d->out, "cramc: too many errors, stopping\n");
    return;
  }
  va_list ap;
  va_start(ap, fmt);
  vreport(d, loc, "error", fmt, ap);
  va_end(ap);
}

void diag_warn(Diag *d, SrcLoc loc, const char *fmt, ...) {
  d->nwarnings++;
  va_list ap;
  va_start(ap, fmt);
  vreport(d, loc, "warning", fmt, ap);
  va_end(ap);
}

void diag_note(Diag *d, SrcLoc loc, const char *fmt, ...) {
  if (d->max_errors && d->nerrors > d->max_errors) return;
  va_list ap;
  va_start(ap, fmt);
  vreport(d, loc, "note", fmt, ap);
  va_end(ap);
}

_Noreturn void ir_internal_error(const char *file, int line, const char *what) {
  fprintf(stderr, "cramc: internal error at %s:%d: %s\n", file, line, what);
  abort();
}
