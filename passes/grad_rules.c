/* grad_rules.c: one gradient rule per differentiable op (the grad column of
 * ops.def), in the style of tinygrad's pm_gradient: each rule reads the
 * forward node v and its output gradient dy, builds the backward nodes and
 * hands each input's contribution to grad_accum. A rule builds only the
 * contributions whose input needs one (grad_wants). Notation: y = v's output,
 * x_k = its k-th input, "sum_to" undoes numpy broadcasting.
 */
#include "grad.h"

static const Node *fnode(const GradCtx *cx, ValueId v) { return &cx->fwd->nodes[v]; }
static const Shape *in_shape(const GradCtx *cx, ValueId v, int k) { return &cx->fwd->nodes[fnode(cx, v)->in[k]].shape; }

static ValueId unary(GradCtx *cx, OpKind op, ValueId x, const Attr *attrs, int nattr) { return gb(cx, op, &x, 1, attrs, nattr); }
static ValueId binary(GradCtx *cx, OpKind op, ValueId a, ValueId b, const Attr *attrs, int nattr) {
  return gb(cx, op, (ValueId[]){ a, b }, 2, attrs, nattr);
}
static Attr shape_attr(const Shape *s) { return ir_attr_ints(ATTR_SHAPE, s->dim, s->rank); }
static ValueId reshape(GradCtx *cx, ValueId x, const Shape *s) {
  Attr a = shape_attr(s);
  return unary(cx, OP_RESHAPE, x, &a, 1);
}

/* dy summed down to s (the shape of an operand that was broadcast). */
static ValueId sum_to(GradCtx *cx, ValueId dy, const Shape *s) {
  if (dy == IR_NONE || ir_shape_eq(&grad_node(cx, dy)->shape, s)) return dy;
  Attr a = shape_attr(s);
  return unary(cx, OP_SUM_TO, dy, &a, 1);
}

static ValueId matmul(GradCtx *cx, ValueId a, ValueId b, bool ta, bool tb) {
  Attr at[2] = { ir_attr_int(ATTR_TRANS_A, ta), ir_attr_int(ATTR_TRANS_B, tb) };
  return binary(cx, OP_MATMUL, a, b, at, 2);
}

/* Swap the last two axes. */
static ValueId transpose(GradCtx *cx, ValueId x) {
  int r = grad_node(cx, x)->shape.rank;
  int64_t perm[IR_MAX_RANK];
  for (int i = 0; i < r; i++) perm[i] = i;
  perm[r - 2] = r - 1;
  perm[r - 1] = r - 2;
  Attr a = ir_attr_ints(ATTR_PERM, perm, (uint32_t)r);
  return unary(cx, OP_PERMUTE, x, &a, 1);
}

/* [..., R, C] -> [prod(...) * R, C]: folds batch axes into the rows. */
static ValueId rows2d(GradCtx *cx, ValueId x) {
  const Shape *s = &grad_node(cx, x)->shape;
  Shape t = { .rank = 2, .dim = { ir_shape_numel(s) / s->dim[s->rank - 1], s->dim[s->rank - 1] } };
  return reshape(cx, x, &t);
}

/* ---- gathers -------------------------------------------------------------- */

/* y = table[ids]: dtable = scatter-add of dy rows at ids */
void grad_embedding(GradCtx *cx, ValueId v, ValueId dy) {
  if (!grad_wants(cx, v, 0)) return;
  Attr rows = ir_attr_int(ATTR_ROWS, in_shape(cx, v, 0)->dim[0]);
  grad_accum(cx, v, 0, binary(cx, OP_EMBEDDING_GRAD, grad_in(cx, v, 1), dy, &rows, 1));
}

/* y = the masked rows of x: dx = dy rows scattered back, zeros elsewhere */
void grad_masked_rows(GradCtx *cx, ValueId v, ValueId dy) {
  const Node *n = fnode(cx, v);
  grad_accum(cx, v, 0, binary(cx, OP_MASKED_ROWS_GRAD, dy, grad_in(cx, v, 1), n->attr, n->nattr));
}

/* ---- GEMM ----------------------------------------------------------------- */

