/* fuse_linear.c: merge bias-free linears that read the same input into one
 * GEMM, forward and backward (docs/fusions.md, "1. merged linears").
 *
 * Forward: k = 2..4 matmuls x @ W_i^T (same x, same flags, W_i rank-2 params,
 * no bias add after any of them) become one GEMM over the weights joined at
 * run time, then slices. The params stay separate PARAM nodes (names,
 * checkpoints, AdamW state unchanged); `concat` of weights is cheap next to
 * the GEMM and codegen can alias it away by placing the params contiguously.
 *
 *   %q = matmul %x, %wq {trans_a=0, trans_b=1} : f32[B,S,Nq]
 *   %k = matmul %x, %wk {trans_a=0, trans_b=1} : f32[B,S,Nk]
 * becomes
 *   %w = concat %wq, %wk {axis=0}                : f32[Nq+Nk,H]
 *   %y = matmul %x, %w {trans_a=0, trans_b=1}    : f32[B,S,Nq+Nk]
 *   %q = slice %y {axis=2, start=0, len=Nq}
 *   %k = slice %y {axis=2, start=Nq, len=Nk}
 *
 * Backward: the input gradient autodiff sums over the members,
 *   %dx = add (matmul %dq, %wq {trans_b=0}), (matmul %dk, %wk {trans_b=0})
 * (anywhere in one tree of single-use adds) becomes one GEMM
 *   %dy = concat %dq, %dk {axis=2}
 *   %dx = matmul %dy, %w {trans_a=0, trans_b=0}
 * The weight gradients (dY_i^T x) stay separate GEMMs: each param keeps its own.
 */
#include <string.h>

#include "fuse_util.h"

#define MAXG 4 /* concat arity */

typedef struct Group {
  int k;
  ValueId mm[MAXG], w[MAXG]; /* member matmuls and their weights, in graph order */
  ValueId wc;                /* out id of the joined weights once emitted */
  bool tb;
} Group;

/* A rank-1 param added to v's result: a biased linear, left alone. */
static bool has_bias_add(const Rewriter *rw, ValueId v) {
  for (uint32_t u = rw->ustart[v]; u < rw->ustart[v + 1]; u++) {
    const Node *a = fu_node(rw, rw->users[u]);
    if (a->op != OP_ADD) continue;
    const Node *o = fu_node(rw, a->in[0] == v ? a->in[1] : a->in[0]);
    if (o->op == OP_PARAM && o->shape.rank == 1) return true;
  }
  return false;
}

/* v = matmul x, W with W a rank-2 param and no transpose of x: a linear's GEMM. */
static bool is_linear(const Rewriter *rw, ValueId v) {
  const Node *n = fu_node(rw, v);
  if (n->op != OP_MATMUL || ir_get_int(n, ATTR_TRANS_A)) return false;
  const Node *w = fu_node(rw, n->in[1]);
  return w->op == OP_PARAM && w->shape.rank == 2 && !has_bias_add(rw, v);
}

/* Match: the linears after `first` that read first's input with its flags. */
static bool match_group(const Rewriter *rw, ValueId first, Group *g) {
  const Node *f = fu_node(rw, first);
  ValueId x = f->in[0];
  memset(g, 0, sizeof *g);
  g->tb = ir_get_int(f, ATTR_TRANS_B) != 0;
  for (uint32_t u = rw->ustart[x]; u < rw->ustart[x + 1] && g->k < MAXG; u++) {
    ValueId m = rw->users[u];
    if (m < first || rw->drop[m] || rw->map[m] != IR_NONE || !is_linear(rw, m)) continue;
    const Node *n = fu_node(rw, m);
    if (n->in[0] != x || (ir_get_int(n, ATTR_TRANS_B) != 0) != g->tb || n->dtype != f->dtype) continue;
    bool dup = false;
    for (int i = 0; i < g->k; i++) dup |= g->mm[i] == m || g->w[i] == n->in[1];
    if (dup) continue;
    g->mm[g->k] = m;
    g->w[g->k++] = n->in[1];
  }
  return g->k >= 2;
}

