/* test_grad.c: the autodiff pass checked against finite differences (f64).
 *
 * 1. Every op with a grad rule (looping over ops.def) has a sample_<op>: small
 *    graphs of that op on random shapes (edge sizes 1 included), reduced to
 *    loss = sum(w * y) for a fixed random input w. The gradient of every param
 *    element from pass_autodiff, run in the f64 interpreter, must match a
 *    central difference of the forward graph. This also checks the backward
 *    ops' kernels (interp_grad.c), which compute those gradients. An op with
 *    a rule but no sample fails the test.
 * 2. Whole models (tiny, post-LN no GLU, untied biases, dense prediction) at
 *    toy dims: the directional derivative along random directions against
 *    dot(grad, dir).
 * 3. The tied decoder: grad(embedding.weight) = embedding path + decoder path.
 * 4. Structure: outputs, zero gradients, no backward for dead branches,
 *    ir_verify and the text round trip of the result.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frontend.h"
#include "interp.h"
#include "ir.h"
#include "passes.h"

#include "check.h"

/* ---- random numbers (xorshift64*, seeded: the test is deterministic) ------ */

typedef struct {
  uint64_t s;
} Rng;
static double urand(Rng *r) {
  r->s ^= r->s >> 12, r->s ^= r->s << 25, r->s ^= r->s >> 27;
  return (double)((r->s * 2685821657736338717ull) >> 11) * 0x1.0p-53;
}
static double nrand(Rng *r) { return sqrt(-2.0 * log(urand(r) + 1e-300)) * cos(6.283185307179586 * urand(r)); }
/* A dim in 1..4, 1 a third of the time: edge sizes are where broadcasting breaks. */
static int64_t rdim(Rng *r) { return urand(r) < 0.33 ? 1 : 2 + (int64_t)(urand(r) * 3); }

/* ---- a graph with data for its sources ------------------------------------- */

#define MAXV 4096
typedef struct {
  Graph *g;
  double *data[MAXV]; /* per source node */
  Rng rng;
  Diag d;
} T;

static void t_init(T *t, const char *name, uint64_t seed) {
  memset(t, 0, sizeof *t);
  t->g = ir_graph_new(name);
  t->rng.s = seed * 0x9E3779B97F4A7C15ull + 1;
  diag_init(&t->d, stderr);
}
static void t_free(T *t) {
  for (int i = 0; i < MAXV; i++) free(t->data[i]);
  ir_graph_free(t->g);
}

static double *alloc_data(T *t, ValueId v) {
  t->data[v] = calloc((size_t)ir_shape_numel(&t->g->nodes[v].shape), sizeof(double));
  return t->data[v];
}

static ValueId t_param(T *t, int rank, const int64_t *dims) {
  char name[32];
  snprintf(name, sizeof name, "p%u", t->g->n);
  Shape s = ir_shape_make(rank, dims);
  Attr a[] = { ir_attr_str(ATTR_NAME, name), ir_attr_str(ATTR_INIT, "normal"), ir_attr_float(ATTR_SCALE, 1),
               ir_attr_int(ATTR_DECAY, 1) };
  ValueId v = ir_add_source(t->g, OP_PARAM, DT_F32, &s, a, 4, (SrcLoc){ 0 });
  double *x = alloc_data(t, v);
  for (int64_t i = 0; i < ir_shape_numel(&s); i++) x[i] = nrand(&t->rng);
  return v;
}

/* An input: floats ~ N(0,1), or i32 ids in [0, hi) with a fraction `ign` set to -100. */
static ValueId t_input(T *t, DType dt, int rank, const int64_t *dims, int64_t hi, double ign) {
  char name[32];
  snprintf(name, sizeof name, "in%u", t->g->n);
  Shape s = ir_shape_make(rank, dims);
  Attr a = ir_attr_str(ATTR_NAME, name);
  ValueId v = ir_add_source(t->g, OP_INPUT, dt, &s, &a, 1, (SrcLoc){ 0 });
  double *x = alloc_data(t, v);
  for (int64_t i = 0; i < ir_shape_numel(&s); i++)
    x[i] = dt != DT_I32 ? nrand(&t->rng) : urand(&t->rng) < ign ? -100.0 : (double)(int64_t)(urand(&t->rng) * (double)hi);
  return v;
}

static ValueId add(T *t, OpKind op, int nin, const ValueId *in, const Attr *at, int nat) {
  ValueId v = ir_add(t->g, op, in, nin, at, nat, (SrcLoc){ 0 }, &t->d);
  if (v == IR_NONE) {
    fprintf(stderr, "test_grad: could not build %s\n", ir_ops[op].name);
    exit(1);
  }
  return v;
}
#define IN(...) \
  (ValueId[]) { __VA_ARGS__ }
