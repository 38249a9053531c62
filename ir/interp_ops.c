/* interp_ops.c: the reference kernels (the living definition of each op).
 *
 * Naive loops over row-major arrays of doubles, written to be obviously right.
 * Each kernel names the PyTorch expression it matches. Shapes were checked by
 * the op's shape rule when the node was built, so kernels only check data
 * (indices). Broadcasting follows numpy: trailing axes aligned, size-1 axes
 * repeat.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "interp_ops.h"

/* ---- sources -------------------------------------------------------------- */

/* torch: pe[:, 0::2] = sin(pos * div), pe[:, 1::2] = cos(pos * div),
 * div = exp(arange(0, H, 2) * -ln(10000) / H)   (cramming SinusoidalPositional) */
bool interp_sinusoid(InterpCall *c) {
  int64_t S = c->n->shape.dim[0], H = c->n->shape.dim[1];
  for (int64_t s = 0; s < S; s++)
    for (int64_t i = 0; i < H; i += 2) {
      double div = exp((double)i * (-log(10000.0) / (double)H));
      c->out[s * H + i] = sin((double)s * div);
      if (i + 1 < H) c->out[s * H + i + 1] = cos((double)s * div);
    }
  return true;
}

/* torch: torch.arange(N, dtype=torch.float32) */
bool interp_arange(InterpCall *c) {
  int64_t n = ir_shape_numel(&c->n->shape);
  for (int64_t i = 0; i < n; i++) c->out[i] = (double)i;
  return true;
}

/* ---- gathers -------------------------------------------------------------- */

/* torch: F.embedding(ids, table) */
bool interp_embedding(InterpCall *c) {
  const Shape *ts = IN_SHAPE(c, 0);
  int64_t V = ts->dim[0], H = ts->dim[1], n = ir_shape_numel(IN_SHAPE(c, 1));
  for (int64_t r = 0; r < n; r++) {
    double id = c->in[1][r];
    if (!(id >= 0 && id < (double)V)) {
      snprintf(c->msg, c->msglen, "token id %.0f at position %lld is outside the vocabulary [0, %lld)", id, (long long)r,
               (long long)V);
      return false;
    }
    memcpy(c->out + r * H, c->in[0] + (int64_t)id * H, (size_t)H * sizeof(double));
  }
  return true;
}

/* Prediction slots of sequence b: the first `count` positions whose target is
 * not -100, in position order; unused slots get position -1. The order is
 * irrelevant to a mean loss but fixed here so every backend agrees. */
static void masked_positions(const double *targets, int64_t b, int64_t S, int64_t count, int64_t *pos) {
  int64_t k = 0;
  for (int64_t s = 0; s < S && k < count; s++)
    if (targets[b * S + s] != -100.0) pos[k++] = s;
  for (; k < count; k++) pos[k] = -1;
}

/* torch: x[targets != -100] with exactly `count` rows per sequence (padding rows are 0) */
bool interp_masked_rows(InterpCall *c) {
  const Shape *xs = IN_SHAPE(c, 0);
  int64_t B = xs->dim[0], S = xs->dim[1], H = xs->dim[2], count = ir_get_int(c->n, ATTR_SLOTS);
  int64_t pos[count > 0 ? count : 1];
  for (int64_t b = 0; b < B; b++) {
    masked_positions(c->in[1], b, S, count, pos);
    for (int64_t k = 0; k < count; k++) {
      double *dst = c->out + (b * count + k) * H;
      if (pos[k] < 0) memset(dst, 0, (size_t)H * sizeof(double));
      else memcpy(dst, c->in[0] + (b * S + pos[k]) * H, (size_t)H * sizeof(double));
    }
  }
  return true;
}

