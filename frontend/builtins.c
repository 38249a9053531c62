/* builtins.c: the table of .cram functions and how each lowers to IR.
 *
 * One row per builtin: its parameters (name, kind, default) in call order,
 * required ones first, and a lowering function. lower.c binds a call's
 * arguments against the row (positional, then keyword; unknown keywords,
 * missing and surplus arguments and kind mismatches are reported there), so
 * a lowering function only checks what is specific to it (ranks, divisibility)
 * and emits nodes. docs/cram-language.md documents every row; keep them in step.
 *
 * Parameter naming: <repeat prefix><name>.<suffix>, e.g. layers.3.attn.qkv.weight.
 * decay = 1 for weights (AdamW decay), 0 for norm weights and all biases.
 */
#include <math.h>
#include <string.h>

#include "lower.h"

/* the bound arguments of call c, by parameter index */
#define TV(k) (c->arg[k].t)
#define IV(k) (c->arg[k].i)
#define FV(k) (c->arg[k].kind == V_INT ? (double)c->arg[k].i : c->arg[k].f)
#define BV(k) (c->arg[k].i != 0)
#define SV(k) (c->arg[k].s)

static const Node *N(Lower *L, ValueId v) { return lw_node(L, v); }
static int64_t last_dim(Lower *L, ValueId v) {
  const Node *n = N(L, v);
  return n->shape.rank ? n->shape.dim[n->shape.rank - 1] : 1;
}

static bool need_rank(Lower *L, const Call *c, int i, int rank, const char *layout) {
  const Node *n = N(L, TV(i));
  if (n->shape.rank == rank) return true;
  lw_error(L, c->argloc[i], "%s(): '%s' must be a rank-%d tensor %s, got %s", c->b->name, c->b->p[i].name, rank, layout,
           lw_type(L, TV(i)));
  return false;
}

static bool need_float(Lower *L, const Call *c, int i) {
  if (N(L, TV(i))->dtype != DT_I32) return true;
  lw_error(L, c->argloc[i], "%s(): '%s' must be a floating-point tensor, got %s", c->b->name, c->b->p[i].name, lw_type(L, TV(i)));
  return false;
}

static bool need_i32(Lower *L, const Call *c, int i) {
  if (N(L, TV(i))->dtype == DT_I32) return true;
  lw_error(L, c->argloc[i], "%s(): '%s' must be an i32 tensor, got %s", c->b->name, c->b->p[i].name, lw_type(L, TV(i)));
  return false;
}

static bool need_positive(Lower *L, const Call *c, int i) {
  if (IV(i) >= 1) return true;
  lw_error(L, c->argloc[i], "%s(): '%s' must be positive, got %lld", c->b->name, c->b->p[i].name, (long long)IV(i));
  return false;
}

static bool need_prob(Lower *L, const Call *c, int i) {
  double p = FV(i);
  if (p >= 0.0 && p < 1.0) return true;
  lw_error(L, c->argloc[i], "%s(): '%s' must be in [0, 1), got %g", c->b->name, c->b->p[i].name, p);
  return false;
}

static Val op1(Lower *L, const Call *c, OpKind op, ValueId x) { return lw_op(L, c, op, &x, 1, NULL, 0); }
static Val op2(Lower *L, const Call *c, OpKind op, ValueId a, ValueId b) {
  ValueId in[2] = { a, b };
  return lw_op(L, c, op, in, 2, NULL, 0);
}
static Val matmul(Lower *L, const Call *c, ValueId a, ValueId b, int trans_b) {
  ValueId in[2] = { a, b };
  Attr at[2] = { ir_attr_int(ATTR_TRANS_A, 0), ir_attr_int(ATTR_TRANS_B, trans_b) };
  return lw_op(L, c, OP_MATMUL, in, 2, at, 2);
}
static Val reshape(Lower *L, const Call *c, ValueId x, int rank, const int64_t *dims) {
  Attr at = ir_attr_ints(ATTR_SHAPE, dims, (uint32_t)rank);
  return lw_op(L, c, OP_RESHAPE, &x, 1, &at, 1);
}
static Val permute(Lower *L, const Call *c, ValueId x, int rank, const int64_t *perm) {
  Attr at = ir_attr_ints(ATTR_PERM, perm, (uint32_t)rank);
  return lw_op(L, c, OP_PERMUTE, &x, 1, &at, 1);
}
static Val slice(Lower *L, const Call *c, ValueId x, int axis, int64_t start, int64_t len) {
  Attr at[3] = { ir_attr_int(ATTR_AXIS, axis), ir_attr_int(ATTR_START, start), ir_attr_int(ATTR_LEN, len) };
  return lw_op(L, c, OP_SLICE, &x, 1, at, 3);
}
static Val scale(Lower *L, const Call *c, ValueId x, double alpha) {
  Attr at = ir_attr_float(ATTR_ALPHA, alpha);
  return lw_op(L, c, OP_SCALE, &x, 1, &at, 1);
}
static Val dropout(Lower *L, const Call *c, ValueId x, double p) {
  if (p == 0.0) return (Val){ .kind = V_TENSOR, .t = x };
  /* key: a mask stream unique to this dropout site (its node index), so the
   * backward dropout can draw the very same mask */
  Attr at[2] = { ir_attr_float(ATTR_P, p), ir_attr_int(ATTR_KEY, (int64_t)lw_graph(L)->n) };
  return lw_op(L, c, OP_DROPOUT, &x, 1, at, 2);
}

#define OK(v) ((v).kind == V_TENSOR)
static const Val ERR = { .kind = V_ERR };

/* embed(ids, vocab, dim, name="embedding"): {name}.weight f32[vocab,dim] ~ N(0,0.02) */
static Val lower_embed(Lower *L, const Call *c) {
  if (!need_i32(L, c, 0) || !need_positive(L, c, 1) || !need_positive(L, c, 2)) return ERR;
  const char *scope = lw_param_scope(L, c, 3);
  if (!scope) return ERR;
  int64_t d[2] = { IV(1), IV(2) };
  Val w = lw_param(L, c, scope, "weight", 2, d, "normal", 0.02, 1);
  if (!OK(w)) return ERR;
  return op2(L, c, OP_EMBEDDING, w.t, TV(0));
}

