/* render_cuda.c - the CUDA renderer of the kernel description (kernel.h),
 * written for the H100/A100. The kernels are the library's
 * (codegen/cuda_kernels/<family>.cuh, embedded: cuda_lib.h); this renderer writes
 * which of them run, in which order, on which buffers and with which
 * constants. One file per concern (render_cuda_impl.h):
 *
 *   elementwise   a Kernel's run of elementwise nodes becomes ONE launch
 *                 (render_cuda_ew.c); adamw_multi's partition makes the whole
 *                 AdamW update (m, v, param of every parameter) one launch.
 *   row-wise      layernorm, add_layernorm, layernorm_grad(_add),
 *                 rmsnorm(_grad), softmax(_grad), cross-entropy rows: one
 *                 warp per row (8 rows per 256-thread block).
 *   GEMMs         cuBLASLt entries in the launch table (render_cuda_gemm.c).
 *   xent_linear   chunks of rows: logits GEMM into scratch, a warp-per-row
 *                 log-softmax kernel, and the backward GEMMs
 *                 (render_cuda_xent.c).
 *   reductions    sumsq, cross-entropy mean: per-block partials in scratch,
 *                 then one block sums them in double (deterministic).
 *
 * Every kernel has the signature (void *const *P, char *T, u64 seedp, int
 * training, int *E, int code): its pointer table, scratch, the DEVICE address
 * of the run's dropout seed (the shim writes the seed there before each run,
 * so a captured CUDA graph replays with a fresh one), mode, and the error
 * word a kernel sets (atomicCAS, first error wins) to its launch number for a
 * bad token id / target / step. Compute is f32 (reductions of losses and
 * norms in double); bf16 values (--precision bf16, the graphs of
 * autocast_bf16) are stored as __nv_bfloat16 behind cr_bf16p: loads widen to
 * float, stores round to nearest even, GEMMs take CUDA_R_16BF operands. */
#include <stdlib.h>
#include <string.h>

#include "cuda_lib.h"
#include "render_cuda_impl.h"

/* ---- per-op render functions (one or more launches per node) ------------------------- */

static void r_fill(RCu *c) {
  int64_t N = rc_numel(&c->k->n->shape);
  double v = ir_get_float(c->k->n, ATTR_VALUE);
  if (c->k->n->dtype == DT_I32)
    rc_launch(c, rc_grid_for(N, 1), CR_BLOCK, "cr_fill(o, %" PRId64 "ll, (int)%lld)", N, (long long)v);
  else rc_launch(c, rc_grid_for(N, 1), CR_BLOCK, "cr_fill(o, %" PRId64 "ll, (float)%.9g)", N, v);
}
static void r_sinusoid(RCu *c) {
  int64_t S = c->k->n->shape.dim[0], H = c->k->n->shape.dim[1];
  rc_launch(c, rc_grid_for(S * H, 1), CR_BLOCK, "cr_sinusoid(o, %" PRId64 "ll, %" PRId64 "ll)", S, H);
}
static void r_arange(RCu *c) {
  int64_t N = rc_numel(&c->k->n->shape);
  rc_launch(c, rc_grid_for(N, 1), CR_BLOCK, "cr_arange(o, %" PRId64 "ll)", N);
}
static void r_embedding(RCu *c) {
  const Shape *ts = rc_in_shape(c, 0);
  int64_t n = rc_numel(rc_in_shape(c, 1)), V = ts->dim[0], H = ts->dim[1];
  rc_launch(c, rc_grid_for(n * H, 1), CR_BLOCK, "cr_embedding(o, x0, x1, %" PRId64 "ll, %" PRId64 "ll, %" PRId64 "ll, E, code)",
            n, V, H);
}
static void r_masked_rows(RCu *c) {
  const Shape *xs = rc_in_shape(c, 0);
  int64_t B = xs->dim[0], S = xs->dim[1], H = xs->dim[2], count = ir_get_int(c->k->n, ATTR_SLOTS);
  rc_launch(c, (uint32_t)B, CR_BLOCK, "cr_masked_rows<%" PRId64 ">(o, x0, x1, %" PRId64 "ll, %" PRId64 "ll)",
            count > 0 ? count : 1, S, H);
}
static void r_masked_targets(RCu *c) {
  const Shape *ts = rc_in_shape(c, 0);
  int64_t B = ts->dim[0], S = ts->dim[1], count = ir_get_int(c->k->n, ATTR_SLOTS);
  rc_launch(c, (uint32_t)B, 32, "cr_masked_targets<%" PRId64 ">(o, x0, %" PRId64 "ll)", count > 0 ? count : 1, S);
}
static void zero_launch(RCu *c, int64_t N) { rc_launch(c, rc_grid_for(N, 1), CR_BLOCK, "cr_fill(o, %" PRId64 "ll, 0.f)", N); }
static void r_embedding_grad(RCu *c) {
  int64_t n = rc_numel(rc_in_shape(c, 0)), V = c->k->n->shape.dim[0], H = c->k->n->shape.dim[1];
  zero_launch(c, V * H);
  rc_launch(c, rc_grid_for(n * H, 1), CR_BLOCK, "cr_embedding_grad(o, x0, x1, %" PRId64 "ll, %" PRId64 "ll, %" PRId64 "ll)", n, V,
            H);
}
static void r_masked_rows_grad(RCu *c) {
  const Shape *s = &c->k->n->shape;
  int64_t B = s->dim[0], S = s->dim[1], H = s->dim[2], slots = ir_get_int(c->k->n, ATTR_SLOTS);
  rc_launch(c, (uint32_t)B, CR_BLOCK, "cr_masked_rows_grad<%" PRId64 ">(o, x0, x1, %" PRId64 "ll, %" PRId64 "ll)", S, slots, H);
}
static void r_dropout(RCu *c) {
  const Node *n = c->k->n;
  int64_t N = rc_numel(&n->shape);
  rc_launch(c, rc_grid_for(N, 1), CR_BLOCK, "cr_dropout(o, x0, %" PRId64 "ll, %.17g, %" PRIu64 "ull, seedp, training)", N,
            ir_get_float(n, ATTR_P), (uint64_t)ir_get_int(n, ATTR_KEY));
}
static void r_glu(RCu *c) {
  int64_t F = rc_lastd(&c->k->n->shape), rows = rc_numel(&c->k->n->shape) / F;
  rc_launch(c, rc_grid_for(rows * F, 1), CR_BLOCK, "cr_glu(o, x0, %" PRId64 "ll, %" PRId64 "ll, %s)", rows, F,
            rc_act(ir_get_str(c->k->n, ATTR_ACT)));
}
static void r_glu_grad(RCu *c) {
  const Shape *dy = rc_in_shape(c, 1);
  int64_t F = rc_lastd(dy), rows = rc_numel(dy) / F;
  rc_launch(c, rc_grid_for(rows * F, 1), CR_BLOCK, "cr_glu_grad(o, x0, x1, %" PRId64 "ll, %" PRId64 "ll, %s)", rows, F,
            rc_act(ir_get_str(c->k->n, ATTR_ACT)));
}