/* torch: targets[targets != -100], padded with -100 to `count` per sequence */
bool interp_masked_targets(InterpCall *c) {
  const Shape *ts = IN_SHAPE(c, 0);
  int64_t B = ts->dim[0], S = ts->dim[1], count = ir_get_int(c->n, ATTR_SLOTS);
  int64_t pos[count > 0 ? count : 1];
  for (int64_t b = 0; b < B; b++) {
    masked_positions(c->in[0], b, S, count, pos);
    for (int64_t k = 0; k < count; k++) c->out[b * count + k] = pos[k] < 0 ? -100.0 : c->in[0][b * S + pos[k]];
  }
  return true;
}

/* ---- GEMM ----------------------------------------------------------------- */

/* torch: op(A) @ op(B), op = transpose of the last two axes when trans_*;
 * B either rank 2 (shared by every batch) or batched like A. */
bool interp_matmul(InterpCall *c) {
  const Shape *as = IN_SHAPE(c, 0), *bs = IN_SHAPE(c, 1);
  bool ta = ir_get_int(c->n, ATTR_TRANS_A), tb = ir_get_int(c->n, ATTR_TRANS_B);
  int64_t ar = as->dim[as->rank - 2], ac = as->dim[as->rank - 1];
  int64_t br = bs->dim[bs->rank - 2], bc = bs->dim[bs->rank - 1];
  int64_t M = ta ? ac : ar, K = ta ? ar : ac, N = tb ? br : bc;
  int64_t batch = ir_shape_numel(as) / (ar * ac);
  bool b_batched = bs->rank > 2;
  for (int64_t p = 0; p < batch; p++) {
    const double *A = c->in[0] + p * ar * ac;
    const double *Bm = c->in[1] + (b_batched ? p * br * bc : 0);
    double *C = c->out + p * M * N;
    for (int64_t i = 0; i < M; i++)
      for (int64_t j = 0; j < N; j++) {
        double acc = 0;
        for (int64_t k = 0; k < K; k++) {
          double a = ta ? A[k * ac + i] : A[i * ac + k];
          double b = tb ? Bm[j * bc + k] : Bm[k * bc + j];
          acc += a * b;
        }
        C[i * N + j] = acc;
      }
  }
  return true;
}

/* ---- elementwise ---------------------------------------------------------- */

static bool binary(InterpCall *c, int mul) {
  const Shape *o = &c->n->shape, *s0 = IN_SHAPE(c, 0), *s1 = IN_SHAPE(c, 1);
  int64_t n = ir_shape_numel(o);
  bool same0 = ir_shape_eq(o, s0), same1 = ir_shape_eq(o, s1);
  for (int64_t e = 0; e < n; e++) {
    double a = c->in[0][same0 ? e : bcast_index(o, s0, e)];
    double b = c->in[1][same1 ? e : bcast_index(o, s1, e)];
    c->out[e] = mul ? a * b : a + b;
  }
  return true;
}
bool interp_add(InterpCall *c) { return binary(c, 0); } /* torch: a + b */
bool interp_mul(InterpCall *c) { return binary(c, 1); } /* torch: a * b */

static double gelu(double x) { return 0.5 * x * (1.0 + erf(x / sqrt(2.0))); } /* nn.GELU() exact */
static double sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }

#define UNARY_KERNEL(fname, expr)             \
  bool fname(InterpCall *c) {                 \
    int64_t n = ir_shape_numel(&c->n->shape); \
    for (int64_t e = 0; e < n; e++) {         \
      double x = c->in[0][e];                 \
      c->out[e] = (expr);                     \
    }                                         \
    return true;                              \
  }
UNARY_KERNEL(interp_gelu, gelu(x))
UNARY_KERNEL(interp_relu, x > 0 ? x : 0.0)
UNARY_KERNEL(interp_tanh, tanh(x))
UNARY_KERNEL(interp_exp, exp(x))          /* torch.exp */
UNARY_KERNEL(interp_rsqrt, 1.0 / sqrt(x)) /* torch.rsqrt */
UNARY_KERNEL(interp_sigmoid, sigmoid(x))  /* torch.sigmoid */
UNARY_KERNEL(interp_silu, x *sigmoid(x))  /* F.silu */
UNARY_KERNEL(interp_sin, sin(x))          /* torch.sin */
UNARY_KERNEL(interp_cos, cos(x))          /* torch.cos */
bool interp_scale(InterpCall *c) {
  double alpha = ir_get_float(c->n, ATTR_ALPHA);
  int64_t n = ir_shape_numel(&c->n->shape);
  for (int64_t e = 0; e < n; e++) c->out[e] = alpha * c->in[0][e];
  return true;
}