/* Build: joined weights, one GEMM, a slice per member (mapped to the member). */
static void build_group(Rewriter *rw, Group *g) {
  const Node *f = fu_node(rw, g->mm[0]);
  ValueId ws[MAXG];
  for (int i = 0; i < g->k; i++) ws[i] = fu_get(rw, g->w[i]);
  Attr ax = ir_attr_int(ATTR_AXIS, g->tb ? 0 : 1);
  g->wc = fu_emit(rw, OP_CONCAT, ws, g->k, &ax, 1, f->loc);
  ValueId in[2] = { fu_get(rw, f->in[0]), g->wc };
  Attr a[IR_MAX_ATTRS];
  ValueId y = fu_emit(rw, OP_MATMUL, in, 2, a, fu_attrs(f, a), f->loc);
  int64_t axis = f->shape.rank - 1, start = 0;
  for (int i = 0; i < g->k; i++) {
    const Node *m = fu_node(rw, g->mm[i]);
    Attr sa[3] = { ir_attr_int(ATTR_AXIS, axis), ir_attr_int(ATTR_START, start), ir_attr_int(ATTR_LEN, m->shape.dim[axis]) };
    rw->map[g->mm[i]] = fu_emit(rw, OP_SLICE, &y, 1, sa, 3, m->loc);
    start += m->shape.dim[axis];
  }
}

/* ---- backward: sum_i dY_i W_i -> concat(dY) @ concat(W) -------------------- */

static bool same_shape_add(const Rewriter *rw, ValueId v) {
  const Node *n = fu_node(rw, v);
  return n->op == OP_ADD && ir_shape_eq(&fu_node(rw, n->in[0])->shape, &n->shape) &&
         ir_shape_eq(&fu_node(rw, n->in[1])->shape, &n->shape);
}

/* v is an add whose only consumer is another same-shape add: inside a tree. */
static bool inner_add(const Rewriter *rw, ValueId v) {
  ValueId u = fu_only_user(rw, v);
  return same_shape_add(rw, v) && u != IR_NONE && same_shape_add(rw, u);
}

#define MAXLEAF 32
typedef struct Tree {
  int nleaf;
  ValueId leaf[MAXLEAF];
  int grp[MAXLEAF]; /* group of a mergeable leaf, else -1 */
  int ninner;
  ValueId inner[MAXLEAF]; /* the adds below the root */
} Tree;

static bool collect(const Rewriter *rw, ValueId v, bool root, Tree *t) {
  if (!root && !inner_add(rw, v)) {
    if (t->nleaf == MAXLEAF) return false;
    t->grp[t->nleaf] = -1;
    t->leaf[t->nleaf++] = v;
    return true;
  }
  if (!root) {
    if (t->ninner == MAXLEAF) return false;
    t->inner[t->ninner++] = v;
  }
  const Node *n = fu_node(rw, v);
  return collect(rw, n->in[0], false, t) && collect(rw, n->in[1], false, t);
}

/* The group and member index of a backward dX GEMM dY_i @ W_i (flags flipped), else -1. */
static int dx_member(const Rewriter *rw, ValueId v, const Group *gs, int ng, int *member) {
  const Node *n = fu_node(rw, v);
  if (n->op != OP_MATMUL || ir_get_int(n, ATTR_TRANS_A) || fu_only_user(rw, v) == IR_NONE) return -1;
  for (int g = 0; g < ng; g++)
    for (int i = 0; i < gs[g].k; i++)
      if (gs[g].w[i] == n->in[1] && (ir_get_int(n, ATTR_TRANS_B) != 0) == !gs[g].tb) {
        *member = i;
        return g;
      }
  return -1;
}