#define ATTRS(...) (Attr[]){ __VA_ARGS__ }, (int)(sizeof((Attr[]){ __VA_ARGS__ }) / sizeof(Attr))
#define NOATTR     NULL, 0

/* loss = sum(w * y) = numel * mean(reshape(w * y, [numel])), w a random input */
static void t_loss(T *t, ValueId y) {
  const Shape *s = &t->g->nodes[y].shape;
  int64_t n = ir_shape_numel(s);
  ValueId w = t_input(t, DT_F32, s->rank, s->dim, 0, 0);
  ValueId m = add(t, OP_MUL, 2, IN(y, w), NOATTR);
  m = add(t, OP_RESHAPE, 1, IN(m), ATTRS(ir_attr_ints(ATTR_SHAPE, &n, 1)));
  m = add(t, OP_MEAN, 1, IN(m), ATTRS(ir_attr_int(ATTR_AXIS, 0)));
  m = add(t, OP_SCALE, 1, IN(m), ATTRS(ir_attr_float(ATTR_ALPHA, (double)n)));
  ir_add_output(t->g, "loss", m);
}

/* ---- running graphs --------------------------------------------------------- */

/* Runs g with sources from data (ids below nsrc); returns the buffers. */
static double **run(const Graph *g, double *const *data, uint32_t nsrc, bool **owned) {
  double **bufs = calloc(g->n, sizeof(double *));
  *owned = calloc(g->n, sizeof(bool));
  for (ValueId v = 0; v < g->n && v < nsrc; v++)
    if (g->nodes[v].op == OP_PARAM || g->nodes[v].op == OP_INPUT) bufs[v] = data[v];
  InterpOpts o = { .prec = INTERP_F64, .training = true, .seed = 42 }; /* training: dropout masks are live */
  char err[512];
  if (!interp_run(g, &o, bufs, *owned, err, sizeof err)) {
    fprintf(stderr, "test_grad: interp: %s\n", err);
    exit(1);
  }
  return bufs;
}
static void run_free(const Graph *g, double **bufs, bool *owned) {
  interp_free(g, bufs, owned);
  free(bufs);
  free(owned);
}

static ValueId output(const Graph *g, const char *name) {
  for (uint32_t i = 0; i < g->nout; i++)
    if (!strcmp(g->outputs[i].name, name)) return g->outputs[i].value;
  return IR_NONE;
}

static double loss_of(const Graph *g, double *const *data) {
  bool *owned;
  double **b = run(g, data, g->n, &owned);
  double l = b[output(g, "loss")][0];
  run_free(g, b, owned);
  return l;
}

/* The autodiff graph, checked for structure on the way. */
static Graph *grad_graph(T *t) {
  Graph *G = pass_autodiff(t->g, &t->d);
  CHECK(G != NULL);
  if (!G) exit(1);
  CHECK(ir_verify(G, &t->d));
  CHECK(G->nout >= 1 && !strcmp(G->outputs[0].name, "loss") && G->outputs[0].value == output(t->g, "loss"));
  for (ValueId v = 0; v < t->g->n; v++) CHECK(G->nodes[v].op == t->g->nodes[v].op); /* forward copied in place */
  return G;
}

/* Every param's gradient against central differences, element by element
 * (at most 12 random elements per param). Returns the worst error seen. */
static double check_elementwise(T *t, const char *what) {
  Graph *G = grad_graph(t);
  bool *owned;
  double **b = run(G, t->data, t->g->n, &owned);
  double worst = 0;
  for (ValueId v = 0; v < t->g->n; v++) {
    const Node *n = &t->g->nodes[v];
    if (n->op != OP_PARAM) continue;
    char gname[64];
    snprintf(gname, sizeof gname, "grad.%s", ir_get_str(n, ATTR_NAME));
    const double *gr = b[output(G, gname)];
    int64_t count = ir_shape_numel(&n->shape);
    for (int k = 0; k < 12 && k < count; k++) {
      int64_t i = count <= 12 ? k : (int64_t)(urand(&t->rng) * (double)count);
      /* h = 1e-5: the central difference's truncation error is ~h^2 |f'''| ~
       * 1e-10 and its rounding error ~1e-16 |loss| / h ~ 1e-11 on these O(1)
       * values, so a correct gradient agrees to ~1e-9; 1e-6 (relative, or
       * absolute below 1) still fails any wrong term. */
      double h = 1e-5, x0 = t->data[v][i];
      t->data[v][i] = x0 + h;
      double lp = loss_of(t->g, t->data);
      t->data[v][i] = x0 - h;
      double lm = loss_of(t->g, t->data);
      t->data[v][i] = x0;
      double fd = (lp - lm) / (2 * h), err = fabs(fd - gr[i]) / fmax(1.0, fabs(fd));
      worst = fmax(worst, err);
      if (err > 1e-6)
        fprintf(stderr, "  %s: %s[%lld]: autodiff %.12g, finite difference %.12g\n", what, gname, (long long)i, gr[i], fd);
    }
  }
  CHECK(worst <= 1e-6);
  run_free(G, b, owned);
  ir_graph_free(G);
  return worst;
}