/* sinusoidal(seq, dim, scaled=false, name="pos"): f32[seq,dim] table (* {name}.scale) */
static Val lower_sinusoidal(Lower *L, const Call *c) {
  if (!need_positive(L, c, 0) || !need_positive(L, c, 1)) return ERR;
  if (IV(1) % 2) return lw_error(L, c->argloc[1], "sinusoidal(): dim must be even, got %lld", (long long)IV(1));
  int64_t d[2] = { IV(0), IV(1) };
  Val pe = lw_source(L, c, OP_SINUSOID, 2, d);
  if (!OK(pe) || !BV(2)) return pe;
  const char *scope = lw_param_scope(L, c, 3);
  if (!scope) return ERR;
  int64_t one = 1;
  Val s = lw_param(L, c, scope, "scale", 1, &one, "const", 1.0 / sqrt((double)IV(1)), 1);
  if (!OK(s)) return ERR;
  return op2(L, c, OP_MUL, pe.t, s.t);
}

/* learned_positions(seq, dim, name="pos"): {name}.weight f32[seq,dim] ~ N(0,0.02) */
static Val lower_learned_positions(Lower *L, const Call *c) {
  if (!need_positive(L, c, 0) || !need_positive(L, c, 1)) return ERR;
  const char *scope = lw_param_scope(L, c, 2);
  if (!scope) return ERR;
  int64_t d[2] = { IV(0), IV(1) };
  return lw_param(L, c, scope, "weight", 2, d, "normal", 0.02, 1);
}

/* linear(x, out, bias=true, name="linear"): x @ W^T (+ b), W f32[out,in] */
static Val lower_linear(Lower *L, const Call *c) {
  if (!need_float(L, c, 0) || !need_positive(L, c, 1)) return ERR;
  if (N(L, TV(0))->shape.rank < 1)
    return lw_error(L, c->argloc[0], "linear(): 'x' must have at least one axis, got %s", lw_type(L, TV(0)));
  const char *scope = lw_param_scope(L, c, 3);
  if (!scope) return ERR;
  int64_t d[2] = { IV(1), last_dim(L, TV(0)) };
  Val w = lw_param(L, c, scope, "weight", 2, d, "normal", 0.02, 1);
  if (!OK(w)) return ERR;
  Val y = matmul(L, c, TV(0), w.t, 1);
  if (!OK(y) || !BV(2)) return y;
  Val b = lw_param(L, c, scope, "bias", 1, &d[0], "zeros", 0.0, 0);
  return OK(b) ? op2(L, c, OP_ADD, y.t, b.t) : ERR;
}

static Val norm(Lower *L, const Call *c, OpKind op, bool affine, bool bias, int name_idx) {
  if (!need_float(L, c, 0)) return ERR;
  if (N(L, TV(0))->shape.rank < 1)
    return lw_error(L, c->argloc[0], "%s(): 'x' must have at least one axis, got %s", c->b->name, lw_type(L, TV(0)));
  double eps = FV(1);
  if (!(eps > 0.0)) return lw_error(L, c->argloc[1], "%s(): eps must be positive, got %g", c->b->name, eps);
  ValueId in[3] = { TV(0), IR_NONE, IR_NONE };
  int nin = 1;
  if (affine) {
    const char *scope = lw_param_scope(L, c, name_idx);
    if (!scope) return ERR;
    int64_t h = last_dim(L, TV(0));
    Val w = lw_param(L, c, scope, "weight", 1, &h, "ones", 0.0, 0);
    if (!OK(w)) return ERR;
    in[nin++] = w.t;
    if (bias) {
      Val b = lw_param(L, c, scope, "bias", 1, &h, "zeros", 0.0, 0);
      if (!OK(b)) return ERR;
      in[nin++] = b.t;
    }
  }
  Attr at = ir_attr_float(ATTR_EPS, eps);
  return lw_op(L, c, op, in, nin, &at, 1);
}

/* layernorm(x, eps=1e-5, affine=true, bias=true, name="norm") */
static Val lower_layernorm(Lower *L, const Call *c) { return norm(L, c, OP_LAYERNORM, BV(2), BV(3), 4); }
/* rmsnorm(x, eps=1e-6, affine=true, name="norm") */
static Val lower_rmsnorm(Lower *L, const Call *c) { return norm(L, c, OP_RMSNORM, BV(2), false, 3); }

static Val lower_gelu(Lower *L, const Call *c) { return need_float(L, c, 0) ? op1(L, c, OP_GELU, TV(0)) : ERR; }
static Val lower_relu(Lower *L, const Call *c) { return need_float(L, c, 0) ? op1(L, c, OP_RELU, TV(0)) : ERR; }
static Val lower_tanh(Lower *L, const Call *c) { return need_float(L, c, 0) ? op1(L, c, OP_TANH, TV(0)) : ERR; }

/* glu(x, act=gelu): value = first half of the last axis, act(second half) gates it */
static Val lower_glu(Lower *L, const Call *c) {
  if (!need_float(L, c, 0)) return ERR;
  const char *act = SV(1);
  if (ir_act_parse(act) < 0) /* ir/acts.def */
    return lw_error(L, c->argloc[1], "glu(): act must be one of gelu, relu, sigmoid, none; got %s", act);
  if (N(L, TV(0))->shape.rank < 1 || last_dim(L, TV(0)) % 2)
    return lw_error(L, c->argloc[0], "glu(): the last axis of 'x' must be even (it is split in half), got %s", lw_type(L, TV(0)));
  Attr at = ir_attr_str(ATTR_ACT, act);
  return lw_op(L, c, OP_GLU, &TV(0), 1, &at, 1);
}

/* dropout(x, p): identity when p == 0 (no node) */
static Val lower_dropout(Lower *L, const Call *c) {
  if (!need_float(L, c, 0) || !need_prob(L, c, 1)) return ERR;
  return dropout(L, c, TV(0), FV(1));
}

/* attention(x, heads, bias=false, mask=none, dropout=0.0, name="attn")
 * x [B,S,H] -> [B,S,H]; packed per-head interleaved QKV (see docs). */
