/* shape.c: shape helpers and the shape rules named in ops.def.
 *
 * A shape rule is the single truth about which inputs and attribute values an
 * op accepts and what it produces: ir_add runs it to type a new node, ir_verify
 * re-runs it to check a graph, and the IR parser builds through ir_add. Rules
 * are strict (dtypes included) and explain a rejection in one line that names
 * the offending types. Inputs are trusted to have well-formed types (the
 * callers check that first); every product of dims is overflow-checked and
 * every result is bounded by IR_MAX_NUMEL, so hostile attributes cannot
 * overflow anything downstream.
 */
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <string.h>

#include "shape_util.h"

/* ---- shape helpers ------------------------------------------------------- */

/* Element count, or -1 when the shape is malformed (rank out of range, a dim
 * < 1) or the count overflows or exceeds IR_MAX_NUMEL. */
int64_t ir_shape_numel(const Shape *s) {
  if (s->rank > IR_MAX_RANK) return -1;
  int64_t p = 1;
  for (int i = 0; i < s->rank; i++) {
    if (s->dim[i] < 1) return -1;
    if (__builtin_mul_overflow(p, s->dim[i], &p) || p > IR_MAX_NUMEL) return -1;
  }
  return p;
}

bool ir_shape_eq(const Shape *a, const Shape *b) {
  if (a->rank != b->rank) return false;
  for (int i = 0; i < a->rank && i < IR_MAX_RANK; i++)
    if (a->dim[i] != b->dim[i]) return false;
  return true;
}

Shape ir_shape_make(int rank, const int64_t *dims) {
  IR_ASSERT(rank >= 0 && rank <= IR_MAX_RANK);
  Shape s = { .rank = (uint8_t)rank };
  for (int i = 0; i < rank; i++) s.dim[i] = dims[i];
  return s;
}

char *ir_type_str(DType t, const Shape *s, char *buf, size_t n) {
  if (n == 0) return buf;
  size_t at = 0;
  /* snprintf returns the untruncated length; clamp so `at` never passes n-1. */
#define PUT(...)                                                    \
  do {                                                              \
    int k_ = snprintf(buf + at, n - at, __VA_ARGS__);               \
    if (k_ > 0) at = (size_t)k_ < n - at ? at + (size_t)k_ : n - 1; \
  } while (0)
  PUT("%s[", ir_dtype_name(t));
  int rank = s->rank <= IR_MAX_RANK ? s->rank : IR_MAX_RANK;
  for (int i = 0; i < rank; i++) PUT(i ? ",%" PRId64 : "%" PRId64, s->dim[i]);
  PUT(s->rank <= IR_MAX_RANK ? "]" : ",...]");
#undef PUT
  return buf;
}

bool ir_check_type(DType dt, const Shape *s, char *msg, size_t msglen) {
  if ((unsigned)dt >= DT_COUNT) {
    snprintf(msg, msglen, "unknown dtype %d", (int)dt);
    return false;
  }
  if (s->rank > IR_MAX_RANK) {
    snprintf(msg, msglen, "rank %d exceeds the maximum rank %d", s->rank, IR_MAX_RANK);
    return false;
  }
  for (int i = 0; i < s->rank; i++)
    if (s->dim[i] < 1) {
      snprintf(msg, msglen, "dimension %d is %" PRId64 " (must be >= 1)", i, s->dim[i]);
      return false;
    }
  if (ir_shape_numel(s) < 0) {
    char t[IR_TYPE_STR_MAX];
    snprintf(msg, msglen, "%s has more than 2^40 elements", ir_type_str(dt, s, t, sizeof t));
    return false;
  }
  return true;
}

/* ---- helpers for the rules: ir/shape_util.h ---------------------------- */

static bool need_i32(const char *what, const Node *x, char *msg, size_t msglen) {
  if (x->dtype == DT_I32) return true;
  return fail(msg, msglen, "%s must be i32, got %s", what, ty(x).s);
}

/* ---- gathers ------------------------------------------------------------- */