/* Emit the rewritten tree at its root: the merged GEMMs, then the other leaves, summed. */
static void build_tree(Rewriter *rw, ValueId root, Tree *t, Group *gs) {
  const Node *r = fu_node(rw, root);
  ValueId sum = IR_NONE;
  bool done[MAXLEAF] = { false };
  for (int l = 0; l < t->nleaf; l++) {
    if (done[l]) continue;
    ValueId term;
    if (t->grp[l] < 0) {
      term = fu_get(rw, t->leaf[l]);
    } else {
      Group *g = &gs[t->grp[l]];
      ValueId dys[MAXG], ws[MAXG];
      int k = 0;
      bool all = true;
      for (int i = 0; i < g->k; i++) { /* member order, so concat(dY) lines up with concat(W) */
        int found = -1;
        for (int m = l; m < t->nleaf && found < 0; m++)
          if (!done[m] && t->grp[m] == t->grp[l] && fu_node(rw, t->leaf[m])->in[1] == g->w[i]) found = m;
        if (found < 0) {
          all = false;
          continue;
        }
        done[found] = true;
        dys[k] = fu_get(rw, fu_node(rw, t->leaf[found])->in[0]);
        ws[k++] = fu_get(rw, g->w[i]);
      }
      const Node *m0 = fu_node(rw, t->leaf[l]);
      Attr ax = ir_attr_int(ATTR_AXIS, m0->shape.rank - 1);
      ValueId dy = fu_emit(rw, OP_CONCAT, dys, k, &ax, 1, m0->loc), wc = g->wc;
      if (!all) {
        Attr wax = ir_attr_int(ATTR_AXIS, g->tb ? 0 : 1);
        wc = fu_emit(rw, OP_CONCAT, ws, k, &wax, 1, m0->loc);
      }
      ValueId in[2] = { dy, wc };
      Attr a[IR_MAX_ATTRS];
      term = fu_emit(rw, OP_MATMUL, in, 2, a, fu_attrs(m0, a), m0->loc);
    }
    done[l] = true;
    if (sum == IR_NONE) {
      sum = term;
    } else {
      ValueId in[2] = { sum, term };
      sum = fu_emit(rw, OP_ADD, in, 2, NULL, 0, r->loc);
    }
  }
  rw->map[root] = sum;
}

Graph *pass_fuse_linear(const Graph *in, PassCtx *cx) {
  Rewriter rw;
  fu_begin(&rw, in, cx);
  /* plan the forward groups first: the backward trees need all of them */
  int ng = 0, cap = 16;
  Group *gs = ARENA_ARRAY(rw.scratch, Group, cap);
  ValueId *first_of = ARENA_ARRAY(rw.scratch, ValueId, in->n ? in->n : 1); /* group index + 1 at its first member */
  bool *member = ARENA_ARRAY(rw.scratch, bool, in->n ? in->n : 1);
  for (ValueId v = 0; v < in->n; v++) {
    if (member[v] || !is_linear(&rw, v)) continue;
    Group g;
    if (!match_group(&rw, v, &g)) continue;
    bool taken = false;
    for (int i = 0; i < g.k; i++) taken |= member[g.mm[i]];
    if (taken) continue;
    if (ng == cap) {
      Group *bigger = ARENA_ARRAY(rw.scratch, Group, cap * 2);
      memcpy(bigger, gs, sizeof *gs * (size_t)cap);
      gs = bigger;
      cap *= 2;
    }
    for (int i = 0; i < g.k; i++) member[g.mm[i]] = true;
    first_of[v] = (ValueId)ng + 1;
    gs[ng++] = g;
  }
  /* plan the backward trees: their merged leaves and inner adds are dropped */
  Tree **plan = ARENA_ARRAY(rw.scratch, Tree *, in->n ? in->n : 1);
  int *count = ARENA_ARRAY(rw.scratch, int, ng ? ng : 1);
  for (ValueId v = 0; v < in->n && ng; v++) {
    if (!same_shape_add(&rw, v) || inner_add(&rw, v)) continue;
    Tree t = { 0 };
    if (!collect(&rw, v, true, &t)) continue;
    memset(count, 0, sizeof *count * (size_t)ng);
    for (int l = 0; l < t.nleaf; l++) {
      int m;
      t.grp[l] = dx_member(&rw, t.leaf[l], gs, ng, &m);
      if (t.grp[l] >= 0) count[t.grp[l]]++;
    }
    int mergeable = 0;
    for (int l = 0; l < t.nleaf; l++) {
      if (t.grp[l] >= 0 && count[t.grp[l]] < 2) t.grp[l] = -1;
      mergeable += t.grp[l] >= 0;
    }
    if (!mergeable) continue;
    plan[v] = ARENA_NEW(rw.scratch, Tree);
    *plan[v] = t;
    for (int l = 0; l < t.ninner; l++) rw.drop[t.inner[l]] = true;
    for (int l = 0; l < t.nleaf; l++)
      if (t.grp[l] >= 0) rw.drop[t.leaf[l]] = true;
  }
  for (ValueId v = 0; v < in->n; v++) {
    if (fu_done(&rw, v)) continue;
    if (first_of[v]) build_group(&rw, &gs[first_of[v] - 1]);
    else if (plan[v]) build_tree(&rw, v, plan[v], gs);
    else fu_copy(&rw, v);
  }
  return fu_end(&rw);
}