static Val lower_attention(Lower *L, const Call *c) {
  if (!need_float(L, c, 0) || !need_rank(L, c, 0, 3, "[batch, seq, hidden]") || !need_positive(L, c, 1) || !need_prob(L, c, 4))
    return ERR;
  const Shape *xs = &N(L, TV(0))->shape;
  int64_t B = xs->dim[0], S = xs->dim[1], H = xs->dim[2], heads = IV(1);
  if (H % heads)
    return lw_error(L, c->argloc[1], "attention(): heads (%lld) must divide the hidden size %lld", (long long)heads,
                    (long long)H);
  int64_t dh = H / heads;
  bool has_mask = c->arg[3].kind == V_TENSOR;
  if (has_mask) {
    const Node *m = N(L, c->arg[3].t);
    if (m->dtype == DT_I32 || m->shape.rank != 2 || m->shape.dim[0] != B || m->shape.dim[1] != S)
      return lw_error(L, c->argloc[3], "attention(): mask must be an additive f32[%lld,%lld] tensor, got %s", (long long)B,
                      (long long)S, lw_type(L, c->arg[3].t));
  } else if (strcmp(c->arg[3].s, "none") != 0) {
    return lw_error(L, c->argloc[3], "attention(): mask must be a tensor or none, got %s", c->arg[3].s);
  }
  const char *scope = lw_param_scope(L, c, 5);
  if (!scope) return ERR;
  int64_t H3 = 3 * H; /* H <= 2^40 by the numel limit, no overflow */
  int64_t wd[2] = { H3, H };
  Val w = lw_param(L, c, scope, "qkv.weight", 2, wd, "normal", 0.02, 1);
  if (!OK(w)) return ERR;
  Val qkv = matmul(L, c, TV(0), w.t, 1); /* [B,S,3H] */
  if (!OK(qkv)) return ERR;
  if (BV(2)) {
    Val b = lw_param(L, c, scope, "qkv.bias", 1, &H3, "zeros", 0.0, 0);
    if (!OK(b)) return ERR;
    qkv = op2(L, c, OP_ADD, qkv.t, b.t);
    if (!OK(qkv)) return ERR;
  }
  int64_t split[4] = { B, S, heads, 3 * dh };
  Val r = reshape(L, c, qkv.t, 4, split); /* [B,S,heads,3dh]: head h = [q_h | k_h | v_h] */
  if (!OK(r)) return ERR;
  static const int64_t to_heads[4] = { 0, 2, 1, 3 };
  ValueId qkvh[3];
  for (int i = 0; i < 3; i++) {
    Val part = slice(L, c, r.t, 3, i * dh, dh);
    if (!OK(part)) return ERR;
    Val p = permute(L, c, part.t, 4, to_heads); /* [B,heads,S,dh] */
    if (!OK(p)) return ERR;
    qkvh[i] = p.t;
  }
  Val s = matmul(L, c, qkvh[0], qkvh[1], 1); /* [B,heads,S,S] */
  if (!OK(s)) return ERR;
  s = scale(L, c, s.t, 1.0 / sqrt((double)dh));
  if (!OK(s)) return ERR;
  if (has_mask) {
    int64_t md[4] = { B, 1, 1, S };
    Val m = reshape(L, c, c->arg[3].t, 4, md);
    if (!OK(m)) return ERR;
    s = op2(L, c, OP_ADD, s.t, m.t);
    if (!OK(s)) return ERR;
  }
  Val p = op1(L, c, OP_SOFTMAX, s.t);
  if (!OK(p)) return ERR;
  p = dropout(L, c, p.t, FV(4));
  if (!OK(p)) return ERR;
  Val ctx = matmul(L, c, p.t, qkvh[2], 0); /* [B,heads,S,dh] */
  if (!OK(ctx)) return ERR;
  ctx = permute(L, c, ctx.t, 4, to_heads); /* [B,S,heads,dh] */
  if (!OK(ctx)) return ERR;
  int64_t out[3] = { B, S, H };
  return reshape(L, c, ctx.t, 3, out);
}

/* ---- tensor primitives ------------------------------------------------------
 * The building blocks of attention variants: each lowers to the IR ops the
 * builtins above use, so a model written with them is the same graph. */

/* Axis k of x (negative counts from the end) as 0..rank-1, or -1 after an error. */
static int axis_of(Lower *L, const Call *c, int xi, int ai) {
  int r = N(L, TV(xi))->shape.rank;
  int64_t a = IV(ai);
  if (a >= -r && a < r) return (int)(a < 0 ? a + r : a);
  if (r == 0)
    lw_error(L, c->argloc[ai], "%s(): axis %lld does not exist: %s is a scalar", c->b->name, (long long)a, lw_type(L, TV(xi)));
  else
    lw_error(L, c->argloc[ai], "%s(): axis %lld does not exist in %s (rank %d: axes 0..%d or -%d..-1)", c->b->name, (long long)a,
             lw_type(L, TV(xi)), r, r - 1, r);
  return -1;
}

/* a slice of a permute is emitted as the permute of a slice (of the permute's
 * input, along the axis it maps to): the form the attention builtin builds,
 * so split_heads + slice lowers to the same graph as attention(); the
 * bypassed permute is dead and dce drops it. */
static Val slice_canon(Lower *L, const Call *c, ValueId x, int axis, int64_t start, int64_t len) {
  const Node *n = N(L, x);
  if (n->op != OP_PERMUTE) return slice(L, c, x, axis, start, len);
  const Attr *pa = ir_attr(n, ATTR_PERM);
  int64_t perm[IR_MAX_RANK];
  for (uint32_t i = 0; i < pa->u.ints.n; i++) perm[i] = pa->u.ints.v[i];
  Val s = slice(L, c, n->in[0], (int)perm[axis], start, len);
  return OK(s) ? permute(L, c, s.t, n->shape.rank, perm) : ERR;
}

