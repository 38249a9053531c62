/* shape_fused.c: shape rules of the fused ops (the "fused ops" rows of
 * ops.def), built by passes/fuse_*.c after autodiff. Each rule reuses the
 * rule of the ops the fused op stands for (shape_matmul, shape_norm), so a
 * fused node accepts exactly what its unfused chain accepts.
 */
#include <inttypes.h>
#include <math.h>
#include <string.h>

#include "shape_util.h"

/* (x0, x1, ...) -> joined along axis: same dtype, same rank, other axes equal */
bool shape_concat(const Graph *g, const Node *n, DType *dtype, Shape *shape, char *msg, size_t msglen) {
  const Node *x0 = input(g, n, 0);
  int64_t axis = ir_get_int(n, ATTR_AXIS);
  if (axis < 0 || axis >= x0->shape.rank)
    return fail(msg, msglen, "axis=%" PRId64 " is out of range for %s (rank %d)", axis, ty(x0).s, x0->shape.rank);
  Shape out = x0->shape;
  for (int k = 1; k < n->nin; k++) {
    const Node *x = input(g, n, k);
    bool ok = x->dtype == x0->dtype && x->shape.rank == x0->shape.rank;
    for (int i = 0; ok && i < x->shape.rank; i++) ok = i == axis || x->shape.dim[i] == x0->shape.dim[i];
    if (!ok) return fail(msg, msglen, "input %d %s does not match %s off axis %" PRId64, k, ty(x).s, ty(x0).s, axis);
    if (__builtin_add_overflow(out.dim[axis], x->shape.dim[axis], &out.dim[axis]) || out.dim[axis] > IR_MAX_NUMEL)
      return fail(msg, msglen, "concatenated axis %" PRId64 " is too large", axis);
  }
  return result(x0->dtype, &out, dtype, shape, msg, msglen);
}

/* The matmul of inputs (i, i+1) of n with n's trans flags. */
static bool matmul_of(const Graph *g, const Node *n, int i, DType *dt, Shape *s, char *msg, size_t msglen) {
  Node t = *n;
  t.op = OP_MATMUL;
  t.nin = 2;
  t.in[0] = n->in[i];
  t.in[1] = n->in[i + 1];
  return shape_matmul(g, &t, dt, s, msg, msglen);
}

static bool check_act(const Node *n, bool glu, char *msg, size_t msglen) {
  const char *act = ir_get_str(n, ATTR_ACT);
  int a = ir_act_parse(act);
  if (a == ACT_GELU || a == ACT_RELU) return true;
  if (glu && a >= 0) return true;
  return fail(msg, msglen, "act must be gelu or relu%s", glu ? " (or sigmoid, none for glu)" : "");
}

/* matmul_act / matmul_glu: (A, B, [bias[N]]) -> [...,M,N], or [...,M,N/2] for glu */
bool shape_matmul_epi(const Graph *g, const Node *n, DType *dtype, Shape *shape, char *msg, size_t msglen) {
  bool glu = n->op == OP_MATMUL_GLU;
  DType dt;
  Shape s;
  if (!check_act(n, glu, msg, msglen) || !matmul_of(g, n, 0, &dt, &s, msg, msglen)) return false;
  int64_t N = s.dim[s.rank - 1];
  if (n->nin == 3) {
    const Node *b = input(g, n, 2);
    if (b->dtype != dt || b->shape.rank != 1 || b->shape.dim[0] != N)
      return fail(msg, msglen, "bias must be %s[%" PRId64 "], got %s", ir_dtype_name(dt), N, ty(b).s);
  }
  if (glu) {
    if (N % 2) return fail(msg, msglen, "glu needs an even N, got %" PRId64, N);
    s.dim[s.rank - 1] = N / 2;
  }
  return result(dt, &s, dtype, shape, msg, msglen);
}

/* matmul_act_grad / matmul_glu_grad: (pre, dY, B) -> like pre; op(dY) @ op(B) is
 * like pre (act) or pre with its last axis halved (glu) */
bool shape_matmul_epi_grad(const Graph *g, const Node *n, DType *dtype, Shape *shape, char *msg, size_t msglen) {
  bool glu = n->op == OP_MATMUL_GLU_GRAD;
  const Node *pre = input(g, n, 0);
  DType dt;
  Shape s;
  if (!check_act(n, glu, msg, msglen) || !matmul_of(g, n, 1, &dt, &s, msg, msglen)) return false;
  if (!need_float("pre", pre, msg, msglen)) return false;
  Shape want = pre->shape;
  if (glu) {
    if (want.rank == 0 || want.dim[want.rank - 1] % 2) return fail(msg, msglen, "pre must be [...,2F], got %s", ty(pre).s);
    want.dim[want.rank - 1] /= 2;
  }
  if (dt != pre->dtype || !ir_shape_eq(&s, &want))
    return fail(msg, msglen, "the product %s must be %s (pre %s%s)", ty_of(dt, &s).s, ty_of(pre->dtype, &want).s, ty(pre).s,
                glu ? " with the last axis halved" : "");
  return result(pre->dtype, &pre->shape, dtype, shape, msg, msglen);
}

