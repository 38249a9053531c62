/* render_c.c - the C renderer of the kernel description (kernel.h) for the
 * cpu target, in the manner of tinygrad's renderer/cstyle.py:
 *
 *   c_dialect      how the shared expression table of the elementwise ops
 *                  (render_expr.c, also the CUDA renderer's) is written in C:
 *                  double math, cc_ helpers, %.17g constants;
 *   render_op[]    per op, the statement(s) computing one node: elementwise
 *                  ops share one loop template over those expressions, the rest call
 *                  the kernel library (codegen/cpu_step/cram_cpu_kernels.h)
 *                  with constant shapes; GEMM nodes become cc_gemm calls
 *                  (sgemm split over the OpenMP threads) + the epilogue.
 *   plan_groups    nodes rendered together: a run of elementwise nodes of one
 *                  element count as one loop (joins_loop), the xent_linear
 *                  loss and gradients of one input set as one pass (joins_xent).
 *
 * A kernel is one C function running its groups in node order.
 * The host function of a graph calls the kernels in list order with the
 * arena base and constant offsets; the list is data, so the LLVM-C emission
 * of this host code can replace render_c_host without touching the kernels. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "render_c.h"
#include "render_expr.h"

typedef struct RCtx {
  FILE *out;
  const KProgram *p;
  const KNode *k;
  uint32_t ki;     /* index of k in p->nodes */
  uint32_t *group; /* per KNode: the last node of the group it leads, or its leader (see plan_groups) */
} RCtx;

/* ---- buffers ------------------------------------------------------------------- */

static const char *ctype(const Graph *g, ValueId v) { return g->nodes[v].dtype == DT_I32 ? "int32_t" : "float"; }

static void put_buf(FILE *out, const char *type, KBuf b) {
  if (b.slot != KBUF_NO_SLOT) fprintf(out, "((%s *)R->slot[%u])", type, b.slot);
  else fprintf(out, "((%s *)(R->arena + %" PRId64 "))", type, b.offset);
}

/* Declares `T *o` and `const T *xI` for the current node. */
static void decl_bufs(RCtx *c) {
  const KNode *k = c->k;
  const Graph *g = c->p->g;
  fprintf(c->out, "    %s *o = ", ctype(g, k->id));
  put_buf(c->out, ctype(g, k->id), k->out);
  fputs(";\n", c->out);
  for (int i = 0; i < k->n->nin; i++) {
    fprintf(c->out, "    const %s *x%d = ", ctype(g, k->n->in[i]), i);
    put_buf(c->out, ctype(g, k->n->in[i]), k->in[i]);
    fputs(";\n", c->out);
  }
  fprintf(c->out, "    (void)o;\n");
}

static const Shape *in_shape(const RCtx *c, int i) { return &c->p->g->nodes[c->k->n->in[i]].shape; }
static int64_t numel(const Shape *s) { return ir_shape_numel(s); }
static int64_t lastd(const Shape *s) { return s->rank ? s->dim[s->rank - 1] : 1; }
/* cram_cpu_kernels.h's act codes (0 none, 1 gelu, 2 relu, 3 sigmoid) are acts.def's numbering */
_Static_assert(ACT_NONE == 0 && ACT_GELU == 1 && ACT_RELU == 2 && ACT_SIGMOID == 3, "cc_act_pair's codes follow ir/acts.def");
static int act_code(const char *a) { return a && ir_act_parse(a) > 0 ? ir_act_parse(a) : ACT_NONE; }
static void put_dims(FILE *out, const char *name, const Shape *s) {
  fprintf(out, "    static const int64_t %s[] = {", name);
  for (int d = 0; d < s->rank; d++) fprintf(out, "%s%" PRId64, d ? ", " : "", s->dim[d]);
  if (!s->rank) fputs("1", out);
  fputs("};\n", out);
}

/* ---- elementwise: the shared expression table (render_expr.c) in C's dialect --------- */

/* double math through cram_cpu_kernels.h's cc_ helpers and libm */
static const CgDialect c_dialect = { .helper = "cc_", .libm = "", .zero = "0.0", .one = "1.0", .lit = "%.17g" };

/* ---- buffer ranges: when may nodes share one loop or one pass ---------------------- */

/* A buffer as a byte range in the arena, or a whole slot. */
typedef struct BRange {
  int64_t lo, hi;
  uint32_t slot;
} BRange;

static BRange brange(const KProgram *p, KBuf b, ValueId v) {
  int64_t bytes = ir_shape_numel(&p->g->nodes[v].shape) * 4;
  return b.slot != KBUF_NO_SLOT ? (BRange){ 0, 0, b.slot } : (BRange){ b.offset, b.offset + bytes, KBUF_NO_SLOT };
}
static bool overlap(BRange a, BRange b) {
  if (a.slot != KBUF_NO_SLOT || b.slot != KBUF_NO_SLOT) return a.slot == b.slot;
  return a.lo < b.hi && b.lo < a.hi;
}
static bool same(BRange a, BRange b) { return a.slot == b.slot && a.lo == b.lo && a.hi == b.hi; }

static bool is_elementwise(const Node *n) { return cg_expr_supports(&c_dialect, n->op); }
static int n_loads(const Node *n) { return cg_expr_nload(n); }

/* Whether elementwise node k can join the loop of nodes [first, k) of the
 * same element count: every element e is then computed by all of them in
 * node order in one iteration, which equals running the loops one after the
 * other iff no node reads at another index (a broadcast) what a node of the
 * group writes, and buffers read and written at the same index either
 * coincide or are disjoint. */
static bool joins_loop(const KProgram *p, uint32_t first, uint32_t k) {
  const KNode *kn = &p->nodes[k];
  int64_t N = ir_shape_numel(&kn->n->shape);
  for (uint32_t j = first; j <= k; j++) {
    const KNode *a = &p->nodes[j];
    BRange wa = brange(p, a->out, a->id);
    for (uint32_t m = first; m <= k; m++) { /* a's write against m's reads, for pairs involving k */
      if (j != k && m != k) continue;
      const KNode *b = &p->nodes[m];
      for (int i = 0; i < b->n->nin; i++) {
        BRange r = brange(p, b->in[i], b->n->in[i]);
        if (!overlap(wa, r)) continue;
        bool at_e = ir_shape_numel(&p->g->nodes[b->n->in[i]].shape) == N && i < n_loads(b->n);
        if (!at_e || !same(wa, r)) return false;
      }
      BRange wb = brange(p, b->out, b->id);
      if (m != j && overlap(wa, wb) && !same(wa, wb)) return false;
    }
  }
  return true;
}

