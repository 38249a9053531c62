/* interp_optim.c: reference kernels of the optimizer ops (ops.def "optimizer
 * ops"). Each names the PyTorch expression it matches; the AdamW formula is
 * reference/crammed_torch.py's AdamW (= torch.optim.AdamW up to rounding),
 * clipping is torch.nn.utils.clip_grad_norm_'s. */
#include <math.h>
#include <stdio.h>

#include "interp_ops.h"

/* torch: (x.double() ** 2).sum() */
bool interp_sumsq(InterpCall *c) {
  int64_t n = ir_shape_numel(&c->g->nodes[c->n->in[0]].shape);
  double s = 0;
  for (int64_t i = 0; i < n; i++) s += c->in[0][i] * c->in[0][i];
  c->out[0] = s;
  return true;
}

/* torch: x.sqrt() */
bool interp_sqrt(InterpCall *c) {
  int64_t n = ir_shape_numel(&c->n->shape);
  for (int64_t i = 0; i < n; i++) c->out[i] = sqrt(c->in[0][i]);
  return true;
}

/* torch clip_grad_norm_: clamp(max_norm / (total_norm + 1e-6), max=1) */
bool interp_clip_coef(InterpCall *c) {
  double max_norm = c->in[1][IR_HYP_MAX_NORM];
  double coef = max_norm / (sqrt(c->in[0][0]) + 1e-6);
  c->out[0] = max_norm <= 0 ? 1.0 : (coef < 1.0 ? coef : 1.0);
  if (max_norm > 0 && isnan(coef)) c->out[0] = coef; /* a NaN norm stays NaN, as torch.clamp does */
  return true;
}

/* [lr, 1 - beta1^t, 1 - beta2^t, beta1, beta2, eps, wd, wd_other] */
bool interp_adam_sched(InterpCall *c) {
  double t = c->in[0][0], lr = c->in[1][0];
  const double *h = c->in[2];
  if (!(t >= 1) || t != floor(t)) {
    snprintf(c->msg, c->msglen, "step must be an integer >= 1, got %g", t);
    return false;
  }
  c->out[IR_SCH_LR] = lr;
  c->out[IR_SCH_BC1] = 1.0 - pow(h[IR_HYP_BETA1], t);
  c->out[IR_SCH_BC2] = 1.0 - pow(h[IR_HYP_BETA2], t);
  c->out[IR_SCH_BETA1] = h[IR_HYP_BETA1];
  c->out[IR_SCH_BETA2] = h[IR_HYP_BETA2];
  c->out[IR_SCH_EPS] = h[IR_HYP_EPS];
  c->out[IR_SCH_WD] = h[IR_HYP_WD];
  c->out[IR_SCH_WD_OTHER] = h[IR_HYP_WD_OTHER];
  return true;
}

/* m.mul_(b1).add_(coef * g, alpha=1 - b1) */
bool interp_adam_m(InterpCall *c) {
  int64_t n = ir_shape_numel(&c->n->shape);
  double b1 = c->in[3][IR_SCH_BETA1], coef = c->in[2][0];
  for (int64_t i = 0; i < n; i++) c->out[i] = b1 * c->in[0][i] + (1.0 - b1) * (coef * c->in[1][i]);
  return true;
}

/* v.mul_(b2).addcmul_(coef * g, coef * g, value=1 - b2) */
bool interp_adam_v(InterpCall *c) {
  int64_t n = ir_shape_numel(&c->n->shape);
  double b2 = c->in[3][IR_SCH_BETA2], coef = c->in[2][0];
  for (int64_t i = 0; i < n; i++) {
    double g = coef * c->in[1][i];
    c->out[i] = b2 * c->in[0][i] + (1.0 - b2) * g * g;
  }
  return true;
}

/* p - lr * ((m / bc1) / (sqrt(v / bc2) + eps) + wd * p) */
bool interp_adamw_param(InterpCall *c) {
  int64_t n = ir_shape_numel(&c->n->shape);
  const double *s = c->in[3];
  double lr = s[IR_SCH_LR], bc1 = s[IR_SCH_BC1], bc2 = s[IR_SCH_BC2], eps = s[IR_SCH_EPS];
  double wd = ir_get_int(c->n, ATTR_DECAY) ? s[IR_SCH_WD] : s[IR_SCH_WD_OTHER];
  for (int64_t i = 0; i < n; i++) {
    double p = c->in[0][i];
    c->out[i] = p - lr * ((c->in[1][i] / bc1) / (sqrt(c->in[2][i] / bc2) + eps) + wd * p);
  }
  return true;
}