/* (table f32[V,H], ids i32[...]) -> [...,H] */
bool shape_embedding(const Graph *g, const Node *n, DType *dtype, Shape *shape, char *msg, size_t msglen) {
  const Node *table = input(g, n, 0), *ids = input(g, n, 1);
  if (!need_float("table", table, msg, msglen)) return false;
  if (table->shape.rank != 2) return fail(msg, msglen, "table must be a [V,H] matrix, got %s", ty(table).s);
  if (!need_i32("ids", ids, msg, msglen)) return false;
  if (ids->shape.rank + 1 > IR_MAX_RANK)
    return fail(msg, msglen, "ids %s has rank %d; the result would exceed rank %d", ty(ids).s, ids->shape.rank, IR_MAX_RANK);
  Shape out = ids->shape;
  out.dim[out.rank++] = table->shape.dim[1];
  return result(table->dtype, &out, dtype, shape, msg, msglen);
}

/* slots: prediction slots per sequence, 1..S. */
static bool check_slots(const Node *n, int64_t seq, int64_t *slots, char *msg, size_t msglen) {
  *slots = ir_get_int(n, ATTR_SLOTS);
  if (*slots < 1 || *slots > seq)
    return fail(msg, msglen, "slots=%" PRId64 " must be in 1..%" PRId64 " (the sequence length)", *slots, seq);
  return true;
}

static bool check_targets_bs(const Node *t, char *msg, size_t msglen) {
  if (t->dtype != DT_I32 || t->shape.rank != 2) return fail(msg, msglen, "targets must be i32[B,S], got %s", ty(t).s);
  return true;
}

/* (x[B,S,H], targets i32[B,S]) -> [B*slots,H] */
bool shape_masked_rows(const Graph *g, const Node *n, DType *dtype, Shape *shape, char *msg, size_t msglen) {
  const Node *x = input(g, n, 0), *t = input(g, n, 1);
  if (!need_float("x", x, msg, msglen)) return false;
  if (x->shape.rank != 3) return fail(msg, msglen, "x must be [B,S,H], got %s", ty(x).s);
  if (!check_targets_bs(t, msg, msglen)) return false;
  if (t->shape.dim[0] != x->shape.dim[0] || t->shape.dim[1] != x->shape.dim[1])
    return fail(msg, msglen, "targets %s do not match x %s in [B,S]", ty(t).s, ty(x).s);
  int64_t slots, rows;
  if (!check_slots(n, x->shape.dim[1], &slots, msg, msglen)) return false;
  if (__builtin_mul_overflow(x->shape.dim[0], slots, &rows)) return fail(msg, msglen, "B*slots overflows");
  Shape out = { .rank = 2, .dim = { rows, x->shape.dim[2] } };
  return result(x->dtype, &out, dtype, shape, msg, msglen);
}

/* (targets i32[B,S]) -> i32[B*slots] */
bool shape_masked_targets(const Graph *g, const Node *n, DType *dtype, Shape *shape, char *msg, size_t msglen) {
  const Node *t = input(g, n, 0);
  if (!check_targets_bs(t, msg, msglen)) return false;
  int64_t slots, rows;
  if (!check_slots(n, t->shape.dim[1], &slots, msg, msglen)) return false;
  if (__builtin_mul_overflow(t->shape.dim[0], slots, &rows)) return fail(msg, msglen, "B*slots overflows");
  Shape out = { .rank = 1, .dim = { rows } };
  return result(DT_I32, &out, dtype, shape, msg, msglen);
}

/* ---- GEMM ---------------------------------------------------------------- */

static bool check_flag(const Node *n, AttrId id, bool *out, char *msg, size_t msglen) {
  int64_t v = ir_get_int(n, id);
  if (v != 0 && v != 1) return fail(msg, msglen, "%s=%" PRId64 " must be 0 or 1", ir_attrs[id].name, v);
  *out = v != 0;
  return true;
}

/* A[...,M,K] @ B[K,N] (a weight shared by every batch) or A[...,M,K] @
 * B[...,K,N] (same leading dims) -> [...,M,N]; trans_a/trans_b mean the
 * operand is stored with its last two axes swapped. */