/* matmul(a, b, trans_a=false, trans_b=false): op(a)[...,M,K] @ op(b)[K,N] or [...,K,N] */
static Val lower_matmul(Lower *L, const Call *c) {
  if (!need_float(L, c, 0) || !need_float(L, c, 1)) return ERR;
  const Shape *as = &N(L, TV(0))->shape, *bs = &N(L, TV(1))->shape;
  const char *ta = lw_type(L, TV(0)), *tb = lw_type(L, TV(1));
  if (as->rank < 2 || bs->rank < 2)
    return lw_error(L, c->loc, "matmul(): both operands need at least two axes, got a %s and b %s", ta, tb);
  if (N(L, TV(0))->dtype != N(L, TV(1))->dtype) return lw_error(L, c->loc, "matmul(): a %s and b %s differ in dtype", ta, tb);
  bool batch_ok = bs->rank == 2 || bs->rank == as->rank;
  for (int i = 0; batch_ok && i < bs->rank - 2; i++) batch_ok = as->dim[i] == bs->dim[i];
  if (!batch_ok)
    return lw_error(L, c->loc, "matmul(): batch dimensions differ: a %s, b %s (b must be a matrix or have a's leading axes)", ta,
                    tb);
  int64_t ka = as->dim[as->rank - (BV(2) ? 2 : 1)], kb = bs->dim[bs->rank - (BV(3) ? 1 : 2)];
  if (ka != kb)
    return lw_error(L, c->loc, "matmul(): inner dimensions differ: %s %s has K=%lld, %s %s has K=%lld", BV(2) ? "a^T" : "a", ta,
                    (long long)ka, BV(3) ? "b^T" : "b", tb, (long long)kb);
  ValueId in[2] = { TV(0), TV(1) };
  Attr at[2] = { ir_attr_int(ATTR_TRANS_A, BV(2)), ir_attr_int(ATTR_TRANS_B, BV(3)) };
  return lw_op(L, c, OP_MATMUL, in, 2, at, 2);
}

/* The permutation swapping axes a and b of a rank-r tensor. */
static void swap_perm(int r, int a, int b, int64_t *perm) {
  for (int i = 0; i < r; i++) perm[i] = i;
  perm[a] = b;
  perm[b] = a;
}

/* softmax(x, axis=-1): over the last axis directly; another axis is moved
 * last and back (two permutes). */
static Val lower_softmax(Lower *L, const Call *c) {
  if (!need_float(L, c, 0)) return ERR;
  int axis = axis_of(L, c, 0, 1), r = N(L, TV(0))->shape.rank;
  if (axis < 0) return ERR;
  if (axis == r - 1) return op1(L, c, OP_SOFTMAX, TV(0));
  int64_t perm[IR_MAX_RANK];
  swap_perm(r, axis, r - 1, perm);
  Val t = permute(L, c, TV(0), r, perm);
  if (OK(t)) t = op1(L, c, OP_SOFTMAX, t.t);
  return OK(t) ? permute(L, c, t.t, r, perm) : ERR;
}

/* split_heads(x, heads): [B,S,H] -> [B,heads,S,H/heads] (reshape + permute) */
static Val lower_split_heads(Lower *L, const Call *c) {
  if (!need_rank(L, c, 0, 3, "[batch, seq, width]") || !need_positive(L, c, 1)) return ERR;
  const Shape *xs = &N(L, TV(0))->shape;
  int64_t heads = IV(1);
  if (xs->dim[2] % heads)
    return lw_error(L, c->argloc[1], "split_heads(): heads (%lld) must divide the width %lld of %s", (long long)heads,
                    (long long)xs->dim[2], lw_type(L, TV(0)));
  int64_t d[4] = { xs->dim[0], xs->dim[1], heads, xs->dim[2] / heads };
  static const int64_t to_heads[4] = { 0, 2, 1, 3 };
  Val r = reshape(L, c, TV(0), 4, d);
  return OK(r) ? permute(L, c, r.t, 4, to_heads) : ERR;
}

/* merge_heads(x): [B,heads,S,dh] -> [B,S,heads*dh] (permute + reshape) */
static Val lower_merge_heads(Lower *L, const Call *c) {
  if (!need_rank(L, c, 0, 4, "[batch, heads, seq, head_dim]")) return ERR;
  const Shape *xs = &N(L, TV(0))->shape;
  int64_t d[3] = { xs->dim[0], xs->dim[2], xs->dim[1] * xs->dim[3] };
  static const int64_t to_seq[4] = { 0, 2, 1, 3 };
  Val p = permute(L, c, TV(0), 4, to_seq);
  return OK(p) ? reshape(L, c, p.t, 3, d) : ERR;
}

/* reshape(x, [d0, d1, ...]): one entry may be -1 (inferred) */
static Val lower_reshape(Lower *L, const Call *c) {
  const Val *l = &c->arg[1];
  int64_t have = ir_shape_numel(&N(L, TV(0))->shape), d[IR_MAX_RANK], known = 1;
  int infer = -1;
  if (l->n > IR_MAX_RANK) return lw_error(L, c->argloc[1], "reshape(): %d axes exceed the rank limit %d", l->n, IR_MAX_RANK);
  for (int i = 0; i < l->n; i++) {
    d[i] = l->items[i].i;
    if (d[i] == -1 && infer < 0) {
      infer = i;
      continue;
    }
    if (d[i] < 1 || __builtin_mul_overflow(known, d[i], &known))
      return lw_error(L, c->argloc[1], "reshape(): dimension %d is %lld (each must be >= 1, or one -1)", i, (long long)d[i]);
  }
  if (infer >= 0) d[infer] = known && have % known == 0 ? have / known : 0;
  int64_t want = known * (infer >= 0 ? d[infer] : 1);
  if (want != have || (infer >= 0 && d[infer] < 1)) {
    char buf[160] = "";
    int n = 0;
    for (int i = 0; i < l->n && n >= 0 && (size_t)n < sizeof buf; i++)
      n += snprintf(buf + n, sizeof buf - (size_t)n, "%s%lld", i ? "," : "", (long long)l->items[i].i);
    return lw_error(L, c->argloc[1], "reshape(): [%s] does not hold the %lld elements of %s", buf, (long long)have,
                    lw_type(L, TV(0)));
  }
  return reshape(L, c, TV(0), l->n, d);
}

/* transpose(x, a=-2, b=-1): swaps two axes */
static Val lower_transpose(Lower *L, const Call *c) {
  int a = axis_of(L, c, 0, 1), b = a < 0 ? -1 : axis_of(L, c, 0, 2), r = N(L, TV(0))->shape.rank;
  if (a < 0 || b < 0) return ERR;
  int64_t perm[IR_MAX_RANK];
  swap_perm(r, a, b, perm);
  return permute(L, c, TV(0), r, perm);
}

