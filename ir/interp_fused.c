/* interp_fused.c: reference kernels of the fused ops (the "fused ops" rows
 * of ops.def). Each is defined as the chain of ops it replaces, evaluated the
 * same way (the matmul and layernorm kernels are called on a stand-in node,
 * the activations repeat interp_ops.c / interp_grad.c), so the fusion passes
 * are checked against exact equality up to summation order. Temporaries are
 * plain malloc: the interpreter owns no arena and frees them at once.
 *
 * xent_linear* loop over rows: the [N,V] logits exist only one row at a time,
 * which is the point of the fusion (codegen chunks the same way).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "interp_ops.h"

static double *scratch(InterpCall *c, int64_t n) {
  double *p = malloc((size_t)(n > 0 ? n : 1) * sizeof(double));
  if (!p) snprintf(c->msg, c->msglen, "out of memory for a %lld-element temporary", (long long)n);
  return p;
}

/* ---- views ----------------------------------------------------------------- */

/* torch: torch.cat([x0, x1, ...], dim=axis) */
bool interp_concat(InterpCall *c) {
  int64_t axis = ir_get_int(c->n, ATTR_AXIS), outer = 1, inner = 1, total = c->n->shape.dim[axis];
  for (int a = 0; a < c->n->shape.rank; a++) {
    if (a < axis) outer *= c->n->shape.dim[a];
    if (a > axis) inner *= c->n->shape.dim[a];
  }
  for (int64_t o = 0, off = 0; o < outer; o++, off = 0)
    for (int k = 0; k < c->n->nin; k++) {
      int64_t len = IN_SHAPE(c, k)->dim[axis];
      memcpy(c->out + (o * total + off) * inner, c->in[k] + o * len * inner, (size_t)(len * inner) * sizeof(double));
      off += len;
    }
  return true;
}

/* ---- GEMM epilogues ---------------------------------------------------------- */

/* out = op(in[i]) @ op(in[i+1]) with n's trans flags, by interp_matmul on a stand-in node. */
static bool matmul_into(InterpCall *c, int i, const Shape *s, double *out) {
  Node t = *c->n;
  t.op = OP_MATMUL;
  t.nin = 2;
  t.in[0] = c->n->in[i];
  t.in[1] = c->n->in[i + 1];
  t.shape = *s;
  const double *in[2] = { c->in[i], c->in[i + 1] };
  InterpCall mc = *c;
  mc.n = &t;
  mc.in = in;
  mc.out = out;
  return interp_matmul(&mc);
}

/* act and act' by name (acts.def): interp_act_pair, shared with interp_ops.c and interp_grad.c */
static void act_pair(const char *act, double x, double *f, double *df) { interp_act_pair(ir_act_parse(act), x, f, df); }

/* op(A) @ op(B) [+ bias] into a fresh [...,M,N] buffer; *N its last axis. */
static double *gemm_bias(InterpCall *c, Shape *s, int64_t *N) {
  *s = c->n->shape;
  if (c->n->op == OP_MATMUL_GLU) s->dim[s->rank - 1] *= 2;
  *N = s->dim[s->rank - 1];
  double *y = scratch(c, ir_shape_numel(s));
  if (!y) return NULL;
  matmul_into(c, 0, s, y);
  if (c->n->nin == 3)
    for (int64_t e = 0, n = ir_shape_numel(s); e < n; e++) y[e] += c->in[2][e % *N];
  return y;
}

/* torch: act(A @ B + bias) */
bool interp_matmul_act(InterpCall *c) {
  const char *act = ir_get_str(c->n, ATTR_ACT);
  Shape s;
  int64_t N;
  double *y = gemm_bias(c, &s, &N);
  if (!y) return false;
  for (int64_t e = 0, n = ir_shape_numel(&s); e < n; e++) {
    double f, df;
    act_pair(act, y[e], &f, &df);
    c->out[e] = f;
  }
  free(y);
  return true;
}

/* cramming GLU of (A @ B + bias): x, gate = y.chunk(2, -1); act(gate) * x */
bool interp_matmul_glu(InterpCall *c) {
  const char *act = ir_get_str(c->n, ATTR_ACT);
  Shape s;
  int64_t N;
  double *y = gemm_bias(c, &s, &N);
  if (!y) return false;
  int64_t F = N / 2, rows = rows_of(&s);
  for (int64_t r = 0; r < rows; r++)
    for (int64_t j = 0; j < F; j++) {
      double f, df;
      act_pair(act, y[r * N + F + j], &f, &df);
      c->out[r * F + j] = y[r * N + j] * f;
    }
  free(y);
  return true;
}

