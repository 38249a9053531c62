/* render_c.c - the C renderer of the kernel description (kernel.h) for the
 * cpu target, in the manner of tinygrad's renderer/cstyle.py:
 *
 *   c_dialect      how the shared expression table of the elementwise ops
 *                  (render_expr.c, also the CUDA renderer's) is written in C:
 *                  double math, cc_ helpers, %.17g constants;
 *   render_op[]    per op, the statement(s) computing one node: elementwise
 *                  ops share one loop template over those expressions, the rest call
 *                  the kernel library (codegen/cpu_step/cram_cpu_kernels.h)
 *                  with constant shapes; GEMM nodes become cblas_sgemm calls
 *                  (a loop of calls when batched) + the epilogue.
 *
 * A kernel is one C function running its nodes' loops in node order (true
 * loop fusion of a kernel's elementwise chain into one loop is a later step).
 * The host function of a graph calls the kernels in list order with the
 * arena base and constant offsets; the list is data, so the LLVM-C emission
 * of this host code can replace render_c_host without touching the kernels. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "render_c.h"
#include "render_expr.h"

typedef struct RCtx {
  FILE *out;
  const KProgram *p;
  const KNode *k;
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
static const CgDialect c_dialect = {.helper = "cc_", .libm = "", .zero = "0.0", .one = "1.0", .lit = "%.17g"};

/* One loop: o[e] = (float)(expr(a = x0[i0(e)], b = x1[i1(e)], c = ...)). */
static void r_elementwise(RCtx *c) {
  const Node *n = c->k->n;
  const Shape *os = &n->shape;
  int64_t N = numel(os);
  int nload = cg_expr_nload(n);
  decl_bufs(c);
  if (n->op == OP_ADAMW_PARAM) fputs("    const double s0 = x3[0], s1 = x3[1], s2 = x3[2];\n", c->out);
  put_dims(c->out, "od", os);
  for (int i = 0; i < nload; i++) {
    char nm[16];
    snprintf(nm, sizeof nm, "id%d", i);
    put_dims(c->out, nm, in_shape(c, i));
  }
  fputs("    (void)od;\n", c->out);
  for (int i = 0; i < nload; i++) fprintf(c->out, "    (void)id%d;\n", i);
  fprintf(c->out, "#pragma omp parallel for if (%" PRId64 " > CC_PAR_MIN)\n    for (int64_t e = 0; e < %" PRId64 "; e++) {\n", N, N);
  static const char *var[] = {"a", "b", "c", "d"};
  for (int i = 0; i < nload; i++) {
    const Shape *is = in_shape(c, i);
    int64_t ni = numel(is);
    fprintf(c->out, "      double %s = x%d[", var[i], i);
    if (ir_shape_eq(is, os)) fputs("e", c->out);
    else if (ni == 1) fputs("0", c->out);
    else {
      bool suffix = is->rank <= os->rank;
      for (int d = 0; suffix && d < is->rank; d++) suffix = is->dim[is->rank - 1 - d] == os->dim[os->rank - 1 - d];
      if (suffix) fprintf(c->out, "e %% %" PRId64, ni);
      else fprintf(c->out, "cc_bcast(%d, od, %d, id%d, e)", os->rank, is->rank, i);
    }
    fputs("];\n", c->out);
  }
  fputs("      o[e] = (float)(", c->out);
  cg_expr(c->out, n, &c_dialect);
  fputs(");\n    }\n", c->out);
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
  fprintf(c->out, "    cc_masked_rows(o, x0, x1, %" PRId64 ", %" PRId64 ", %" PRId64 ", %" PRId64 ");\n", xs->dim[0],
          xs->dim[1], xs->dim[2], ir_get_int(c->k->n, ATTR_SLOTS));
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
    fprintf(c->out, "    float *y = malloc((size_t)%" PRId64 " * sizeof(float));\n    if (!y) return cc_fail(R, NODE, \"out of memory\");\n",
            rows * g->N);
  fprintf(c->out,
          "    cc_gemm(%d, %d, %" PRId64 ", %" PRId64 ", %" PRId64 ", %" PRId64 ", x%d, %" PRId64 ", %" PRId64 ", x%d, %" PRId64
          ", %" PRId64 ", %s, %" PRId64 ", %" PRId64 ");\n",
          g->ta, g->tb, g->M, g->N, g->K, g->batch, g->a_in, g->lda, g->stride_a, g->b_in, g->ldb, g->stride_b,
          scratch ? "y" : "o", g->ldc, g->stride_c);
  int act = act_code(g->act);
  switch (g->epi) {
  case KEPI_NONE: case KEPI_BIAS: break;
  case KEPI_ACT: fprintf(c->out, "    cc_epi_bias_act(o, %s, %" PRId64 ", %" PRId64 ", %d);\n", g->bias ? "x2" : "NULL", rows, g->N, act); break;
  case KEPI_GLU: fprintf(c->out, "    cc_epi_glu(o, y, %s, %" PRId64 ", %" PRId64 ", %d);\n", g->bias ? "x2" : "NULL", rows, g->N / 2, act); break;
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
          "    if (!R->training || %.17g == 0.0) { if ((const void *)o != (const void *)x0) memmove(o, x0, %" PRId64 " * sizeof(float)); }\n"
          "    else {\n#pragma omp parallel for if (%" PRId64 " > CC_PAR_MIN)\n"
          "      for (int64_t e = 0; e < %" PRId64 "; e++)\n"
          "        o[e] = cc_uniform(R->seed, %" PRIu64 "ull, (uint64_t)e) < %.17g ? 0.0f : (float)((double)x0[e] / (1.0 - %.17g));\n    }\n",
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
  else
    fprintf(c->out, "    if (cc_cross_entropy_grad(R, NODE, o, x0, x1, x2, %" PRId64 ", %" PRId64 ", %" PRId64 ")) return -1;\n",
            ls->dim[0], ls->dim[1], ir_get_int(c->k->n, ATTR_IGNORE));
}
static void r_xent_linear(RCtx *c) {
  const Node *n = c->k->n;
  const Shape *xs = in_shape(c, 0), *ws = in_shape(c, 1);
  bool tb = ir_get_int(n, ATTR_TRANS_B) != 0;
  int wrt = n->op == OP_XENT_LINEAR ? -1 : (int)ir_get_int(n, ATTR_WRT);
  decl_bufs(c);
  fprintf(c->out, "    if (cc_xent_linear(R, NODE, o, x0, x1, x2, %s, %" PRId64 ", %" PRId64 ", %" PRId64 ", %d, %" PRId64 ", %d)) return -1;\n",
          n->nin == 4 ? "x3" : "NULL", xs->dim[0], xs->dim[1], ws->dim[tb ? 0 : 1], tb, ir_get_int(n, ATTR_IGNORE), wrt);
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
    fprintf(c->out, "    cc_blocks(o, %" PRId64 ", %" PRId64 ", x%d, %" PRId64 ", 0, %" PRId64 ", %" PRId64 ");\n",
            total * inner, off * inner, i, len * inner, outer, len * inner);
    off += len;
  }
}
static void r_sum_to(RCtx *c) {
  const Shape *xs = in_shape(c, 0), *os = &c->k->n->shape;
  decl_bufs(c);
  put_dims(c->out, "xd", xs);
  put_dims(c->out, "od", os);
  fprintf(c->out, "    if (cc_sum_to(R, NODE, o, x0, %d, xd, %d, od, %" PRId64 ", %" PRId64 ")) return -1;\n", xs->rank,
          os->rank, numel(xs), numel(os));
}
static void r_broadcast_to(RCtx *c) {
  const Shape *xs = in_shape(c, 0), *os = &c->k->n->shape;
  decl_bufs(c);
  put_dims(c->out, "xd", xs);
  put_dims(c->out, "od", os);
  fprintf(c->out, "    for (int64_t e = 0; e < %" PRId64 "; e++) o[e] = x0[cc_bcast(%d, od, %d, xd, e)];\n", numel(os),
          os->rank, xs->rank);
}
static void r_sumsq(RCtx *c) {
  decl_bufs(c);
  fprintf(c->out, "    cc_sumsq(o, x0, %" PRId64 ");\n", numel(in_shape(c, 0)));
}
static void r_clip_coef(RCtx *c) {
  decl_bufs(c);
  double mn = ir_get_float(c->k->n, ATTR_MAX_NORM);
  fprintf(c->out,
          "    double mn = %.17g, coef = mn / (sqrt((double)x0[0]) + 1e-6);\n"
          "    o[0] = (float)(mn <= 0 ? 1.0 : (coef < 1.0 ? coef : 1.0));\n"
          "    if (mn > 0 && isnan(coef)) o[0] = (float)coef;\n",
          mn);
}
static void r_adam_sched(RCtx *c) {
  decl_bufs(c);
  fprintf(c->out, "    if (cc_adam_sched(R, NODE, o, x0, x1, %.17g, %.17g)) return -1;\n", ir_get_float(c->k->n, ATTR_BETA1),
          ir_get_float(c->k->n, ATTR_BETA2));
}

