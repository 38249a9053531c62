/* print.c: the IR text form, one line per node (grammar in docs/ir.md):
 *
 *   %2 = embedding %1, %0 : f32[8,128,64]  # models/tiny.cram:7:5
 *
 * The output is what ir_parse reads back, and print(parse(print(g))) is
 * byte-identical to print(g): attributes in AttrId order, floats in the
 * shortest form that reads back bit-exactly, strings escaped so any byte
 * survives, names quoted only when they are not plain identifiers.
 */
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ir_impl.h"

/* Shortest "%.{9..17}g" that strtod reads back exactly; always marked as a
 * float (has '.', 'e', "inf" or "nan") so the parser tells it from an int. */
static void put_float(FILE *out, double v) {
  char buf[40];
  if (isnan(v)) {
    fputs("nan", out); /* payloads and sign are not kept; no valid attribute is NaN */
    return;
  }
  if (isinf(v)) {
    fputs(v < 0 ? "-inf" : "inf", out);
    return;
  }
  for (int prec = 9; prec <= 17; prec++) {
    snprintf(buf, sizeof buf, "%.*g", prec, v);
    if (strtod(buf, NULL) == v) break; /* prec 17 always round-trips an IEEE double */
  }
  fputs(buf, out);
  if (!strpbrk(buf, ".e")) fputs(".0", out);
}

static void put_string(FILE *out, const char *s) {
  fputc('"', out);
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (*p == '"' || *p == '\\') fprintf(out, "\\%c", *p);
    else if (*p == '\n') fputs("\\n", out);
    else if (*p < 0x20 || *p >= 0x7f) fprintf(out, "\\x%02x", *p);
    else fputc(*p, out);
  }
  fputc('"', out);
}

/* Graph and output names: bare when [A-Za-z_][A-Za-z0-9_.-]*, else quoted.
 * The parser applies the same rule (see ident_char in parse.c). */
static bool is_ident(const char *s) {
  if (!s || !(*s == '_' || (*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z'))) return false;
  for (; *s; s++)
    if (!(*s == '_' || *s == '.' || *s == '-' || (*s >= '0' && *s <= '9') || (*s >= 'A' && *s <= 'Z') ||
          (*s >= 'a' && *s <= 'z')))
      return false;
  return true;
}

static void put_name(FILE *out, const char *s) {
  if (is_ident(s)) fputs(s, out);
  else put_string(out, s ? s : "");
}

/* The trailer's file is printed raw when that is unambiguous (printable
 * ASCII, no leading quote, no surrounding blanks), else as a string. */
static void put_loc(FILE *out, SrcLoc loc) {
  const char *f = loc.file ? loc.file : "";
  size_t len = strlen(f);
  bool raw = f[0] != '"' && f[0] != ' ' && (len == 0 || f[len - 1] != ' ');
  for (const char *p = f; *p && raw; p++) raw = *p >= 0x20 && *p < 0x7f;
  fputs("  # ", out);
  if (raw) fputs(f, out);
  else put_string(out, f);
  fprintf(out, ":%u:%u", loc.line, loc.col);
}

static void put_attr(FILE *out, const Attr *a) {
  if ((unsigned)a->id >= ATTR_COUNT) {
    fputs("?=?", out);
    return;
  }
  fprintf(out, "%s=", ir_attrs[a->id].name);
  switch (ir_attrs[a->id].kind) {
  case AK_INT: fprintf(out, "%" PRId64, a->u.i); break;
  case AK_FLOAT: put_float(out, a->u.f); break;
  case AK_STR: put_string(out, a->u.s ? a->u.s : ""); break;
  case AK_INTS:
    fputc('[', out);
    for (uint32_t i = 0; i < a->u.ints.n; i++) fprintf(out, i ? ",%" PRId64 : "%" PRId64, a->u.ints.v[i]);
    fputc(']', out);
    break;
  }
}

void ir_print(const Graph *g, FILE *out) {
  fputs("graph ", out);
  put_name(out, g->name);
  fputc('\n', out);
  for (ValueId v = 0; v < g->n; v++) {
    const Node *n = &g->nodes[v];
    /* Printing must survive a broken graph: it is how a pass bug gets looked at. */
    fprintf(out, "%%%u = %s", v, (unsigned)n->op < OP_COUNT ? ir_ops[n->op].name : "?");
    for (int i = 0; i < n->nin && i < IR_MAX_IN; i++) fprintf(out, "%s%%%u", i ? ", " : " ", n->in[i]);
    if (n->nattr) {
      fputs(" {", out);
      for (int i = 0; i < n->nattr && i < IR_MAX_ATTRS; i++) {
        if (i) fputs(", ", out);
        put_attr(out, &n->attr[i]);
      }
      fputc('}', out);
    }
    char t[IR_TYPE_STR_MAX];
    fprintf(out, " : %s", ir_type_str(n->dtype, &n->shape, t, sizeof t));
    if (n->loc.line) put_loc(out, n->loc);
    fputc('\n', out);
  }
  for (uint32_t i = 0; i < g->nout; i++) {
    fputs("output ", out);
    put_name(out, g->outputs[i].name);
    fprintf(out, " = %%%u\n", g->outputs[i].value);
  }
}