/* row-wise ops over the last axis H of the output: rows * H elements */
static void rows_h(RCu *c, int64_t *rows, int64_t *H) {
  *H = rc_lastd(&c->k->n->shape);
  *rows = rc_numel(&c->k->n->shape) / *H;
}
static const char *tf(bool b) { return b ? "true" : "false"; }
#define NUL "(const float *)0"
/* The readers of v in the program, graph outputs counted. */
static uint32_t readers_of(const KProgram *p, ValueId v) {
  uint32_t n = 0;
  for (uint32_t j = 0; j < p->nnodes; j++)
    for (int i = 0; i < p->nodes[j].n->nin; i++) n += p->nodes[j].n->in[i] == v;
  for (uint32_t i = 0; i < p->g->nout; i++) n += p->g->outputs[i].value == v;
  return n;
}
/* The cast to bf16 of a norm's output right after it in its kernel (autocast's
 * GEMM operand): the norm kernel stores it too, rounding on the store as the
 * cast would (the launch and a re-read of the f32 result saved). *only: nothing
 * else reads the f32 result, so the kernel stores the bf16 copy alone. The
 * cast is then rendered here (c->next moves past it). */
static const KNode *bf16_copy(RCu *c, bool *only) {
  const KProgram *p = c->p;
  if (c->next >= c->end) return NULL;
  const KNode *q = &p->nodes[c->next];
  ValueId v = c->k->id;
  if (q->n->op != OP_CAST || q->n->dtype != DT_BF16 || q->n->in[0] != v || q->out_state || c->k->n->dtype != DT_F32) return NULL;
  *only = readers_of(p, v) == 1;
  c->next++;
  return q;
}
/* bf16_copy for a kernel that writes one result: the copy only when it is the f32 result's sole reader */
static const KNode *bf16_copy_alone(RCu *c) {
  bool only = false;
  const KNode *q = bf16_copy(c, &only);
  if (q && !only) c->next--, q = NULL; /* both results wanted: the cast stays a launch */
  return q;
}
static void r_layernorm(RCu *c) {
  int64_t rows, H;
  rows_h(c, &rows, &H);
  const Node *n = c->k->n;
  bool add = n->op == OP_ADD_LAYERNORM;
  int w = add ? 2 : 1; /* inputs (x [, x2]) [, weight [, bias]] */
  bool hw = n->nin > w, hb = n->nin > w + 1;
  char xs[8], ws[8], bs[8];
  snprintf(xs, sizeof xs, "x1"), snprintf(ws, sizeof ws, "x%d", w), snprintf(bs, sizeof bs, "x%d", w + 1);
  const KNode *copy = bf16_copy_alone(c);
  rc_launch_out(c, rc_grid_rows(rows), CR_BLOCK, "ob", copy,
                "cr_layernorm<%s, %s, %s>(%s, x0, %s, %s, %s, %" PRId64 "ll, %" PRId64 "ll, (float)%.9g)", tf(add), tf(hw),
                tf(hb), copy ? "ob" : "o", add ? xs : NUL, hw ? ws : NUL, hb ? bs : NUL, rows, H, ir_get_float(n, ATTR_EPS));
}
/* fuse_elementwise's residual sum + layernorm kernel ([cast up of one addend,] add, layernorm [, its cast to
 * bf16]) as one row-wise launch: cr_layernorm<ADD> reads the addends once (the cast's bf16 input itself,
 * widened on load), stores the sum where anything else reads it, and the norm (or only its bf16 copy).
 * Returns how many of K's nodes it rendered (0: not that shape; the nodes render one by one). */