typedef void (*RenderFn)(RCtx *c);

static const RenderFn render_op[OP_COUNT] = {
  [OP_SINUSOID] = r_sinusoid, [OP_FILL] = r_fill, [OP_ARANGE] = r_arange,
  [OP_EMBEDDING] = r_embedding, [OP_MASKED_ROWS] = r_masked_rows, [OP_MASKED_TARGETS] = r_masked_targets,
  [OP_MATMUL] = r_gemm, [OP_MATMUL_ACT] = r_gemm, [OP_MATMUL_GLU] = r_gemm, [OP_MATMUL_ACT_GRAD] = r_gemm,
  [OP_MATMUL_GLU_GRAD] = r_gemm,
  [OP_DROPOUT] = r_dropout, [OP_GLU] = r_glu, [OP_GLU_GRAD] = r_glu_grad,
  [OP_LAYERNORM] = r_layernorm, [OP_ADD_LAYERNORM] = r_layernorm, [OP_RMSNORM] = r_rmsnorm, [OP_SOFTMAX] = r_softmax,
  [OP_LAYERNORM_GRAD] = r_layernorm_grad, [OP_LAYERNORM_GRAD_ADD] = r_layernorm_grad,
  [OP_RMSNORM_GRAD] = r_rmsnorm_grad, [OP_SOFTMAX_GRAD] = r_softmax_grad,
  [OP_MEAN] = r_mean, [OP_CROSS_ENTROPY] = r_cross_entropy, [OP_CROSS_ENTROPY_GRAD] = r_cross_entropy,
  [OP_XENT_LINEAR] = r_xent_linear, [OP_XENT_LINEAR_GRAD] = r_xent_linear,
  [OP_RESHAPE] = r_reshape, [OP_PERMUTE] = r_permute, [OP_SLICE] = r_slice, [OP_PAD] = r_pad, [OP_CONCAT] = r_concat,
  [OP_SUM_TO] = r_sum_to, [OP_BROADCAST_TO] = r_broadcast_to,
  [OP_EMBEDDING_GRAD] = r_embedding_grad, [OP_MASKED_ROWS_GRAD] = r_masked_rows_grad,
  [OP_SUMSQ] = r_sumsq, [OP_CLIP_COEF] = r_clip_coef, [OP_ADAM_SCHED] = r_adam_sched,
};