/* permute(x, [p0, p1, ...]): output axis i is input axis p_i */
static Val lower_permute(Lower *L, const Call *c) {
  const Val *l = &c->arg[1];
  int r = N(L, TV(0))->shape.rank;
  bool seen[IR_MAX_RANK] = { false }, ok = l->n == r;
  int64_t perm[IR_MAX_RANK];
  for (int i = 0; ok && i < r; i++) {
    perm[i] = l->items[i].i;
    ok = perm[i] >= 0 && perm[i] < r && !seen[perm[i]];
    if (ok) seen[perm[i]] = true;
  }
  if (!ok)
    return lw_error(L, c->argloc[1], "permute(): the list must be a permutation of 0..%d (the axes of %s)", r - 1,
                    lw_type(L, TV(0)));
  return permute(L, c, TV(0), r, perm);
}

/* slice(x, axis, start, len) */
static Val lower_slice(Lower *L, const Call *c) {
  int axis = axis_of(L, c, 0, 1);
  if (axis < 0) return ERR;
  int64_t dim = N(L, TV(0))->shape.dim[axis], start = IV(2), len = IV(3);
  if (start < 0 || len < 1 || start > dim - len)
    return lw_error(L, c->argloc[2], "slice(): [%lld, %lld + %lld) is not inside axis %d of %s (size %lld)", (long long)start,
                    (long long)start, (long long)len, axis, lw_type(L, TV(0)), (long long)dim);
  return slice_canon(L, c, TV(0), axis, start, len);
}

/* concat([a, b, ...], axis=-1): the IR op joins up to 4, longer lists chain */
static Val lower_concat(Lower *L, const Call *c) {
  const Val *l = &c->arg[0];
  if (l->n < 2) return lw_error(L, c->argloc[0], "concat(): needs at least two tensors, got %d", l->n);
  ValueId x0 = l->items[0].t;
  const Node *n0 = N(L, x0);
  int r = n0->shape.rank;
  int64_t a = IV(1);
  if (r == 0 || a < -r || a >= r)
    return lw_error(L, c->argloc[1], "concat(): axis %lld does not exist in %s (rank %d)", (long long)a, lw_type(L, x0), r);
  int axis = (int)(a < 0 ? a + r : a);
  for (int i = 1; i < l->n; i++) {
    const Node *ni = N(L, l->items[i].t);
    bool ok = ni->dtype == n0->dtype && ni->shape.rank == r;
    for (int k = 0; ok && k < r; k++) ok = k == axis || ni->shape.dim[k] == n0->shape.dim[k];
    if (!ok)
      return lw_error(L, c->argloc[0], "concat(): %s and %s differ off axis %d", lw_type(L, x0), lw_type(L, l->items[i].t), axis);
  }
  Attr at = ir_attr_int(ATTR_AXIS, axis);
  ValueId acc = IR_NONE;
  for (int i = 0; i < l->n;) {
    ValueId in[4];
    int k = 0;
    if (acc != IR_NONE) in[k++] = acc;
    while (k < 4 && i < l->n) in[k++] = l->items[i++].t; /* k >= 2: n >= 2, and acc joins the rest */
    Val v = lw_op(L, c, OP_CONCAT, in, k, &at, 1);
    if (!OK(v)) return ERR;
    acc = v.t;
  }
  return (Val){ .kind = V_TENSOR, .t = acc };
}

/* exp, sqrt, rsqrt, sigmoid, silu, sin, cos: elementwise on a tensor; on a
 * number they fold at compile time (scale factors like 1 / sqrt(head_dim)). */
static Val unary_fn(Lower *L, const Call *c, OpKind op, double (*f)(double)) {
  if (c->arg[0].kind != V_TENSOR) {
    double x = FV(0), y = f(x);
    if (!isfinite(y)) return lw_error(L, c->argloc[0], "%s(%g) is not a finite number", c->b->name, x);
    return (Val){ .kind = V_FLOAT, .f = y };
  }
  return need_float(L, c, 0) ? op1(L, c, op, TV(0)) : ERR;
}
static double d_rsqrt(double x) { return 1.0 / sqrt(x); }
static double d_sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }
static double d_silu(double x) { return x / (1.0 + exp(-x)); }
static Val lower_exp(Lower *L, const Call *c) { return unary_fn(L, c, OP_EXP, exp); }
static Val lower_sqrt(Lower *L, const Call *c) { return unary_fn(L, c, OP_SQRT, sqrt); }
static Val lower_rsqrt(Lower *L, const Call *c) { return unary_fn(L, c, OP_RSQRT, d_rsqrt); }
static Val lower_sigmoid(Lower *L, const Call *c) { return unary_fn(L, c, OP_SIGMOID, d_sigmoid); }
static Val lower_silu(Lower *L, const Call *c) { return unary_fn(L, c, OP_SILU, d_silu); }
static Val lower_sin(Lower *L, const Call *c) { return unary_fn(L, c, OP_SIN, sin); }
static Val lower_cos(Lower *L, const Call *c) { return unary_fn(L, c, OP_COS, cos); }

/* mean(x, axis=-1, keepdim=false), sum(...) = len * mean */
static Val reduce(Lower *L, const Call *c, bool sum) {
  if (!need_float(L, c, 0)) return ERR;
  int axis = axis_of(L, c, 0, 1);
  if (axis < 0) return ERR;
  Shape keep = N(L, TV(0))->shape;
  int64_t len = keep.dim[axis];
  keep.dim[axis] = 1;
  Attr at = ir_attr_int(ATTR_AXIS, axis);
  Val m = lw_op(L, c, OP_MEAN, &TV(0), 1, &at, 1);
  if (OK(m) && sum) m = scale(L, c, m.t, (double)len);
  if (!OK(m) || !BV(2)) return m;
  return reshape(L, c, m.t, keep.rank, keep.dim);
}
static Val lower_mean(Lower *L, const Call *c) { return reduce(L, c, false); }
static Val lower_sum(Lower *L, const Call *c) { return reduce(L, c, true); }

/* arange(n): f32[n] = 0, 1, ..., n-1 */
static Val lower_arange(Lower *L, const Call *c) {
  if (!need_positive(L, c, 0)) return ERR;
  return lw_source(L, c, OP_ARANGE, 1, &IV(0));
}