/* add_layernorm: (a, b, [weight], [bias]) -> like a; a and b have one type */
bool shape_add_norm(const Graph *g, const Node *n, DType *dtype, Shape *shape, char *msg, size_t msglen) {
  const Node *a = input(g, n, 0), *b = input(g, n, 1);
  if (a->dtype != b->dtype || !ir_shape_eq(&a->shape, &b->shape))
    return fail(msg, msglen, "a %s and b %s must have one type", ty(a).s, ty(b).s);
  Node t = *n; /* layernorm(a, weight, bias) has the same rule */
  t.op = OP_LAYERNORM;
  t.nin = (uint8_t)(n->nin - 1);
  t.in[1] = n->in[2];
  t.in[2] = n->in[3];
  return shape_norm(g, &t, dtype, shape, msg, msglen);
}

/* layernorm_grad_add: (x, [weight], dy, dres) -> like x; dres like x */
bool shape_norm_grad_add(const Graph *g, const Node *n, DType *dtype, Shape *shape, char *msg, size_t msglen) {
  const Node *x = input(g, n, 0), *dres = input(g, n, n->nin - 1);
  if (dres->dtype != x->dtype || !ir_shape_eq(&dres->shape, &x->shape))
    return fail(msg, msglen, "dres %s must have the type of x %s", ty(dres).s, ty(x).s);
  Node t = *n;
  t.op = OP_LAYERNORM_GRAD;
  t.nin = (uint8_t)(n->nin - 1);
  return shape_norm_grad(g, &t, dtype, shape, msg, msglen);
}

/* (x[N,H], W [V,H] (trans_b=1) or [H,V], targets i32[N], [b[V]]): checks, and V */
static bool xent_inputs(const Graph *g, const Node *n, int64_t *V, char *msg, size_t msglen) {
  const Node *x = input(g, n, 0), *w = input(g, n, 1), *t = input(g, n, 2);
  int64_t tb = ir_get_int(n, ATTR_TRANS_B);
  if (tb != 0 && tb != 1) return fail(msg, msglen, "trans_b=%" PRId64 " must be 0 or 1", tb);
  if (!need_float("x", x, msg, msglen)) return false;
  if (x->shape.rank != 2) return fail(msg, msglen, "x must be [N,H], got %s", ty(x).s);
  int64_t H = x->shape.dim[1];
  if (w->dtype != x->dtype || w->shape.rank != 2 || w->shape.dim[tb ? 1 : 0] != H)
    return fail(msg, msglen, "W must be %s[%s] with H=%" PRId64 ", got %s", ir_dtype_name(x->dtype), tb ? "V,H" : "H,V", H,
                ty(w).s);
  *V = w->shape.dim[tb ? 0 : 1];
  if (t->dtype != DT_I32 || t->shape.rank != 1 || t->shape.dim[0] != x->shape.dim[0])
    return fail(msg, msglen, "targets must be i32[%" PRId64 "], got %s", x->shape.dim[0], ty(t).s);
  if (n->nin == 4) { /* f32 also beside bf16 x, W: autocast adds the bias after casting the logits up */
    const Node *b = input(g, n, 3);
    if (b->dtype != DT_F32 || b->shape.rank != 1 || b->shape.dim[0] != *V)
      return fail(msg, msglen, "bias must be f32[%" PRId64 "], got %s", *V, ty(b).s);
  }
  return true;
}

bool shape_xent_linear(const Graph *g, const Node *n, DType *dtype, Shape *shape, char *msg, size_t msglen) {
  int64_t V;
  if (!xent_inputs(g, n, &V, msg, msglen)) return false;
  Shape s = { .rank = 0 };
  return result(DT_F32, &s, dtype, shape, msg, msglen);
}

bool shape_xent_linear_hits(const Graph *g, const Node *n, DType *dtype, Shape *shape, char *msg, size_t msglen) {
  int64_t V;
  if (!xent_inputs(g, n, &V, msg, msglen)) return false;
  Shape s = { .rank = 1, .dim = { 2 } };
  return result(DT_F32, &s, dtype, shape, msg, msglen);
}

bool shape_xent_linear_grad(const Graph *g, const Node *n, DType *dtype, Shape *shape, char *msg, size_t msglen) {
  int64_t V, wrt = ir_get_int(n, ATTR_WRT);
  if (!xent_inputs(g, n, &V, msg, msglen)) return false;
  if (wrt < 0 || wrt > 2 || (wrt == 2 && n->nin != 4))
    return fail(msg, msglen, "wrt=%" PRId64 " must be 0 (x), 1 (W) or 2 (b, with a bias input)", wrt);
  const Node *src = input(g, n, (int)wrt == 2 ? 3 : (int)wrt);
  return result(src->dtype, &src->shape, dtype, shape, msg, msglen);
}