static bool xent_op(OpKind op) { return op == OP_XENT_LINEAR || op == OP_XENT_LINEAR_GRAD || op == OP_XENT_LINEAR_HITS; }
/* 0 the loss, 1 + wrt for a gradient, 4 the accuracy counts: cc_xent's outputs in order */
#define XENT_ROLES 5
static int xent_role(const Node *n) {
  return n->op == OP_XENT_LINEAR ? 0 : n->op == OP_XENT_LINEAR_HITS ? 4 : 1 + (int)ir_get_int(n, ATTR_WRT);
}

/* Whether xent node k can be computed in the pass of the group [first, k):
 * same inputs and attributes, a role of its own, and outputs that overlap
 * no input or other output of the group (they are written before the
 * group's later nodes run). */
static bool joins_xent(const KProgram *p, uint32_t first, uint32_t k) {
  const Node *a = p->nodes[first].n, *b = p->nodes[k].n;
  if (!xent_op(b->op) || a->nin != b->nin || ir_get_int(a, ATTR_TRANS_B) != ir_get_int(b, ATTR_TRANS_B) ||
      ir_get_int(a, ATTR_IGNORE) != ir_get_int(b, ATTR_IGNORE))
    return false;
  for (int i = 0; i < a->nin; i++)
    if (a->in[i] != b->in[i]) return false;
  BRange wk = brange(p, p->nodes[k].out, p->nodes[k].id);
  for (uint32_t j = first; j < k; j++) {
    if (xent_role(p->nodes[j].n) == xent_role(b)) return false;
    if (overlap(wk, brange(p, p->nodes[j].out, p->nodes[j].id))) return false;
  }
  for (int i = 0; i < b->nin; i++)
    if (overlap(wk, brange(p, p->nodes[k].in[i], b->in[i]))) return false;
  return true;
}

/* group[i] for the first node of a group: the index of its last node; for
 * the others: the first node's index (they render nothing). Elementwise
 * groups stay within a kernel, xent groups may span kernels (the nodes are
 * consecutive, so running the whole group at its first node is in order). */
static uint32_t *plan_groups(const KProgram *p) {
  uint32_t *group = malloc((p->nnodes ? p->nnodes : 1) * sizeof *group);
  if (!group) return NULL;
  for (uint32_t ki = 0; ki < p->nkernels; ki++) {
    const Kernel *K = &p->kernels[ki];
    for (uint32_t i = K->first; i < K->first + K->count;) {
      uint32_t last = i;
      const Node *n = p->nodes[i].n;
      if (is_elementwise(n))
        while (last + 1 < K->first + K->count && is_elementwise(p->nodes[last + 1].n) &&
               ir_shape_numel(&p->nodes[last + 1].n->shape) == ir_shape_numel(&n->shape) && joins_loop(p, i, last + 1))
          last++;
      for (uint32_t j = i; j <= last; j++) group[j] = i;
      group[i] = last;
      i = last + 1;
    }
  }
  /* siblings (attention + attention_lse, layernorm_wgrad + layernorm_bgrad): one pass writes both (kept adjacent by the passes) */
  for (uint32_t i = 0; i + 1 < p->nnodes; i++)
    if (group[i] == i && group[i + 1] == i + 1 && ir_siblings(p->nodes[i].n, p->nodes[i + 1].n))
      group[i] = i + 1, group[i + 1] = i, i++;
  for (uint32_t i = 0; i < p->nnodes; i++) {
    if (!xent_op(p->nodes[i].n->op)) continue;
    uint32_t last = i;
    while (last + 1 < p->nnodes && joins_xent(p, i, last + 1)) last++;
    for (uint32_t j = i; j <= last; j++) group[j] = i;
    group[i] = last;
    i = last;
  }
  return group;
}

/* One loop over the elements of a group of elementwise nodes (one parallel
 * region): per node o<j>[e] = (float)(expr(a = x<j>_0[..], b = x<j>_1[..], ...)).
 * Inputs broadcast along leading axes are read through an inner loop over
 * the innermost run (no division per element). */
/* Whether `is` broadcasts to `os` along leading axes only (its dims are os's last ones). */
static bool suffix_of(const Shape *is, const Shape *os) {
  bool suffix = is->rank <= os->rank;
  for (int d = 0; suffix && d < is->rank; d++) suffix = is->dim[is->rank - 1 - d] == os->dim[os->rank - 1 - d];
  return suffix;
}