/* C = op(A) op(B). With op(A) = A: dA = dC op(B)^T; with op(A) = A^T:
 * dA = op(B) dC^T. With op(B) = B: dB = op(A)^T dC; with op(B) = B^T:
 * dB = dC^T op(A). A weight B[K,N] shared by a batched A gets one GEMM over
 * the folded batch: A and dC reshaped to 2-D. */
void grad_matmul(GradCtx *cx, ValueId v, ValueId dy) {
  const Node *n = fnode(cx, v);
  bool ta = ir_get_int(n, ATTR_TRANS_A), tb = ir_get_int(n, ATTR_TRANS_B);
  ValueId A = grad_in(cx, v, 0), B = grad_in(cx, v, 1);
  bool shared = in_shape(cx, v, 1)->rank == 2 && in_shape(cx, v, 0)->rank > 2;
  if (grad_wants(cx, v, 0)) {
    ValueId dA;
    if (!ta) dA = matmul(cx, dy, B, false, !tb);
    else if (!shared) dA = matmul(cx, B, dy, tb, true);
    else dA = transpose(cx, matmul(cx, dy, B, false, !tb)); /* a rank-2 B cannot lead a batched GEMM */
    grad_accum(cx, v, 0, dA);
  }
  if (grad_wants(cx, v, 1)) {
    ValueId a = A, g = dy;
    if (shared) {
      a = rows2d(cx, ta ? transpose(cx, A) : A);
      g = rows2d(cx, dy);
      ta = false;
    }
    grad_accum(cx, v, 1, tb ? matmul(cx, g, a, true, ta) : matmul(cx, a, g, !ta, false));
  }
}

/* ---- elementwise ---------------------------------------------------------- */

/* y = a + b (broadcast): da = sum_to(dy), db = sum_to(dy) */
void grad_add(GradCtx *cx, ValueId v, ValueId dy) {
  for (int k = 0; k < 2; k++)
    if (grad_wants(cx, v, k)) grad_accum(cx, v, k, sum_to(cx, dy, in_shape(cx, v, k)));
}

/* y = a * b (broadcast): da = sum_to(dy * b), db = sum_to(dy * a) */
void grad_mul(GradCtx *cx, ValueId v, ValueId dy) {
  for (int k = 0; k < 2; k++)
    if (grad_wants(cx, v, k))
      grad_accum(cx, v, k, sum_to(cx, binary(cx, OP_MUL, dy, grad_in(cx, v, 1 - k), NULL, 0), in_shape(cx, v, k)));
}

/* y = alpha x: dx = alpha dy */
void grad_scale(GradCtx *cx, ValueId v, ValueId dy) {
  const Node *n = fnode(cx, v);
  grad_accum(cx, v, 0, unary(cx, OP_SCALE, dy, n->attr, n->nattr));
}

void grad_gelu(GradCtx *cx, ValueId v, ValueId dy) {
  grad_accum(cx, v, 0, binary(cx, OP_GELU_GRAD, grad_in(cx, v, 0), dy, NULL, 0));
}
void grad_relu(GradCtx *cx, ValueId v, ValueId dy) {
  grad_accum(cx, v, 0, binary(cx, OP_RELU_GRAD, grad_in(cx, v, 0), dy, NULL, 0));
}
/* tanh' from the output: 1 - y^2 */
void grad_tanh(GradCtx *cx, ValueId v, ValueId dy) {
  grad_accum(cx, v, 0, binary(cx, OP_TANH_GRAD, grad_out(cx, v), dy, NULL, 0));
}

/* y = exp(x): dx = dy y */
void grad_exp(GradCtx *cx, ValueId v, ValueId dy) { grad_accum(cx, v, 0, binary(cx, OP_MUL, dy, grad_out(cx, v), NULL, 0)); }

/* y = sqrt(x): dx = 0.5 dy rsqrt(x) */
void grad_sqrt(GradCtx *cx, ValueId v, ValueId dy) {
  Attr half = ir_attr_float(ATTR_ALPHA, 0.5);
  ValueId r = unary(cx, OP_RSQRT, grad_in(cx, v, 0), NULL, 0);
  grad_accum(cx, v, 0, unary(cx, OP_SCALE, binary(cx, OP_MUL, dy, r, NULL, 0), &half, 1));
}