bool shape_matmul(const Graph *g, const Node *n, DType *dtype, Shape *shape, char *msg, size_t msglen) {
  const Node *a = input(g, n, 0), *b = input(g, n, 1);
  bool ta = false, tb = false;
  if (!check_flag(n, ATTR_TRANS_A, &ta, msg, msglen) || !check_flag(n, ATTR_TRANS_B, &tb, msg, msglen)) return false;
  if (!need_float("A", a, msg, msglen) || !need_float("B", b, msg, msglen)) return false;
  if (a->dtype != b->dtype) return fail(msg, msglen, "operands differ in dtype: A is %s, B is %s", ty(a).s, ty(b).s);
  int ra = a->shape.rank, rb = b->shape.rank;
  if (ra < 2) return fail(msg, msglen, "A must have rank >= 2, got %s", ty(a).s);
  if (rb != 2 && rb != ra) return fail(msg, msglen, "B must have rank 2 or the rank of A (%d), got %s", ra, ty(b).s);
  for (int i = 0; i < rb - 2; i++)
    if (a->shape.dim[i] != b->shape.dim[i])
      return fail(msg, msglen, "batch dimensions differ: A is %s, B is %s", ty(a).s, ty(b).s);
  const int64_t *da = a->shape.dim + ra - 2, *db = b->shape.dim + rb - 2;
  int64_t m = ta ? da[1] : da[0], ka = ta ? da[0] : da[1];
  int64_t kb = tb ? db[1] : db[0], nn = tb ? db[0] : db[1];
  if (ka != kb)
    return fail(msg, msglen, "inner dimensions differ: %s is %s (K=%" PRId64 "), %s is %s (K=%" PRId64 ")", ta ? "A^T" : "A",
                ty(a).s, ka, tb ? "B^T" : "B", ty(b).s, kb);
  Shape out = a->shape;
  out.dim[ra - 2] = m;
  out.dim[ra - 1] = nn;
  return result(a->dtype, &out, dtype, shape, msg, msglen);
}

/* ---- elementwise --------------------------------------------------------- */

/* numpy broadcasting: align the shapes at the last axis; each pair of dims
 * must be equal or one of them 1; missing leading axes count as 1. */
bool shape_broadcast(const Graph *g, const Node *n, DType *dtype, Shape *shape, char *msg, size_t msglen) {
  const Node *a = input(g, n, 0), *b = input(g, n, 1);
  if (!need_float("lhs", a, msg, msglen) || !need_float("rhs", b, msg, msglen)) return false;
  if (a->dtype != b->dtype) return fail(msg, msglen, "operands differ in dtype: %s vs %s", ty(a).s, ty(b).s);
  int ra = a->shape.rank, rb = b->shape.rank, r = ra > rb ? ra : rb;
  Shape out = { .rank = (uint8_t)r };
  for (int i = 1; i <= r; i++) { /* i-th axis from the end */
    int64_t da = i <= ra ? a->shape.dim[ra - i] : 1, db = i <= rb ? b->shape.dim[rb - i] : 1;
    if (da != db && da != 1 && db != 1)
      return fail(msg, msglen, "cannot broadcast %s with %s: axis -%d is %" PRId64 " vs %" PRId64, ty(a).s, ty(b).s, i, da, db);
    out.dim[r - i] = da == 1 ? db : da;
  }
  return result(a->dtype, &out, dtype, shape, msg, msglen);
}

/* One float input, result of the same type. Checks whichever value
 * attributes the op carries (alpha, p), and that row-wise ops have a row. */
bool shape_same(const Graph *g, const Node *n, DType *dtype, Shape *shape, char *msg, size_t msglen) {
  const Node *x = input(g, n, 0);
  if (!need_float("x", x, msg, msglen)) return false;
  const Attr *alpha = ir_attr(n, ATTR_ALPHA), *p = ir_attr(n, ATTR_P);
  if (alpha && !isfinite(alpha->u.f)) return fail(msg, msglen, "alpha=%g must be finite", alpha->u.f);
  if (p && !(p->u.f >= 0.0 && p->u.f < 1.0)) return fail(msg, msglen, "p=%g must be in [0, 1)", p->u.f);
  if (ir_ops[n->op].cls == OC_NORM && x->shape.rank == 0) return fail(msg, msglen, "x must have rank >= 1, got %s", ty(x).s);
  return result(x->dtype, &x->shape, dtype, shape, msg, msglen);
}

/* Float x -> dtype `to` ("f32" or "bf16"), same shape. The target is an
 * attribute rather than the declared type so that this rule computes it like
 * every other (ir_add has no dtype argument, CSE compares attributes). */
bool shape_cast(const Graph *g, const Node *n, DType *dtype, Shape *shape, char *msg, size_t msglen) {
  const Node *x = input(g, n, 0);
  const char *to = ir_get_str(n, ATTR_TO);
  DType dt;
  if (!ir_dtype_parse(to, strlen(to), &dt) || !is_float(dt))
    return fail(msg, msglen, "to=\"%s\" is not one of f32, bf16", safe(to).s);
  if (!need_float("x", x, msg, msglen)) return false;
  return result(dt, &x->shape, dtype, shape, msg, msglen);
}