static void r_elementwise(RCtx *c) {
  const KProgram *p = c->p;
  uint32_t first = c->ki, last = c->group[c->ki];
  const Graph *g = p->g;
  int64_t N = numel(&c->k->n->shape), inner = 0;
  FILE *out = c->out;
  for (uint32_t j = first; j <= last; j++) { /* the innermost run: the first suffix broadcast's size */
    const KNode *k = &p->nodes[j];
    for (int i = 0; i < n_loads(k->n) && !inner; i++) {
      const Shape *is = &g->nodes[k->n->in[i]].shape, *os = &k->n->shape;
      int64_t ni = numel(is);
      if (ni > 1 && ni < N && suffix_of(is, os)) inner = ni;
    }
  }
  for (uint32_t j = first; j <= last; j++) {
    const KNode *k = &p->nodes[j];
    uint32_t u = j - first;
    fprintf(out, "    float *o%u = ", u);
    put_buf(out, "float", k->out);
    fputs(";\n", out);
    for (int i = 0; i < k->n->nin; i++) {
      fprintf(out, "    const float *x%u_%d = ", u, i);
      put_buf(out, "float", k->in[i]);
      fputs(";\n", out);
    }
    if (cg_expr_reads_sched(k->n)) /* adam_sched's vector (IR_SCH_*), read once */
      for (int i = 0; i < IR_ADAM_SCHED; i++) fprintf(out, "    const double s%u_%d = x%u_3[%d];\n", u, i, u, i);
    for (int i = 0; i < n_loads(k->n); i++) {
      const Shape *is = &g->nodes[k->n->in[i]].shape;
      int64_t ni = numel(is);
      if (ni == N || ni == 1 || (ni == inner && suffix_of(is, &k->n->shape))) continue;
      char nm[32];
      snprintf(nm, sizeof nm, "od%u_%d", u, i);
      put_dims(out, nm, &k->n->shape);
      snprintf(nm, sizeof nm, "id%u_%d", u, i);
      put_dims(out, nm, is);
    }
  }
  if (inner)
    fprintf(out,
            "#pragma omp parallel for if (%" PRId64 " > CC_PAR_MIN)\n    for (int64_t r = 0; r < %" PRId64 "; r++) {\n"
            "#pragma omp simd\n      for (int64_t j = 0; j < %" PRId64 "; j++) {\n        const int64_t e = r * %" PRId64
            " + j;\n",
            N, N / inner, inner, inner);
  else
    fprintf(out,
            "#pragma omp parallel for simd if (%" PRId64 " > CC_PAR_MIN)\n    for (int64_t e = 0; e < %" PRId64
            "; e++) {\n      {\n",
            N, N);
  static const char *var[] = { "a", "b", "c", "d" };
  for (uint32_t j = first; j <= last; j++) {
    const Node *n = p->nodes[j].n;
    uint32_t u = j - first;
    fputs("        {", out);
    if (cg_expr_reads_sched(n)) {
      for (int i = 0; i < IR_ADAM_SCHED; i++) fprintf(out, " const double s%d = s%u_%d; (void)s%d;", i, u, i, i);
    }
    for (int i = 0; i < n_loads(n); i++) {
      const Shape *is = &g->nodes[n->in[i]].shape;
      int64_t ni = numel(is);
      fprintf(out, " double %s = x%u_%d[", var[i], u, i);
      if (ni == N) fputs("e", out);
      else if (ni == 1) fputs("0", out);
      else if (ni == inner && suffix_of(is, &n->shape)) fputs("j", out);
      else {
        if (suffix_of(is, &n->shape)) fprintf(out, "e %% %" PRId64, ni);
        else fprintf(out, "cc_bcast(%d, od%u_%d, %d, id%u_%d, e)", n->shape.rank, u, i, is->rank, u, i);
      }
      fputs("];", out);
    }
    fprintf(out, " o%u[e] = (float)(", u);
    cg_expr(out, n, &c_dialect);
    fputs("); }\n", out);
  }
  fputs("      }\n    }\n", out);
}

/* ---- per-op render functions ---------------------------------------------------------- */

static void r_fill(RCtx *c) {
  decl_bufs(c);
  double v = ir_get_float(c->k->n, ATTR_VALUE);
  if (c->k->n->dtype == DT_I32)
    fprintf(c->out, "    for (int64_t e = 0; e < %" PRId64 "; e++) o[e] = %lld;\n", numel(&c->k->n->shape), (long long)v);
  else fprintf(c->out, "    for (int64_t e = 0; e < %" PRId64 "; e++) o[e] = (float)%.17g;\n", numel(&c->k->n->shape), v);
}
static void r_sinusoid(RCtx *c) {
  decl_bufs(c);
  fprintf(c->out, "    cc_sinusoid(o, %" PRId64 ", %" PRId64 ");\n", c->k->n->shape.dim[0], c->k->n->shape.dim[1]);
}
static void r_arange(RCtx *c) {
  decl_bufs(c);
  fprintf(c->out, "    for (int64_t e = 0; e < %" PRId64 "; e++) o[e] = (float)e;\n", numel(&c->k->n->shape));
}
static void r_embedding(RCtx *c) {
  const Shape *ts = in_shape(c, 0);
  decl_bufs(c);
  fprintf(c->out, "    if (cc_embedding(R, NODE, o, x0, x1, %" PRId64 ", %" PRId64 ", %" PRId64 ")) return -1;\n",
          numel(in_shape(c, 1)), ts->dim[0], ts->dim[1]);
}
static void r_masked_rows(RCtx *c) {
  const Shape *xs = in_shape(c, 0);
  decl_bufs(c);
  fprintf(c->out, "    cc_masked_rows(o, x0, x1, %" PRId64 ", %" PRId64 ", %" PRId64 ", %" PRId64 ");\n", xs->dim[0], xs->dim[1],
          xs->dim[2], ir_get_int(c->k->n, ATTR_SLOTS));
}
static void r_masked_targets(RCtx *c) {
  const Shape *ts = in_shape(c, 0);
  decl_bufs(c);
  fprintf(c->out, "    cc_masked_targets(o, x0, %" PRId64 ", %" PRId64 ", %" PRId64 ");\n", ts->dim[0], ts->dim[1],
          ir_get_int(c->k->n, ATTR_SLOTS));
}
static void r_embedding_grad(RCtx *c) {
  decl_bufs(c);
  fprintf(c->out, "    cc_embedding_grad(o, x0, x1, %" PRId64 ", %" PRId64 ", %" PRId64 ");\n", numel(in_shape(c, 0)),
          c->k->n->shape.dim[0], c->k->n->shape.dim[1]);
}
static void r_masked_rows_grad(RCtx *c) {
  const Shape *s = &c->k->n->shape;
  decl_bufs(c);
  fprintf(c->out, "    cc_masked_rows_grad(o, x0, x1, %" PRId64 ", %" PRId64 ", %" PRId64 ", %" PRId64 ");\n", s->dim[0],
          s->dim[1], s->dim[2], ir_get_int(c->k->n, ATTR_SLOTS));
}

