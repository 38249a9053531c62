/* shape_grad.c: shape rules of the backward ops (the "backward ops" rows of
 * ops.def), which passes/grad_rules.c builds. Same contract as shape.c: strict
 * dtypes, a one-line reason on rejection, results bounded by IR_MAX_NUMEL.
 * The convention throughout: dy has the type of the forward op's output, the
 * result has the type of the forward input it is the gradient of.
 */
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <string.h>

#include "shape_util.h"

/* The shape attribute as a Shape (rank and dims checked). */
static bool shape_attr(const Node *n, Shape *out, char *msg, size_t msglen) {
  const Attr *a = ir_attr(n, ATTR_SHAPE);
  IR_ASSERT(a);
  if (a->u.ints.n > IR_MAX_RANK) return fail(msg, msglen, "shape has %u dims; the maximum rank is %d", a->u.ints.n, IR_MAX_RANK);
  out->rank = (uint8_t)a->u.ints.n;
  for (uint32_t i = 0; i < a->u.ints.n; i++) {
    out->dim[i] = a->u.ints.v[i];
    if (out->dim[i] < 1) return fail(msg, msglen, "shape[%u]=%" PRId64 " must be >= 1", i, out->dim[i]);
  }
  return true;
}

/* `small` broadcasts to `big` under numpy rules (no axis of small is bigger). */
static bool broadcasts_to(const Shape *small, const Shape *big) {
  if (small->rank > big->rank) return false;
  for (int i = 1; i <= small->rank; i++) {
    int64_t s = small->dim[small->rank - i], b = big->dim[big->rank - i];
    if (s != 1 && s != b) return false;
  }
  return true;
}

/* (x, dy) of one type -> that type: gelu_grad, relu_grad, tanh_grad, softmax_grad. */
bool shape_grad_pair(const Graph *g, const Node *n, DType *dtype, Shape *shape, char *msg, size_t msglen) {
  const Node *x = input(g, n, 0), *dy = input(g, n, 1);
  if (!need_float("x", x, msg, msglen)) return false;
  if (x->dtype != dy->dtype || !ir_shape_eq(&x->shape, &dy->shape))
    return fail(msg, msglen, "dy %s must have the type of x %s", ty(dy).s, ty(x).s);
  if (ir_ops[n->op].cls == OC_NORM && x->shape.rank == 0) return fail(msg, msglen, "x must have rank >= 1, got %s", ty(x).s);
  return result(x->dtype, &x->shape, dtype, shape, msg, msglen);
}

/* (x[...,2F], dy[...,F]) -> [...,2F] */
bool shape_glu_grad(const Graph *g, const Node *n, DType *dtype, Shape *shape, char *msg, size_t msglen) {
  const Node *x = input(g, n, 0), *dy = input(g, n, 1);
  const char *act = ir_get_str(n, ATTR_ACT);
  bool known = ir_act_parse(act) >= 0; /* acts.def */
  if (!known) return fail(msg, msglen, "act is not one of gelu, relu, sigmoid, none");
  if (!need_float("x", x, msg, msglen)) return false;
  int r = x->shape.rank;
  if (r == 0 || x->shape.dim[r - 1] % 2) return fail(msg, msglen, "x must be [...,2F], got %s", ty(x).s);
  Shape half = x->shape;
  half.dim[r - 1] /= 2;
  if (dy->dtype != x->dtype || !ir_shape_eq(&dy->shape, &half))
    return fail(msg, msglen, "dy %s must be x %s with the last axis halved", ty(dy).s, ty(x).s);
  return result(x->dtype, &x->shape, dtype, shape, msg, msglen);
}