/* full(shape, value): a constant tensor (a broadcast scalar fill) */
static Val lower_full(Lower *L, const Call *c) {
  const Val *l = &c->arg[0];
  if (l->n > IR_MAX_RANK) return lw_error(L, c->argloc[0], "full(): %d axes exceed the rank limit %d", l->n, IR_MAX_RANK);
  int64_t d[IR_MAX_RANK];
  for (int i = 0; i < l->n; i++)
    if ((d[i] = l->items[i].i) < 1)
      return lw_error(L, c->argloc[0], "full(): dimension %d is %lld (must be >= 1)", i, (long long)d[i]);
  Val k = lw_const(L, c->loc, DT_F32, FV(1));
  if (!OK(k) || l->n == 0) return k;
  Attr at = ir_attr_ints(ATTR_SHAPE, d, (uint32_t)l->n);
  return lw_op(L, c, OP_BROADCAST_TO, &k.t, 1, &at, 1);
}

/* param(shape, init="normal", std=0.02, value=0.0, decay=true, name="param"):
 * a trainable f32 tensor named exactly <prefix><name> */
static Val lower_param(Lower *L, const Call *c) {
  const Val *l = &c->arg[0];
  const char *init = SV(1);
  if (strcmp(init, "normal") && strcmp(init, "zeros") && strcmp(init, "ones") && strcmp(init, "const"))
    return lw_error(L, c->argloc[1], "param(): init must be one of normal, zeros, ones, const; got \"%s\"", init);
  if (c->given[3] && strcmp(init, "const")) return lw_error(L, c->argloc[3], "param(): value= is only used with init=\"const\"");
  if (c->given[2] && strcmp(init, "normal")) return lw_error(L, c->argloc[2], "param(): std= is only used with init=\"normal\"");
  if (!(FV(2) > 0.0)) return lw_error(L, c->argloc[2], "param(): std must be positive, got %g", FV(2));
  if (l->n > IR_MAX_RANK) return lw_error(L, c->argloc[0], "param(): %d axes exceed the rank limit %d", l->n, IR_MAX_RANK);
  int64_t d[IR_MAX_RANK];
  for (int i = 0; i < l->n; i++) d[i] = l->items[i].i;
  const char *scope = lw_param_scope(L, c, 5);
  if (!scope) return ERR;
  return lw_param(L, c, scope, NULL, l->n, d, init, !strcmp(init, "normal") ? FV(2) : FV(3), BV(4));
}

/* rotary(x, base=10000): rotary position embedding of x[..., S, D] (RoFormer,
 * the GPT-NeoX half-split form), a composite of the primitives above:
 *   inv = exp(arange(D/2) * (-2 ln(base) / D))                 [D/2]
 *   ang = reshape(arange(S), [S, 1]) * inv                      [S, D/2]
 *   cos = concat([cos(ang), cos(ang)]), sin likewise           [S, D]
 *   out = x * cos + concat([-x2, x1]) * sin,  x1, x2 the halves of x's last axis */
static Val lower_rotary(Lower *L, const Call *c) {
  if (!need_float(L, c, 0)) return ERR;
  const Node *xn = N(L, TV(0));
  int r = xn->shape.rank;
  if (r < 2) return lw_error(L, c->argloc[0], "rotary(): 'x' must be [..., seq, dim], got %s", lw_type(L, TV(0)));
  int64_t S = xn->shape.dim[r - 2], D = xn->shape.dim[r - 1], half = D / 2;
  if (D % 2) return lw_error(L, c->argloc[0], "rotary(): the last axis of %s must be even", lw_type(L, TV(0)));
  if (!(FV(1) > 1.0)) return lw_error(L, c->argloc[1], "rotary(): base must be > 1, got %g", FV(1));
  DType dt = xn->dtype;
  Val pos = lw_source(L, c, OP_ARANGE, 1, &S), idx = lw_source(L, c, OP_ARANGE, 1, &half);
  if (!OK(pos) || !OK(idx)) return ERR;
  Val inv = scale(L, c, idx.t, -2.0 * log(FV(1)) / (double)D);
  if (OK(inv)) inv = op1(L, c, OP_EXP, inv.t);
  int64_t col[2] = { S, 1 };
  Val p2 = reshape(L, c, pos.t, 2, col);
  if (!OK(inv) || !OK(p2)) return ERR;
  Val ang = op2(L, c, OP_MUL, p2.t, inv.t);
  if (!OK(ang)) return ERR;
  Attr last = ir_attr_int(ATTR_AXIS, r - 1), ax1 = ir_attr_int(ATTR_AXIS, 1);
  ValueId tab[2];
  for (int k = 0; k < 2; k++) {
    Val t = op1(L, c, k ? OP_SIN : OP_COS, ang.t);
    if (!OK(t)) return ERR;
    ValueId in[2] = { t.t, t.t };
    Val full = lw_op(L, c, OP_CONCAT, in, 2, &ax1, 1);
    if (OK(full) && dt != DT_F32) {
      Attr to = ir_attr_str(ATTR_TO, ir_dtype_name(dt));
      full = lw_op(L, c, OP_CAST, &full.t, 1, &to, 1);
    }
    if (!OK(full)) return ERR;
    tab[k] = full.t;
  }
  Val x1 = slice(L, c, TV(0), r - 1, 0, half), x2 = slice(L, c, TV(0), r - 1, half, half);
  if (!OK(x1) || !OK(x2)) return ERR;
  Val nx2 = scale(L, c, x2.t, -1.0);
  if (!OK(nx2)) return ERR;
  ValueId rin[2] = { nx2.t, x1.t };
  Val rot = lw_op(L, c, OP_CONCAT, rin, 2, &last, 1);
  if (!OK(rot)) return ERR;
  Val a = op2(L, c, OP_MUL, TV(0), tab[0]), b = op2(L, c, OP_MUL, rot.t, tab[1]);
  return OK(a) && OK(b) ? op2(L, c, OP_ADD, a.t, b.t) : ERR;
}

static bool check_count(Lower *L, const Call *c, int ti, int ci) {
  if (!need_i32(L, c, ti) || !need_rank(L, c, ti, 2, "[batch, seq]") || !need_positive(L, c, ci)) return false;
  int64_t S = N(L, TV(ti))->shape.dim[1];
  if (IV(ci) <= S) return true;
  lw_error(L, c->argloc[ci], "%s(): count %lld exceeds the sequence length %lld", c->b->name, (long long)IV(ci), (long long)S);
  return false;
}