/* ---- one sample per op with a grad rule --------------------------------------
 * sample_<op>(t, variant) builds graph variant `variant` and returns its y,
 * or IR_NONE when there are no more variants. */

typedef ValueId (*SampleFn)(T *t, int variant);

static ValueId sample_embedding(T *t, int variant) {
  if (variant > 1) return IR_NONE;
  int64_t V = 1 + variant * 4, H = rdim(&t->rng);
  ValueId tab = t_param(t, 2, (int64_t[]){ V, H });
  ValueId ids = t_input(t, DT_I32, 2, (int64_t[]){ rdim(&t->rng), 3 }, V, 0); /* repeats: scatter-add */
  return add(t, OP_EMBEDDING, 2, IN(tab, ids), NOATTR);
}

static ValueId sample_masked_rows(T *t, int variant) {
  if (variant > 2) return IR_NONE;
  int64_t B = rdim(&t->rng), S = 4, H = rdim(&t->rng), slots = 1 + variant; /* slot 3 > targets: padding rows */
  ValueId x = t_param(t, 3, (int64_t[]){ B, S, H });
  ValueId tg = t_input(t, DT_I32, 2, (int64_t[]){ B, S }, 5, 0.5);
  return add(t, OP_MASKED_ROWS, 2, IN(x, tg), ATTRS(ir_attr_int(ATTR_SLOTS, slots)));
}

/* variants 0-3: trans_a x trans_b, rank 2; 4-7: batched B; 8-11: a shared rank-2 B with a batched A */
static ValueId sample_matmul(T *t, int variant) {
  if (variant > 11) return IR_NONE;
  bool ta = variant & 1, tb = variant & 2;
  int64_t M = rdim(&t->rng), K = rdim(&t->rng), N = rdim(&t->rng), P = 2, Q = rdim(&t->rng);
  int ra = variant < 4 ? 2 : 4, rb = variant < 4 || variant >= 8 ? 2 : 4;
  int64_t da[4] = { P, Q, ta ? K : M, ta ? M : K }, db[4] = { P, Q, tb ? N : K, tb ? K : N };
  ValueId a = t_param(t, ra, ra == 2 ? da + 2 : da), b = t_param(t, rb, rb == 2 ? db + 2 : db);
  return add(t, OP_MATMUL, 2, IN(a, b), ATTRS(ir_attr_int(ATTR_TRANS_A, ta), ir_attr_int(ATTR_TRANS_B, tb)));
}

/* broadcasting both ways: [P,1,N] op [M,1], [N] op [P,M,N], [1] op [..] */
static ValueId binary_sample(T *t, int variant, OpKind op) {
  int64_t P = rdim(&t->rng), M = rdim(&t->rng), N = rdim(&t->rng);
  ValueId a, b;
  switch (variant) {
  case 0: a = t_param(t, 3, (int64_t[]){ P, 1, N }), b = t_param(t, 2, (int64_t[]){ M, 1 }); break;
  case 1: a = t_param(t, 1, (int64_t[]){ N }), b = t_param(t, 3, (int64_t[]){ P, M, N }); break;
  case 2: a = t_param(t, 2, (int64_t[]){ M, N }), b = t_param(t, 1, (int64_t[]){ 1 }); break;
  case 3:
    a = t_param(t, 2, (int64_t[]){ M, N });
    b = a;
    break; /* x op x: two contributions to one value */
  default: return IR_NONE;
  }
  return add(t, op, 2, IN(a, b), NOATTR);
}
static ValueId sample_add(T *t, int variant) { return binary_sample(t, variant, OP_ADD); }
static ValueId sample_mul(T *t, int variant) { return binary_sample(t, variant, OP_MUL); }

