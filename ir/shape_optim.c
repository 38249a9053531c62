/* shape_optim.c: shape rules of the optimizer ops (the "optimizer ops" rows
 * of ops.def), which passes/adamw.c builds. Optimizer state, gradients and
 * parameters are f32 (master weights); scalars (step, lr, coefficients) are
 * f32 tensors with one element; the runtime hyper-parameters and the
 * per-update schedule are small f32 vectors (layouts: ir.h IR_ADAM_*). */
#include <stdarg.h>
#include <stdio.h>

#include "shape_util.h"

static bool is_f32_scalar(const Node *x) { return x->dtype == DT_F32 && ir_shape_numel(&x->shape) == 1; }

static bool need_scalar(const Graph *g, const Node *n, int i, const char *what, char *msg, size_t msglen) {
  const Node *x = input(g, n, i);
  if (is_f32_scalar(x)) return true;
  char t[IR_TYPE_STR_MAX];
  return fail(msg, msglen, "%s must be an f32 scalar (one element), got %s", what, ir_type_str(x->dtype, &x->shape, t, sizeof t));
}

static bool scalar_result(DType *dtype, Shape *shape) {
  *dtype = DT_F32;
  shape->rank = 0;
  return true;
}

IR_SHAPE_RULE(shape_sumsq) {
  const Node *x = input(g, n, 0);
  if (x->dtype != DT_F32 && x->dtype != DT_BF16) return fail(msg, msglen, "input must be f32 or bf16");
  return scalar_result(dtype, shape);
}

/* f32 vector of exactly n elements (the hyper and sched vectors) */
static bool need_vec(const Graph *g, const Node *n, int i, const char *what, int64_t len, char *msg, size_t msglen) {
  const Node *x = input(g, n, i);
  char t[IR_TYPE_STR_MAX];
  if (x->dtype == DT_F32 && ir_shape_numel(&x->shape) == len) return true;
  return fail(msg, msglen, "%s must be f32[%lld], got %s", what, (long long)len, ir_type_str(x->dtype, &x->shape, t, sizeof t));
}

IR_SHAPE_RULE(shape_clip_coef) {
  if (!need_scalar(g, n, 0, "total_sq", msg, msglen) || !need_vec(g, n, 1, "hyper", IR_ADAM_HYPER, msg, msglen)) return false;
  return scalar_result(dtype, shape);
}

IR_SHAPE_RULE(shape_adam_sched) {
  if (!need_scalar(g, n, 0, "step", msg, msglen) || !need_scalar(g, n, 1, "lr", msg, msglen) ||
      !need_vec(g, n, 2, "hyper", IR_ADAM_HYPER, msg, msglen))
    return false;
  *dtype = DT_F32;
  shape->rank = 1;
  shape->dim[0] = IR_ADAM_SCHED;
  return true;
}

/* (state, g, coef, sched): state and g f32 of one shape, coef a scalar. */
IR_SHAPE_RULE(shape_adam_state) {
  const Node *s = input(g, n, 0), *gr = input(g, n, 1);
  char a[IR_TYPE_STR_MAX], b[IR_TYPE_STR_MAX];
  if (s->dtype != DT_F32 || gr->dtype != DT_F32 || !ir_shape_eq(&s->shape, &gr->shape))
    return fail(msg, msglen, "state %s and gradient %s must be f32 of one shape", ir_type_str(s->dtype, &s->shape, a, sizeof a),
                ir_type_str(gr->dtype, &gr->shape, b, sizeof b));
  if (!need_scalar(g, n, 2, "coef", msg, msglen) || !need_vec(g, n, 3, "sched", IR_ADAM_SCHED, msg, msglen)) return false;
  *dtype = DT_F32;
  *shape = s->shape;
  return true;
}

/* (p, m, v, sched) */
IR_SHAPE_RULE(shape_adamw_param) {
  const Node *p = input(g, n, 0);
  char a[IR_TYPE_STR_MAX], b[IR_TYPE_STR_MAX];
  if (p->dtype != DT_F32) return fail(msg, msglen, "param must be f32 (master weights)");
  for (int i = 1; i <= 2; i++) {
    const Node *x = input(g, n, i);
    if (x->dtype != DT_F32 || !ir_shape_eq(&x->shape, &p->shape))
      return fail(msg, msglen, "%s %s must match param %s", i == 1 ? "m" : "v", ir_type_str(x->dtype, &x->shape, a, sizeof a),
                  ir_type_str(p->dtype, &p->shape, b, sizeof b));
  }
  if (!need_vec(g, n, 3, "sched", IR_ADAM_SCHED, msg, msglen)) return false;
  *dtype = DT_F32;
  *shape = p->shape;
  return true;
}