/* elementwise ops (an expression in render_expr.c) share one loop template */
static RenderFn render_fn(OpKind op) {
  if (op >= OP_COUNT) return NULL;
  return render_op[op] ? render_op[op] : cg_expr_supports(&c_dialect, op) ? r_elementwise : NULL;
}
bool render_c_supports(OpKind op) { return render_fn(op) != NULL; }

/* ---- kernels and host code --------------------------------------------------------------- */

bool render_c_kernels(FILE *out, const KProgram *p, const char *prefix, char *err, size_t errlen) {
  RCtx c = {out, p, NULL};
  for (uint32_t ki = 0; ki < p->nkernels; ki++) {
    const Kernel *K = &p->kernels[ki];
    fprintf(out, "static int %s_k%u(const cram_cpu_run *R) {\n", prefix, ki);
    for (uint32_t j = 0; j < K->count; j++) {
      c.k = &p->nodes[K->first + j];
      const Node *n = c.k->n;
      if (!render_c_supports(n->op)) {
        snprintf(err, errlen, "%%%u: op %s has no C kernel", c.k->id, ir_ops[n->op].name);
        return false;
      }
      char loc[160] = "";
      if (n->loc.file) snprintf(loc, sizeof loc, " at %s:%u:%u", n->loc.file, n->loc.line, n->loc.col);
      fprintf(out, "  { /* %%%u = %s */\n#define NODE \"%%%u (%s%s)\"\n", c.k->id, ir_ops[n->op].name, c.k->id,
              ir_ops[n->op].name, loc);
      render_fn(n->op)(&c);
      fputs("#undef NODE\n  }\n", out);
    }
    fputs("  (void)R;\n  return 0;\n}\n\n", out);
  }
  return !ferror(out);
}

void render_c_host(FILE *out, const KProgram *p, const char *prefix) {
  fprintf(out, "static int %s_run(const cram_cpu_run *R) {\n", prefix);
  for (uint32_t ki = 0; ki < p->nkernels; ki++) fprintf(out, "  if (%s_k%u(R)) return -1;\n", prefix, ki);
  fputs("  return 0;\n}\n\n", out);
}