static ValueId unary_sample(T *t, int variant, OpKind op, const Attr *at, int nat) {
  if (variant > 1) return IR_NONE;
  ValueId x = variant ? t_param(t, 1, (int64_t[]){ 1 }) : t_param(t, 3, (int64_t[]){ rdim(&t->rng), 2, rdim(&t->rng) });
  return add(t, op, 1, IN(x), at, nat);
}
static ValueId sample_scale(T *t, int v) { return unary_sample(t, v, OP_SCALE, ATTRS(ir_attr_float(ATTR_ALPHA, -1.7))); }
static ValueId sample_gelu(T *t, int v) { return unary_sample(t, v, OP_GELU, NOATTR); }
static ValueId sample_relu(T *t, int v) { return unary_sample(t, v, OP_RELU, NOATTR); }
static ValueId sample_tanh(T *t, int v) { return unary_sample(t, v, OP_TANH, NOATTR); }
static ValueId sample_softmax(T *t, int v) { return unary_sample(t, v, OP_SOFTMAX, NOATTR); }
static ValueId sample_exp(T *t, int v) { return unary_sample(t, v, OP_EXP, NOATTR); }
static ValueId sample_sigmoid(T *t, int v) { return unary_sample(t, v, OP_SIGMOID, NOATTR); }
static ValueId sample_silu(T *t, int v) { return unary_sample(t, v, OP_SILU, NOATTR); }
static ValueId sample_sin(T *t, int v) { return unary_sample(t, v, OP_SIN, NOATTR); }
static ValueId sample_cos(T *t, int v) { return unary_sample(t, v, OP_COS, NOATTR); }
/* sqrt, rsqrt: on x*x + 0.5 (a positive operand), which also puts a mul and an add in front */
static ValueId positive_sample(T *t, int variant, OpKind op) {
  if (variant > 1) return IR_NONE;
  ValueId x = variant ? t_param(t, 1, (int64_t[]){ 1 }) : t_param(t, 2, (int64_t[]){ rdim(&t->rng), 3 });
  ValueId half = t_input(t, DT_F32, 1, (int64_t[]){ 1 }, 0, 0);
  t->data[half][0] = 0.5;
  ValueId p = add(t, OP_ADD, 2, IN(add(t, OP_MUL, 2, IN(x, x), NOATTR), half), NOATTR);
  return add(t, op, 1, IN(p), NOATTR);
}
static ValueId sample_sqrt(T *t, int v) { return positive_sample(t, v, OP_SQRT); }
static ValueId sample_rsqrt(T *t, int v) { return positive_sample(t, v, OP_RSQRT); }
/* p = 0.4 while training: the mask is live, and the same in every FD run */
static ValueId sample_dropout(T *t, int v) {
  return unary_sample(t, v, OP_DROPOUT, ATTRS(ir_attr_float(ATTR_P, 0.4), ir_attr_int(ATTR_KEY, 7)));
}

/* f32 -> bf16, bf16 -> f32 (through a bf16 product), f32 -> f32: in the f64
 * interpreter a cast is the identity, so its gradient is dy in x's dtype */
static ValueId sample_cast(T *t, int variant) {
  if (variant > 2) return IR_NONE;
  ValueId x = t_param(t, 2, (int64_t[]){ rdim(&t->rng), rdim(&t->rng) });
  Attr bf = ir_attr_str(ATTR_TO, "bf16"), f32 = ir_attr_str(ATTR_TO, "f32");
  if (variant == 2) return add(t, OP_CAST, 1, IN(x), &f32, 1);
  ValueId b = add(t, OP_CAST, 1, IN(x), &bf, 1);
  if (variant == 0) return add(t, OP_CAST, 1, IN(b), &f32, 1); /* the loss is f32 */
  b = add(t, OP_MUL, 2, IN(b, b), NOATTR);
  return add(t, OP_CAST, 1, IN(b), &f32, 1);
}

static ValueId sample_glu(T *t, int variant) {
  static const char *const acts[] = { "gelu", "relu", "sigmoid", "none" };
  if (variant > 3) return IR_NONE;
  ValueId x = t_param(t, 2, (int64_t[]){ rdim(&t->rng), 2 * rdim(&t->rng) });
  return add(t, OP_GLU, 1, IN(x), ATTRS(ir_attr_str(ATTR_ACT, acts[variant])));
}

/* x alone, x + weight, x + weight + bias; H = 1 too (a zero-variance row: eps only) */
static ValueId norm_sample(T *t, int variant, OpKind op, int maxin) {
  int nin = 1 + variant % 3;
  if (variant >= 6 || nin > maxin) return IR_NONE;
  int64_t H = variant < 3 ? 1 + rdim(&t->rng) : 1;
  ValueId in[3] = { t_param(t, 3, (int64_t[]){ rdim(&t->rng), 2, H }) };
  for (int k = 1; k < nin; k++) in[k] = t_param(t, 1, &H);
  return add(t, op, nin, in, ATTRS(ir_attr_float(ATTR_EPS, 1e-5)));
}
static ValueId sample_layernorm(T *t, int v) { return norm_sample(t, v, OP_LAYERNORM, 3); }
static ValueId sample_rmsnorm(T *t, int v) {
  if (v == 2 || v == 5) return norm_sample(t, v - 1, OP_RMSNORM, 2); /* rmsnorm takes at most a weight */
  return norm_sample(t, v, OP_RMSNORM, 2);
}

static ValueId sample_mean(T *t, int variant) {
  if (variant > 2) return IR_NONE;
  ValueId x = t_param(t, 3, (int64_t[]){ rdim(&t->rng), rdim(&t->rng), 3 });
  return add(t, OP_MEAN, 1, IN(x), ATTRS(ir_attr_int(ATTR_AXIS, variant)));
}