static uint32_t render_add_norm(RCu *c, const Kernel *K) {
  const KProgram *p = c->p;
  uint32_t j = K->first, end = K->first + K->count;
  const KNode *c0 = NULL, *add, *ln;
  if (p->nodes[j].n->op == OP_CAST) c0 = &p->nodes[j++];
  if (j + 1 >= end) return 0;
  add = &p->nodes[j], ln = &p->nodes[j + 1];
  const Node *a = add->n, *l = ln->n;
  if (a->op != OP_ADD || l->op != OP_LAYERNORM || l->in[0] != add->id || l->dtype != DT_F32 || add->out_state) return 0;
  int other = 0; /* the add's operand that is not the cast */
  if (c0) {
    if (c0->n->dtype != DT_F32 || readers_of(p, c0->id) != 1 || (a->in[0] != c0->id && a->in[1] != c0->id)) return 0;
    other = a->in[0] == c0->id ? 1 : 0;
  }
  for (int k = 0; k < 2; k++)
    if (!ir_shape_eq(&rc_graph(c)->nodes[a->in[k]].shape, &a->shape)) return 0;
  int64_t H = rc_lastd(&l->shape), rows = rc_numel(&l->shape) / H;
  bool hw = l->nin > 1, hb = l->nin > 2, store_sum = readers_of(p, add->id) > 1;
  c->k = ln;
  c->next = j + 2, c->end = end;
  const KNode *copy = bf16_copy_alone(c);
  c->k = add;
  rc_node_desc(c);
  rc_begin(c, rc_grid_rows(rows), CR_BLOCK);
  rc_decl_out(c, "o", copy ? copy : ln);
  rc_decl_in(c, "xa", a->in[other], add->in[other]);
  if (c0) rc_decl_in(c, "xb", c0->n->in[0], c0->in[0]);
  else rc_decl_in(c, "xb", a->in[1 - other], add->in[1 - other]);
  if (hw) rc_decl_in(c, "w", l->in[1], ln->in[1]);
  if (hb) rc_decl_in(c, "bi", l->in[2], ln->in[2]);
  if (store_sum) rc_decl_out(c, "sum", add);
  fprintf(c->cu, "  cr_layernorm<true, %s, %s, %s>(o, xa, xb, %s, %s, %" PRId64 "ll, %" PRId64 "ll, (float)%.9g, %s);\n", tf(hw),
          tf(hb), tf(store_sum), hw ? "w" : NUL, hb ? "bi" : NUL, rows, H, ir_get_float(l, ATTR_EPS),
          store_sum ? "sum" : "(float *)0");
  rc_end(c);
  return c->next - K->first;
}
static void r_rmsnorm(RCu *c) {
  int64_t rows, H;
  rows_h(c, &rows, &H);
  bool w = c->k->n->nin > 1;
  const KNode *copy = bf16_copy_alone(c);
  rc_launch_out(c, rc_grid_rows(rows), CR_BLOCK, "ob", copy,
                "cr_rmsnorm<%s>(%s, x0, %s, %" PRId64 "ll, %" PRId64 "ll, (float)%.9g)", tf(w), copy ? "ob" : "o", w ? "x1" : NUL,
                rows, H, ir_get_float(c->k->n, ATTR_EPS));
}
static void r_softmax(RCu *c) {
  int64_t rows, H;
  rows_h(c, &rows, &H);
  rc_launch(c, rc_grid_rows(rows), CR_BLOCK, "cr_softmax(o, x0, %" PRId64 "ll, %" PRId64 "ll)", rows, H);
}
static void r_layernorm_param_final(RCu *c, const KNode *dw, const KNode *db, int64_t H, int64_t nb);
/* The blocks of a parameter-gradient partial sum over rows x H: enough for min_rows rows each, at most
 * cap; *R rows each; the scratch for their [dw | db] partials reserved. */
static int64_t param_blocks(RCu *c, int64_t rows, int64_t H, int64_t min_rows, int64_t cap, int64_t *R) {
  int64_t nb = (rows + min_rows - 1) / min_rows;
  if (nb > cap) nb = cap;
  if (nb < 1) nb = 1;
  *R = (rows + nb - 1) / nb;
  rc_need_scratch(c, CR_SCR_PART + (uint64_t)(nb * 2 * H) * 4);
  return nb;
}