/* (x[...,H], [weight[H]], dy like x) -> like x */
bool shape_norm_grad(const Graph *g, const Node *n, DType *dtype, Shape *shape, char *msg, size_t msglen) {
  const Node *x = input(g, n, 0), *dy = input(g, n, n->nin - 1);
  double eps = ir_get_float(n, ATTR_EPS);
  if (!(eps > 0.0 && isfinite(eps))) return fail(msg, msglen, "eps=%g must be positive and finite", eps);
  if (!need_float("x", x, msg, msglen)) return false;
  int r = x->shape.rank;
  if (r == 0) return fail(msg, msglen, "x must have rank >= 1, got %s", ty(x).s);
  if (n->nin == 3) {
    const Node *w = input(g, n, 1);
    if (w->dtype != x->dtype || w->shape.rank != 1 || w->shape.dim[0] != x->shape.dim[r - 1])
      return fail(msg, msglen, "weight %s must be [H] of x %s", ty(w).s, ty(x).s);
  }
  /* a bf16 dy beside an f32 x: read widened (ops.def WIDENS), the bf16 GEMM product without its cast */
  bool widened = dy->dtype == DT_BF16 && x->dtype == DT_F32;
  if ((dy->dtype != x->dtype && !widened) || !ir_shape_eq(&dy->shape, &x->shape))
    return fail(msg, msglen, "dy %s must have the type of x %s", ty(dy).s, ty(x).s);
  return result(x->dtype, &x->shape, dtype, shape, msg, msglen);
}

/* (x[...,H], dy like x) -> f32[H]: layernorm_wgrad / layernorm_bgrad. dy may
 * be bf16 beside an f32 x: the kernels widen it on load (exact), so the
 * backward's bf16 GEMM product needs no cast to f32 first. */
bool shape_norm_param_grad(const Graph *g, const Node *n, DType *dtype, Shape *shape, char *msg, size_t msglen) {
  const Node *x = input(g, n, 0), *dy = input(g, n, 1);
  double eps = ir_get_float(n, ATTR_EPS);
  if (!(eps > 0.0 && isfinite(eps))) return fail(msg, msglen, "eps=%g must be positive and finite", eps);
  if (!need_float("x", x, msg, msglen) || !need_float("dy", dy, msg, msglen)) return false;
  if (x->shape.rank == 0) return fail(msg, msglen, "x must have rank >= 1, got %s", ty(x).s);
  if (!ir_shape_eq(&dy->shape, &x->shape)) return fail(msg, msglen, "dy %s must have the shape of x %s", ty(dy).s, ty(x).s);
  Shape h = { .rank = 1, .dim = { x->shape.dim[x->shape.rank - 1] } };
  return result(DT_F32, &h, dtype, shape, msg, msglen);
}

/* (logits[N,V], targets i32[N], dloss f32[]) -> like logits */
bool shape_cross_entropy_grad(const Graph *g, const Node *n, DType *dtype, Shape *shape, char *msg, size_t msglen) {
  const Node *l = input(g, n, 0), *t = input(g, n, 1), *dl = input(g, n, 2);
  if (!need_float("logits", l, msg, msglen)) return false;
  if (l->shape.rank != 2) return fail(msg, msglen, "logits must be [N,V], got %s", ty(l).s);
  if (t->dtype != DT_I32 || t->shape.rank != 1 || t->shape.dim[0] != l->shape.dim[0])
    return fail(msg, msglen, "targets %s must be i32[N] of logits %s", ty(t).s, ty(l).s);
  if (dl->dtype != DT_F32 || dl->shape.rank != 0) return fail(msg, msglen, "dloss must be f32[], got %s", ty(dl).s);
  return result(l->dtype, &l->shape, dtype, shape, msg, msglen);
}