/* some rows ignored; variant 1: every row ignored (loss 0, gradient 0) */
static ValueId sample_cross_entropy(T *t, int variant) {
  if (variant > 1) return IR_NONE;
  int64_t N = 1 + rdim(&t->rng), V = rdim(&t->rng);
  ValueId l = t_param(t, 2, (int64_t[]){ N, V });
  ValueId tg = t_input(t, DT_I32, 1, &N, V, variant ? 1.0 : 0.3);
  return add(t, OP_CROSS_ENTROPY, 2, IN(l, tg), ATTRS(ir_attr_int(ATTR_IGNORE, -100)));
}

static ValueId sample_reshape(T *t, int variant) {
  if (variant > 0) return IR_NONE;
  ValueId x = t_param(t, 3, (int64_t[]){ 2, 3, rdim(&t->rng) });
  int64_t n = ir_shape_numel(&t->g->nodes[x].shape), s[2] = { 3, n / 3 };
  return add(t, OP_RESHAPE, 1, IN(x), ATTRS(ir_attr_ints(ATTR_SHAPE, s, 2)));
}

static ValueId sample_permute(T *t, int variant) {
  static const int64_t perms[][3] = { { 2, 0, 1 }, { 1, 2, 0 }, { 0, 2, 1 } };
  if (variant > 2) return IR_NONE;
  ValueId x = t_param(t, 3, (int64_t[]){ 2, 3, 4 });
  return add(t, OP_PERMUTE, 1, IN(x), ATTRS(ir_attr_ints(ATTR_PERM, perms[variant], 3)));
}

static ValueId sample_slice(T *t, int variant) {
  if (variant > 2) return IR_NONE;
  ValueId x = t_param(t, 3, (int64_t[]){ 2, 5, 3 });
  int64_t axis = variant == 2 ? 2 : 1, start = variant == 1 ? 0 : 1, len = variant == 2 ? 2 : 3;
  return add(t, OP_SLICE, 1, IN(x),
             ATTRS(ir_attr_int(ATTR_AXIS, axis), ir_attr_int(ATTR_START, start), ir_attr_int(ATTR_LEN, len)));
}

/* two, three and four inputs; axis 0, 1 and the last; variant 3: one input used twice */
static ValueId sample_concat(T *t, int variant) {
  if (variant > 3) return IR_NONE;
  int nin = variant == 3 ? 2 : 2 + variant, axis = variant == 3 ? 0 : variant;
  ValueId in[4];
  for (int k = 0; k < nin; k++) {
    int64_t d[3] = { 2, 3, 2 };
    d[axis] = 1 + k;
    in[k] = variant == 3 && k ? in[0] : t_param(t, 3, d);
  }
  return add(t, OP_CONCAT, nin, in, ATTRS(ir_attr_int(ATTR_AXIS, axis)));
}

/* Fused attention, through its rule's attention_grad (and attention_lse):
 * 0 packed qkv [B,S,H,3dh] (one source, wrt = 7); 1 packed + key-padding bias
 * [B,1,1,S] + dropout; 2 multi-query: q [B,S,H,dh], k/v one group [B,S,1,2dh],
 * ALiBi-shaped bias [H,S,S]; 3 separate q, k, v sources + dropout (one
 * attention_grad each); 4 q and k reading the same columns of one source
 * (overlapping parts: two nodes, summed), v at offset 1 of a wider source;
 * 5 grouped-query: q [B,S,4,dh], k/v [B,S,2,2dh] (two query heads per group). */
static ValueId sample_attention(T *t, int variant) {
  if (variant > 5) return IR_NONE;
  int64_t B = rdim(&t->rng), S = 1 + rdim(&t->rng), H = variant == 5 ? 4 : 2, dh = 1 + rdim(&t->rng);
  double p = variant == 1 || variant == 3 ? 0.3 : 0.0;
  ValueId in[4];
  int nin = 3;
  int64_t off[3] = { 0, dh, 2 * dh };
  if (variant <= 1) {
    in[0] = in[1] = in[2] = t_param(t, 4, (int64_t[]){ B, S, H, 3 * dh });
  } else if (variant == 2 || variant == 5) {
    in[0] = t_param(t, 4, (int64_t[]){ B, S, H, dh });
    in[1] = in[2] = t_param(t, 4, (int64_t[]){ B, S, variant == 2 ? 1 : 2, 2 * dh });
    off[0] = 0, off[1] = 0, off[2] = dh;
  } else if (variant == 3) {
    for (int k = 0; k < 3; k++) in[k] = t_param(t, 4, (int64_t[]){ B, S, H, dh });
    off[0] = off[1] = off[2] = 0;
  } else {
    in[0] = in[1] = t_param(t, 4, (int64_t[]){ B, S, H, dh });
    in[2] = t_param(t, 4, (int64_t[]){ B, S, H, dh + 1 });
    off[0] = off[1] = 0, off[2] = 1;
  }
  if (variant == 1) in[nin++] = t_input(t, DT_F32, 4, (int64_t[]){ B, 1, 1, S }, 0, 0);
  if (variant == 2) in[nin++] = t_input(t, DT_F32, 3, (int64_t[]){ H, S, S }, 0, 0);
  return add(t, OP_ATTENTION, nin, in,
             ATTRS(ir_attr_float(ATTR_ALPHA, 1.0 / sqrt((double)dh)), ir_attr_float(ATTR_P, p), ir_attr_int(ATTR_KEY, 5),
                   ir_attr_int(ATTR_HEAD_DIM, dh), ir_attr_ints(ATTR_OFFSETS, off, 3)));
}