#define CR_LNPG_BLOCKS      264
#define CR_LNGP_BLOCKS      528 /* the fused norm gradient's blocks (rows a block >= CR_LNPG_ROWS) */
#define CR_LNGP_MAX_COLUMNS 32  /* its lanes keep H / 32 columns' sums in registers: H <= 1024 */
static void r_layernorm_grad(RCu *c) {
  int64_t rows, H;
  rows_h(c, &rows, &H);
  const Node *n = c->k->n;
  bool add = n->op == OP_LAYERNORM_GRAD_ADD, only = false;
  int nin = add ? n->nin - 1 : n->nin; /* (x, [w], dy) [, dres] */
  char dy[8], dres[8];
  snprintf(dy, sizeof dy, "x%d", nin - 1), snprintf(dres, sizeof dres, "x%d", nin);
  /* the parameter gradients the partition joined (ir_norm_grad_params), computed in this pass over x and dy */
  const KNode *dw = NULL, *db = NULL;
  int64_t cpl = (H + 31) / 32;
  if (c->next < c->end && ir_norm_grad_params(n, c->p->nodes[c->next].n) && cpl <= CR_LNGP_MAX_COLUMNS) {
    dw = &c->p->nodes[c->next++];
    if (c->next < c->end && ir_siblings(dw->n, c->p->nodes[c->next].n)) db = &c->p->nodes[c->next++];
  }
  const KNode *copy = bf16_copy(c, &only); /* dx in f32 (the residual gradient) and its bf16 copy (the dx GEMM's operand) */
  const char *fmt_w = nin == 3 ? "x1" : NUL, *fmt_r = add ? dres : NUL, *o2 = copy ? "ob" : "(float *)0";
  if (!dw) {
    rc_launch_out(c, rc_grid_rows(rows), CR_BLOCK, "ob", copy,
                  "cr_layernorm_grad<%s, %s, %s, %s>(o, x0, %s, %s, %s, %" PRId64 "ll, %" PRId64 "ll, (float)%.9g, %s)",
                  tf(nin == 3), tf(add), tf(!copy || !only), tf(copy != NULL), fmt_w, dy, fmt_r, rows, H,
                  ir_get_float(n, ATTR_EPS), o2);
    return;
  }
  int64_t R, nb = param_blocks(c, rows, H, CR_LNPG_ROWS, CR_LNGP_BLOCKS, &R);
  rc_launch_out(c, (uint32_t)nb, CR_BLOCK, "ob", copy,
                "cr_layernorm_grad_params<%" PRId64 ", %s, %s, %s, %s>(o, x0, %s, %s, %s, %" PRId64 "ll, %" PRId64
                "ll, (float)%.9g, %s, %" PRId64 "ll, T)",
                cpl, tf(nin == 3), tf(add), tf(!copy || !only), tf(copy != NULL), fmt_w, dy, fmt_r, rows, H,
                ir_get_float(n, ATTR_EPS), o2, R);
  r_layernorm_param_final(c, dw, db, H, nb);
}
/* the parameter gradients from nb blocks' partials: one launch writing dw and/or db */
static void r_layernorm_param_final(RCu *c, const KNode *dw, const KNode *db, int64_t H, int64_t nb) {
  const KNode *self = c->k;
  c->k = dw ? dw : db;
  rc_node_desc(c);
  rc_begin(c, rc_grid_for(H, 1), CR_BLOCK);
  if (dw) rc_decl_out(c, "dw", dw);
  if (db) rc_decl_out(c, "db", db);
  fprintf(c->cu, "  cr_layernorm_param_final(%s, %s, %" PRId64 "ll, %" PRId64 ", T);\n", dw ? "dw" : "(float *)0",
          db ? "db" : "(float *)0", H, nb);
  rc_end(c);
  c->k = self;
}
/* layernorm_wgrad [+ its layernorm_bgrad sibling, rendered here] or a lone
 * layernorm_bgrad, apart from their norm gradient: per-block partial sums over
 * rows (at most CR_LNPG_BLOCKS blocks, at least 2 x CR_LNPG_ROWS rows each),
 * then the sum over the blocks */