/* masked_only(x, targets, count): rows of x[B,S,H] at prediction positions -> [B*count,H] */
static Val lower_masked_only(Lower *L, const Call *c) {
  if (!need_rank(L, c, 0, 3, "[batch, seq, hidden]") || !check_count(L, c, 1, 2)) return ERR;
  Attr at = ir_attr_int(ATTR_SLOTS, IV(2));
  ValueId in[2] = { TV(0), TV(1) };
  return lw_op(L, c, OP_MASKED_ROWS, in, 2, &at, 1);
}

/* masked_targets(targets, count): i32[B*count], in the same order as masked_only */
static Val lower_masked_targets(Lower *L, const Call *c) {
  if (!check_count(L, c, 0, 1)) return ERR;
  Attr at = ir_attr_int(ATTR_SLOTS, IV(1));
  return lw_op(L, c, OP_MASKED_TARGETS, &TV(0), 1, &at, 1);
}

/* decoder(x, vocab, tie="", bias=false, name="decoder"): x @ W^T (+ b), W [vocab,H] */
static Val lower_decoder(Lower *L, const Call *c) {
  if (!need_float(L, c, 0) || !need_positive(L, c, 1)) return ERR;
  if (N(L, TV(0))->shape.rank < 1)
    return lw_error(L, c->argloc[0], "decoder(): 'x' must have at least one axis, got %s", lw_type(L, TV(0)));
  int64_t V = IV(1), H = last_dim(L, TV(0));
  ValueId w;
  const char *scope = NULL;
  if (SV(2)[0]) {
    const char *full = arena_printf(lw_graph(L)->arena, "%s.weight", SV(2));
    w = lw_find_param(L, full);
    if (w == IR_NONE)
      return lw_error(L, c->argloc[2], "decoder(): tie=\"%s\" but no parameter '%s' is defined (tie names an earlier embed())",
                      SV(2), full);
    const Shape *ws = &N(L, w)->shape;
    if (ws->rank != 2 || ws->dim[0] != V || ws->dim[1] != H)
      return lw_error(L, c->argloc[2], "decoder(): tied parameter '%s' is %s, but the decoder needs f32[%lld,%lld]", full,
                      lw_type(L, w), (long long)V, (long long)H);
  } else {
    scope = lw_param_scope(L, c, 4);
    if (!scope) return ERR;
    int64_t d[2] = { V, H };
    Val wv = lw_param(L, c, scope, "weight", 2, d, "normal", 0.02, 1);
    if (!OK(wv)) return ERR;
    w = wv.t;
  }
  Val y = matmul(L, c, TV(0), w, 1);
  if (!OK(y) || !BV(3)) return y;
  if (!scope && !(scope = lw_param_scope(L, c, 4))) return ERR;
  Val b = lw_param(L, c, scope, "bias", 1, &V, "zeros", 0.0, 0);
  return OK(b) ? op2(L, c, OP_ADD, y.t, b.t) : ERR;
}

/* cross_entropy(logits, targets, ignore=-100): mean over non-ignored targets.
 * logits [...,V] with targets [...] are flattened to [N,V] and [N]. */
static Val lower_cross_entropy(Lower *L, const Call *c) {
  if (!need_float(L, c, 0) || !need_i32(L, c, 1)) return ERR;
  const Node *lg = N(L, TV(0)), *tg = N(L, TV(1));
  if (lg->shape.rank < 2)
    return lw_error(L, c->argloc[0], "cross_entropy(): logits must be [N, classes], got %s", lw_type(L, TV(0)));
  int64_t V = lg->shape.dim[lg->shape.rank - 1];
  int64_t rows = ir_shape_numel(&lg->shape) / V;
  if (ir_shape_numel(&tg->shape) != rows || tg->shape.rank != lg->shape.rank - 1)
    return lw_error(L, c->argloc[1], "cross_entropy(): targets %s do not match logits %s (need one target per row)",
                    lw_type(L, TV(1)), lw_type(L, TV(0)));
  ValueId logits = TV(0), targets = TV(1);
  if (lg->shape.rank > 2) {
    int64_t d2[2] = { rows, V };
    Val r = reshape(L, c, logits, 2, d2);
    if (!OK(r)) return ERR;
    logits = r.t;
    Val t = reshape(L, c, targets, 1, &rows);
    if (!OK(t)) return ERR;
    targets = t.t;
  }
  Attr at = ir_attr_int(ATTR_IGNORE, IV(2));
  ValueId in[2] = { logits, targets };
  return lw_op(L, c, OP_CROSS_ENTROPY, in, 2, &at, 1);
}

/* mean_pool(x): mean over the sequence axis of [B,S,H] -> [B,H] */
static Val lower_mean_pool(Lower *L, const Call *c) {
  if (!need_float(L, c, 0) || !need_rank(L, c, 0, 3, "[batch, seq, hidden]")) return ERR;
  Attr at = ir_attr_int(ATTR_AXIS, 1);
  return lw_op(L, c, OP_MEAN, &TV(0), 1, &at, 1);
}

/* first_token(x): x[:, 0, :] of [B,S,H] -> [B,H] */
static Val lower_first_token(Lower *L, const Call *c) {
  if (!need_rank(L, c, 0, 3, "[batch, seq, hidden]")) return ERR;
  const Shape *xs = &N(L, TV(0))->shape;
  int64_t d[2] = { xs->dim[0], xs->dim[2] };
  Val s = slice(L, c, TV(0), 1, 0, 1);
  return OK(s) ? reshape(L, c, s.t, 2, d) : ERR;
}

#define REQ(n, k)     \
  {                   \
    n, k, true, { 0 } \
  }
#define OPT_INT(n, v)                           \
  {                                             \
    n, PK_INT, false, { .kind = V_INT, .i = v } \
  }
#define OPT_FLOAT(n, v)                             \
  {                                                 \
    n, PK_FLOAT, false, { .kind = V_FLOAT, .f = v } \
  }
#define OPT_BOOL(n, v)                            \
  {                                               \
    n, PK_BOOL, false, { .kind = V_BOOL, .i = v } \
  }
#define OPT_STR(n, v)                           \
  {                                             \
    n, PK_STR, false, { .kind = V_STR, .s = v } \
  }
