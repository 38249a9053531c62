/* render_cuda_ew.c - a run of elementwise nodes as ONE launch of the CUDA
 * renderer: each node is a call of a __device__ __noinline__ function (its
 * text hashed: one function per distinct op/attributes/shape pattern, so a
 * multi-tensor AdamW over hundreds of parameters compiles as a list of calls
 * to three functions) that maps the op's expression over its operands with
 * the library's cr_map / cr_map4 (elementwise.cuh); the expressions are
 * the shared table of render_expr.c. Element e of every node
 * is handled by the same thread whatever the node's size, so a node may read
 * an earlier node's output of the same launch at index e. float4 loads and
 * stores when every operand is same-shape or a scalar, the size is a
 * multiple of 4 and buffers are 16-byte aligned. */
#include <stdlib.h>
#include <string.h>

#include "render_cuda_impl.h"
#include "render_expr.h"

/* The shared expression table (render_expr.c) in CUDA's dialect: float math,
 * the library's cr_ helpers (common.cuh), (float) constants. */
static void ex_rsqrt(FILE *o, const Node *n, const CgDialect *d) { (void)n, (void)d, fputs("rsqrtf(a)", o); }
static const CgExprFn cuda_override[OP_COUNT] = { [OP_RSQRT] = ex_rsqrt }; /* the hardware's reciprocal square root */
static const CgDialect cuda_dialect = {
  .helper = "cr_", .libm = "f", .zero = "0.f", .one = "1.f", .lit = "(float)%.9g", .override = cuda_override
};

bool rc_ew_supports(OpKind op) { return cg_expr_supports(&cuda_dialect, op); }
bool rc_is_elementwise(const Node *n) { return rc_ew_supports(n->op) && (n->dtype == DT_F32 || n->dtype == DT_BF16); }

static bool aligned16(KBuf b) { return b.slot != KBUF_NO_SLOT || b.offset % 16 == 0; }
/* The vector paths (elementwise.cuh): every operand same-shape (aligned) or
 * a scalar, the output aligned; all f32 and size % 4: float4 (RC_VEC4); any
 * bf16 among them and size % 8: 16-byte loads and stores of 8 elements
 * (RC_VEC8); else the scalar loop (RC_SCALAR). */
enum { RC_SCALAR, RC_VEC4, RC_VEC8 };
static int vec_kind(const Graph *g, const KNode *k) {
  const Node *n = k->n;
  bool bf = n->dtype == DT_BF16;
  if (!aligned16(k->out) || (n->dtype != DT_F32 && !bf)) return RC_SCALAR;
  for (int i = 0; i < cg_expr_nload(n); i++) {
    const Node *in = &g->nodes[n->in[i]];
    if (in->dtype != DT_F32 && in->dtype != DT_BF16) return RC_SCALAR;
    if (rc_numel(&in->shape) == 1) continue; /* a scalar: broadcast, any dtype */
    if (!ir_shape_eq(&in->shape, &n->shape) || !aligned16(k->in[i])) return RC_SCALAR;
    bf |= in->dtype == DT_BF16;
  }
  int64_t numel = rc_numel(&n->shape);
  return bf ? (numel % 8 ? RC_SCALAR : RC_VEC8) : numel % 4 ? RC_SCALAR : RC_VEC4;
}
/* is is a suffix of os: element e reads is[e % numel(is)] */
static bool suffix_of(const Shape *is, const Shape *os) {
  bool suffix = is->rank <= os->rank;
  for (int d = 0; suffix && d < is->rank; d++) suffix = is->dim[is->rank - 1 - d] == os->dim[os->rank - 1 - d];
  return suffix;
}