static void r_layernorm_param_grad(RCu *c) {
  const Node *n = c->k->n;
  const Shape *xs = rc_in_shape(c, 0);
  int64_t H = rc_lastd(xs), rows = rc_numel(xs) / H;
  bool bias_only = n->op == OP_LAYERNORM_BGRAD;
  const KNode *db = bias_only ? c->k : NULL, *self = c->k;
  if (!bias_only && c->next < c->end && ir_siblings(n, c->p->nodes[c->next].n)) db = &c->p->nodes[c->next++];
  int64_t R, nb = param_blocks(c, rows, H, 2 * CR_LNPG_ROWS, CR_LNPG_BLOCKS, &R); /* >= 2 steps of rows a block */
  rc_begin(c, (uint32_t)nb, CR_BLOCK);
  rc_decl_bufs(c, "");
  fprintf(c->cu, "  cr_layernorm_param_partials<%s>(x0, x1, %" PRId64 "ll, %" PRId64 "ll, (float)%.9g, %" PRId64 "ll, T);\n",
          tf(!bias_only), rows, H, ir_get_float(n, ATTR_EPS), R);
  rc_end(c);
  r_layernorm_param_final(c, bias_only ? NULL : self, db, H, nb);
}
static void r_rmsnorm_grad(RCu *c) {
  int64_t rows, H;
  rows_h(c, &rows, &H);
  int nin = c->k->n->nin; /* (x, [w], dy) */
  rc_launch(c, rc_grid_rows(rows), CR_BLOCK, "cr_rmsnorm_grad<%s>(o, x0, %s, x%d, %" PRId64 "ll, %" PRId64 "ll, (float)%.9g)",
            tf(nin == 3), nin == 3 ? "x1" : NUL, nin - 1, rows, H, ir_get_float(c->k->n, ATTR_EPS));
}
static void r_softmax_grad(RCu *c) {
  int64_t rows, H;
  rows_h(c, &rows, &H);
  rc_launch(c, rc_grid_rows(rows), CR_BLOCK, "cr_softmax_grad(o, x0, x1, %" PRId64 "ll, %" PRId64 "ll)", rows, H);
}
static void split_axis(const Shape *s, int64_t axis, int64_t *outer, int64_t *len, int64_t *inner) {
  *outer = *inner = 1;
  for (int64_t a = 0; a < s->rank; a++) {
    if (a < axis) *outer *= s->dim[a];
    if (a > axis) *inner *= s->dim[a];
  }
  *len = s->dim[axis];
}
static void r_mean(RCu *c) {
  int64_t outer, len, inner;
  split_axis(rc_in_shape(c, 0), ir_get_int(c->k->n, ATTR_AXIS), &outer, &len, &inner);
  rc_launch(c, rc_grid_for(outer * inner, 1), CR_BLOCK, "cr_mean(o, x0, %" PRId64 "ll, %" PRId64 "ll, %" PRId64 "ll)", outer, len,
            inner);
}
static void r_reshape(RCu *c) {
  int64_t N = rc_numel(&c->k->n->shape);
  if (c->k->out.slot == c->k->in[0].slot && c->k->out.offset == c->k->in[0].offset) return; /* aliased: nothing */
  rc_launch(c, rc_grid_for(N, 1), CR_BLOCK, "cr_copy(o, x0, %" PRId64 "ll)", N);
}
static void r_permute(RCu *c) {
  const Shape *is = rc_in_shape(c, 0), *os = &c->k->n->shape;
  const Attr *pa = ir_attr(c->k->n, ATTR_PERM);
  int64_t ist[IR_MAX_RANK], st = 1;
  for (int a = is->rank - 1; a >= 0; a--) ist[a] = st, st *= is->dim[a];
  rc_begin(c, rc_grid_for(rc_numel(os), 1), CR_BLOCK);
  rc_decl_bufs(c, "");
  rc_put_dims(c->cu, "od", os);
  fputs("  const long long ist[] = {", c->cu);
  for (int a = 0; a < os->rank; a++) fprintf(c->cu, "%s%" PRId64, a ? ", " : "", ist[pa->u.ints.v[a]]);
  fprintf(c->cu, "};\n  cr_permute(o, x0, %" PRId64 "ll, %d, od, ist);\n", rc_numel(os), os->rank);
  rc_end(c);
}
/* `outer` blocks of `len` elements: o[a*ostride + ooff + j] = x[a*istride + ioff + j] */
static void blocks(RCu *c, int xi, int64_t ostride, int64_t ooff, int64_t istride, int64_t ioff, int64_t outer, int64_t len) {
  fprintf(c->cu,
          "  cr_blocks(o, x%d, %" PRId64 "ll, %" PRId64 "ll, %" PRId64 "ll, %" PRId64 "ll, %" PRId64 "ll, %" PRId64 "ll);\n", xi,
          ostride, ooff, istride, ioff, outer, len);
}
static void r_slice(RCu *c) {
  int64_t outer, len, inner, start = ir_get_int(c->k->n, ATTR_START), olen = ir_get_int(c->k->n, ATTR_LEN);
  split_axis(rc_in_shape(c, 0), ir_get_int(c->k->n, ATTR_AXIS), &outer, &len, &inner);
  rc_begin(c, rc_grid_for(outer * olen * inner, 1), CR_BLOCK);
  rc_decl_bufs(c, "");
  blocks(c, 0, olen * inner, 0, len * inner, start * inner, outer, olen * inner);
  rc_end(c);
}
static void r_pad(RCu *c) {
  const Node *n = c->k->n;
  int64_t outer, len, inner, start = ir_get_int(n, ATTR_START), size = ir_get_int(n, ATTR_SIZE);
  split_axis(rc_in_shape(c, 0), ir_get_int(n, ATTR_AXIS), &outer, &len, &inner);
  zero_launch(c, rc_numel(&n->shape));
  rc_begin(c, rc_grid_for(outer * len * inner, 1), CR_BLOCK);
  rc_decl_bufs(c, "");
  blocks(c, 0, size * inner, start * inner, len * inner, 0, outer, len * inner);
  rc_end(c);
}
static void r_concat(RCu *c) {
  const Node *n = c->k->n;
  int64_t axis = ir_get_int(n, ATTR_AXIS), outer, total, inner;
  split_axis(&n->shape, axis, &outer, &total, &inner);
  rc_begin(c, rc_grid_for(rc_numel(&n->shape), 1), CR_BLOCK);
  rc_decl_bufs(c, "");
  int64_t off = 0;
  for (int i = 0; i < n->nin; i++) {
    int64_t len = rc_in_shape(c, i)->dim[axis];
    blocks(c, i, total * inner, off * inner, len * inner, 0, outer, len * inner);
    off += len;
  }
  rc_end(c);
}
/* sum_to's common case: os (after leading 1s) is a suffix of xs (bias
 * gradients): a thread per output, no atomics */
