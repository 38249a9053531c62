/* interp_grad.c: reference kernels of the backward ops (the "backward ops"
 * rows of ops.def). Each one is the exact derivative of the forward kernel in
 * interp_ops.c that it serves, written out in naive loops; the gradient tests
 * (tests/unit/test_grad.c) check them against finite differences of those
 * forward kernels. bcast_index, gelu and the slot order are repeated from
 * interp_ops.c (small, and kept identical on purpose: the slot order must
 * match interp_masked_rows exactly).
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "interp_ops.h"

static int64_t numel_out(const InterpCall *c) { return ir_shape_numel(&c->n->shape); }

/* fill: every element = value */
bool interp_fill(InterpCall *c) {
  double v = ir_get_float(c->n, ATTR_VALUE);
  for (int64_t e = 0, n = numel_out(c); e < n; e++) c->out[e] = v;
  return true;
}

/* ---- elementwise ---------------------------------------------------------- */

static double gelu_deriv(double x) {                                                    /* d/dx x*Phi(x) = Phi(x) + x*phi(x) */
  return 0.5 * (1.0 + erf(x / sqrt(2.0))) + x * exp(-0.5 * x * x) * 0.3989422804014327; /* 1/sqrt(2 pi) */
}

static double silu_deriv(double x) { /* d/dx x*s(x) = s (1 + x (1 - s)) */
  double s = 1.0 / (1.0 + exp(-x));
  return s * (1.0 + x * (1.0 - s));
}

#define GRAD_PAIR_KERNEL(fname, expr)                   \
  bool fname(InterpCall *c) {                           \
    for (int64_t e = 0, n = numel_out(c); e < n; e++) { \
      double x = c->in[0][e], dy = c->in[1][e];         \
      c->out[e] = (expr);                               \
    }                                                   \
    return true;                                        \
  }
GRAD_PAIR_KERNEL(interp_gelu_grad, dy *gelu_deriv(x))
GRAD_PAIR_KERNEL(interp_relu_grad, x > 0 ? dy : 0.0)    /* torch's choice at 0: no gradient */
GRAD_PAIR_KERNEL(interp_tanh_grad, dy *(1.0 - x * x))   /* x is y = tanh(input) here */
GRAD_PAIR_KERNEL(interp_sigmoid_grad, dy *x *(1.0 - x)) /* x is y = sigmoid(input) here */
GRAD_PAIR_KERNEL(interp_silu_grad, dy *silu_deriv(x))

/* act and act' for the GLU gate, by name as in interp_ops.c */
static void act_pair(const char *act, double x, double *f, double *df) { interp_act_pair(ir_act_parse(act), x, f, df); }

/* y = a * act(b) with x = [a | b]: da = dy act(b), db = dy a act'(b) */
bool interp_glu_grad(InterpCall *c) {
  const char *act = ir_get_str(c->n, ATTR_ACT);
  int64_t F = last_dim(IN_SHAPE(c, 1)), rows = rows_of(IN_SHAPE(c, 1));
  for (int64_t r = 0; r < rows; r++) {
    const double *x = c->in[0] + r * 2 * F, *dy = c->in[1] + r * F;
    double *dx = c->out + r * 2 * F;
    for (int64_t j = 0; j < F; j++) {
      double f, df;
      act_pair(act, x[F + j], &f, &df);
      dx[j] = dy[j] * f;
      dx[F + j] = dy[j] * x[j] * df;
    }
  }
  return true;
}

/* ---- row-wise ------------------------------------------------------------- */

/* xhat = (x - mean) rstd, g = dy w: dx = rstd (g - mean(g) - xhat mean(g xhat)) */
bool interp_layernorm_grad(InterpCall *c) {
  int64_t H = last_dim(&c->n->shape), rows = rows_of(&c->n->shape);
  double eps = ir_get_float(c->n, ATTR_EPS);
  const double *w = c->n->nin == 3 ? c->in[1] : NULL, *dyall = c->in[c->n->nin - 1];
  for (int64_t r = 0; r < rows; r++) {
    const double *x = c->in[0] + r * H, *dy = dyall + r * H;
    double mean = 0, var = 0, mg = 0, mgx = 0;
    for (int64_t j = 0; j < H; j++) mean += x[j];
    mean /= (double)H;
    for (int64_t j = 0; j < H; j++) var += (x[j] - mean) * (x[j] - mean);
    double rstd = 1.0 / sqrt(var / (double)H + eps);
    for (int64_t j = 0; j < H; j++) {
      double g = dy[j] * (w ? w[j] : 1.0);
      mg += g;
      mgx += g * (x[j] - mean) * rstd;
    }
    mg /= (double)H;
    mgx /= (double)H;
    for (int64_t j = 0; j < H; j++) {
      double g = dy[j] * (w ? w[j] : 1.0);
      c->out[r * H + j] = rstd * (g - mg - (x[j] - mean) * rstd * mgx);
    }
  }
  return true;
}