static const SampleFn samples[OP_COUNT] = {
  [OP_EMBEDDING] = sample_embedding,
  [OP_MASKED_ROWS] = sample_masked_rows,
  [OP_MATMUL] = sample_matmul,
  [OP_ADD] = sample_add,
  [OP_MUL] = sample_mul,
  [OP_SCALE] = sample_scale,
  [OP_GELU] = sample_gelu,
  [OP_RELU] = sample_relu,
  [OP_TANH] = sample_tanh,
  [OP_DROPOUT] = sample_dropout,
  [OP_GLU] = sample_glu,
  [OP_LAYERNORM] = sample_layernorm,
  [OP_RMSNORM] = sample_rmsnorm,
  [OP_SOFTMAX] = sample_softmax,
  [OP_MEAN] = sample_mean,
  [OP_CROSS_ENTROPY] = sample_cross_entropy,
  [OP_RESHAPE] = sample_reshape,
  [OP_PERMUTE] = sample_permute,
  [OP_SLICE] = sample_slice,
  [OP_CAST] = sample_cast,
  [OP_EXP] = sample_exp,
  [OP_SQRT] = sample_sqrt,
  [OP_RSQRT] = sample_rsqrt,
  [OP_SIGMOID] = sample_sigmoid,
  [OP_SILU] = sample_silu,
  [OP_SIN] = sample_sin,
  [OP_COS] = sample_cos,
  [OP_CONCAT] = sample_concat,
  [OP_ATTENTION] = sample_attention,
};

static uint64_t name_seed(const char *s) {
  uint64_t h = 14695981039346656037ull; /* FNV-1a */
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
  return h;
}

static void test_every_op(void) {
  for (int op = 0; op < OP_COUNT; op++) {
    if (!pass_has_grad_rule((OpKind)op)) continue;
    CHECK(samples[op] != NULL);
    if (!samples[op]) {
      fprintf(stderr, "  op '%s' has a grad rule but no sample_%s in test_grad.c\n", ir_ops[op].name, ir_ops[op].name);
      continue;
    }
    int variants = 0;
    for (int v = 0;; v++) {
      T *t = malloc(sizeof *t);
      /* seeded by the op's name, so that adding rows to ops.def leaves every other sample's data alone */
      t_init(t, ir_ops[op].name, name_seed(ir_ops[op].name) * 100 + (uint64_t)v);
      ValueId y = samples[op](t, v);
      if (y != IR_NONE) {
        t_loss(t, y);
        char what[64];
        snprintf(what, sizeof what, "%s variant %d", ir_ops[op].name, v);
        check_elementwise(t, what);
        variants++;
      }
      t_free(t);
      free(t);
      if (y == IR_NONE) break;
    }
    CHECK(variants > 0);
  }
}

/* ---- whole models ----------------------------------------------------------- */

static char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    fprintf(stderr, "test_grad: cannot open %s (run from the source root)\n", path);
    exit(1);
  }
  char *buf = calloc(1 << 16, 1);
  *len = fread(buf, 1, (1 << 16) - 1, f);
  fclose(f);
  return buf;
}

static const FeDefine toy_dims[] = { { "batch", "2" }, { "seq", "8" },  { "vocab", "50" }, { "hidden", "16" },
                                     { "heads", "2" }, { "ffn", "32" }, { "layers", "2" } };

/* Compile .cram text at toy dims and give every source random data: params
 * around their init scale (plus noise so norms' weights are not all 1), ids
 * below vocab, 40% of targets real. */