static bool sum_to_rows(const Shape *xs, const Shape *os) {
  int lead = 0;
  while (lead < os->rank && os->dim[lead] == 1) lead++;
  bool suffix = os->rank - lead <= xs->rank;
  for (int d = 0; suffix && d < os->rank - lead; d++) suffix = os->dim[os->rank - 1 - d] == xs->dim[xs->rank - 1 - d];
  return suffix && rc_numel(os) > 0 && rc_numel(xs) % rc_numel(os) == 0;
}
static void r_sum_to(RCu *c) {
  const Shape *xs = rc_in_shape(c, 0), *os = &c->k->n->shape;
  int64_t nx = rc_numel(xs), no = rc_numel(os);
  if (sum_to_rows(xs, os)) {
    rc_launch(c, rc_grid_for(no, 1), CR_BLOCK, "cr_sum_rows(o, x0, %" PRId64 "ll, %" PRId64 "ll)", nx / no, no);
    return;
  }
  zero_launch(c, no);
  rc_begin(c, rc_grid_for(nx, 1), CR_BLOCK);
  rc_decl_bufs(c, "");
  rc_put_dims(c->cu, "xd", xs);
  rc_put_dims(c->cu, "od", os);
  fprintf(c->cu, "  cr_sum_scatter(o, x0, %" PRId64 "ll, %d, xd, %d, od);\n", nx, xs->rank, os->rank);
  rc_end(c);
}
static void r_broadcast_to(RCu *c) {
  const Shape *xs = rc_in_shape(c, 0), *os = &c->k->n->shape;
  rc_begin(c, rc_grid_for(rc_numel(os), 1), CR_BLOCK);
  rc_decl_bufs(c, "");
  rc_put_dims(c->cu, "xd", xs);
  rc_put_dims(c->cu, "od", os);
  fprintf(c->cu, "  cr_broadcast(o, x0, %" PRId64 "ll, %d, od, %d, xd);\n", rc_numel(os), os->rank, xs->rank);
  rc_end(c);
}
#define CR_SUMSQ_BLOCKS 264
static void r_sumsq(RCu *c) {
  int64_t n = rc_numel(rc_in_shape(c, 0));
  rc_need_scratch(c, CR_SCR_PART + CR_SUMSQ_BLOCKS * 8);
  rc_launch(c, CR_SUMSQ_BLOCKS, CR_BLOCK, "cr_sumsq_partials(x0, %" PRId64 "ll, T)", n);
  rc_launch(c, 1, CR_BLOCK, "cr_sumsq_final(o, T, %d)", CR_SUMSQ_BLOCKS);
}
/* the optimizer's hyper-parameters are the run-time input `hyper` (x1 / x2) */
static void r_clip_coef(RCu *c) { rc_launch(c, 1, 32, "cr_clip_coef(o, x0, x1)"); }
static void r_adam_sched(RCu *c) { rc_launch(c, 1, 32, "cr_adam_sched(o, x0, x1, x2, E, code)"); }

/* adamw_multi's global-norm group: a kernel of sumsq nodes, the scalar adds
 * summing them and optionally the sqrt of the total (the reported norm), read
 * outside only through the total and the norm. Rendered as one partials launch
 * over every tensor + one launch writing the total and the norm (instead of
 * two launches per parameter and one per add). */