/* GEMM nodes: the library call into o (or scratch y), then the epilogue. */
static void r_gemm(RCtx *c) {
  const KGemm *g = &c->k->g;
  const Node *n = c->k->n;
  decl_bufs(c);
  bool scratch = g->epi == KEPI_GLU || g->epi == KEPI_GLU_GRAD;
  int64_t rows = g->batch * g->M;
  if (scratch)
    fprintf(c->out,
            "    float *y = malloc((size_t)%" PRId64
            " * sizeof(float));\n    if (!y) return cc_fail(R, NODE, \"out of memory\");\n",
            rows * g->N);
  fprintf(c->out,
          "    cc_gemm(%d, %d, %" PRId64 ", %" PRId64 ", %" PRId64 ", %" PRId64 ", x%d, %" PRId64 ", %" PRId64 ", x%d, %" PRId64
          ", %" PRId64 ", %s, %" PRId64 ", %" PRId64 ");\n",
          g->ta, g->tb, g->M, g->N, g->K, g->batch, g->a_in, g->lda, g->stride_a, g->b_in, g->ldb, g->stride_b,
          scratch ? "y" : "o", g->ldc, g->stride_c);
  int act = act_code(g->act);
  switch (g->epi) {
  case KEPI_NONE:
  case KEPI_BIAS: break;
  case KEPI_ACT:
    fprintf(c->out, "    cc_epi_bias_act(o, %s, %" PRId64 ", %" PRId64 ", %d);\n", g->bias ? "x2" : "NULL", rows, g->N, act);
    break;
  case KEPI_GLU:
    fprintf(c->out, "    cc_epi_glu(o, y, %s, %" PRId64 ", %" PRId64 ", %d);\n", g->bias ? "x2" : "NULL", rows, g->N / 2, act);
    break;
  case KEPI_ACT_GRAD: fprintf(c->out, "    cc_epi_act_grad(o, x0, %" PRId64 ", %d);\n", numel(&n->shape), act); break;
  case KEPI_GLU_GRAD: fprintf(c->out, "    cc_glu_grad(o, x0, y, %" PRId64 ", %" PRId64 ", %d);\n", rows, g->N, act); break;
  }
  if (scratch) fputs("    free(y);\n", c->out);
}