/* y = x^(-1/2): dx = -0.5 dy y^3 */
void grad_rsqrt(GradCtx *cx, ValueId v, ValueId dy) {
  Attr a = ir_attr_float(ATTR_ALPHA, -0.5);
  ValueId y = grad_out(cx, v), y3 = binary(cx, OP_MUL, y, binary(cx, OP_MUL, y, y, NULL, 0), NULL, 0);
  grad_accum(cx, v, 0, unary(cx, OP_SCALE, binary(cx, OP_MUL, dy, y3, NULL, 0), &a, 1));
}

/* sigmoid' from the output: y (1 - y) */
void grad_sigmoid(GradCtx *cx, ValueId v, ValueId dy) {
  grad_accum(cx, v, 0, binary(cx, OP_SIGMOID_GRAD, grad_out(cx, v), dy, NULL, 0));
}
void grad_silu(GradCtx *cx, ValueId v, ValueId dy) {
  grad_accum(cx, v, 0, binary(cx, OP_SILU_GRAD, grad_in(cx, v, 0), dy, NULL, 0));
}

/* sin' = cos, cos' = -sin */
void grad_sin(GradCtx *cx, ValueId v, ValueId dy) {
  ValueId c = unary(cx, OP_COS, grad_in(cx, v, 0), NULL, 0);
  grad_accum(cx, v, 0, binary(cx, OP_MUL, dy, c, NULL, 0));
}
void grad_cos(GradCtx *cx, ValueId v, ValueId dy) {
  Attr neg = ir_attr_float(ATTR_ALPHA, -1.0);
  ValueId s = unary(cx, OP_SIN, grad_in(cx, v, 0), NULL, 0);
  grad_accum(cx, v, 0, unary(cx, OP_SCALE, binary(cx, OP_MUL, dy, s, NULL, 0), &neg, 1));
}

/* The same p and key redraw the same mask, and inverted dropout is linear in
 * x with that mask: dx = dropout(dy). */
void grad_dropout(GradCtx *cx, ValueId v, ValueId dy) {
  const Node *n = fnode(cx, v);
  grad_accum(cx, v, 0, unary(cx, OP_DROPOUT, dy, n->attr, n->nattr));
}

/* y = cast(x): dx = dy cast back to x's dtype (an f32 master weight gets an
 * f32 gradient from its bf16 copy's) */
void grad_cast(GradCtx *cx, ValueId v, ValueId dy) {
  DType xt = cx->fwd->nodes[fnode(cx, v)->in[0]].dtype;
  if (grad_node(cx, dy)->dtype == xt) {
    grad_accum(cx, v, 0, dy);
    return;
  }
  Attr to = ir_attr_str(ATTR_TO, ir_dtype_name(xt));
  grad_accum(cx, v, 0, unary(cx, OP_CAST, dy, &to, 1));
}

void grad_glu(GradCtx *cx, ValueId v, ValueId dy) {
  const Node *n = fnode(cx, v);
  grad_accum(cx, v, 0, binary(cx, OP_GLU_GRAD, grad_in(cx, v, 0), dy, n->attr, n->nattr));
}

/* ---- row-wise ------------------------------------------------------------- */

/* y = xhat w + b: dx by layernorm_grad; dw = sum over rows of dy xhat and
 * db = sum over rows of dy by the sibling pair layernorm_wgrad, layernorm_bgrad
 * (one kernel, built adjacent: per-block partial sums over the rows of x and
 * dy, xhat recomputed in registers). */
