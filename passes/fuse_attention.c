/* fuse_attention.c: scaled dot-product attention written in primitives (the
 * attention() builtin's lowering, or the same chain spelt out in .cram)
 * becomes one `attention` node (+ its `attention_lse` sibling); the backward
 * comes from attention's grad rule (attention_grad). docs/fusions.md, "5.
 * attention".
 *
 * Why on the FORWARD graph, before autodiff (a PASS_FORWARD row, run by
 * pass_forward_run ahead of autocast_bf16 and autodiff): the backward of the
 * unfused chain is whatever autodiff and the later passes made of it (the
 * softmax_grad, the transposed GEMMs, the pads and adds that sum dq/dk/dv back
 * into the qkv gradient), and matching that is fragile. Fused first, the
 * backward is built once by grad_attention, and it reads and writes the qkv
 * GEMM's layout directly. Before autocast, the chain has no casts in it.
 *
 * The match, from each softmax:
 *   qk = matmul(Q, K, trans_b=1)               Q [B,H,S,dh], K [B,H,S,dh]
 *   s  = scale(qk, a) ... + bias               any scales, then at most one add
 *   P  = softmax(s); [P = dropout(P, p, key)]
 *   pv = matmul(P, V)                          V [B,H,S,dh]
 * or the multi-query form (models/ablations/multi_query.cram): Q reshaped to
 * [B, H*S, dh], K and V [B,S,dh] (one k/v head). Every intermediate has one
 * consumer. Q, K and V are traced back through the views to a "bshd" source:
 * permute([0,2,1,3]) of slice(reshape(qkv), axis 3) gives the reshape (the
 * GEMM output's alias) and the slice's start; a computed [B,H,S,dh] value
 * (rotary's q and k) gets one permute to bshd; a [B,S,W] k/v slice a reshape
 * to [B,S,1,W]. The consumer chain permute([0,2,1,3]) (after the multi-query
 * reshape) is replaced by o itself, so merge_heads stays a reshape alias.
 *
 * Not fused (reported by --stats, compiled unfused): a score scale that is a
 * tensor (a learned temperature: its gradient would need the scores), a bias
 * that depends on a parameter (no gradient flows into the bias), a scale
 * after the bias, more than one bias term, head_dim > 128 (the kernels'
 * register tile), query and key lengths that differ, intermediates read
 * elsewhere.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "fuse_util.h"

#define ATTN_MAX_HEAD_DIM 128

static const int64_t to_heads[4] = { 0, 2, 1, 3 }; /* [B,S,H,dh] <-> [B,H,S,dh] */

/* How a part (q, k or v) reaches its bshd source. */
typedef enum {
  PART_SOURCE,  /* node is the [B,S,G,W] source itself */
  PART_PERMUTE, /* node is a computed [B,H,S,dh]: permute it to bshd */
  PART_RESHAPE, /* node is a [B,S,W] k/v tensor: reshape to [B,S,1,W] */
} PartHow;

typedef struct Part {
  ValueId node;
  PartHow how;
  int64_t off;
} Part;

typedef struct Site {
  ValueId qk, sm, drop, pv;
  ValueId chain[8]; /* the scale/add/cast nodes between qk and the softmax */
  int nchain;
  ValueId mid; /* multi-query: pv's reshape to [B,H,S,dh], or IR_NONE */
  ValueId out; /* the permute to [B,S,H,dh] that o replaces, or IR_NONE */
  ValueId bias;
  double alpha, p;
  int64_t key;
  bool mq;
  int64_t B, S, H, dh;
  Part part[3];
} Site;

typedef struct Ctx {
  Rewriter rw;
  bool *learned; /* per in node: depends on a parameter */
  Site *sites;
  uint32_t nsites, candidates;
  ValueId *site_at; /* per in node: index+1 of the site whose pv it is, else 0 */
  FILE *stats;      /* --stats: the report, or NULL */
  char why[160];
} Ctx;

enum { MATCHED, REFUSED, NOT_ATTENTION };

static bool is_perm(const Node *n, const int64_t *perm) {
  const Attr *a = ir_attr(n, ATTR_PERM);
  if (n->op != OP_PERMUTE || a->u.ints.n != 4) return false;
  for (int i = 0; i < 4; i++)
    if (a->u.ints.v[i] != perm[i]) return false;
  return true;
}

