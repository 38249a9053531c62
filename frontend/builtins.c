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
  lw_error(L, c->argloc[i], "%s(): '%s' must be a rank-%d tensor %s, got %s", c->b->name, c->b->p[i].name, rank,
           layout, lw_type(L, TV(i)));
  return false;
}

static bool need_float(Lower *L, const Call *c, int i) {
  if (N(L, TV(i))->dtype != DT_I32) return true;
  lw_error(L, c->argloc[i], "%s(): '%s' must be a floating-point tensor, got %s", c->b->name, c->b->p[i].name,
           lw_type(L, TV(i)));
  return false;
}

static bool need_i32(Lower *L, const Call *c, int i) {
  if (N(L, TV(i))->dtype == DT_I32) return true;
  lw_error(L, c->argloc[i], "%s(): '%s' must be an i32 tensor, got %s", c->b->name, c->b->p[i].name,
           lw_type(L, TV(i)));
  return false;
}

static bool need_positive(Lower *L, const Call *c, int i) {
  if (IV(i) >= 1) return true;
  lw_error(L, c->argloc[i], "%s(): '%s' must be positive, got %lld", c->b->name, c->b->p[i].name,
           (long long)IV(i));
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
  ValueId in[2] = {a, b};
  return lw_op(L, c, op, in, 2, NULL, 0);
}
static Val matmul(Lower *L, const Call *c, ValueId a, ValueId b, int trans_b) {
  ValueId in[2] = {a, b};
  Attr at[2] = {ir_attr_int(ATTR_TRANS_A, 0), ir_attr_int(ATTR_TRANS_B, trans_b)};
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
  Attr at[3] = {ir_attr_int(ATTR_AXIS, axis), ir_attr_int(ATTR_START, start), ir_attr_int(ATTR_LEN, len)};
  return lw_op(L, c, OP_SLICE, &x, 1, at, 3);
}
static Val scale(Lower *L, const Call *c, ValueId x, double alpha) {
  Attr at = ir_attr_float(ATTR_ALPHA, alpha);
  return lw_op(L, c, OP_SCALE, &x, 1, &at, 1);
}
static Val dropout(Lower *L, const Call *c, ValueId x, double p) {
  if (p == 0.0) return (Val){.kind = V_TENSOR, .t = x};
  /* key: a mask stream unique to this dropout site (its node index), so the
   * backward dropout can draw the very same mask */
  Attr at[2] = {ir_attr_float(ATTR_P, p), ir_attr_int(ATTR_KEY, (int64_t)lw_graph(L)->n)};
  return lw_op(L, c, OP_DROPOUT, &x, 1, at, 2);
}

#define OK(v) ((v).kind == V_TENSOR)
static const Val ERR = {.kind = V_ERR};

/* embed(ids, vocab, dim, name="embedding"): {name}.weight f32[vocab,dim] ~ N(0,0.02) */
static Val lower_embed(Lower *L, const Call *c) {
  if (!need_i32(L, c, 0) || !need_positive(L, c, 1) || !need_positive(L, c, 2)) return ERR;
  const char *scope = lw_param_scope(L, c, 3);
  if (!scope) return ERR;
  int64_t d[2] = {IV(1), IV(2)};
  Val w = lw_param(L, c, scope, "weight", 2, d, "normal", 0.02, 1);
  if (!OK(w)) return ERR;
  return op2(L, c, OP_EMBEDDING, w.t, TV(0));
}

/* sinusoidal(seq, dim, scaled=false, name="pos"): f32[seq,dim] table (* {name}.scale) */
static Val lower_sinusoidal(Lower *L, const Call *c) {
  if (!need_positive(L, c, 0) || !need_positive(L, c, 1)) return ERR;
  if (IV(1) % 2) return lw_error(L, c->argloc[1], "sinusoidal(): dim must be even, got %lld", (long long)IV(1));
  int64_t d[2] = {IV(0), IV(1)};
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
  int64_t d[2] = {IV(0), IV(1)};
  return lw_param(L, c, scope, "weight", 2, d, "normal", 0.02, 1);
}