void grad_layernorm(GradCtx *cx, ValueId v, ValueId dy) {
  const Node *n = fnode(cx, v);
  ValueId x = grad_in(cx, v, 0);
  if (grad_wants(cx, v, 0)) {
    ValueId in[3] = { x, n->nin > 1 ? grad_in(cx, v, 1) : dy, dy };
    grad_accum(cx, v, 0, gb(cx, OP_LAYERNORM_GRAD, in, n->nin > 1 ? 3 : 2, n->attr, n->nattr));
  }
  /* right after dx (and the residual add fuse_ln_residual folds into it): the pair joins its kernel
   * (ir_norm_grad_params), one pass over x and dy for all three */
  bool want_w = n->nin > 1 && grad_wants(cx, v, 1), want_b = n->nin > 2 && grad_wants(cx, v, 2);
  ValueId xdy[2] = { x, dy };
  Attr eps = ir_attr_float(ATTR_EPS, ir_get_float(n, ATTR_EPS));
  ValueId dw = want_w ? gb(cx, OP_LAYERNORM_WGRAD, xdy, 2, &eps, 1) : IR_NONE;
  ValueId db = want_b ? gb(cx, OP_LAYERNORM_BGRAD, xdy, 2, &eps, 1) : IR_NONE;
  if (want_w) grad_accum(cx, v, 1, dw);
  if (want_b) grad_accum(cx, v, 2, db);
}

/* y = x r w: dx by rmsnorm_grad; dw = sum_to(dy x r), x r an rmsnorm without weight */
void grad_rmsnorm(GradCtx *cx, ValueId v, ValueId dy) {
  const Node *n = fnode(cx, v);
  ValueId x = grad_in(cx, v, 0);
  if (grad_wants(cx, v, 0)) {
    ValueId in[3] = { x, n->nin > 1 ? grad_in(cx, v, 1) : dy, dy };
    grad_accum(cx, v, 0, gb(cx, OP_RMSNORM_GRAD, in, n->nin > 1 ? 3 : 2, n->attr, n->nattr));
  }
  if (n->nin > 1 && grad_wants(cx, v, 1)) {
    ValueId xr = unary(cx, OP_RMSNORM, x, n->attr, n->nattr);
    grad_accum(cx, v, 1, sum_to(cx, binary(cx, OP_MUL, dy, xr, NULL, 0), in_shape(cx, v, 1)));
  }
}

/* softmax' from the output: dx = y (dy - sum(y dy)) */
void grad_softmax(GradCtx *cx, ValueId v, ValueId dy) {
  grad_accum(cx, v, 0, binary(cx, OP_SOFTMAX_GRAD, grad_out(cx, v), dy, NULL, 0));
}

/* ---- reductions ----------------------------------------------------------- */

/* y = mean over axis: dx = broadcast of dy / len along axis */
void grad_mean(GradCtx *cx, ValueId v, ValueId dy) {
  const Node *n = fnode(cx, v);
  const Shape *xs = in_shape(cx, v, 0);
  int64_t axis = ir_get_int(n, ATTR_AXIS);
  Shape keep = *xs;
  keep.dim[axis] = 1;
  Attr alpha = ir_attr_float(ATTR_ALPHA, 1.0 / (double)xs->dim[axis]), to = shape_attr(xs);
  ValueId s = reshape(cx, unary(cx, OP_SCALE, dy, &alpha, 1), &keep);
  grad_accum(cx, v, 0, unary(cx, OP_BROADCAST_TO, s, &to, 1));
}

/* dlogits = (softmax - onehot) dloss / used rows, by cross_entropy_grad */
void grad_cross_entropy(GradCtx *cx, ValueId v, ValueId dy) {
  const Node *n = fnode(cx, v);
  ValueId in[3] = { grad_in(cx, v, 0), grad_in(cx, v, 1), dy };
  grad_accum(cx, v, 0, gb(cx, OP_CROSS_ENTROPY_GRAD, in, 3, n->attr, n->nattr));
}

/* ---- layout --------------------------------------------------------------- */

void grad_reshape(GradCtx *cx, ValueId v, ValueId dy) { grad_accum(cx, v, 0, reshape(cx, dy, in_shape(cx, v, 0))); }

/* the inverse permutation: inv[perm[i]] = i */
void grad_permute(GradCtx *cx, ValueId v, ValueId dy) {
  const Attr *p = ir_attr(fnode(cx, v), ATTR_PERM);
  int64_t inv[IR_MAX_RANK];
  for (uint32_t i = 0; i < p->u.ints.n; i++) inv[p->u.ints.v[i]] = i;
  Attr a = ir_attr_ints(ATTR_PERM, inv, p->u.ints.n);
  grad_accum(cx, v, 0, unary(cx, OP_PERMUTE, dy, &a, 1));
}