static void r_dropout(RCtx *c) {
  const Node *n = c->k->n;
  int64_t N = numel(&n->shape);
  double p = ir_get_float(n, ATTR_P);
  decl_bufs(c);
  fprintf(c->out,
          "    if (!R->training || %.17g == 0.0) { if ((const void *)o != (const void *)x0) memmove(o, x0, %" PRId64
          " * sizeof(float)); }\n"
          "    else {\n#pragma omp parallel for if (%" PRId64 " > CC_PAR_MIN)\n"
          "      for (int64_t e = 0; e < %" PRId64 "; e++)\n"
          "        o[e] = cc_uniform(R->seed, %" PRIu64
          "ull, (uint64_t)e) < %.17g ? 0.0f : (float)((double)x0[e] / (1.0 - %.17g));\n    }\n",
          p, N, N, N, (uint64_t)ir_get_int(n, ATTR_KEY), p, p);
}
static void r_glu(RCtx *c) {
  decl_bufs(c);
  fprintf(c->out, "    cc_glu(o, x0, %" PRId64 ", %" PRId64 ", %d);\n", numel(&c->k->n->shape) / lastd(&c->k->n->shape),
          lastd(&c->k->n->shape), act_code(ir_get_str(c->k->n, ATTR_ACT)));
}
static void r_glu_grad(RCtx *c) {
  const Shape *dy = in_shape(c, 1);
  decl_bufs(c);
  fprintf(c->out, "    cc_glu_grad(o, x0, x1, %" PRId64 ", %" PRId64 ", %d);\n", numel(dy) / lastd(dy), lastd(dy),
          act_code(ir_get_str(c->k->n, ATTR_ACT)));
}
static void rows_h(RCtx *c, int64_t *rows, int64_t *H) {
  *H = lastd(&c->k->n->shape);
  *rows = numel(&c->k->n->shape) / *H;
}
static void r_layernorm(RCtx *c) {
  int64_t rows, H;
  rows_h(c, &rows, &H);
  int nin = c->k->n->nin;
  bool add = c->k->n->op == OP_ADD_LAYERNORM;
  int w = add ? 2 : 1;
  decl_bufs(c);
  fprintf(c->out, "    cc_layernorm(o, x0, %s, %s, %s, %" PRId64 ", %" PRId64 ", %.17g);\n", add ? "x1" : "NULL",
          nin > w ? (w == 1 ? "x1" : "x2") : "NULL", nin > w + 1 ? (w == 1 ? "x2" : "x3") : "NULL", rows, H,
          ir_get_float(c->k->n, ATTR_EPS));
}
static void r_rmsnorm(RCtx *c) {
  int64_t rows, H;
  rows_h(c, &rows, &H);
  decl_bufs(c);
  fprintf(c->out, "    cc_rmsnorm(o, x0, %s, %" PRId64 ", %" PRId64 ", %.17g);\n", c->k->n->nin > 1 ? "x1" : "NULL", rows, H,
          ir_get_float(c->k->n, ATTR_EPS));
}
static void r_softmax(RCtx *c) {
  int64_t rows, H;
  rows_h(c, &rows, &H);
  decl_bufs(c);
  fprintf(c->out, "    cc_softmax(o, x0, %" PRId64 ", %" PRId64 ");\n", rows, H);
}
static void r_layernorm_grad(RCtx *c) {
  int64_t rows, H;
  rows_h(c, &rows, &H);
  const Node *n = c->k->n;
  bool add = n->op == OP_LAYERNORM_GRAD_ADD;
  int nin = add ? n->nin - 1 : n->nin; /* (x, [w], dy) [, dres] */
  decl_bufs(c);
  fprintf(c->out, "    cc_layernorm_grad(o, x0, %s, x%d, %s, %" PRId64 ", %" PRId64 ", %.17g);\n", nin == 3 ? "x1" : "NULL",
          nin - 1, add ? (nin == 3 ? "x3" : "x2") : "NULL", rows, H, ir_get_float(n, ATTR_EPS));
}
/* layernorm_wgrad, with its layernorm_bgrad sibling when plan_groups joined them; a lone bgrad sums dy */
static void r_layernorm_param_grad(RCtx *c) {
  const Shape *xs = in_shape(c, 0);
  int64_t H = lastd(xs), rows = numel(xs) / H;
  bool bias_only = c->k->n->op == OP_LAYERNORM_BGRAD;
  const KNode *b = bias_only ? c->k : c->group[c->ki] > c->ki ? &c->p->nodes[c->ki + 1] : NULL;
  decl_bufs(c);
  fputs("    if (cc_layernorm_param_grad(R, NODE, ", c->out);
  fputs(bias_only ? "NULL, " : "o, ", c->out);
  if (b) put_buf(c->out, "float", b->out);
  else fputs("NULL", c->out);
  fprintf(c->out, ", x0, x1, %" PRId64 ", %" PRId64 ", %.17g)) return -1;\n", rows, H, ir_get_float(c->k->n, ATTR_EPS));
}
static void r_rmsnorm_grad(RCtx *c) {
  int64_t rows, H;
  rows_h(c, &rows, &H);
  int nin = c->k->n->nin;
  decl_bufs(c);
  fprintf(c->out, "    cc_rmsnorm_grad(o, x0, %s, x%d, %" PRId64 ", %" PRId64 ", %.17g);\n", nin == 3 ? "x1" : "NULL", nin - 1,
          rows, H, ir_get_float(c->k->n, ATTR_EPS));
}
static void r_softmax_grad(RCtx *c) {
  int64_t rows, H;
  rows_h(c, &rows, &H);
  decl_bufs(c);
  fprintf(c->out, "    cc_softmax_grad(o, x0, x1, %" PRId64 ", %" PRId64 ");\n", rows, H);
}
static void split_axis(const Shape *s, int64_t axis, int64_t *outer, int64_t *len, int64_t *inner) {
  *outer = *inner = 1;
  for (int64_t a = 0; a < s->rank; a++) {
    if (a < axis) *outer *= s->dim[a];
    if (a > axis) *inner *= s->dim[a];
  }
  *len = s->dim[axis];
}
static void r_mean(RCtx *c) {
  int64_t outer, len, inner;
  split_axis(in_shape(c, 0), ir_get_int(c->k->n, ATTR_AXIS), &outer, &len, &inner);
  decl_bufs(c);
  fprintf(c->out, "    cc_mean(o, x0, %" PRId64 ", %" PRId64 ", %" PRId64 ");\n", outer, len, inner);
}
static void r_cross_entropy(RCtx *c) {
  const Shape *ls = in_shape(c, 0);
  decl_bufs(c);
  if (c->k->n->op == OP_CROSS_ENTROPY)
    fprintf(c->out, "    if (cc_cross_entropy(R, NODE, o, x0, x1, %" PRId64 ", %" PRId64 ", %" PRId64 ")) return -1;\n",
            ls->dim[0], ls->dim[1], ir_get_int(c->k->n, ATTR_IGNORE));
  else if (c->k->n->op == OP_XENT_HITS)
    fprintf(c->out, "    if (cc_xent_hits(R, NODE, o, x0, x1, %" PRId64 ", %" PRId64 ", %" PRId64 ")) return -1;\n", ls->dim[0],
            ls->dim[1], ir_get_int(c->k->n, ATTR_IGNORE));
  else
    fprintf(c->out, "    if (cc_cross_entropy_grad(R, NODE, o, x0, x1, x2, %" PRId64 ", %" PRId64 ", %" PRId64 ")) return -1;\n",
            ls->dim[0], ls->dim[1], ir_get_int(c->k->n, ATTR_IGNORE));
}
/* The loss and the gradients of one group (plan_groups) in one pass. */
static void r_xent_linear(RCtx *c) {
  const Node *n = c->k->n;
  const Shape *xs = in_shape(c, 0), *ws = in_shape(c, 1);
  bool tb = ir_get_int(n, ATTR_TRANS_B) != 0;
  decl_bufs(c);
  const KNode *role[XENT_ROLES] = { NULL };
  for (uint32_t j = c->ki; j <= c->group[c->ki]; j++) role[xent_role(c->p->nodes[j].n)] = &c->p->nodes[j];
  fputs("    if (cc_xent(R, NODE", c->out);
  for (int r = 0; r < XENT_ROLES; r++) {
    fputs(", ", c->out);
    if (role[r]) put_buf(c->out, "float", role[r]->out);
    else fputs("NULL", c->out);
  }
  fprintf(c->out, ", x0, x1, x2, %s, %" PRId64 ", %" PRId64 ", %" PRId64 ", %d, %" PRId64 ")) return -1;\n",
          n->nin == 4 ? "x3" : "NULL", xs->dim[0], xs->dim[1], ws->dim[tb ? 0 : 1], tb, ir_get_int(n, ATTR_IGNORE));
}
/* ---- fused attention (cram_cpu_attention.h) ------------------------------------------ */