/* linear(x, out, bias=true, name="linear"): x @ W^T (+ b), W f32[out,in] */
static Val lower_linear(Lower *L, const Call *c) {
  if (!need_float(L, c, 0) || !need_positive(L, c, 1)) return ERR;
  if (N(L, TV(0))->shape.rank < 1)
    return lw_error(L, c->argloc[0], "linear(): 'x' must have at least one axis, got %s", lw_type(L, TV(0)));
  const char *scope = lw_param_scope(L, c, 3);
  if (!scope) return ERR;
  int64_t d[2] = {IV(1), last_dim(L, TV(0))};
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
  ValueId in[3] = {TV(0), IR_NONE, IR_NONE};
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
    return lw_error(L, c->argloc[0], "glu(): the last axis of 'x' must be even (it is split in half), got %s",
                    lw_type(L, TV(0)));
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
  if (!need_float(L, c, 0) || !need_rank(L, c, 0, 3, "[batch, seq, hidden]") || !need_positive(L, c, 1) ||
      !need_prob(L, c, 4))
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
      return lw_error(L, c->argloc[3], "attention(): mask must be an additive f32[%lld,%lld] tensor, got %s",
                      (long long)B, (long long)S, lw_type(L, c->arg[3].t));
  } else if (strcmp(c->arg[3].s, "none") != 0) {
    return lw_error(L, c->argloc[3], "attention(): mask must be a tensor or none, got %s", c->arg[3].s);
  }
  const char *scope = lw_param_scope(L, c, 5);
  if (!scope) return ERR;
  int64_t H3 = 3 * H; /* H <= 2^40 by the numel limit, no overflow */
  int64_t wd[2] = {H3, H};
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
  int64_t split[4] = {B, S, heads, 3 * dh};
  Val r = reshape(L, c, qkv.t, 4, split); /* [B,S,heads,3dh]: head h = [q_h | k_h | v_h] */
  if (!OK(r)) return ERR;
  static const int64_t to_heads[4] = {0, 2, 1, 3};
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
    int64_t md[4] = {B, 1, 1, S};
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
  int64_t out[3] = {B, S, H};
  return reshape(L, c, ctx.t, 3, out);
}

static bool check_count(Lower *L, const Call *c, int ti, int ci) {
  if (!need_i32(L, c, ti) || !need_rank(L, c, ti, 2, "[batch, seq]") || !need_positive(L, c, ci)) return false;
  int64_t S = N(L, TV(ti))->shape.dim[1];
  if (IV(ci) <= S) return true;
  lw_error(L, c->argloc[ci], "%s(): count %lld exceeds the sequence length %lld", c->b->name, (long long)IV(ci),
           (long long)S);
  return false;
}

/* masked_only(x, targets, count): rows of x[B,S,H] at prediction positions -> [B*count,H] */
static Val lower_masked_only(Lower *L, const Call *c) {
  if (!need_rank(L, c, 0, 3, "[batch, seq, hidden]") || !check_count(L, c, 1, 2)) return ERR;
  Attr at = ir_attr_int(ATTR_SLOTS, IV(2));
  ValueId in[2] = {TV(0), TV(1)};
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
      return lw_error(L, c->argloc[2], "decoder(): tied parameter '%s' is %s, but the decoder needs f32[%lld,%lld]",
                      full, lw_type(L, w), (long long)V, (long long)H);
  } else {
    scope = lw_param_scope(L, c, 4);
    if (!scope) return ERR;
    int64_t d[2] = {V, H};
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
    int64_t d2[2] = {rows, V};
    Val r = reshape(L, c, logits, 2, d2);
    if (!OK(r)) return ERR;
    logits = r.t;
    Val t = reshape(L, c, targets, 1, &rows);
    if (!OK(t)) return ERR;
    targets = t.t;
  }
  Attr at = ir_attr_int(ATTR_IGNORE, IV(2));
  ValueId in[2] = {logits, targets};
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
  int64_t d[2] = {xs->dim[0], xs->dim[2]};
  Val s = slice(L, c, TV(0), 1, 0, 1);
  return OK(s) ? reshape(L, c, s.t, 2, d) : ERR;
}