/* concat's adjoint: input k gets its own stretch of dy along the axis */
void grad_concat(GradCtx *cx, ValueId v, ValueId dy) {
  const Node *n = fnode(cx, v);
  int64_t axis = ir_get_int(n, ATTR_AXIS), start = 0;
  for (int k = 0; k < n->nin; k++) {
    int64_t len = in_shape(cx, v, k)->dim[axis];
    if (grad_wants(cx, v, k)) {
      Attr a[3] = { ir_attr_int(ATTR_AXIS, axis), ir_attr_int(ATTR_START, start), ir_attr_int(ATTR_LEN, len) };
      grad_accum(cx, v, k, unary(cx, OP_SLICE, dy, a, 3));
    }
    start += len;
  }
}

/* slice's adjoint: dy zero-padded back to the full axis */
void grad_slice(GradCtx *cx, ValueId v, ValueId dy) {
  const Node *n = fnode(cx, v);
  int64_t axis = ir_get_int(n, ATTR_AXIS);
  Attr a[3] = { ir_attr_int(ATTR_AXIS, axis), ir_attr_int(ATTR_START, ir_get_int(n, ATTR_START)),
                ir_attr_int(ATTR_SIZE, in_shape(cx, v, 0)->dim[axis]) };
  grad_accum(cx, v, 0, unary(cx, OP_PAD, dy, a, 3));
}

/* ---- fused attention ---------------------------------------------------------- */

/* o = attention(q, k, v, [bias]): the backward is attention_grad, one node per
 * distinct source among q, k, v (packed qkv: one node, wrt = 7, the whole
 * dqkv in the GEMM output's layout), reading the forward's o, the
 * attention_lse sibling (CSE merges it with the forward's when both exist) and
 * dy. Parts of one source that overlap (q and k reading the same columns) get
 * separate nodes, summed by grad_accum. The bias gets no gradient: the pass
 * only fuses a bias that needs none, and the rule refuses one that does. */
void grad_attention(GradCtx *cx, ValueId v, ValueId dy) {
  const Node *n = fnode(cx, v);
  if (n->nin > 3 && grad_wants(cx, v, 3)) {
    diag_error(cx->d, n->loc, "autodiff: attention has no gradient for its bias input (%%%u)", n->in[3]);
    cx->failed = true;
    return;
  }
  ValueId in[IR_MAX_IN];
  for (int k = 0; k < n->nin; k++) in[k] = grad_in(cx, v, k);
  ValueId lse = gb(cx, OP_ATTENTION_LSE, in, n->nin, n->attr, n->nattr);
  const Attr *offs = ir_attr(n, ATTR_OFFSETS);
  int64_t dh = ir_get_int(n, ATTR_HEAD_DIM);
  unsigned done = 0;
  for (int t = 0; t < 3; t++) {
    if (done >> t & 1 || !grad_wants(cx, v, t)) continue;
    int64_t wrt = 0;
    for (int u = t; u < 3; u++) {
      bool overlaps = false;
      for (int w = 0; w < 3; w++)
        if (wrt >> w & 1) overlaps |= offs->u.ints.v[u] < offs->u.ints.v[w] + dh && offs->u.ints.v[w] < offs->u.ints.v[u] + dh;
      if (!(done >> u & 1) && n->in[u] == n->in[t] && !overlaps) wrt |= 1 << u, done |= 1u << u;
    }
    ValueId gin[IR_MAX_IN] = { in[0], in[1], in[2], grad_out(cx, v), lse, dy };
    int nin = 6;
    if (n->nin > 3) gin[nin++] = in[3];
    Attr at[IR_MAX_ATTRS];
    int na = 0;
    for (int k = 0; k < n->nattr; k++) at[na++] = n->attr[k];
    at[na++] = ir_attr_int(ATTR_WRT, wrt);
    grad_accum(cx, v, t, gb(cx, OP_ATTENTION_GRAD, gin, nin, at, na));
  }
}