/* [...,2F] -> [...,F]: value half times act(gate half). */
bool shape_glu(const Graph *g, const Node *n, DType *dtype, Shape *shape, char *msg, size_t msglen) {
  const Node *x = input(g, n, 0);
  const char *act = ir_get_str(n, ATTR_ACT);
  bool known = ir_act_parse(act) >= 0; /* acts.def */
  if (!known) return fail(msg, msglen, "act=\"%s\" is not one of gelu, relu, sigmoid, none", safe(act).s);
  if (!need_float("x", x, msg, msglen)) return false;
  int r = x->shape.rank;
  if (r == 0) return fail(msg, msglen, "x must have rank >= 1, got %s", ty(x).s);
  if (x->shape.dim[r - 1] % 2)
    return fail(msg, msglen, "last axis of %s is odd (%" PRId64 "); glu needs an even size", ty(x).s, x->shape.dim[r - 1]);
  Shape out = x->shape;
  out.dim[r - 1] /= 2;
  return result(x->dtype, &out, dtype, shape, msg, msglen);
}

/* ---- row-wise ------------------------------------------------------------ */

/* (x[...,H], [weight[H]], [bias[H]]) -> like x */
bool shape_norm(const Graph *g, const Node *n, DType *dtype, Shape *shape, char *msg, size_t msglen) {
  static const char *const names[] = { "x", "weight", "bias" };
  const Node *x = input(g, n, 0);
  double eps = ir_get_float(n, ATTR_EPS);
  if (!(eps > 0.0 && isfinite(eps))) return fail(msg, msglen, "eps=%g must be positive and finite", eps);
  if (!need_float("x", x, msg, msglen)) return false;
  int r = x->shape.rank;
  if (r == 0) return fail(msg, msglen, "x must have rank >= 1, got %s", ty(x).s);
  int64_t h = x->shape.dim[r - 1];
  for (int i = 1; i < n->nin && i < 3; i++) {
    const Node *w = input(g, n, i);
    if (w->dtype != x->dtype || w->shape.rank != 1 || w->shape.dim[0] != h)
      return fail(msg, msglen, "%s must be %s[%" PRId64 "] (the last axis of x %s), got %s", names[i], ir_dtype_name(x->dtype), h,
                  ty(x).s, ty(w).s);
  }
  return result(x->dtype, &x->shape, dtype, shape, msg, msglen);
}

/* ---- reductions ---------------------------------------------------------- */

static bool check_axis(const Node *n, const Node *x, int64_t *axis, char *msg, size_t msglen) {
  *axis = ir_get_int(n, ATTR_AXIS);
  if (*axis < 0 || *axis >= x->shape.rank)
    return fail(msg, msglen, "axis=%" PRId64 " is out of range for %s (rank %d)", *axis, ty(x).s, x->shape.rank);
  return true;
}

/* Removes `axis`. */
bool shape_mean(const Graph *g, const Node *n, DType *dtype, Shape *shape, char *msg, size_t msglen) {
  const Node *x = input(g, n, 0);
  int64_t axis;
  if (!need_float("x", x, msg, msglen) || !check_axis(n, x, &axis, msg, msglen)) return false;
  Shape out = { .rank = (uint8_t)(x->shape.rank - 1) };
  for (int i = 0, j = 0; i < x->shape.rank; i++)
    if (i != axis) out.dim[j++] = x->shape.dim[i];
  return result(x->dtype, &out, dtype, shape, msg, msglen);
}

/* (logits[N,V], targets i32[N]) -> f32[]; the loss is accumulated in f32
 * whatever the logits' dtype. */
bool shape_cross_entropy(const Graph *g, const Node *n, DType *dtype, Shape *shape, char *msg, size_t msglen) {
  const Node *logits = input(g, n, 0), *t = input(g, n, 1);
  int64_t ignore = ir_get_int(n, ATTR_IGNORE);
  if (ignore < INT32_MIN || ignore > INT32_MAX)
    return fail(msg, msglen, "ignore=%" PRId64 " is outside the i32 range of targets", ignore);
  if (!need_float("logits", logits, msg, msglen)) return false;
  if (logits->shape.rank != 2) return fail(msg, msglen, "logits must be [N,V], got %s", ty(logits).s);
  if (t->dtype != DT_I32 || t->shape.rank != 1 || t->shape.dim[0] != logits->shape.dim[0])
    return fail(msg, msglen, "targets must be i32[%" PRId64 "] (N of logits %s), got %s", logits->shape.dim[0], ty(logits).s,
                ty(t).s);
  Shape out = { .rank = 0 };
  return result(DT_F32, &out, dtype, shape, msg, msglen);
}