static void model_init(T *t, const char *path, const char *text, size_t len, uint64_t seed) {
  memset(t, 0, sizeof *t);
  t->rng.s = seed;
  diag_init(&t->d, stderr);
  t->g = fe_compile(path, text, len, toy_dims, (int)(sizeof toy_dims / sizeof toy_dims[0]), &t->d);
  if (!t->g || t->g->n >= MAXV) {
    fprintf(stderr, "test_grad: cannot compile %s\n", path);
    exit(1);
  }
  for (ValueId v = 0; v < t->g->n; v++) {
    const Node *n = &t->g->nodes[v];
    if (n->op != OP_PARAM && n->op != OP_INPUT) continue;
    double *x = alloc_data(t, v);
    bool targets = n->op == OP_INPUT && !strcmp(ir_get_str(n, ATTR_NAME), "targets");
    for (int64_t i = 0; i < ir_shape_numel(&n->shape); i++) {
      if (n->op == OP_PARAM) x[i] = (!strcmp(ir_get_str(n, ATTR_INIT), "ones") ? 1.0 : 0.0) + 0.3 * nrand(&t->rng);
      else x[i] = targets && urand(&t->rng) < 0.6 ? -100.0 : (double)(int64_t)(urand(&t->rng) * 50);
    }
  }
}

/* Directional derivative along 3 random directions over all params vs
 * dot(grad, dir). h = 1e-5 on O(1) params: truncation ~h^2 |L'''| ~ 1e-10,
 * rounding ~1e-16 / h ~ 1e-11, so 1e-6 relative is a generous bound that any
 * missing or wrong gradient term still exceeds. */
static void check_model(const char *path) {
  size_t len;
  char *text = slurp(path, &len);
  T *t = malloc(sizeof *t);
  model_init(t, path, text, len, 12345);
  Graph *G = grad_graph(t);
  bool *owned;
  double **b = run(G, t->data, t->g->n, &owned);
  int nparam = 0;
  for (int trial = 0; trial < 3; trial++) {
    double dot = 0;
    double *dir[MAXV] = { 0 };
    for (ValueId v = 0; v < t->g->n; v++) {
      const Node *n = &t->g->nodes[v];
      if (n->op != OP_PARAM) continue;
      nparam += trial == 0;
      char gname[160];
      snprintf(gname, sizeof gname, "grad.%s", ir_get_str(n, ATTR_NAME));
      ValueId gv = output(G, gname);
      CHECK(gv != IR_NONE);
      int64_t count = ir_shape_numel(&n->shape);
      dir[v] = malloc((size_t)count * sizeof(double));
      for (int64_t i = 0; i < count; i++) {
        dir[v][i] = nrand(&t->rng);
        dot += dir[v][i] * b[gv][i];
      }
    }
    double h = 1e-5, l[2];
    for (int s = 0; s < 2; s++) {
      for (ValueId v = 0; v < t->g->n; v++)
        if (dir[v])
          for (int64_t i = 0; i < ir_shape_numel(&t->g->nodes[v].shape); i++) t->data[v][i] += (s ? -2 : 1) * h * dir[v][i];
      l[s] = loss_of(t->g, t->data);
    }
    for (ValueId v = 0; v < t->g->n; v++)
      if (dir[v]) {
        for (int64_t i = 0; i < ir_shape_numel(&t->g->nodes[v].shape); i++) t->data[v][i] += h * dir[v][i];
        free(dir[v]);
      }
    double fd = (l[0] - l[1]) / (2 * h), rel = fabs(fd - dot) / fmax(fabs(fd), 1e-12);
    if (rel > 1e-6) fprintf(stderr, "  %s: direction %d: autodiff %.12g, finite difference %.12g\n", path, trial, dot, fd);
    CHECK(rel <= 1e-6);
  }
  CHECK(G->nout == 1 + (uint32_t)nparam + (t->g->nout - 1));
  run_free(G, b, owned);
  ir_graph_free(G);
  t_free(t);
  free(t);
  free(text);
}

/* Tied: grad(embedding.weight) = embedding path + decoder path. The untied
 * model with decoder.weight holding the same values computes the same loss,
 * and its two gradients are exactly those two paths. */