/* (ids i32[...], dy[...,H]) -> [rows,H] */
bool shape_embedding_grad(const Graph *g, const Node *n, DType *dtype, Shape *shape, char *msg, size_t msglen) {
  const Node *ids = input(g, n, 0), *dy = input(g, n, 1);
  int64_t rows = ir_get_int(n, ATTR_ROWS);
  if (rows < 1) return fail(msg, msglen, "rows=%" PRId64 " must be >= 1", rows);
  if (ids->dtype != DT_I32) return fail(msg, msglen, "ids must be i32, got %s", ty(ids).s);
  if (!need_float("dy", dy, msg, msglen)) return false;
  bool ok = dy->shape.rank == ids->shape.rank + 1;
  for (int i = 0; ok && i < ids->shape.rank; i++) ok = dy->shape.dim[i] == ids->shape.dim[i];
  if (!ok) return fail(msg, msglen, "dy %s must be ids %s plus a last axis", ty(dy).s, ty(ids).s);
  Shape out = { .rank = 2, .dim = { rows, dy->shape.dim[dy->shape.rank - 1] } };
  return result(dy->dtype, &out, dtype, shape, msg, msglen);
}

/* (dy[B*slots,H], targets i32[B,S]) -> [B,S,H] */
bool shape_masked_rows_grad(const Graph *g, const Node *n, DType *dtype, Shape *shape, char *msg, size_t msglen) {
  const Node *dy = input(g, n, 0), *t = input(g, n, 1);
  int64_t slots = ir_get_int(n, ATTR_SLOTS);
  if (!need_float("dy", dy, msg, msglen)) return false;
  if (t->dtype != DT_I32 || t->shape.rank != 2) return fail(msg, msglen, "targets must be i32[B,S], got %s", ty(t).s);
  int64_t B = t->shape.dim[0], S = t->shape.dim[1];
  if (slots < 1 || slots > S) return fail(msg, msglen, "slots=%" PRId64 " must be in 1..%" PRId64, slots, S);
  if (dy->shape.rank != 2 || dy->shape.dim[0] != B * slots)
    return fail(msg, msglen, "dy %s must be [B*slots,H] = [%" PRId64 ",H]", ty(dy).s, B * slots);
  Shape out = { .rank = 3, .dim = { B, S, dy->shape.dim[1] } };
  return result(dy->dtype, &out, dtype, shape, msg, msglen);
}

/* x[big] -> shape, where shape broadcasts to big */
bool shape_sum_to(const Graph *g, const Node *n, DType *dtype, Shape *shape, char *msg, size_t msglen) {
  const Node *x = input(g, n, 0);
  Shape out;
  if (!need_float("x", x, msg, msglen) || !shape_attr(n, &out, msg, msglen)) return false;
  if (!broadcasts_to(&out, &x->shape))
    return fail(msg, msglen, "shape does not broadcast to x %s, so x cannot be summed to it", ty(x).s);
  return result(x->dtype, &out, dtype, shape, msg, msglen);
}

/* x -> shape, where x broadcasts to shape */
bool shape_broadcast_to(const Graph *g, const Node *n, DType *dtype, Shape *shape, char *msg, size_t msglen) {
  const Node *x = input(g, n, 0);
  Shape out;
  if (!need_float("x", x, msg, msglen) || !shape_attr(n, &out, msg, msglen)) return false;
  if (!broadcasts_to(&x->shape, &out)) return fail(msg, msglen, "x %s does not broadcast to shape", ty(x).s);
  return result(x->dtype, &out, dtype, shape, msg, msglen);
}

/* x -> x with axis grown to size; x sits at [start, start + x.dim[axis]) */
bool shape_pad(const Graph *g, const Node *n, DType *dtype, Shape *shape, char *msg, size_t msglen) {
  const Node *x = input(g, n, 0);
  int64_t axis = ir_get_int(n, ATTR_AXIS), start = ir_get_int(n, ATTR_START), size = ir_get_int(n, ATTR_SIZE);
  if (axis < 0 || axis >= x->shape.rank) return fail(msg, msglen, "axis=%" PRId64 " is out of range for %s", axis, ty(x).s);
  if (start < 0 || size < 1 || start > size - x->shape.dim[axis])
    return fail(msg, msglen, "start=%" PRId64 " size=%" PRId64 " cannot hold axis %" PRId64 " of %s", start, size, axis, ty(x).s);
  Shape out = x->shape;
  out.dim[axis] = size;
  return result(x->dtype, &out, dtype, shape, msg, msglen);
}