static bool is_norm_group(const KProgram *p, const Kernel *K) {
  if (K->count < 3) return false;
  uint32_t nsq = 0, nadd = 0, last = K->first + K->count - 1;
  for (uint32_t j = K->first; j <= last; j++) {
    const Node *n = p->nodes[j].n;
    if (n->op == OP_SUMSQ && n->dtype == DT_F32 && p->g->nodes[n->in[0]].dtype == DT_F32) nsq++;
    else if (n->op == OP_ADD && n->dtype == DT_F32 && rc_numel(&n->shape) == 1) nadd++;
    else if (!(j == last && n->op == OP_SQRT && n->dtype == DT_F32 && n->in[0] == p->nodes[last - 1].id)) return false;
  }
  if (p->nodes[last].n->op == OP_SQRT) last--; /* the norm itself, from the total */
  if (nsq < 2 || nadd != nsq - 1 || p->nodes[last].n->op != OP_ADD) return false;
  /* each add reads two earlier values of the group, each value but the total
   * is read by exactly one add (so the total counts every sumsq once), and no
   * other node reads a group value but the total */
  for (uint32_t j = K->first; j <= last; j++) {
    const Node *n = p->nodes[j].n;
    uint32_t reads = 0;
    for (uint32_t m = j + 1; m <= last; m++)
      for (int i = 0; i < 2; i++) reads += p->nodes[m].n->op == OP_ADD && p->nodes[m].n->in[i] == p->nodes[j].id;
    if (j < last && reads != 1) return false;
    if (n->op != OP_ADD) continue;
    for (int i = 0; i < 2; i++) {
      bool in = false;
      for (uint32_t m = K->first; m < j; m++) in |= p->nodes[m].id == n->in[i];
      if (!in) return false;
    }
  }
  const Graph *g = p->g;
  for (ValueId v = 0; v < g->n; v++) {
    bool member = false;
    for (uint32_t j = K->first; j <= last; j++) member |= p->nodes[j].id == v;
    for (int i = 0; !member && i < g->nodes[v].nin; i++)
      for (uint32_t j = K->first; j < last; j++)
        if (g->nodes[v].in[i] == p->nodes[j].id) return false;
  }
  for (uint32_t i = 0; i < g->nout; i++)
    for (uint32_t j = K->first; j < last; j++)
      if (g->outputs[i].value == p->nodes[j].id) return false;
  return true;
}
static void render_norm_group(RCu *c, const Kernel *K) {
  const KProgram *p = c->p;
  uint32_t last = K->first + K->count - 1, nsq = 0;
  const KNode *norm = p->nodes[last].n->op == OP_SQRT ? &p->nodes[last] : NULL, *total = &p->nodes[norm ? last - 1 : last];
  rc_need_scratch(c, CR_SCR_PART + CR_SUMSQ_BLOCKS * 8);
  c->k = &p->nodes[K->first];
  rc_node_desc(c);
  rc_begin(c, CR_SUMSQ_BLOCKS, CR_BLOCK);
  char name[32];
  for (uint32_t j = K->first; j <= last; j++)
    if (p->nodes[j].n->op == OP_SUMSQ)
      snprintf(name, sizeof name, "x%u", nsq++), rc_decl_in(c, name, p->nodes[j].n->in[0], p->nodes[j].in[0]);
  fputs("  const float *const xs[] = {", c->cu);
  for (uint32_t i = 0; i < nsq; i++) fprintf(c->cu, "%sx%u", i ? ", " : "", i);
  fputs("};\n  const long long ns[] = {", c->cu);
  for (uint32_t j = K->first, i = 0; j <= last; j++)
    if (p->nodes[j].n->op == OP_SUMSQ)
      fprintf(c->cu, "%s%" PRId64 "ll", i++ ? ", " : "", rc_numel(&rc_graph(c)->nodes[p->nodes[j].n->in[0]].shape));
  fprintf(c->cu, "};\n  cr_sumsq_multi_partials(xs, ns, %u, T);\n", nsq);
  rc_end(c);
  c->k = total;
  rc_node_desc(c);
  rc_begin(c, 1, CR_BLOCK);
  rc_decl_out(c, "o", total);
  if (norm) rc_decl_out(c, "norm", norm);
  fprintf(c->cu, "  cr_sumsq_final(o, T, %d);\n", CR_SUMSQ_BLOCKS);
  if (norm) fputs("  __syncthreads();\n  if (threadIdx.x == 0) norm[0] = sqrtf(o[0]);\n", c->cu);
  rc_end(c);
}

typedef void (*RenderFn)(RCu *c);
static const RenderFn render_op[OP_COUNT] = {
  [OP_SINUSOID] = r_sinusoid,
  [OP_FILL] = r_fill,
  [OP_ARANGE] = r_arange,
  [OP_EMBEDDING] = r_embedding,
  [OP_MASKED_ROWS] = r_masked_rows,
  [OP_MASKED_TARGETS] = r_masked_targets,
  [OP_MATMUL] = rc_render_gemm,
  [OP_MATMUL_ACT] = rc_render_gemm,
  [OP_MATMUL_GLU] = rc_render_gemm,
  [OP_MATMUL_ACT_GRAD] = rc_render_gemm,
  [OP_MATMUL_GLU_GRAD] = rc_render_gemm,
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
  [OP_CROSS_ENTROPY] = rc_render_cross_entropy,
  [OP_CROSS_ENTROPY_GRAD] = rc_render_cross_entropy,
  [OP_XENT_HITS] = rc_render_cross_entropy,
  [OP_XENT_LINEAR] = rc_render_xent_linear,
  [OP_XENT_LINEAR_GRAD] = rc_render_xent_linear,
  [OP_XENT_LINEAR_HITS] = rc_render_xent_linear,
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
  [OP_ATTENTION] = rc_render_attention,
  [OP_ATTENTION_LSE] = rc_render_attention,
  [OP_ATTENTION_GRAD] = rc_render_attention_grad,
};

bool render_cuda_supports(OpKind op) { return op < OP_COUNT && (render_op[op] != NULL || rc_ew_supports(op)); }

void render_cuda_prelude(FILE *cu) {
  fputs("/* The kernel library (codegen/cuda_kernels, embedded in cramc; NVRTC gets it as headers). */\n", cu);
  for (int i = 0; i < cg_cuda_lib_count; i++) {
    size_t l = strlen(cg_cuda_lib[i].name);
    if (l > 4 && !strcmp(cg_cuda_lib[i].name + l - 4, ".cuh")) fprintf(cu, "#include \"%s\"\n", cg_cuda_lib[i].name);
  }
  fputs("\n", cu);
}

