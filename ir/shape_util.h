/* shape_util.h: helpers shared by the shape rules (ir/shape*.c only).
 *
 * Every rule reports failure as one line in msg (fail), checks operand
 * dtypes the same way (need_float), prints types in messages by value (ty),
 * and ends in result(), which validates the type it is about to return.
 */
#ifndef CRAMC_SHAPE_UTIL_H
#define CRAMC_SHAPE_UTIL_H

#include <stdarg.h>
#include <stdio.h>

#include "ir_impl.h"

/* A type string by value so messages can format several inline; the
 * temporary lives until the end of the full expression (C11 6.2.4p8). */
typedef struct {
  char s[IR_TYPE_STR_MAX];
} TypeStr;

static inline TypeStr ty(const Node *x) {
  TypeStr t;
  ir_type_str(x->dtype, &x->shape, t.s, sizeof t.s);
  return t;
}

static inline TypeStr ty_of(DType dt, const Shape *s) {
  TypeStr t;
  ir_type_str(dt, s, t.s, sizeof t.s);
  return t;
}

/* A user string made safe for a one-line message: printable ASCII only, cut. */
typedef struct {
  char s[48];
} SafeStr;

static inline SafeStr safe(const char *str) {
  SafeStr r;
  size_t j = 0;
  for (const unsigned char *p = (const unsigned char *)str; *p && j + 5 < sizeof r.s; p++) {
    if (*p >= 0x20 && *p < 0x7f && *p != '"' && *p != '\\') r.s[j++] = (char)*p;
    else j += (size_t)snprintf(r.s + j, sizeof r.s - j, "\\x%02x", *p);
  }
  r.s[j] = '\0';
  return r;
}

__attribute__((format(printf, 3, 4))) static inline bool fail(char *msg, size_t msglen, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, msglen, fmt, ap);
  va_end(ap);
  return false;
}

static inline const Node *input(const Graph *g, const Node *n, int i) { return &g->nodes[n->in[i]]; }
static inline bool is_float(DType t) { return t == DT_F32 || t == DT_BF16; }

/* Every rule ends here: the result must itself be a well-formed type. */
static inline bool result(DType dt, const Shape *s, DType *dtype, Shape *shape, char *msg, size_t msglen) {
  char why[IR_MSG_MAX];
  if (!ir_check_type(dt, s, why, sizeof why)) return fail(msg, msglen, "result: %s", why);
  *dtype = dt;
  *shape = *s;
  return true;
}

static inline bool need_float(const char *what, const Node *x, char *msg, size_t msglen) {
  if (is_float(x->dtype)) return true;
  return fail(msg, msglen, "%s must be f32 or bf16, got %s", what, ty(x).s);
}

#endif