#define REQ(n, k) {n, k, true, {0}}
#define OPT_INT(n, v) {n, PK_INT, false, {.kind = V_INT, .i = v}}
#define OPT_FLOAT(n, v) {n, PK_FLOAT, false, {.kind = V_FLOAT, .f = v}}
#define OPT_BOOL(n, v) {n, PK_BOOL, false, {.kind = V_BOOL, .i = v}}
#define OPT_STR(n, v) {n, PK_STR, false, {.kind = V_STR, .s = v}}
#define OPT_ACT(n, v) {n, PK_ACT, false, {.kind = V_ACT, .s = v}}
#define OPT_MASK(n) {n, PK_MASK, false, {.kind = V_ACT, .s = "none"}}

static const Builtin builtins[] = {
    {"embed", 4, {REQ("ids", PK_TENSOR), REQ("vocab", PK_INT), REQ("dim", PK_INT), OPT_STR("name", "embedding")},
     lower_embed},
    {"sinusoidal", 4, {REQ("seq", PK_INT), REQ("dim", PK_INT), OPT_BOOL("scaled", 0), OPT_STR("name", "pos")},
     lower_sinusoidal},
    {"learned_positions", 3, {REQ("seq", PK_INT), REQ("dim", PK_INT), OPT_STR("name", "pos")},
     lower_learned_positions},
    {"linear", 4, {REQ("x", PK_TENSOR), REQ("out", PK_INT), OPT_BOOL("bias", 1), OPT_STR("name", "linear")},
     lower_linear},
    {"layernorm", 5,
     {REQ("x", PK_TENSOR), OPT_FLOAT("eps", 1e-5), OPT_BOOL("affine", 1), OPT_BOOL("bias", 1), OPT_STR("name", "norm")},
     lower_layernorm},
    {"rmsnorm", 4, {REQ("x", PK_TENSOR), OPT_FLOAT("eps", 1e-6), OPT_BOOL("affine", 1), OPT_STR("name", "norm")},
     lower_rmsnorm},
    {"gelu", 1, {REQ("x", PK_TENSOR)}, lower_gelu},
    {"relu", 1, {REQ("x", PK_TENSOR)}, lower_relu},
    {"tanh", 1, {REQ("x", PK_TENSOR)}, lower_tanh},
    {"glu", 2, {REQ("x", PK_TENSOR), OPT_ACT("act", "gelu")}, lower_glu},
    {"dropout", 2, {REQ("x", PK_TENSOR), REQ("p", PK_FLOAT)}, lower_dropout},
    {"attention", 6,
     {REQ("x", PK_TENSOR), REQ("heads", PK_INT), OPT_BOOL("bias", 0), OPT_MASK("mask"), OPT_FLOAT("dropout", 0.0),
      OPT_STR("name", "attn")},
     lower_attention},
    {"masked_only", 3, {REQ("x", PK_TENSOR), REQ("targets", PK_TENSOR), REQ("count", PK_INT)}, lower_masked_only},
    {"masked_targets", 2, {REQ("targets", PK_TENSOR), REQ("count", PK_INT)}, lower_masked_targets},
    {"decoder", 5,
     {REQ("x", PK_TENSOR), REQ("vocab", PK_INT), OPT_STR("tie", ""), OPT_BOOL("bias", 0), OPT_STR("name", "decoder")},
     lower_decoder},
    {"cross_entropy", 3, {REQ("logits", PK_TENSOR), REQ("targets", PK_TENSOR), OPT_INT("ignore", -100)},
     lower_cross_entropy},
    {"mean_pool", 1, {REQ("x", PK_TENSOR)}, lower_mean_pool},
    {"first_token", 1, {REQ("x", PK_TENSOR)}, lower_first_token},
};

int fe_builtin_count(void) { return (int)(sizeof builtins / sizeof builtins[0]); }
const Builtin *fe_builtin_at(int i) { return &builtins[i]; }

const Builtin *fe_builtin_find(const char *name) {
  for (int i = 0; i < fe_builtin_count(); i++)
    if (strcmp(builtins[i].name, name) == 0) return &builtins[i];
  return NULL;
}