/* act_grad(pre, dY @ B) */
bool interp_matmul_act_grad(InterpCall *c) {
  const char *act = ir_get_str(c->n, ATTR_ACT);
  const Shape *s = &c->n->shape;
  double *d = scratch(c, ir_shape_numel(s));
  if (!d) return false;
  matmul_into(c, 1, s, d);
  for (int64_t e = 0, n = ir_shape_numel(s); e < n; e++) {
    double f, df;
    act_pair(act, c->in[0][e], &f, &df);
    c->out[e] = ir_act_parse(act) == ACT_RELU ? (c->in[0][e] > 0 ? d[e] : 0.0) : d[e] * df;
  }
  free(d);
  return true;
}

/* glu_grad(pre, dY @ B): da = dy act(b), db = dy a act'(b) */
bool interp_matmul_glu_grad(InterpCall *c) {
  const char *act = ir_get_str(c->n, ATTR_ACT);
  Shape s = c->n->shape;
  int64_t F = s.dim[s.rank - 1] / 2, rows = rows_of(&s);
  s.dim[s.rank - 1] = F;
  double *dy = scratch(c, ir_shape_numel(&s));
  if (!dy) return false;
  matmul_into(c, 1, &s, dy);
  for (int64_t r = 0; r < rows; r++) {
    const double *x = c->in[0] + r * 2 * F;
    double *dx = c->out + r * 2 * F;
    for (int64_t j = 0; j < F; j++) {
      double f, df;
      act_pair(act, x[F + j], &f, &df);
      dx[j] = dy[r * F + j] * f;
      dx[F + j] = dy[r * F + j] * x[j] * df;
    }
  }
  free(dy);
  return true;
}

/* ---- norms -------------------------------------------------------------------- */

/* torch: F.layer_norm(a + b, [H], w, bias, eps) */
bool interp_add_layernorm(InterpCall *c) {
  int64_t n = ir_shape_numel(&c->n->shape);
  double *sum = scratch(c, n);
  if (!sum) return false;
  for (int64_t e = 0; e < n; e++) sum[e] = c->in[0][e] + c->in[1][e];
  Node t = *c->n;
  t.op = OP_LAYERNORM;
  t.nin = (uint8_t)(c->n->nin - 1);
  const double *in[3] = { sum, c->n->nin > 2 ? c->in[2] : NULL, c->n->nin > 3 ? c->in[3] : NULL };
  InterpCall lc = *c;
  lc.n = &t;
  lc.in = in;
  bool ok = interp_layernorm(&lc);
  free(sum);
  return ok;
}

/* dres + layernorm_grad(x, w, dy) */
bool interp_layernorm_grad_add(InterpCall *c) {
  Node t = *c->n;
  t.op = OP_LAYERNORM_GRAD;
  t.nin = (uint8_t)(c->n->nin - 1);
  InterpCall lc = *c;
  lc.n = &t;
  if (!interp_layernorm_grad(&lc)) return false;
  const double *dres = c->in[c->n->nin - 1];
  for (int64_t e = 0, n = ir_shape_numel(&c->n->shape); e < n; e++) c->out[e] = dres[e] + c->out[e];
  return true;
}

/* ---- fused decoder + cross-entropy ------------------------------------------- */

/* The chain it replaces is matmul(x, W) [-> cast f32] [+ b] -> cross_entropy
 * and, backward, cross_entropy_grad [-> cast to x's dtype] -> the dx / dW
 * GEMMs, sum_to for db. In the f32 mode the unfused graph rounds each of
 * those results to its dtype, so this kernel does too: the logits to x's
 * dtype (bf16 when autocast made the operands bf16), plus the bias to f32,
 * the logits' gradient to f32 and, for the GEMMs, to x's dtype. The result
 * is then rounded by interp_run as every node's. */
typedef struct Xent {
  int64_t N, H, V, ignore, used;
  bool tb;
  DType dt;   /* x's and W's: the GEMM operands' and product's dtype */
  bool round; /* the f32 mode */
  const double *x, *w, *t, *b;
} Xent;

static double xround(const Xent *e, DType dt, double v) {
  if (!e->round) return v;
  return dt == DT_BF16 ? interp_round_bf16(v) : interp_round_f32(v);
}