/* A copy: interp_run rounds every result to its node's dtype in the f32 mode,
 * which is exactly the cast; the f64 mode rounds nothing, so there a cast is
 * the identity (finite differences see the exact function). */
bool interp_cast(InterpCall *c) {
  int64_t n = ir_shape_numel(&c->n->shape);
  for (int64_t e = 0; e < n; e++) c->out[e] = c->in[0][e];
  return true;
}

/* splitmix64 of (seed, mask key, element): a reproducible uniform in [0,1). */
double interp_hash_uniform(uint64_t seed, uint64_t key, uint64_t e) {
  uint64_t z = seed ^ (key * 0x9E3779B97F4A7C15ull) ^ (e * 0xD1B54A32D192ED03ull);
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return (double)(z >> 11) * 0x1.0p-53;
}

/* torch: F.dropout(x, p, training) — inverted dropout, identity when not
 * training. The mask depends on (seed, key, element) only, so a dropout node
 * with the same key applied to the output gradient is exactly its backward. */
bool interp_dropout(InterpCall *c) {
  double p = ir_get_float(c->n, ATTR_P);
  uint64_t key = (uint64_t)ir_get_int(c->n, ATTR_KEY);
  int64_t n = ir_shape_numel(&c->n->shape);
  for (int64_t e = 0; e < n; e++) {
    if (!c->opts->training || p == 0) c->out[e] = c->in[0][e];
    else c->out[e] = interp_hash_uniform(c->opts->seed, key, (uint64_t)e) < p ? 0.0 : c->in[0][e] / (1.0 - p);
  }
  return true;
}

void interp_act_pair(int act, double x, double *f, double *df) {
  switch (act) {
  case ACT_GELU: *f = gelu(x), *df = 0.5 * (1.0 + erf(x / sqrt(2.0))) + x * exp(-0.5 * x * x) * 0.3989422804014327; break;
  case ACT_RELU: *f = x > 0 ? x : 0.0, *df = x > 0 ? 1.0 : 0.0; break;
  case ACT_SIGMOID: *f = sigmoid(x), *df = *f * (1.0 - *f); break;
  default: *f = x, *df = 1.0; break; /* ACT_NONE */
  }
}
/* Activation on a GLU gate, by name (acts.def). */
static double act_apply(const char *act, double x) {
  double f, df;
  interp_act_pair(ir_act_parse(act), x, &f, &df);
  return f;
}

/* cramming GLU: x, gate = inputs.chunk(2, dim=-1); return act(gate) * x */
bool interp_glu(InterpCall *c) {
  const char *act = ir_get_str(c->n, ATTR_ACT);
  int64_t F = last_dim(&c->n->shape), rows = rows_of(&c->n->shape);
  for (int64_t r = 0; r < rows; r++) {
    const double *x = c->in[0] + r * 2 * F;
    for (int64_t j = 0; j < F; j++) c->out[r * F + j] = x[j] * act_apply(act, x[F + j]);
  }
  return true;
}

/* ---- row-wise ------------------------------------------------------------- */