/* the body of one node's device function: its buffers, then one cr_map, cr_map4 or cr_map8 */
static void ew_node(RCu *c, int vec) {
  const Node *n = c->k->n;
  const Shape *os = &n->shape;
  int nload = cg_expr_nload(n);
  fprintf(c->cu, "  /* %s */\n", ir_ops[n->op].name);
  rc_decl_bufs(c, "");
  bool need_od = false;
  for (int i = 0; !vec && i < nload; i++) {
    const Shape *is = rc_in_shape(c, i);
    if (ir_shape_eq(is, os) || rc_numel(is) == 1 || suffix_of(is, os)) continue;
    if (!need_od) rc_put_dims(c->cu, "od", os), need_od = true;
    char nm[16];
    snprintf(nm, sizeof nm, "id%d", i);
    rc_put_dims(c->cu, nm, is);
  }
  if (cg_expr_reads_sched(n)) /* adam_sched's vector (IR_SCH_*), captured by the lambda */
    fputs("  const float s0 = x3[0], s1 = x3[1], s2 = x3[2], s3 = x3[3], s4 = x3[4], s5 = x3[5], s6 = x3[6], s7 = x3[7];\n"
          "  (void)s0, (void)s1, (void)s2, (void)s3, (void)s4, (void)s5, (void)s6, (void)s7;\n",
          c->cu);
  static const char *const var[] = { "a", "b", "c" };
  fprintf(c->cu, "  %s(o, n, [=](", vec == RC_VEC8 ? "cr_map8" : vec == RC_VEC4 ? "cr_map4" : "cr_map");
  for (int i = 0; i < nload; i++) fprintf(c->cu, "%sfloat %s", i ? ", " : "", var[i]);
  fputs(") -> float { return ", c->cu);
  cg_expr(c->cu, n, &cuda_dialect);
  fputs("; }", c->cu);
  for (int i = 0; i < nload; i++) {
    const Shape *is = rc_in_shape(c, i);
    if (ir_shape_eq(is, os)) fprintf(c->cu, ", cr_at(x%d)", i);
    else if (rc_numel(is) == 1) fprintf(c->cu, ", cr_first(x%d)", i);
    else if (suffix_of(is, os)) fprintf(c->cu, ", cr_mod(x%d, %" PRId64 "ll)", i, rc_numel(is));
    else fprintf(c->cu, ", cr_bc(x%d, %d, od, %d, id%d)", i, os->rank, is->rank, i);
  }
  fputs(");\n", c->cu);
}

/* A node of an elementwise launch as a call of its device function. */
static void ew_call(RCu *c, int vec) {
  FILE *kern = c->cu;
  char *ft = NULL;
  size_t fl = 0;
  FILE *fm = open_memstream(&ft, &fl);
  if (!fm) {
    c->oom = true;
    return;
  }
  c->cu = fm, c->local = true, c->lbase = c->nbuf;
  ew_node(c, vec);
  c->cu = kern, c->local = false;
  fclose(fm);
  const char *txt = ft ? ft : "";
  uint64_t h = rc_fnv64(txt, strlen(txt), 0x84222325cbf29ce4ull);
  if (rc_first_sighting(c, h)) {
    /* c->body is the artifact's output while a kernel is open: the function lands before the kernel */
    fprintf(c->body, "__device__ __noinline__ void f_%016" PRIx64 "(void *const *P, long long n) {\n%s}\n\n", h, txt);
  }
  free(ft);
  fprintf(c->cu, "  f_%016" PRIx64 "(P + %u, %" PRId64 "ll);\n", h, c->lbase, rc_numel(&c->k->n->shape));
}

static bool overlap(const Graph *g, KBuf a, ValueId av, KBuf b, ValueId bv) {
  if (a.slot != b.slot) return false;
  if (a.slot != KBUF_NO_SLOT) return true;
  int64_t ae = a.offset + rc_numel(&g->nodes[av].shape) * (int64_t)ir_dtype_size(g->nodes[av].dtype);
  int64_t be = b.offset + rc_numel(&g->nodes[bv].shape) * (int64_t)ir_dtype_size(g->nodes[bv].dtype);
  return a.offset < be && b.offset < ae;
}
/* Whether node j may join the elementwise launch of nodes [first, j): in one
 * launch element e of every node is handled by one thread, so j may read an
 * earlier node's output only at e (same shape), and j's output may overlap a
 * buffer an earlier node reads (the planner's reuse of a dead value) only as
 * that node's own element e (same start, read same-shape, same dtype: an f32
 * output over a dead bf16 value covers two of its elements per thread). */