static bool xent_setup(InterpCall *c, Xent *e) {
  const Shape *xs = IN_SHAPE(c, 0), *ws = IN_SHAPE(c, 1);
  e->tb = ir_get_int(c->n, ATTR_TRANS_B) != 0;
  e->N = xs->dim[0];
  e->H = xs->dim[1];
  e->V = ws->dim[e->tb ? 0 : 1];
  e->ignore = ir_get_int(c->n, ATTR_IGNORE);
  e->dt = c->g->nodes[c->n->in[0]].dtype;
  e->round = c->opts->prec == INTERP_F32;
  e->x = c->in[0];
  e->w = c->in[1];
  e->t = c->in[2];
  e->b = c->n->nin == 4 ? c->in[3] : NULL;
  e->used = 0;
  for (int64_t r = 0; r < e->N; r++) {
    double t = e->t[r];
    if (t == (double)e->ignore) continue;
    if (!(t >= 0 && t < (double)e->V)) {
      snprintf(c->msg, c->msglen, "target %.0f in row %lld is outside [0, %lld)", t, (long long)r, (long long)e->V);
      return false;
    }
    e->used++;
  }
  return true;
}

static double xw(const Xent *e, int64_t j, int64_t k) { return e->tb ? e->w[j * e->H + k] : e->w[k * e->V + j]; }

/* logits of row r into z[V]; returns max and the sum of exp(z - max) */
static void xent_row(const Xent *e, int64_t r, double *z, double *mx, double *sum) {
  const double *x = e->x + r * e->H;
  *mx = -INFINITY;
  *sum = 0;
  for (int64_t j = 0; j < e->V; j++) {
    double acc = 0;
    for (int64_t k = 0; k < e->H; k++) acc += x[k] * xw(e, j, k);
    z[j] = xround(e, e->dt, acc);
    if (e->b) z[j] = xround(e, DT_F32, z[j] + e->b[j]);
    *mx = z[j] > *mx ? z[j] : *mx;
  }
  for (int64_t j = 0; j < e->V; j++) *sum += exp(z[j] - *mx);
}

/* torch: F.cross_entropy(x @ W.T + b, targets, ignore_index), 0 when all ignored */
bool interp_xent_linear(InterpCall *c) {
  Xent e;
  if (!xent_setup(c, &e)) return false;
  double *z = scratch(c, e.V), total = 0;
  if (!z) return false;
  for (int64_t r = 0; r < e.N; r++) {
    if (e.t[r] == (double)e.ignore) continue;
    double mx, sum;
    xent_row(&e, r, z, &mx, &sum);
    total += mx + log(sum) - z[(int64_t)e.t[r]];
  }
  free(z);
  c->out[0] = e.used ? total / (double)e.used : 0.0;
  return true;
}

/* xent_hits of the logits the chain computes (rounded as it rounds them) */
bool interp_xent_linear_hits(InterpCall *c) {
  Xent e;
  if (!xent_setup(c, &e)) return false;
  double *z = scratch(c, e.V), hits = 0;
  if (!z) return false;
  for (int64_t r = 0; r < e.N; r++) {
    if (e.t[r] == (double)e.ignore) continue;
    double mx, sum;
    xent_row(&e, r, z, &mx, &sum);
    hits += interp_argmax(z, e.V) == (int64_t)e.t[r];
  }
  free(z);
  c->out[0] = hits, c->out[1] = (double)e.used;
  return true;
}

/* g = (softmax(z_r) - onehot(t_r)) / used per row; dx = g W, dW = g^T x, db = sum g */
bool interp_xent_linear_grad(InterpCall *c) {
  Xent e;
  if (!xent_setup(c, &e)) return false;
  int64_t wrt = ir_get_int(c->n, ATTR_WRT);
  memset(c->out, 0, (size_t)ir_shape_numel(&c->n->shape) * sizeof(double));
  double *z = scratch(c, e.V), k = e.used ? 1.0 / (double)e.used : 0.0;
  if (!z) return false;
  for (int64_t r = 0; r < e.N; r++) {
    if (e.t[r] == (double)e.ignore) continue;
    double mx, sum;
    xent_row(&e, r, z, &mx, &sum);
    for (int64_t j = 0; j < e.V; j++) z[j] = k * exp(z[j] - mx) / sum;
    z[(int64_t)e.t[r]] -= k;
    for (int64_t j = 0; j < e.V; j++) z[j] = xround(&e, wrt == 2 ? DT_F32 : e.dt, xround(&e, DT_F32, z[j]));
    const double *x = e.x + r * e.H;
    for (int64_t j = 0; j < e.V; j++) {
      if (wrt == 0)
        for (int64_t h = 0; h < e.H; h++) c->out[r * e.H + h] += z[j] * xw(&e, j, h);
      else if (wrt == 1)
        for (int64_t h = 0; h < e.H; h++) c->out[e.tb ? j * e.H + h : h * e.V + j] += z[j] * x[h];
      else c->out[j] += z[j];
    }
  }
  free(z);
  return true;
}