/* torch: F.layer_norm(x, [H], w, b, eps) — biased variance */
bool interp_layernorm(InterpCall *c) {
  int64_t H = last_dim(&c->n->shape), rows = rows_of(&c->n->shape);
  double eps = ir_get_float(c->n, ATTR_EPS);
  const double *w = c->n->nin > 1 ? c->in[1] : NULL, *b = c->n->nin > 2 ? c->in[2] : NULL;
  for (int64_t r = 0; r < rows; r++) {
    const double *x = c->in[0] + r * H;
    double mean = 0, var = 0;
    for (int64_t j = 0; j < H; j++) mean += x[j];
    mean /= (double)H;
    for (int64_t j = 0; j < H; j++) var += (x[j] - mean) * (x[j] - mean);
    var /= (double)H;
    double rstd = 1.0 / sqrt(var + eps);
    for (int64_t j = 0; j < H; j++) c->out[r * H + j] = (x[j] - mean) * rstd * (w ? w[j] : 1.0) + (b ? b[j] : 0.0);
  }
  return true;
}

/* torch: x * rsqrt(mean(x^2, -1) + eps) * w */
bool interp_rmsnorm(InterpCall *c) {
  int64_t H = last_dim(&c->n->shape), rows = rows_of(&c->n->shape);
  double eps = ir_get_float(c->n, ATTR_EPS);
  const double *w = c->n->nin > 1 ? c->in[1] : NULL;
  for (int64_t r = 0; r < rows; r++) {
    const double *x = c->in[0] + r * H;
    double ms = 0;
    for (int64_t j = 0; j < H; j++) ms += x[j] * x[j];
    double rr = 1.0 / sqrt(ms / (double)H + eps);
    for (int64_t j = 0; j < H; j++) c->out[r * H + j] = x[j] * rr * (w ? w[j] : 1.0);
  }
  return true;
}

/* torch: softmax(x, dim=-1), max-subtracted */
bool interp_softmax(InterpCall *c) {
  int64_t H = last_dim(&c->n->shape), rows = rows_of(&c->n->shape);
  for (int64_t r = 0; r < rows; r++) {
    const double *x = c->in[0] + r * H;
    double *y = c->out + r * H, mx = -INFINITY, sum = 0;
    for (int64_t j = 0; j < H; j++) mx = x[j] > mx ? x[j] : mx;
    for (int64_t j = 0; j < H; j++) sum += (y[j] = exp(x[j] - mx));
    for (int64_t j = 0; j < H; j++) y[j] /= sum;
  }
  return true;
}

/* ---- reductions ----------------------------------------------------------- */

/* Split a shape around `axis` into outer * len * inner. */
static void split_axis(const Shape *s, int64_t axis, int64_t *outer, int64_t *len, int64_t *inner) {
  *outer = *inner = 1;
  for (int64_t a = 0; a < s->rank; a++) {
    if (a < axis) *outer *= s->dim[a];
    if (a > axis) *inner *= s->dim[a];
  }
  *len = s->dim[axis];
}

/* torch: x.mean(dim=axis) */
bool interp_mean(InterpCall *c) {
  int64_t outer, len, inner;
  split_axis(IN_SHAPE(c, 0), ir_get_int(c->n, ATTR_AXIS), &outer, &len, &inner);
  for (int64_t o = 0; o < outer; o++)
    for (int64_t i = 0; i < inner; i++) {
      double s = 0;
      for (int64_t l = 0; l < len; l++) s += c->in[0][(o * len + l) * inner + i];
      c->out[o * inner + i] = s / (double)len;
    }
  return true;
}

/* torch: F.cross_entropy(logits, targets, ignore_index=ignore) (mean over the
 * non-ignored rows; 0 when every row is ignored, where torch returns nan) */
bool interp_cross_entropy(InterpCall *c) {
  const Shape *ls = IN_SHAPE(c, 0);
  int64_t N = ls->dim[0], V = ls->dim[1], ignore = ir_get_int(c->n, ATTR_IGNORE), used = 0;
  double total = 0;
  for (int64_t r = 0; r < N; r++) {
    double t = c->in[1][r];
    if (t == (double)ignore) continue;
    if (!(t >= 0 && t < (double)V)) {
      snprintf(c->msg, c->msglen, "target %.0f in row %lld is outside [0, %lld)", t, (long long)r, (long long)V);
      return false;
    }
    const double *x = c->in[0] + r * V;
    double mx = -INFINITY, sum = 0;
    for (int64_t j = 0; j < V; j++) mx = x[j] > mx ? x[j] : mx;
    for (int64_t j = 0; j < V; j++) sum += exp(x[j] - mx);
    total += mx + log(sum) - x[(int64_t)t];
    used++;
  }
  c->out[0] = used ? total / (double)used : 0.0;
  return true;
}