/* The node's geometry as a static cc_attn named `geo`; false (err set) if it does not fit. */
static bool put_attn_geom(RCtx *c, const Node *n, IrAttnGeom *g) {
  char msg[160];
  if (!ir_attention_geom(c->p->g, n, g, msg, sizeof msg)) {
    fprintf(c->out, "#error \"%%%u: %s\"\n", c->k->id, msg); /* the verifier accepted it: cannot happen */
    return false;
  }
  fprintf(c->out,
          "    static const cc_attn geo = {%" PRId64 ", %" PRId64 ", %" PRId64 ", %" PRId64 ", %" PRId64 ",\n"
          "      {{%" PRId64 ", %" PRId64 ", %" PRId64 "}, {%" PRId64 ", %" PRId64 ", %" PRId64 "}, {%" PRId64 ", %" PRId64
          ", %" PRId64 "}},\n      {%" PRId64 ", %" PRId64 ", %" PRId64 ", %" PRId64 "}, %.9gf, %.17g, %" PRIu64 "ull};\n",
          g->B, g->S, g->heads, g->kv_heads, g->dh, g->stride[0][0], g->stride[0][1], g->stride[0][2], g->stride[1][0],
          g->stride[1][1], g->stride[1][2], g->stride[2][0], g->stride[2][1], g->stride[2][2], g->bias_stride[0],
          g->bias_stride[1], g->bias_stride[2], g->bias_stride[3], g->alpha, g->p, (uint64_t)g->key);
  return true;
}
static void put_bias(RCtx *c, const IrAttnGeom *g) {
  if (g->bias >= 0) fprintf(c->out, "x%d", g->bias);
  else fputs("NULL", c->out);
}
/* attention, with its attention_lse sibling when plan_groups joined them: one pass writes o and lse */
static void r_attention(RCtx *c) {
  const Node *n = c->k->n;
  IrAttnGeom g;
  decl_bufs(c);
  if (!put_attn_geom(c, n, &g)) return;
  bool lse_only = n->op == OP_ATTENTION_LSE;
  const KNode *lse = lse_only ? c->k : c->group[c->ki] > c->ki ? &c->p->nodes[c->ki + 1] : NULL;
  fprintf(c->out, "    if (cc_attention(R, NODE, &geo, x0 + %" PRId64 ", x1 + %" PRId64 ", x2 + %" PRId64 ", ", g.off[0],
          g.off[1], g.off[2]);
  put_bias(c, &g);
  fputs(lse_only ? ", NULL, " : ", o, ", c->out);
  if (lse) put_buf(c->out, "float", lse->out);
  else fputs("NULL", c->out);
  fputs(")) return -1;\n", c->out);
}
static void r_attention_grad(RCtx *c) {
  const Node *n = c->k->n;
  IrAttnGeom g;
  decl_bufs(c);
  if (!put_attn_geom(c, n, &g)) return;
  int64_t wrt = ir_get_int(n, ATTR_WRT);
  fputs("    float *const d[3] = {", c->out);
  for (int t = 0; t < 3; t++)
    if (wrt >> t & 1) fprintf(c->out, "%so + %" PRId64, t ? ", " : "", g.off[t]);
    else fprintf(c->out, "%sNULL", t ? ", " : "");
  fprintf(c->out, "};\n    if (cc_attention_grad(R, NODE, &geo, x0 + %" PRId64 ", x1 + %" PRId64 ", x2 + %" PRId64 ", ", g.off[0],
          g.off[1], g.off[2]);
  put_bias(c, &g);
  fprintf(c->out, ", x3, x4, x5, o, %" PRId64 ", d)) return -1;\n", numel(&n->shape));
}
static void r_reshape(RCtx *c) {
  decl_bufs(c);
  fprintf(c->out, "    if ((const void *)o != (const void *)x0) memcpy(o, x0, %" PRId64 " * 4);\n", numel(&c->k->n->shape));
}
static void r_permute(RCtx *c) {
  const Shape *is = in_shape(c, 0), *os = &c->k->n->shape;
  const Attr *pa = ir_attr(c->k->n, ATTR_PERM);
  int64_t ist[IR_MAX_RANK], st = 1;
  for (int a = is->rank - 1; a >= 0; a--) ist[a] = st, st *= is->dim[a];
  decl_bufs(c);
  put_dims(c->out, "od", os);
  fputs("    static const int64_t ist[] = {", c->out);
  for (int a = 0; a < os->rank; a++) fprintf(c->out, "%s%" PRId64, a ? ", " : "", ist[pa->u.ints.v[a]]);
  fprintf(c->out, "};\n    cc_permute(o, x0, %d, od, ist, %" PRId64 ");\n", os->rank, numel(os));
}
static void r_slice(RCtx *c) {
  int64_t outer, len, inner, start = ir_get_int(c->k->n, ATTR_START), olen = ir_get_int(c->k->n, ATTR_LEN);
  split_axis(in_shape(c, 0), ir_get_int(c->k->n, ATTR_AXIS), &outer, &len, &inner);
  decl_bufs(c);
  fprintf(c->out, "    cc_blocks(o, %" PRId64 ", 0, x0, %" PRId64 ", %" PRId64 ", %" PRId64 ", %" PRId64 ");\n", olen * inner,
          len * inner, start * inner, outer, olen * inner);
}
static void r_pad(RCtx *c) {
  const Node *n = c->k->n;
  int64_t outer, len, inner, start = ir_get_int(n, ATTR_START), size = ir_get_int(n, ATTR_SIZE);
  split_axis(in_shape(c, 0), ir_get_int(n, ATTR_AXIS), &outer, &len, &inner);
  decl_bufs(c);
  fprintf(c->out, "    memset(o, 0, %" PRId64 " * 4);\n", numel(&n->shape));
  fprintf(c->out, "    cc_blocks(o, %" PRId64 ", %" PRId64 ", x0, %" PRId64 ", 0, %" PRId64 ", %" PRId64 ");\n", size * inner,
          start * inner, len * inner, outer, len * inner);
}
static void r_concat(RCtx *c) {
  const Node *n = c->k->n;
  int64_t axis = ir_get_int(n, ATTR_AXIS), outer, total, inner;
  split_axis(&n->shape, axis, &outer, &total, &inner);
  decl_bufs(c);
  int64_t off = 0;
  for (int i = 0; i < n->nin; i++) {
    int64_t len = in_shape(c, i)->dim[axis];
    fprintf(c->out, "    cc_blocks(o, %" PRId64 ", %" PRId64 ", x%d, %" PRId64 ", 0, %" PRId64 ", %" PRId64 ");\n", total * inner,
            off * inner, i, len * inner, outer, len * inner);
    off += len;
  }
}
static void r_sum_to(RCtx *c) {
  const Shape *xs = in_shape(c, 0), *os = &c->k->n->shape;
  decl_bufs(c);
  put_dims(c->out, "xd", xs);
  put_dims(c->out, "od", os);
  fprintf(c->out, "    if (cc_sum_to(R, NODE, o, x0, %d, xd, %d, od, %" PRId64 ", %" PRId64 ")) return -1;\n", xs->rank, os->rank,
          numel(xs), numel(os));
}
static void r_broadcast_to(RCtx *c) {
  const Shape *xs = in_shape(c, 0), *os = &c->k->n->shape;
  decl_bufs(c);
  put_dims(c->out, "xd", xs);
  put_dims(c->out, "od", os);
  fprintf(c->out, "    for (int64_t e = 0; e < %" PRId64 "; e++) o[e] = x0[cc_bcast(%d, od, %d, xd, e)];\n", numel(os), os->rank,
          xs->rank);
}
static void r_sumsq(RCtx *c) {
  decl_bufs(c);
  fprintf(c->out, "    cc_sumsq(o, x0, %" PRId64 ");\n", numel(in_shape(c, 0)));
}
static void r_clip_coef(RCtx *c) {
  decl_bufs(c);
  fprintf(c->out,
          "    double mn = x1[%d], coef = mn / (sqrt((double)x0[0]) + 1e-6);\n"
          "    o[0] = (float)(mn <= 0 ? 1.0 : (coef < 1.0 ? coef : 1.0));\n"
          "    if (mn > 0 && isnan(coef)) o[0] = (float)coef;\n",
          IR_HYP_MAX_NORM);
}
static void r_adam_sched(RCtx *c) {
  decl_bufs(c);
  fputs("    if (cc_adam_sched(R, NODE, o, x0, x1, x2)) return -1;\n", c->out);
}