#define OPT_ACT(n, v)                           \
  {                                             \
    n, PK_ACT, false, { .kind = V_ACT, .s = v } \
  }
#define OPT_MASK(n)                                   \
  {                                                   \
    n, PK_MASK, false, { .kind = V_ACT, .s = "none" } \
  }
#define UNARY(n, fn) \
  { n, 1, { REQ("x", PK_NUM_OR_TENSOR) }, fn }

static const Builtin builtins[] = {
  { "embed", 4, { REQ("ids", PK_TENSOR), REQ("vocab", PK_INT), REQ("dim", PK_INT), OPT_STR("name", "embedding") }, lower_embed },
  { "sinusoidal",
    4,
    { REQ("seq", PK_INT), REQ("dim", PK_INT), OPT_BOOL("scaled", 0), OPT_STR("name", "pos") },
    lower_sinusoidal },
  { "learned_positions", 3, { REQ("seq", PK_INT), REQ("dim", PK_INT), OPT_STR("name", "pos") }, lower_learned_positions },
  { "linear", 4, { REQ("x", PK_TENSOR), REQ("out", PK_INT), OPT_BOOL("bias", 1), OPT_STR("name", "linear") }, lower_linear },
  { "layernorm",
    5,
    { REQ("x", PK_TENSOR), OPT_FLOAT("eps", 1e-5), OPT_BOOL("affine", 1), OPT_BOOL("bias", 1), OPT_STR("name", "norm") },
    lower_layernorm },
  { "rmsnorm",
    4,
    { REQ("x", PK_TENSOR), OPT_FLOAT("eps", 1e-6), OPT_BOOL("affine", 1), OPT_STR("name", "norm") },
    lower_rmsnorm },
  { "gelu", 1, { REQ("x", PK_TENSOR) }, lower_gelu },
  { "relu", 1, { REQ("x", PK_TENSOR) }, lower_relu },
  { "tanh", 1, { REQ("x", PK_TENSOR) }, lower_tanh },
  { "glu", 2, { REQ("x", PK_TENSOR), OPT_ACT("act", "gelu") }, lower_glu },
  { "dropout", 2, { REQ("x", PK_TENSOR), REQ("p", PK_FLOAT) }, lower_dropout },
  { "attention",
    6,
    { REQ("x", PK_TENSOR), REQ("heads", PK_INT), OPT_BOOL("bias", 0), OPT_MASK("mask"), OPT_FLOAT("dropout", 0.0),
      OPT_STR("name", "attn") },
    lower_attention },
  { "masked_only", 3, { REQ("x", PK_TENSOR), REQ("targets", PK_TENSOR), REQ("count", PK_INT) }, lower_masked_only },
  { "masked_targets", 2, { REQ("targets", PK_TENSOR), REQ("count", PK_INT) }, lower_masked_targets },
  { "decoder",
    5,
    { REQ("x", PK_TENSOR), REQ("vocab", PK_INT), OPT_STR("tie", ""), OPT_BOOL("bias", 0), OPT_STR("name", "decoder") },
    lower_decoder },
  { "cross_entropy", 3, { REQ("logits", PK_TENSOR), REQ("targets", PK_TENSOR), OPT_INT("ignore", -100) }, lower_cross_entropy },
  { "mean_pool", 1, { REQ("x", PK_TENSOR) }, lower_mean_pool },
  { "first_token", 1, { REQ("x", PK_TENSOR) }, lower_first_token },
  /* tensor primitives */
  { "matmul", 4, { REQ("a", PK_TENSOR), REQ("b", PK_TENSOR), OPT_BOOL("trans_a", 0), OPT_BOOL("trans_b", 0) }, lower_matmul },
  { "softmax", 2, { REQ("x", PK_TENSOR), OPT_INT("axis", -1) }, lower_softmax },
  { "split_heads", 2, { REQ("x", PK_TENSOR), REQ("heads", PK_INT) }, lower_split_heads },
  { "merge_heads", 1, { REQ("x", PK_TENSOR) }, lower_merge_heads },
  { "reshape", 2, { REQ("x", PK_TENSOR), REQ("shape", PK_INTS) }, lower_reshape },
  { "transpose", 3, { REQ("x", PK_TENSOR), OPT_INT("a", -2), OPT_INT("b", -1) }, lower_transpose },
  { "permute", 2, { REQ("x", PK_TENSOR), REQ("perm", PK_INTS) }, lower_permute },
  { "slice", 4, { REQ("x", PK_TENSOR), REQ("axis", PK_INT), REQ("start", PK_INT), REQ("len", PK_INT) }, lower_slice },
  { "concat", 2, { REQ("xs", PK_TENSORS), OPT_INT("axis", -1) }, lower_concat },
  UNARY("exp", lower_exp),
  UNARY("sqrt", lower_sqrt),
  UNARY("rsqrt", lower_rsqrt),
  UNARY("sigmoid", lower_sigmoid),
  UNARY("silu", lower_silu),
  UNARY("sin", lower_sin),
  UNARY("cos", lower_cos),
  { "mean", 3, { REQ("x", PK_TENSOR), OPT_INT("axis", -1), OPT_BOOL("keepdim", 0) }, lower_mean },
  { "sum", 3, { REQ("x", PK_TENSOR), OPT_INT("axis", -1), OPT_BOOL("keepdim", 0) }, lower_sum },
  { "arange", 1, { REQ("n", PK_INT) }, lower_arange },
  { "full", 2, { REQ("shape", PK_INTS), REQ("value", PK_FLOAT) }, lower_full },
  { "param",
    6,
    { REQ("shape", PK_INTS), OPT_STR("init", "normal"), OPT_FLOAT("std", 0.02), OPT_FLOAT("value", 0.0), OPT_BOOL("decay", 1),
      OPT_STR("name", "param") },
    lower_param },
  { "rotary", 2, { REQ("x", PK_TENSOR), OPT_FLOAT("base", 10000.0) }, lower_rotary },
};

int fe_builtin_count(void) { return (int)(sizeof builtins / sizeof builtins[0]); }
const Builtin *fe_builtin_at(int i) { return &builtins[i]; }

const Builtin *fe_builtin_find(const char *name) {
  for (int i = 0; i < fe_builtin_count(); i++)
    if (strcmp(builtins[i].name, name) == 0) return &builtins[i];
  return NULL;
}