void render_cuda_host_free(RenderCudaHost *h) {
  free(h->launch), free(h->tab);
  memset(h, 0, sizeof *h);
}

/* bf16 combinations the kernels do not implement, as a reason (NULL: fine),
 * from ops.def's properties (SCATTER: atomicAdd results; SAME_DTYPE: the two
 * main operands). autocast_bf16 produces none of them: its scatter-adds and
 * fused losses are f32. */
static const char *bf16_unsupported(const Graph *g, const KNode *k) {
  const Node *n = k->n;
  bool any = rc_is_bf16(g, k->id);
  for (int i = 0; i < n->nin; i++) any |= rc_is_bf16(g, n->in[i]);
  if (!any) return NULL;
  bool scatter = ir_op_is(n->op, OPP_SCATTER) || (n->op == OP_SUM_TO && !sum_to_rows(&g->nodes[n->in[0]].shape, &n->shape));
  if (scatter && rc_is_bf16(g, k->id)) return "a bf16 scatter-add (atomicAdd) output";
  int a = k->gemm ? k->g.a_in : 0, b = k->gemm ? k->g.b_in : 1;
  if (ir_op_is(n->op, OPP_SAME_DTYPE) && rc_is_bf16(g, n->in[a]) != rc_is_bf16(g, n->in[b]))
    return k->gemm ? "GEMM operands of different dtypes" : "fused decoder + cross-entropy operands of different dtypes";
  if (k->gemm) {
    const KGemm *m = &k->g;
    bool c_bf16 = !rc_gemm_to_scratch(g, k) && rc_is_bf16(g, k->id); /* the type cuBLASLt writes */
    if (m->epi == KEPI_ACT && m->bias && rc_is_bf16(g, n->in[2]) != c_bf16)
      return "a GEMM bias whose dtype differs from the GEMM result's (cuBLASLt takes the result's)";
  }
  return NULL;
}

static bool render_graph(RCu *c, char *err, size_t errlen) {
  const KProgram *p = c->p;
  for (uint32_t ki = 0; ki < p->nkernels; ki++) {
    const Kernel *K = &p->kernels[ki];
    uint32_t j = K->first, endn = K->first + K->count;
    if (is_norm_group(p, K)) {
      render_norm_group(c, K);
      continue;
    }
    j += render_add_norm(c, K);
    while (j < endn) {
      c->k = &p->nodes[j];
      const Node *n = c->k->n;
      if (!render_cuda_supports(n->op)) {
        snprintf(err, errlen, "%%%u: op %s has no CUDA kernel", c->k->id, ir_ops[n->op].name);
        return false;
      }
      if (!c->k->gemm && rc_is_elementwise(n)) { /* a run of elementwise nodes: one launch */
        j = rc_render_ew_run(c, j, endn);
        continue;
      }
      if (!render_op[n->op]) { /* an elementwise op on i32 */
        snprintf(err, errlen, "%%%u: op %s on %s has no CUDA kernel", c->k->id, ir_ops[n->op].name, ir_dtype_name(n->dtype));
        return false;
      }
      if (c->k->out_state) { /* kernel.c computes state in place only by pointwise ops */
        snprintf(err, errlen, "%%%u: op %s writes a state buffer in place outside an elementwise launch", c->k->id,
                 ir_ops[n->op].name);
        return false;
      }
      const char *why = bf16_unsupported(p->g, c->k);
      if (why) {
        snprintf(err, errlen, "%%%u: op %s: %s is not supported by the cuda target", c->k->id, ir_ops[n->op].name, why);
        return false;
      }
      rc_node_desc(c);
      c->next = j + 1, c->end = endn;
      render_op[n->op](c);
      j = c->next;
    }
  }
  return true;
}

bool render_cuda_graph(FILE *cu, FILE *host, const KProgram *p, const char *prefix, int64_t xent_chunk, RenderCudaSeen *seen,
                       uint64_t *scratch, RenderCudaHost *h, char *err, size_t errlen) {
  memset(h, 0, sizeof *h);
  char *lt = NULL;
  size_t ltn = 0;
  FILE *hl = open_memstream(&lt, &ltn);
  if (!hl) {
    snprintf(err, errlen, "out of memory");
    return false;
  }
  RCu c = { .cu = cu,
            .hl = hl,
            .h = h,
            .p = p,
            .prefix = prefix,
            .seen = seen,
            .xent_chunk = xent_chunk > 0 && xent_chunk < CR_XENT_CHUNK ? xent_chunk : CR_XENT_CHUNK };
  bool ok = render_graph(&c, err, errlen);
  if (!h->nlaunch) fputs("  {CRAM_CUDA_L_KERNEL, NULL, \"\", 0, {0}},\n", hl);
  fclose(hl);
  if (ok && c.oom) ok = false, snprintf(err, errlen, "out of memory rendering the CUDA kernels");
  if (ok) {
    fprintf(host, "static const cram_cuda_launch %s_launches[] = {\n", prefix);
    fwrite(lt, 1, ltn, host);
    fputs("};\n\n", host);
  }
  free(lt), free(c.bufs);
  *scratch = c.scratch;
  return ok && !ferror(cu) && !ferror(host);
}