typedef void (*RenderFn)(RCtx *c);

static const RenderFn render_op[OP_COUNT] = {
  [OP_SINUSOID] = r_sinusoid,
  [OP_FILL] = r_fill,
  [OP_ARANGE] = r_arange,
  [OP_EMBEDDING] = r_embedding,
  [OP_MASKED_ROWS] = r_masked_rows,
  [OP_MASKED_TARGETS] = r_masked_targets,
  [OP_MATMUL] = r_gemm,
  [OP_MATMUL_ACT] = r_gemm,
  [OP_MATMUL_GLU] = r_gemm,
  [OP_MATMUL_ACT_GRAD] = r_gemm,
  [OP_MATMUL_GLU_GRAD] = r_gemm,
  [OP_DROPOUT] = r_dropout,
  [OP_GLU] = r_glu,
  [OP_GLU_GRAD] = r_glu_grad,
  [OP_LAYERNORM] = r_layernorm,
  [OP_ADD_LAYERNORM] = r_layernorm,
  [OP_RMSNORM] = r_rmsnorm,
  [OP_SOFTMAX] = r_softmax,
  [OP_LAYERNORM_GRAD] = r_layernorm_grad,
  [OP_LAYERNORM_GRAD_ADD] = r_layernorm_grad,
  [OP_LAYERNORM_WGRAD] = r_layernorm_param_grad,
  [OP_LAYERNORM_BGRAD] = r_layernorm_param_grad,
  [OP_RMSNORM_GRAD] = r_rmsnorm_grad,
  [OP_SOFTMAX_GRAD] = r_softmax_grad,
  [OP_MEAN] = r_mean,
  [OP_CROSS_ENTROPY] = r_cross_entropy,
  [OP_CROSS_ENTROPY_GRAD] = r_cross_entropy,
  [OP_XENT_HITS] = r_cross_entropy,
  [OP_XENT_LINEAR] = r_xent_linear,
  [OP_XENT_LINEAR_GRAD] = r_xent_linear,
  [OP_XENT_LINEAR_HITS] = r_xent_linear,
  [OP_RESHAPE] = r_reshape,
  [OP_PERMUTE] = r_permute,
  [OP_SLICE] = r_slice,
  [OP_PAD] = r_pad,
  [OP_CONCAT] = r_concat,
  [OP_SUM_TO] = r_sum_to,
  [OP_BROADCAST_TO] = r_broadcast_to,
  [OP_EMBEDDING_GRAD] = r_embedding_grad,
  [OP_MASKED_ROWS_GRAD] = r_masked_rows_grad,
  [OP_SUMSQ] = r_sumsq,
  [OP_CLIP_COEF] = r_clip_coef,
  [OP_ADAM_SCHED] = r_adam_sched,
  [OP_ATTENTION] = r_attention,
  [OP_ATTENTION_LSE] = r_attention,
  [OP_ATTENTION_GRAD] = r_attention_grad,
};

/* elementwise ops (an expression in render_expr.c) share one loop template */
static RenderFn render_fn(OpKind op) {
  if (op >= OP_COUNT) return NULL;
  return render_op[op] ? render_op[op] : cg_expr_supports(&c_dialect, op) ? r_elementwise : NULL;
}
bool render_c_supports(OpKind op) { return render_fn(op) != NULL; }

/* ---- kernels and host code --------------------------------------------------------------- */

#define EXTERNAL_KERNEL "__attribute__((visibility(\"hidden\"))) int"

void render_c_kernel_decls(FILE *out, const KProgram *p, const char *prefix) {
  for (uint32_t ki = 0; ki < p->nkernels; ki++) fprintf(out, EXTERNAL_KERNEL " %s_k%u(const cram_cpu_run *R);\n", prefix, ki);
  fputc('\n', out);
}

bool render_c_kernels(FILE *out, const KProgram *p, const char *prefix, char *err, size_t errlen) {
  return render_c_kernel_range(out, p, prefix, 0, p->nkernels, false, err, errlen);
}

bool render_c_kernel_range(FILE *out, const KProgram *p, const char *prefix, uint32_t k0, uint32_t k1, bool external, char *err,
                           size_t errlen) {
  RCtx c = { out, p, NULL, 0, plan_groups(p) };
  if (!c.group) return snprintf(err, errlen, "out of memory"), false;
  bool ok = true;
  for (uint32_t ki = k0; ok && ki < k1 && ki < p->nkernels; ki++) {
    const Kernel *K = &p->kernels[ki];
    fprintf(out, "%s %s_k%u(const cram_cpu_run *R) {\n", external ? EXTERNAL_KERNEL : "static int", prefix, ki);
    for (uint32_t j = 0; ok && j < K->count; j++) {
      c.ki = K->first + j;
      c.k = &p->nodes[c.ki];
      const Node *n = c.k->n;
      if (!render_c_supports(n->op)) {
        snprintf(err, errlen, "%%%u: op %s has no C kernel", c.k->id, ir_ops[n->op].name);
        ok = false;
        break;
      }
      if (c.group[c.ki] < c.ki) { /* a later node of a group: rendered with its first */
        fprintf(out, "  /* %%%u = %s: computed with %%%u */\n", c.k->id, ir_ops[n->op].name, p->nodes[c.group[c.ki]].id);
        continue;
      }
      char loc[160] = "";
      if (n->loc.file) snprintf(loc, sizeof loc, " at %s:%u:%u", n->loc.file, n->loc.line, n->loc.col);
      fprintf(out, "  { /* %%%u = %s", c.k->id, ir_ops[n->op].name);
      for (uint32_t m = c.ki + 1; m <= c.group[c.ki]; m++)
        fprintf(out, ", %%%u = %s", p->nodes[m].id, ir_ops[p->nodes[m].n->op].name);
      fprintf(out, " */\n#define NODE \"%%%u (%s%s)\"\n", c.k->id, ir_ops[n->op].name, loc);
      render_fn(n->op)(&c);
      fputs("#undef NODE\n  }\n", out);
    }
    fputs("  (void)R;\n  return 0;\n}\n\n", out);
  }
  free(c.group);
  return ok && !ferror(out);
}