/* (logits[N,V], targets i32[N]) -> f32[2]: the counts of correct and of counted rows */
bool shape_xent_hits(const Graph *g, const Node *n, DType *dtype, Shape *shape, char *msg, size_t msglen) {
  if (!shape_cross_entropy(g, n, dtype, shape, msg, msglen)) return false;
  *shape = (Shape){ .rank = 1, .dim = { 2 } };
  return true;
}

/* ---- layout (any dtype) -------------------------------------------------- */

bool shape_reshape(const Graph *g, const Node *n, DType *dtype, Shape *shape, char *msg, size_t msglen) {
  const Node *x = input(g, n, 0);
  const Attr *a = ir_attr(n, ATTR_SHAPE);
  IR_ASSERT(a);
  uint32_t r = a->u.ints.n;
  if (r > IR_MAX_RANK) return fail(msg, msglen, "shape has %u dims; the maximum rank is %d", r, IR_MAX_RANK);
  Shape out = { .rank = (uint8_t)r };
  int64_t numel = 1;
  for (uint32_t i = 0; i < r; i++) {
    out.dim[i] = a->u.ints.v[i];
    if (out.dim[i] < 1) return fail(msg, msglen, "shape[%u]=%" PRId64 " must be >= 1", i, out.dim[i]);
    if (__builtin_mul_overflow(numel, out.dim[i], &numel) || numel > IR_MAX_NUMEL)
      return fail(msg, msglen, "shape %s has more than 2^40 elements", ty_of(x->dtype, &out).s);
  }
  int64_t have = ir_shape_numel(&x->shape);
  if (numel != have)
    return fail(msg, msglen, "shape %s has %" PRId64 " elements but x %s has %" PRId64, ty_of(x->dtype, &out).s, numel, ty(x).s,
                have);
  return result(x->dtype, &out, dtype, shape, msg, msglen);
}

/* Output axis i is input axis perm[i]. */
bool shape_permute(const Graph *g, const Node *n, DType *dtype, Shape *shape, char *msg, size_t msglen) {
  const Node *x = input(g, n, 0);
  const Attr *a = ir_attr(n, ATTR_PERM);
  IR_ASSERT(a);
  int r = x->shape.rank;
  if (a->u.ints.n != (uint32_t)r) return fail(msg, msglen, "perm has %u entries but x %s has rank %d", a->u.ints.n, ty(x).s, r);
  bool seen[IR_MAX_RANK] = { false };
  Shape out = { .rank = (uint8_t)r };
  for (int i = 0; i < r; i++) {
    int64_t p = a->u.ints.v[i];
    if (p < 0 || p >= r) return fail(msg, msglen, "perm[%d]=%" PRId64 " is out of range 0..%d", i, p, r - 1);
    if (seen[p]) return fail(msg, msglen, "perm[%d]=%" PRId64 " repeats an axis", i, p);
    seen[p] = true;
    out.dim[i] = x->shape.dim[p];
  }
  return result(x->dtype, &out, dtype, shape, msg, msglen);
}

/* x[..., start:start+len, ...] along `axis`. */
bool shape_slice(const Graph *g, const Node *n, DType *dtype, Shape *shape, char *msg, size_t msglen) {
  const Node *x = input(g, n, 0);
  int64_t axis;
  if (!check_axis(n, x, &axis, msg, msglen)) return false;
  int64_t start = ir_get_int(n, ATTR_START), len = ir_get_int(n, ATTR_LEN), dim = x->shape.dim[axis];
  if (start < 0) return fail(msg, msglen, "start=%" PRId64 " must be >= 0", start);
  if (len < 1) return fail(msg, msglen, "len=%" PRId64 " must be >= 1", len);
  if (start > dim - len) /* start + len > dim, without overflowing */
    return fail(msg, msglen, "start=%" PRId64 " + len=%" PRId64 " exceeds axis %" PRId64 " of %s (size %" PRId64 ")", start, len,
                axis, ty(x).s, dim);
  Shape out = x->shape;
  out.dim[axis] = len;
  return result(x->dtype, &out, dtype, shape, msg, msglen);
}