static int refuse(Ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int refuse(Ctx *c, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(c->why, sizeof c->why, fmt, ap);
  va_end(ap);
  return REFUSED;
}

/* Whether v is a score GEMM or reaches one through the score chain's ops. */
static bool reaches_qk(const Rewriter *rw, ValueId v, int depth) {
  const Node *n = fu_node(rw, v);
  if (n->op == OP_MATMUL) return ir_get_int(n, ATTR_TRANS_B) && !ir_get_int(n, ATTR_TRANS_A) && n->shape.rank >= 3;
  if (depth > 8 || (n->op != OP_SCALE && n->op != OP_MUL && n->op != OP_ADD && n->op != OP_CAST)) return false;
  for (int k = 0; k < n->nin; k++)
    if (reaches_qk(rw, n->in[k], depth + 1)) return true;
  return false;
}

/* [B,H,S,dh] value x as a part: permute(slice(src, axis 3)) or permute(src), else a computed value. */
static Part part4(const Rewriter *rw, ValueId x) {
  const Node *n = fu_node(rw, x);
  if (!is_perm(n, to_heads)) return (Part){ x, PART_PERMUTE, 0 };
  ValueId y = n->in[0];
  const Node *s = fu_node(rw, y);
  if (s->op == OP_SLICE && ir_get_int(s, ATTR_AXIS) == 3) return (Part){ s->in[0], PART_SOURCE, ir_get_int(s, ATTR_START) };
  return (Part){ y, PART_SOURCE, 0 };
}

/* [B,S,dh] k or v of one head: slice(kv [B,S,W], last axis) or the tensor itself, reshaped to [B,S,1,W]. */
static Part part3(const Rewriter *rw, ValueId x) {
  const Node *s = fu_node(rw, x);
  if (s->op == OP_SLICE && ir_get_int(s, ATTR_AXIS) == 2) return (Part){ s->in[0], PART_RESHAPE, ir_get_int(s, ATTR_START) };
  return (Part){ x, PART_RESHAPE, 0 };
}

/* One-consumer check of an intermediate (a graph output counts as a consumer). */
static bool single(const Rewriter *rw, ValueId v) { return rw->nuse[v] == 1 && !fu_is_output(rw, v); }

static int match(Ctx *c, ValueId sm, Site *st) {
  const Rewriter *rw = &c->rw;
  *st = (Site){ .sm = sm, .drop = IR_NONE, .mid = IR_NONE, .out = IR_NONE, .bias = IR_NONE, .alpha = 1.0 };
  /* the score chain, from the softmax back to the QK^T GEMM */
  ValueId x = fu_node(rw, sm)->in[0], outer = IR_NONE;
  if (!reaches_qk(rw, x, 0)) return NOT_ATTENTION;
  while (fu_node(rw, x)->op != OP_MATMUL) {
    const Node *n = fu_node(rw, x);
    if (!single(rw, x)) return refuse(c, "the scores (%%%u %s) are read elsewhere", x, ir_ops[n->op].name);
    if (st->nchain == (int)(sizeof st->chain / sizeof st->chain[0])) return refuse(c, "the score chain is too long");
    st->chain[st->nchain++] = x;
    if (n->op == OP_CAST) {
      x = n->in[0];
      continue;
    }
    if (n->op == OP_SCALE) { /* walking backwards: a scale seen before the add scales the bias too */
      st->alpha *= ir_get_float(n, ATTR_ALPHA);
      if (st->bias == IR_NONE) outer = x;
      x = n->in[0];
      continue;
    }
    int k = reaches_qk(rw, n->in[0], 0) ? 0 : 1;
    ValueId other = n->in[1 - k];
    if (reaches_qk(rw, other, 0)) return refuse(c, "both operands of %%%u %s are scores", x, ir_ops[n->op].name);
    if (n->op == OP_MUL) {
      if (c->learned[other]) return refuse(c, "the score scale is a learned tensor (%%%u mul)", x);
      return refuse(c, "the score scale is a tensor, not a constant (%%%u mul)", x);
    }
    if (st->bias != IR_NONE) return refuse(c, "more than one term is added to the scores (%%%u add)", x);
    if (outer != IR_NONE) return refuse(c, "the score scale (%%%u) is applied after the bias (%%%u add)", outer, x);
    if (c->learned[other]) return refuse(c, "the score bias needs a gradient: it depends on a parameter (%%%u add)", x);
    if (!ir_shape_eq(&fu_node(rw, n->in[k])->shape, &n->shape)) return refuse(c, "the bias broadcasts the scores (%%%u add)", x);
    st->bias = other;
    x = n->in[k];
  }
  st->qk = x;
  const Node *qk = fu_node(rw, x);
  if (!single(rw, x)) return refuse(c, "the scores (%%%u matmul) are read elsewhere", x);
  /* the probabilities, forward to the PV GEMM */
  ValueId u = rw->nuse[sm] == 1 && !fu_is_output(rw, sm) ? rw->users[rw->ustart[sm]] : IR_NONE;
  if (u != IR_NONE && fu_is(rw, u, OP_DROPOUT)) {
    st->drop = u;
    st->p = ir_get_float(fu_node(rw, u), ATTR_P);
    st->key = ir_get_int(fu_node(rw, u), ATTR_KEY);
    u = single(rw, u) ? rw->users[rw->ustart[u]] : IR_NONE;
  }
  if (u == IR_NONE) return refuse(c, "the attention probabilities (%%%u softmax) are read elsewhere", sm);
  const Node *pv = fu_node(rw, u);
  if (pv->op != OP_MATMUL || ir_get_int(pv, ATTR_TRANS_A) || ir_get_int(pv, ATTR_TRANS_B) ||
      pv->in[0] != (st->drop != IR_NONE ? st->drop : sm))
    return refuse(c, "the probabilities are not multiplied by the values (%%%u %s)", u, ir_ops[pv->op].name);
  st->pv = u;
  const Node *Q = fu_node(rw, qk->in[0]), *K = fu_node(rw, qk->in[1]), *V = fu_node(rw, pv->in[1]);
  int r = qk->shape.rank;
  if (r != 3 && r != 4) return refuse(c, "scores of rank %d (expected [B,heads,S,S] or multi-query [B,heads*S,S])", r);
  if (K->shape.rank != r || V->shape.rank != r) return refuse(c, "k or v is a shared matrix, not per-batch");
  st->dh = Q->shape.dim[r - 1];
  if (st->dh > ATTN_MAX_HEAD_DIM) return refuse(c, "head_dim %lld > %d", (long long)st->dh, ATTN_MAX_HEAD_DIM);
  if (V->shape.dim[r - 1] != st->dh)
    return refuse(c, "the value width %lld differs from head_dim %lld", (long long)V->shape.dim[r - 1], (long long)st->dh);
  st->B = Q->shape.dim[0];
  if (r == 4) {
    st->H = Q->shape.dim[1];
    st->S = Q->shape.dim[2];
    if (K->shape.dim[2] != st->S)
      return refuse(c, "query and key lengths differ (%lld, %lld)", (long long)st->S, (long long)K->shape.dim[2]);
    st->part[0] = part4(rw, qk->in[0]);
    st->part[1] = part4(rw, qk->in[1]);
    st->part[2] = part4(rw, pv->in[1]);
  } else {
    /* multi-query: Q = reshape([B,H,S,dh] -> [B,H*S,dh]), K and V [B,S,dh] */
    st->mq = true;
    st->S = K->shape.dim[1];
    const Shape *xs = &fu_node(rw, Q->in[0])->shape;
    if (Q->op != OP_RESHAPE || xs->rank != 4 || xs->dim[0] != st->B || xs->dim[2] != st->S || xs->dim[3] != st->dh)
      return refuse(c, "rank-3 scores whose queries are not [B,heads,S,dh] folded to [B,heads*S,dh]");
    st->H = fu_node(rw, Q->in[0])->shape.dim[1];
    st->part[0] = part4(rw, Q->in[0]);
    st->part[1] = part3(rw, qk->in[1]);
    st->part[2] = part3(rw, pv->in[1]);
  }
  if (st->bias != IR_NONE) {
    const Shape *bs = &fu_node(rw, st->bias)->shape;
    if (st->mq && bs->rank >= 2 && bs->dim[bs->rank - 2] != 1 && bs->dim[bs->rank - 2] != st->H * st->S)
      return refuse(c, "the bias does not broadcast per head");
    if (bs->rank > 4) return refuse(c, "the bias has more than 4 axes");
  }
  /* the consumer: o replaces the permute back to [B,S,H,dh] (after the multi-query reshape) */
  ValueId w = st->pv;
  if (st->mq && single(rw, w) && fu_is(rw, rw->users[rw->ustart[w]], OP_RESHAPE) &&
      fu_node(rw, rw->users[rw->ustart[w]])->shape.rank == 4)
    st->mid = w = rw->users[rw->ustart[w]];
  if (single(rw, w) && is_perm(fu_node(rw, rw->users[rw->ustart[w]]), to_heads)) st->out = rw->users[rw->ustart[w]];
  else st->mid = IR_NONE;
  return MATCHED;
}

/* The out id of a part's bshd source (emitting its permute or reshape). */
static ValueId emit_part(Ctx *c, const Site *st, const Part *p, ValueId *memo, SrcLoc loc) {
  Rewriter *rw = &c->rw;
  ValueId x = fu_get(rw, p->node);
  if (p->how == PART_SOURCE) return x;
  for (int i = 0; i < 3 && memo[2 * i] != IR_NONE; i++)
    if (memo[2 * i] == x) return memo[2 * i + 1];
  ValueId r;
  if (p->how == PART_PERMUTE) {
    Attr a = ir_attr_ints(ATTR_PERM, to_heads, 4);
    r = fu_emit(rw, OP_PERMUTE, &x, 1, &a, 1, loc);
  } else {
    const Shape *s = &rw->out->nodes[x].shape;
    int64_t d[4] = { st->B, st->S, 1, s->dim[2] };
    Attr a = ir_attr_ints(ATTR_SHAPE, d, 4);
    r = fu_emit(rw, OP_RESHAPE, &x, 1, &a, 1, loc);
  }
  for (int i = 0; i < 3; i++)
    if (memo[2 * i] == IR_NONE) {
      memo[2 * i] = x, memo[2 * i + 1] = r;
      break;
    }
  return r;
}

static void build(Ctx *c, const Site *st) {
  Rewriter *rw = &c->rw;
  SrcLoc loc = fu_node(rw, st->sm)->loc;
  ValueId memo[6] = { IR_NONE, IR_NONE, IR_NONE, IR_NONE, IR_NONE, IR_NONE }, in[4];
  for (int t = 0; t < 3; t++) in[t] = emit_part(c, st, &st->part[t], memo, loc);
  int nin = 3;
  if (st->bias != IR_NONE) {
    in[nin] = fu_get(rw, st->bias);
    const Shape *bs = &fu_node(rw, st->bias)->shape;
    if (st->mq && bs->rank >= 2) { /* [..., H*S | 1, S] -> [..., H | 1, S | 1, S] */
      Shape t = { .rank = (uint8_t)(bs->rank + 1) };
      for (int i = 0; i < bs->rank - 2; i++) t.dim[i] = bs->dim[i];
      bool per_row = bs->dim[bs->rank - 2] != 1;
      t.dim[bs->rank - 2] = per_row ? st->H : 1;
      t.dim[bs->rank - 1] = per_row ? st->S : 1;
      t.dim[bs->rank] = bs->dim[bs->rank - 1];
      Attr a = ir_attr_ints(ATTR_SHAPE, t.dim, t.rank);
      in[nin] = fu_emit(rw, OP_RESHAPE, &in[nin], 1, &a, 1, loc);
    }
    nin++;
  }
  int64_t off[3] = { st->part[0].off, st->part[1].off, st->part[2].off };
  Attr at[5] = { ir_attr_float(ATTR_ALPHA, st->alpha), ir_attr_float(ATTR_P, st->p), ir_attr_int(ATTR_KEY, st->key),
                 ir_attr_int(ATTR_HEAD_DIM, st->dh), ir_attr_ints(ATTR_OFFSETS, off, 3) };
  ValueId o = fu_emit(rw, OP_ATTENTION, in, nin, at, 5, loc);
  /* the sibling the backward reads: emitted next to o so the pipeline's CSE folds
   * grad_attention's copy into it and the partition makes them one kernel */
  (void)fu_emit(rw, OP_ATTENTION_LSE, in, nin, at, 5, loc);
  if (o == IR_NONE) return;
  if (st->out != IR_NONE) {
    rw->map[st->out] = o;
    return;
  }
  /* pv is read by something else: give it its own layout back */
  Attr a = ir_attr_ints(ATTR_PERM, to_heads, 4);
  ValueId r = fu_emit(rw, OP_PERMUTE, &o, 1, &a, 1, loc);
  if (st->mq) {
    const Shape *ps = &fu_node(rw, st->pv)->shape;
    Attr s = ir_attr_ints(ATTR_SHAPE, ps->dim, ps->rank);
    r = fu_emit(rw, OP_RESHAPE, &r, 1, &s, 1, loc);
  }
  rw->map[st->pv] = r;
}

static void print_loc(FILE *f, SrcLoc loc) {
  if (loc.file) fprintf(f, "%s:%u:%u: ", loc.file, loc.line, loc.col);
}

Graph *pass_fuse_attention(const Graph *in, PassCtx *cx) {
  Ctx c = { 0 };
  c.stats = cx->opt && cx->opt->stats ? (cx->opt->stats_out ? cx->opt->stats_out : stderr) : NULL;
  Rewriter *rw = &c.rw;
  fu_begin(rw, in, cx);
  uint32_t n = in->n ? in->n : 1;
  c.learned = ARENA_ARRAY(rw->scratch, bool, n);
  c.site_at = ARENA_ARRAY(rw->scratch, ValueId, n);
  c.sites = ARENA_ARRAY(rw->scratch, Site, n);
  for (ValueId v = 0; v < in->n; v++) {
    const Node *nd = &in->nodes[v];
    c.learned[v] = nd->op == OP_PARAM;
    for (int k = 0; k < nd->nin; k++) c.learned[v] |= c.learned[nd->in[k]];
  }
  bool enabled = cx->opt && cx->opt->fused_attention;
  const char **why = ARENA_ARRAY(rw->scratch, const char *, n); /* per softmax: why it was not fused */
  for (ValueId v = 0; v < in->n; v++) {
    if (in->nodes[v].op != OP_SOFTMAX) continue;
    Site st;
    int m = match(&c, v, &st);
    if (m == NOT_ATTENTION) continue;
    c.candidates++;
    if (m == REFUSED) {
      why[v] = arena_strdup(rw->scratch, c.why);
      continue;
    }
    if (!enabled) continue;
    /* plan: every member vanishes; o (or pv's replacement) is emitted at pv */
    rw->drop[st.qk] = rw->drop[st.sm] = true;
    for (int i = 0; i < st.nchain; i++) rw->drop[st.chain[i]] = true;
    if (st.drop != IR_NONE) rw->drop[st.drop] = true;
    if (st.out != IR_NONE) {
      rw->drop[st.out] = true;
      if (st.mid != IR_NONE) rw->drop[st.mid] = true;
      rw->drop[st.pv] = true;
    }
    c.sites[c.nsites] = st;
    c.site_at[st.pv] = ++c.nsites;
  }
  for (ValueId v = 0; v < in->n; v++) {
    if (c.site_at[v]) build(&c, &c.sites[c.site_at[v] - 1]);
    else if (!fu_done(rw, v)) fu_copy(rw, v);
  }
  if (c.stats) {
    if (enabled)
      fprintf(c.stats, "fuse_attention: %u of %u attention sites fused into attention (+ attention_lse, attention_grad)\n",
              c.nsites, c.candidates);
    else
      fprintf(c.stats, "fuse_attention: off: the target renders no fused attention ops yet (%u attention sites left unfused)\n",
              c.candidates);
    for (ValueId v = 0; v < in->n; v++)
      if (why[v]) {
        fputs("  ", c.stats);
        print_loc(c.stats, in->nodes[v].loc);
        fprintf(c.stats, "attention (%%%u softmax) not fused: %s\n", v, why[v]);
      }
  }
  return fu_end(rw);
}