/* layernorm's weight gradient: sum over rows of dy xhat, xhat = (x - mean) rstd */
bool interp_layernorm_wgrad(InterpCall *c) {
  int64_t H = c->n->shape.dim[0], rows = rows_of(IN_SHAPE(c, 0));
  double eps = ir_get_float(c->n, ATTR_EPS);
  for (int64_t j = 0; j < H; j++) c->out[j] = 0;
  for (int64_t r = 0; r < rows; r++) {
    const double *x = c->in[0] + r * H, *dy = c->in[1] + r * H;
    double mean = 0, var = 0;
    for (int64_t j = 0; j < H; j++) mean += x[j];
    mean /= (double)H;
    for (int64_t j = 0; j < H; j++) var += (x[j] - mean) * (x[j] - mean);
    double rstd = 1.0 / sqrt(var / (double)H + eps);
    for (int64_t j = 0; j < H; j++) c->out[j] += dy[j] * (x[j] - mean) * rstd;
  }
  return true;
}

/* layernorm's bias gradient: sum over rows of dy */
bool interp_layernorm_bgrad(InterpCall *c) {
  int64_t H = c->n->shape.dim[0], rows = rows_of(IN_SHAPE(c, 1));
  for (int64_t j = 0; j < H; j++) c->out[j] = 0;
  for (int64_t r = 0; r < rows; r++)
    for (int64_t j = 0; j < H; j++) c->out[j] += c->in[1][r * H + j];
  return true;
}

/* y = x r w, r = (mean(x^2) + eps)^-1/2: dx = r g - r^3 x mean(g x), g = dy w */
bool interp_rmsnorm_grad(InterpCall *c) {
  int64_t H = last_dim(&c->n->shape), rows = rows_of(&c->n->shape);
  double eps = ir_get_float(c->n, ATTR_EPS);
  const double *w = c->n->nin == 3 ? c->in[1] : NULL, *dyall = c->in[c->n->nin - 1];
  for (int64_t r = 0; r < rows; r++) {
    const double *x = c->in[0] + r * H, *dy = dyall + r * H;
    double ms = 0, mgx = 0;
    for (int64_t j = 0; j < H; j++) {
      ms += x[j] * x[j];
      mgx += dy[j] * (w ? w[j] : 1.0) * x[j];
    }
    double rr = 1.0 / sqrt(ms / (double)H + eps);
    mgx /= (double)H;
    for (int64_t j = 0; j < H; j++) c->out[r * H + j] = rr * dy[j] * (w ? w[j] : 1.0) - rr * rr * rr * x[j] * mgx;
  }
  return true;
}

/* dx = y (dy - sum(y dy)) per row */
bool interp_softmax_grad(InterpCall *c) {
  int64_t H = last_dim(&c->n->shape), rows = rows_of(&c->n->shape);
  for (int64_t r = 0; r < rows; r++) {
    const double *y = c->in[0] + r * H, *dy = c->in[1] + r * H;
    double s = 0;
    for (int64_t j = 0; j < H; j++) s += y[j] * dy[j];
    for (int64_t j = 0; j < H; j++) c->out[r * H + j] = y[j] * (dy[j] - s);
  }
  return true;
}

/* ---- loss ----------------------------------------------------------------- */

/* d mean_CE / d logits = (softmax(row) - onehot(target)) * dloss / used, 0 on
 * ignored rows (and everywhere when every row is ignored, as the forward's 0) */