void render_c_host(FILE *out, const KProgram *p, const char *prefix) {
  fprintf(out, "static int %s_run(const cram_cpu_run *R) {\n  cc_blas_serial();\n", prefix);
  for (uint32_t ki = 0; ki < p->nkernels; ki++) fprintf(out, "  if (%s_k%u(R)) return -1;\n", prefix, ki);
  fputs("  return 0;\n}\n\n", out);
}

/* ---- the kernel table of the profile --------------------------------------------------- */

static const char *op_family(const Node *n) {
  switch (n->op) {
  case OP_ADAM_M:
  case OP_ADAM_V:
  case OP_ADAMW_PARAM:
  case OP_ADAM_SCHED:
  case OP_CLIP_COEF: return "optimizer";
  case OP_SOFTMAX:
  case OP_SOFTMAX_GRAD: return "softmax";
  default: break;
  }
  switch (ir_ops[n->op].cls) {
  case OC_GEMM: return "gemm";
  case OC_LOSS: return "loss";
  case OC_NORM: return "norm";
  case OC_REDUCE: return "reduction";
  case OC_GATHER: return "gather";
  case OC_VIEW: return "layout";
  case OC_ATTENTION: return "attention";
  default: return "elementwise";
  }
}

/* A kernel's family: its heaviest kind of node, in this order. */
static int family_rank(const char *f) {
  static const char *const order[] = { "gemm",      "attention", "loss",   "norm",  "softmax",
                                       "optimizer", "reduction", "gather", "layout" };
  for (int i = 0; i < (int)(sizeof order / sizeof order[0]); i++)
    if (!strcmp(f, order[i])) return i;
  return 99;
}

static int64_t value_bytes(const Node *n) { return ir_shape_numel(&n->shape) * (int64_t)ir_dtype_size(n->dtype); }

bool render_c_kernel_table(FILE *out, const KProgram *p, const char *prefix) {
  const Graph *g = p->g;
  uint32_t *group = plan_groups(p), *kof = malloc((g->n ? g->n : 1) * sizeof *kof),
           *kn = malloc((p->nnodes ? p->nnodes : 1) * sizeof *kn), *seen = calloc(g->n ? g->n : 1, sizeof *seen);
  int64_t *bytes = calloc(p->nkernels ? p->nkernels : 1, sizeof *bytes);
  bool *ext = calloc(g->n ? g->n : 1, sizeof *ext), ok = group && kof && kn && seen && bytes && ext;
  if (ok) {
    /* the kernel computing each value; a group's later nodes count in its first node's kernel */
    for (uint32_t v = 0; v < g->n; v++) kof[v] = UINT32_MAX;
    for (uint32_t ki = 0; ki < p->nkernels; ki++)
      for (uint32_t j = p->kernels[ki].first; j < p->kernels[ki].first + p->kernels[ki].count; j++) kn[j] = ki;
    for (uint32_t j = 0; j < p->nnodes; j++) kof[p->nodes[j].id] = kn[group[j] < j ? group[j] : j];
    /* as pass_graph_stats: an input read once per kernel using it, a value written when used outside its kernel */
    for (uint32_t j = 0; j < p->nnodes; j++) {
      const Node *n = p->nodes[j].n;
      uint32_t k = kof[p->nodes[j].id];
      for (int i = 0; i < n->nin; i++) {
        ValueId q = n->in[i];
        if (kof[q] == k) continue;
        if (kof[q] != UINT32_MAX) ext[q] = true;
        if (seen[q] != k + 1) seen[q] = k + 1, bytes[k] += value_bytes(&g->nodes[q]);
      }
    }
    for (uint32_t i = 0; i < g->nout; i++) ext[g->outputs[i].value] = true;
    for (uint32_t j = 0; j < p->nnodes; j++)
      if (ext[p->nodes[j].id]) bytes[kof[p->nodes[j].id]] += value_bytes(p->nodes[j].n);
    fprintf(out, "static const cram_cpu_kernel %s_kernels[] = {\n", prefix);
    for (uint32_t ki = 0; ki < p->nkernels; ki++) {
      const Kernel *K = &p->kernels[ki];
      const char *fam = "elementwise";
      char ops[96];
      int len = snprintf(ops, sizeof ops, "%%%u", p->nodes[K->first].id);
      for (uint32_t j = K->first; j < K->first + K->count; j++) {
        const Node *n = p->nodes[j].n;
        if (family_rank(op_family(n)) < family_rank(fam)) fam = op_family(n);
        if (len < (int)sizeof ops - 1)
          len += snprintf(ops + len, sizeof ops - (size_t)len, "%s%s", j == K->first ? " " : "+", ir_ops[n->op].name);
      }
      if (len >= (int)sizeof ops - 1) memcpy(ops + sizeof ops - 4, "...", 4);
      fprintf(out, "  {%s_k%u, \"%s\", \"%s\", %lldu},\n", prefix, ki, ops, fam, (long long)bytes[ki]);
    }
    if (!p->nkernels) fputs("  {NULL, \"\", \"\", 0},\n", out);
    fputs("};\n\n", out);
  }
  free(group), free(kof), free(kn), free(seen), free(bytes), free(ext);
  return ok;
}