static bool can_join(const KProgram *p, uint32_t first, uint32_t j) {
  const KNode *k = &p->nodes[j];
  const Graph *g = p->g;
  for (int i = 0; i < k->n->nin; i++)
    for (uint32_t q = first; q < j; q++)
      if (p->nodes[q].id == k->n->in[i] && !ir_shape_eq(&g->nodes[k->n->in[i]].shape, &k->n->shape)) return false;
  for (uint32_t q = first; q < j; q++) {
    const KNode *kq = &p->nodes[q];
    for (int i = 0; i < kq->n->nin; i++) {
      ValueId iv = kq->n->in[i];
      if (!overlap(g, k->out, k->id, kq->in[i], iv)) continue;
      bool same_elem = k->out.slot == kq->in[i].slot && k->out.offset == kq->in[i].offset &&
                       ir_shape_eq(&g->nodes[iv].shape, &kq->n->shape) && ir_shape_eq(&k->n->shape, &kq->n->shape) &&
                       g->nodes[iv].dtype == k->n->dtype; /* element e at the same bytes: an f32 over a bf16 is not */
      if (!same_elem) return false;
    }
    /* and j's output must not overwrite an earlier group output that j does not produce itself at e */
    if (overlap(g, k->out, k->id, kq->out, kq->id) && !(k->out.slot == kq->out.slot && k->out.offset == kq->out.offset &&
                                                        ir_shape_eq(&k->n->shape, &kq->n->shape) && k->n->dtype == kq->n->dtype))
      return false;
  }
  return true;
}

uint32_t rc_render_ew_run(RCu *c, uint32_t j, uint32_t endn) {
  const KProgram *p = c->p;
  uint32_t q = j + 1;
  while (q < endn && !p->nodes[q].gemm && rc_is_elementwise(p->nodes[q].n) && can_join(p, j, q)) q++;
  /* one path for the whole launch: thread t must own the same elements of every node (can_join) */
  bool all4 = true, all8 = true, any8 = false;
  int64_t maxn = 0;
  for (uint32_t t = j; t < q; t++) {
    int k = vec_kind(p->g, &p->nodes[t]);
    int64_t nn = rc_numel(&p->nodes[t].n->shape);
    all4 = all4 && k == RC_VEC4;
    all8 = all8 && k != RC_SCALAR && nn % 8 == 0;
    any8 = any8 || k == RC_VEC8;
    if (nn > maxn) maxn = nn;
  }
  int vec = all8 && (any8 || !all4) ? RC_VEC8 : all4 ? RC_VEC4 : RC_SCALAR;
  c->k = &p->nodes[j];
  rc_node_desc(c);
  if (q - j > 1) {
    size_t l = strlen(c->node);
    snprintf(c->node + l, sizeof c->node - l, " + %u fused", q - j - 1);
  }
  rc_begin(c, rc_grid_for(maxn, vec == RC_VEC8 ? 8 : vec == RC_VEC4 ? 4 : 1), CR_BLOCK);
  bool state = false;
  for (uint32_t t = j; t < q; t++) state |= p->nodes[t].out_state;
  /* computed into the parameters / moments / gradients themselves (kernel.h: state_in_place): after bad
   * data (an earlier kernel set the error word) the run is refused, and the state must be as it was */
  if (state) fputs("  if (*(volatile int *)E) return;\n", c->cu);
  for (uint32_t t = j; t < q; t++) {
    c->k = &p->nodes[t];
    ew_call(c, vec);
  }
  rc_end(c);
  return q;
}