bool interp_cross_entropy_grad(InterpCall *c) {
  const Shape *ls = IN_SHAPE(c, 0);
  int64_t N = ls->dim[0], V = ls->dim[1], ignore = ir_get_int(c->n, ATTR_IGNORE), used = 0;
  for (int64_t r = 0; r < N; r++) {
    double t = c->in[1][r];
    if (t == (double)ignore) continue;
    if (!(t >= 0 && t < (double)V)) {
      snprintf(c->msg, c->msglen, "target %.0f in row %lld is outside [0, %lld)", t, (long long)r, (long long)V);
      return false;
    }
    used++;
  }
  double k = used ? c->in[2][0] / (double)used : 0.0;
  for (int64_t r = 0; r < N; r++) {
    const double *x = c->in[0] + r * V;
    double *d = c->out + r * V;
    double t = c->in[1][r];
    if (t == (double)ignore) {
      memset(d, 0, (size_t)V * sizeof(double));
      continue;
    }
    double mx = -INFINITY, sum = 0;
    for (int64_t j = 0; j < V; j++) mx = x[j] > mx ? x[j] : mx;
    for (int64_t j = 0; j < V; j++) sum += exp(x[j] - mx);
    for (int64_t j = 0; j < V; j++) d[j] = k * exp(x[j] - mx) / sum;
    d[(int64_t)t] -= k;
  }
  return true;
}

/* ---- gathers' adjoints: scatter-adds --------------------------------------- */

/* torch: zeros(rows,H).index_add_(0, ids.flatten(), dy.reshape(-1,H)) */
bool interp_embedding_grad(InterpCall *c) {
  int64_t V = c->n->shape.dim[0], H = c->n->shape.dim[1], n = ir_shape_numel(IN_SHAPE(c, 0));
  memset(c->out, 0, (size_t)(V * H) * sizeof(double));
  for (int64_t r = 0; r < n; r++) {
    double id = c->in[0][r];
    if (!(id >= 0 && id < (double)V)) {
      snprintf(c->msg, c->msglen, "token id %.0f at position %lld is outside the vocabulary [0, %lld)", id, (long long)r,
               (long long)V);
      return false;
    }
    const double *dy = c->in[1] + r * H;
    double *d = c->out + (int64_t)id * H;
    for (int64_t j = 0; j < H; j++) d[j] += dy[j];
  }
  return true;
}

/* dy row b*slots+k goes back to the k-th position of sequence b whose target
 * is not -100 (interp_masked_rows' order); padding rows are dropped. */
bool interp_masked_rows_grad(InterpCall *c) {
  int64_t B = c->n->shape.dim[0], S = c->n->shape.dim[1], H = c->n->shape.dim[2];
  int64_t slots = ir_get_int(c->n, ATTR_SLOTS);
  const double *t = c->in[1];
  memset(c->out, 0, (size_t)(B * S * H) * sizeof(double));
  for (int64_t b = 0; b < B; b++) {
    int64_t k = 0;
    for (int64_t s = 0; s < S && k < slots; s++)
      if (t[b * S + s] != -100.0) {
        memcpy(c->out + (b * S + s) * H, c->in[0] + (b * slots + k) * H, (size_t)H * sizeof(double));
        k++;
      }
  }
  return true;
}

/* ---- broadcasting and layout ----------------------------------------------- */

/* torch: x.sum(broadcast axes, keepdim) reshaped to shape */
bool interp_sum_to(InterpCall *c) {
  const Shape *xs = IN_SHAPE(c, 0), *os = &c->n->shape;
  memset(c->out, 0, (size_t)numel_out(c) * sizeof(double));
  for (int64_t e = 0, n = ir_shape_numel(xs); e < n; e++) c->out[bcast_index(xs, os, e)] += c->in[0][e];
  return true;
}

/* torch: x.expand(shape).contiguous() (with numpy's leading-axis rule) */
bool interp_broadcast_to(InterpCall *c) {
  const Shape *xs = IN_SHAPE(c, 0), *os = &c->n->shape;
  for (int64_t e = 0, n = numel_out(c); e < n; e++) c->out[e] = c->in[0][bcast_index(os, xs, e)];
  return true;
}

/* torch: zeros(...).narrow(axis, start, len).copy_(x) */
bool interp_pad(InterpCall *c) {
  const Shape *xs = IN_SHAPE(c, 0);
  int64_t axis = ir_get_int(c->n, ATTR_AXIS), start = ir_get_int(c->n, ATTR_START);
  int64_t size = ir_get_int(c->n, ATTR_SIZE), len = xs->dim[axis], outer = 1, inner = 1;
  for (int a = 0; a < xs->rank; a++) {
    if (a < axis) outer *= xs->dim[a];
    if (a > axis) inner *= xs->dim[a];
  }
  memset(c->out, 0, (size_t)numel_out(c) * sizeof(double));
  for (int64_t o = 0; o < outer; o++)
    memcpy(c->out + (o * size + start) * inner, c->in[0] + o * len * inner, (size_t)(len * inner) * sizeof(double));
  return true;
}