static void test_tied_decoder(void) {
  size_t len;
  char *tied = slurp("models/tiny.cram", &len);
  char *untied = strdup(tied), *tie = strstr(untied, ", tie=\"embedding\"");
  CHECK(tie != NULL);
  if (!tie) return;
  memmove(tie, tie + strlen(", tie=\"embedding\""), strlen(tie + strlen(", tie=\"embedding\"")) + 1);
  T *a = malloc(sizeof *a), *u = malloc(sizeof *u);
  model_init(a, "tied.cram", tied, len, 777);
  model_init(u, "untied.cram", untied, strlen(untied), 777);
  ValueId emb = IR_NONE, dec = IR_NONE;
  /* the untied model has one more param (decoder.weight) after every tied-model node it shares */
  for (ValueId v = 0; v < u->g->n; v++) {
    const Node *n = &u->g->nodes[v];
    if (n->op != OP_PARAM) continue;
    if (!strcmp(ir_get_str(n, ATTR_NAME), "embedding.weight")) emb = v;
    if (!strcmp(ir_get_str(n, ATTR_NAME), "decoder.weight")) dec = v;
  }
  CHECK(emb != IR_NONE && dec != IR_NONE);
  /* same data by name (and the inputs by name) */
  for (ValueId v = 0; v < u->g->n; v++) {
    const Node *n = &u->g->nodes[v];
    if (n->op != OP_PARAM && n->op != OP_INPUT) continue;
    const char *name = v == dec ? "embedding.weight" : ir_get_str(n, ATTR_NAME);
    for (ValueId w = 0; w < a->g->n; w++)
      if ((a->g->nodes[w].op == OP_PARAM || a->g->nodes[w].op == OP_INPUT) &&
          !strcmp(ir_get_str(&a->g->nodes[w], ATTR_NAME), name))
        memcpy(u->data[v], a->data[w], (size_t)ir_shape_numel(&n->shape) * sizeof(double));
  }
  Graph *GA = grad_graph(a), *GU = grad_graph(u);
  bool *oa, *ou;
  double **ba = run(GA, a->data, a->g->n, &oa), **bu = run(GU, u->data, u->g->n, &ou);
  CHECK(fabs(ba[output(GA, "loss")][0] - bu[output(GU, "loss")][0]) <= 1e-12); /* same function */
  const double *gt = ba[output(GA, "grad.embedding.weight")], *ge = bu[output(GU, "grad.embedding.weight")];
  const double *gd = bu[output(GU, "grad.decoder.weight")];
  double worst = 0, dnorm = 0;
  for (int64_t i = 0; i < ir_shape_numel(&u->g->nodes[emb].shape); i++) {
    worst = fmax(worst, fabs(gt[i] - (ge[i] + gd[i])));
    dnorm += fabs(gd[i]);
  }
  CHECK(dnorm > 0);      /* the decoder path contributes */
  CHECK(worst <= 1e-12); /* the same sums in another order: rounding only */
  run_free(GA, ba, oa);
  run_free(GU, bu, ou);
  ir_graph_free(GA);
  ir_graph_free(GU);
  t_free(a);
  t_free(u);
  free(a);
  free(u);
  free(tied);
  free(untied);
}

/* ---- structure ------------------------------------------------------------------ */

static void test_structure(void) {
  T *t = malloc(sizeof *t);
  t_init(t, "structure", 5);
  ValueId p = t_param(t, 1, (int64_t[]){ 3 }), unused = t_param(t, 2, (int64_t[]){ 2, 2 });
  ValueId side = add(t, OP_GELU, 1, IN(p), NOATTR); /* an extra output, not on the loss path */
  ValueId y = add(t, OP_TANH, 1, IN(p), NOATTR);
  t_loss(t, y);
  ir_add_output(t->g, "side", side);
  Graph *G = grad_graph(t);
  CHECK(G->nout == 4);
  CHECK(!strcmp(G->outputs[1].name, "grad.p0") && !strcmp(G->outputs[2].name, "grad.p1"));
  CHECK(!strcmp(G->outputs[3].name, "side") && G->outputs[3].value == side);
  const Node *z = &G->nodes[G->outputs[2].value]; /* a param the loss ignores: zeros */
  CHECK(z->op == OP_FILL && ir_get_float(z, ATTR_VALUE) == 0.0 && ir_shape_eq(&z->shape, &t->g->nodes[unused].shape));
  int gelu_grads = 0;
  for (ValueId v = 0; v < G->n; v++) gelu_grads += G->nodes[v].op == OP_GELU_GRAD;
  CHECK(gelu_grads == 0); /* no backward for what does not lead to the loss */

  /* the text form round-trips */
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  ir_print(G, f);
  fclose(f);
  Graph *P = ir_parse(buf, len, "grad.ir", &t->d);
  CHECK(P && P->n == G->n && P->nout == G->nout);
  ir_graph_free(P);
  free(buf);
  ir_graph_free(G);

  /* a loss that is not an f32 scalar is refused */
  Graph *bad = ir_graph_new("bad");
  Shape s = ir_shape_make(1, (int64_t[]){ 2 });
  Attr nm = ir_attr_str(ATTR_NAME, "x");
  ir_add_output(bad, "loss", ir_add_source(bad, OP_INPUT, DT_F32, &s, &nm, 1, (SrcLoc){ 0 }));
  FILE *quiet = fopen("/dev/null", "w");
  Diag qd;
  diag_init(&qd, quiet);
  CHECK(pass_autodiff(bad, &qd) == NULL && qd.nerrors == 1);
  fclose(quiet);
  ir_graph_free(bad);
  t_free(t);
  free(t);
}

int main(void) {
  test_structure();
  test_every_op();
  check_model("models/tiny.cram");
  check_model("models/ablations/postln_noglu.cram");
  check_model("models/ablations/untied_biases.cram");
  check_model("models/ablations/dense_prediction.cram");
  test_tied_decoder();
  return check_summary("test_grad");
}