/* the first index of the largest of x[0..V) (torch.argmax's choice among ties) */
int64_t interp_argmax(const double *x, int64_t V) {
  int64_t best = 0;
  for (int64_t j = 1; j < V; j++)
    if (x[j] > x[best]) best = j;
  return best;
}

/* torch: ((logits.argmax(-1) == targets) & (targets != ignore)).sum(), (targets != ignore).sum() */
bool interp_xent_hits(InterpCall *c) {
  const Shape *ls = IN_SHAPE(c, 0);
  int64_t N = ls->dim[0], V = ls->dim[1], ignore = ir_get_int(c->n, ATTR_IGNORE), used = 0, hits = 0;
  for (int64_t r = 0; r < N; r++) {
    double t = c->in[1][r];
    if (t == (double)ignore) continue;
    if (!(t >= 0 && t < (double)V)) {
      snprintf(c->msg, c->msglen, "target %.0f in row %lld is outside [0, %lld)", t, (long long)r, (long long)V);
      return false;
    }
    hits += interp_argmax(c->in[0] + r * V, V) == (int64_t)t;
    used++;
  }
  c->out[0] = (double)hits, c->out[1] = (double)used;
  return true;
}

/* ---- layout --------------------------------------------------------------- */

/* torch: x.reshape(shape) — row-major, so a plain copy */
bool interp_reshape(InterpCall *c) {
  if (c->out != c->in[0]) /* a planned run may alias the two (memplan.h) */
    memcpy(c->out, c->in[0], (size_t)ir_shape_numel(&c->n->shape) * sizeof(double));
  return true;
}

/* torch: x.permute(perm).contiguous() */
bool interp_permute(InterpCall *c) {
  const Shape *is = IN_SHAPE(c, 0), *os = &c->n->shape;
  const Attr *pa = ir_attr(c->n, ATTR_PERM);
  int64_t istride[IR_MAX_RANK], n = ir_shape_numel(os), st = 1;
  for (int a = is->rank - 1; a >= 0; a--) {
    istride[a] = st;
    st *= is->dim[a];
  }
  for (int64_t e = 0; e < n; e++) {
    int64_t rem = e, src = 0;
    for (int a = os->rank - 1; a >= 0; a--) {
      src += (rem % os->dim[a]) * istride[pa->u.ints.v[a]];
      rem /= os->dim[a];
    }
    c->out[e] = c->in[0][src];
  }
  return true;
}

/* torch: x.narrow(axis, start, len).contiguous() */
bool interp_slice(InterpCall *c) {
  int64_t outer, len, inner, axis = ir_get_int(c->n, ATTR_AXIS);
  int64_t start = ir_get_int(c->n, ATTR_START), olen = ir_get_int(c->n, ATTR_LEN);
  split_axis(IN_SHAPE(c, 0), axis, &outer, &len, &inner);
  for (int64_t o = 0; o < outer; o++)
    memcpy(c->out + o * olen * inner, c->in[0] + (o * len + start) * inner, (size_t)(olen * inner) * sizeof(double));
  return true;
}

InterpFn interp_kernel(OpKind op) {
  static const InterpFn table[OP_COUNT] = {
#define NONE                                                               NULL
#define OP(id, name, min_in, max_in, cls, attrs, shape, interp, grad, ...) [OP_##id] = interp,
#include "ops.def"
#undef OP
#undef NONE
  };
  return op < OP_COUNT ? table[op] : NULL;
}
