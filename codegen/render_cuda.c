/* render_cuda.c - the CUDA renderer of the kernel description (kernel.h),
 * the same structure as render_c.c (a code_for_op[] table of elementwise
 * expressions, a render_op[] table of per-op render functions), written for
 * the H100/A100 rather than ported from the C loops:
 *
 *   elementwise   a Kernel's run of elementwise nodes becomes ONE launch: one
 *                 grid-stride loop per node (element e is always handled by
 *                 the same thread whatever the node's size, so a node may read
 *                 an earlier node's output of the same launch at index e);
 *                 float4 loads/stores when every operand is same-shape or a
 *                 scalar, the size is a multiple of 4 and buffers are 16-byte
 *                 aligned. adamw_multi's partition makes the whole AdamW update
 *                 (m, v, param of every parameter) one multi-tensor launch.
 *   row-wise      layernorm, add_layernorm, layernorm_grad(_add), rmsnorm(_grad),
 *                 softmax(_grad), cross-entropy rows: one warp per row
 *                 (8 rows per 256-thread block), __shfl_xor_sync reductions.
 *   GEMMs         cuBLASLt entries in the launch table (the shim runs them):
 *                 row-major C = op(A) op(B) as column-major C^T = op(B)^T op(A)^T,
 *                 strided batches, f32 accumulate, the BIAS / RELU(_BIAS)
 *                 epilogues in cuBLASLt; gelu/sigmoid and GLU epilogues as our
 *                 own kernel (cuBLASLt's GELU epilogue is the tanh
 *                 approximation; the graphs ask for erf GELU).
 *   xent_linear   chunks of 1024 rows: logits GEMM into scratch, a warp-per-row
 *                 log-softmax kernel, and the backward GEMMs (beta = 1 to
 *                 accumulate dW over chunks).
 *   reductions    sumsq, cross-entropy mean: per-block partials in scratch,
 *                 then one block sums them in double (deterministic).
 *
 * Every kernel has the signature (void *const *P, char *T, u64 seedp, int
 * training, int *E, int code): its pointer table, scratch, the DEVICE address
 * of the run's dropout seed (the shim writes the seed there before each run,
 * so a captured CUDA graph replays with a fresh one), mode, and the error
 * word a kernel sets (atomicCAS, first error wins) to its launch number for a
 * bad token id / target / step. Compute is f32 (reductions
 * of losses and norms in double); bf16 values (--precision bf16, the graphs of
 * autocast_bf16) are stored as __nv_bfloat16 behind cr_bf16p: loads widen to
 * float, stores round to nearest even, GEMMs take CUDA_R_16BF operands. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "render_cuda.h"

#define CR_BLOCK 256
#define CR_GRID_CAP 4096
#define CR_XENT_CHUNK 1024

typedef struct RCu {
  FILE *cu, *hl;        /* kernels; launch table (names, nodes, GEMM shapes) */
  RenderCudaHost *h;    /* the launch sequence and its pointers */
  uint32_t caplaunch, captab;
  const KProgram *p;
  const KNode *k;
  const char *prefix;
  RenderCudaSeen *seen;
  uint64_t scratch;     /* max scratch bytes */
  char node[256];       /* the current node, for error messages */
  /* the kernel being rendered */
  FILE *body;
  char *bodytxt;
  size_t bodylen;
  uint32_t grid, block;
  KBuf *bufs;
  uint32_t nbuf, capbuf;
  bool local;           /* rendering a device function: P indices from lbase, no sharing */
  uint32_t lbase;
  bool oom;
} RCu;

static const Graph *G(const RCu *c) { return c->p->g; }
static const Shape *in_shape(const RCu *c, int i) { return &G(c)->nodes[c->k->n->in[i]].shape; }
static int64_t numel(const Shape *s) { return ir_shape_numel(s); }
static int64_t lastd(const Shape *s) { return s->rank ? s->dim[s->rank - 1] : 1; }
/* A buffer as the kernels see it: float / int pointers, or cr_bf16p (prelude) for
 * bf16 storage, which reads as float and stores float rounded to nearest even. */
static bool is_bf16(const Graph *g, ValueId v) { return g->nodes[v].dtype == DT_BF16; }
static const char *ptype(const Graph *g, ValueId v) {
  return g->nodes[v].dtype == DT_I32 ? "int *" : is_bf16(g, v) ? "cr_bf16p " : "float *";
}
static int act_code(const char *a) { return !strcmp(a, "gelu") ? 1 : !strcmp(a, "relu") ? 2 : !strcmp(a, "sigmoid") ? 3 : 0; }
static uint32_t grid_for(int64_t n, int64_t per_thread) {
  int64_t g = (n / (per_thread > 0 ? per_thread : 1) + CR_BLOCK - 1) / CR_BLOCK;
  return (uint32_t)(g < 1 ? 1 : g > CR_GRID_CAP ? CR_GRID_CAP : g);
}
static uint32_t grid_rows(int64_t rows) { /* warp per row, 8 rows a block */
  int64_t g = (rows + CR_BLOCK / 32 - 1) / (CR_BLOCK / 32);
  return (uint32_t)(g < 1 ? 1 : g > 2147483647 ? 2147483647 : g);
}
static void need_scratch(RCu *c, uint64_t bytes) {
  if (bytes > c->scratch) c->scratch = bytes;
}

/* ---- buffers ------------------------------------------------------------------------ */

/* A kernel reads its buffers from P[], the launch's pointer table (built by
 * the shim at create()), so kernels of identical layers are identical text. */
static void put_buf(RCu *c, const char *ptyp, KBuf b) {
  uint32_t i = c->local ? c->nbuf : 0;
  while (i < c->nbuf && !(c->bufs[i].slot == b.slot && c->bufs[i].offset == b.offset)) i++;
  if (i == c->nbuf) {
    if (c->nbuf == c->capbuf) {
      uint32_t cap = c->capbuf ? 2 * c->capbuf : 16;
      KBuf *nb = realloc(c->bufs, cap * sizeof *nb);
      if (!nb) {
        c->oom = true;
        return;
      }
      c->bufs = nb, c->capbuf = cap;
    }
    c->bufs[c->nbuf++] = b;
  }
  if (!strcmp(ptyp, "cr_bf16p ")) fprintf(c->cu, "cr_bf16p(P[%u])", c->local ? i - c->lbase : i);
  else fprintf(c->cu, "((%s)P[%u])", ptyp, c->local ? i - c->lbase : i);
}
static void decl_bufs(RCu *c, const char *sfx) {
  const KNode *k = c->k;
  fprintf(c->cu, "  %so%s = ", ptype(G(c), k->id), sfx);
  put_buf(c, ptype(G(c), k->id), k->out);
  fputs(";\n", c->cu);
  for (int i = 0; i < k->n->nin; i++) {
    fprintf(c->cu, "  const %sx%d%s = ", ptype(G(c), k->n->in[i]), i, sfx);
    put_buf(c, ptype(G(c), k->n->in[i]), k->in[i]);
    fputs(";\n", c->cu);
  }
  fprintf(c->cu, "  (void)o%s;\n", sfx);
}
/* slot buffers: offset 0 (plus what a caller adds, e.g. a row chunk) */
static KBuf norm(KBuf b) { return b.slot != KBUF_NO_SLOT ? (KBuf){0, b.slot} : b; }
static void put_dims(FILE *out, const char *name, const Shape *s) {
  fprintf(out, "  const long long %s[] = {", name);
  for (int d = 0; d < s->rank; d++) fprintf(out, "%s%" PRId64, d ? ", " : "", s->dim[d]);
  if (!s->rank) fputs("1", out);
  fputs("};\n", out);
}

/* ---- launches ----------------------------------------------------------------------- */

/* Opens a kernel: its body goes to a buffer until end(). */
static void begin(RCu *c, uint32_t grid, uint32_t block) {
  c->grid = grid, c->block = block, c->nbuf = 0;
  c->bodytxt = NULL, c->bodylen = 0;
  c->body = open_memstream(&c->bodytxt, &c->bodylen);
  if (!c->body) c->oom = true, c->body = fopen("/dev/null", "w");
  FILE *t = c->cu;
  c->cu = c->body, c->body = t; /* render into the body; c->body holds the real output meanwhile */
}
static uint64_t fnv64(const char *s, size_t n, uint64_t h) {
  for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 0x100000001b3ull;
  return h;
}
/* True the first time text hash h is seen in this artifact (then remembered):
 * identical kernels and device functions are written once. */
static bool first_sighting(RCu *c, uint64_t h) {
  for (uint32_t i = 0; i < c->seen->n; i++)
    if (c->seen->h[i] == h) return false;
  if (c->seen->n == c->seen->cap) {
    uint32_t cap = c->seen->cap ? 2 * c->seen->cap : 256;
    uint64_t *nh = realloc(c->seen->h, cap * sizeof *nh);
    if (!nh) c->oom = true;
    else c->seen->h = nh, c->seen->cap = cap;
  }
  if (c->seen->n < c->seen->cap) c->seen->h[c->seen->n++] = h;
  return true;
}
/* Appends to the host description (c->oom on failure). */
static void *grow(RCu *c, void *p, uint32_t n, uint32_t *cap, size_t elem) {
  if (n < *cap) return p;
  uint32_t nc = *cap ? 2 * *cap : 64;
  void *q = realloc(p, nc * elem);
  if (!q) return c->oom = true, NULL;
  *cap = nc;
  return q;
}
static void add_ref(RCu *c, RenderCudaRef r) {
  RenderCudaRef *t = grow(c, c->h->tab, c->h->ntab, &c->captab, sizeof *t);
  if (t) c->h->tab = t, t[c->h->ntab++] = r;
}
static void add_launch(RCu *c, RenderCudaLaunch l) {
  RenderCudaLaunch *t = grow(c, c->h->launch, c->h->nlaunch, &c->caplaunch, sizeof *t);
  if (t) c->h->launch = t, t[c->h->nlaunch++] = l;
}
static RenderCudaRef ref_of(KBuf b) { return (RenderCudaRef){b.slot, b.offset}; } /* arena / scratch / slot */

/* Closes the kernel: named by the hash of its text, written once per
 * artifact (identical layers share it), and its launch entry. */
static void end(RCu *c) {
  FILE *mem = c->cu;
  c->cu = c->body, c->body = NULL;
  fclose(mem);
  const char *txt = c->bodytxt ? c->bodytxt : "";
  uint64_t h = fnv64(txt, strlen(txt), 0xcbf29ce484222325ull ^ c->block);
  if (first_sighting(c, h)) {
    fprintf(c->cu,
            "/* first: %s */\nextern \"C\" __global__ void __launch_bounds__(%u) k_%016" PRIx64
            "(void *const *P, char *T, u64 seedp, int training, int *E, int code) {\n"
            "  (void)P, (void)T, (void)seedp, (void)training, (void)E, (void)code;\n%s}\n\n",
            c->node, c->block, h, txt);
  }
  free(c->bodytxt), c->bodytxt = NULL;
  fprintf(c->hl, "  {CRAM_CUDA_L_KERNEL, \"k_%016" PRIx64 "\", \"%s\", %u, {0}},\n", h, c->node, c->h->ntab);
  uint32_t first = c->h->ntab;
  /* slot buffers at offset 0: a kernel adds what it needs within the slot */
  for (uint32_t i = 0; i < c->nbuf; i++)
    add_ref(c, c->bufs[i].slot != KBUF_NO_SLOT ? (RenderCudaRef){c->bufs[i].slot, 0} : (RenderCudaRef){RC_ARENA, c->bufs[i].offset});
  add_launch(c, (RenderCudaLaunch){false, c->grid, c->block, first, c->nbuf});
}

typedef struct HGemm {
  bool ta, tb;
  int64_t M, N, K, batch, lda, ldb, ldc, sa, sb, sc;
  KBuf a, b, o, bias;
  bool has_bias;
  int epi;
  float beta;
  int dta, dtb, dtc; /* CRAM_CUDA_DT_* of A, B, C */
} HGemm;
static KBuf scratch_buf(int64_t off) { return (KBuf){off, RC_SCRATCH}; }

static void gemm_entry(RCu *c, const HGemm *g) {
  static const char *epi[] = {"CRAM_CUDA_EPI_NONE", "CRAM_CUDA_EPI_BIAS", "CRAM_CUDA_EPI_RELU", "CRAM_CUDA_EPI_RELU_BIAS"};
  static const char *dt[] = {"CRAM_CUDA_DT_F32", "CRAM_CUDA_DT_BF16"};
  uint32_t first = c->h->ntab;
  fprintf(c->hl,
          "  {CRAM_CUDA_L_GEMM, NULL, \"%s\", %u, {%d, %d, %" PRId64 ", %" PRId64 ", %" PRId64 ", %" PRId64 ", %" PRId64 ", %" PRId64
          ", %" PRId64 ", %" PRId64 ", %" PRId64 ", %" PRId64 ", %s, (float)%.9g, %s, %s, %s}},\n",
          c->node, first, g->ta, g->tb, g->M, g->N, g->K, g->batch, g->lda, g->ldb, g->ldc, g->sa, g->sb, g->sc, epi[g->epi],
          g->beta, dt[g->dta], dt[g->dtb], dt[g->dtc]);
  add_ref(c, ref_of(g->a)), add_ref(c, ref_of(g->b)), add_ref(c, ref_of(g->o));
  add_ref(c, g->has_bias ? ref_of(g->bias) : (RenderCudaRef){RC_NONE, 0});
  add_launch(c, (RenderCudaLaunch){true, 0, 0, first, 4});
}

/* ---- code_for_op: elementwise expressions over floats a, b, c ------------------------- */

static void ex_add(FILE *o, const Node *n) { (void)n, fputs("a + b", o); }
static void ex_mul(FILE *o, const Node *n) { (void)n, fputs("a * b", o); }
static void ex_scale(FILE *o, const Node *n) { fprintf(o, "(float)%.9g * a", ir_get_float(n, ATTR_ALPHA)); }
static void ex_gelu(FILE *o, const Node *n) { (void)n, fputs("cr_gelu(a)", o); }
static void ex_relu(FILE *o, const Node *n) { (void)n, fputs("a > 0.f ? a : 0.f", o); }
static void ex_tanh(FILE *o, const Node *n) { (void)n, fputs("tanhf(a)", o); }
static void ex_sqrt(FILE *o, const Node *n) { (void)n, fputs("sqrtf(a)", o); }
static void ex_exp(FILE *o, const Node *n) { (void)n, fputs("expf(a)", o); }
static void ex_rsqrt(FILE *o, const Node *n) { (void)n, fputs("rsqrtf(a)", o); }
static void ex_sigmoid(FILE *o, const Node *n) { (void)n, fputs("cr_sigmoid(a)", o); }
static void ex_silu(FILE *o, const Node *n) { (void)n, fputs("a * cr_sigmoid(a)", o); }
static void ex_sin(FILE *o, const Node *n) { (void)n, fputs("sinf(a)", o); }
static void ex_cos(FILE *o, const Node *n) { (void)n, fputs("cosf(a)", o); }
static void ex_sigmoid_grad(FILE *o, const Node *n) { (void)n, fputs("b * a * (1.f - a)", o); }
static void ex_silu_grad(FILE *o, const Node *n) { (void)n, fputs("b * cr_silu_d(a)", o); }
static void ex_cast(FILE *o, const Node *n) { (void)n, fputs("a", o); } /* the load widens, the store rounds */
static void ex_gelu_grad(FILE *o, const Node *n) { (void)n, fputs("b * cr_gelu_d(a)", o); }
static void ex_relu_grad(FILE *o, const Node *n) { (void)n, fputs("a > 0.f ? b : 0.f", o); }
static void ex_tanh_grad(FILE *o, const Node *n) { (void)n, fputs("b * (1.f - a * a)", o); }
static void ex_adam_m(FILE *o, const Node *n) {
  double b1 = ir_get_float(n, ATTR_BETA1);
  fprintf(o, "(float)%.9g * a + (float)%.9g * (c * b)", b1, 1.0 - b1);
}
static void ex_adam_v(FILE *o, const Node *n) {
  double b2 = ir_get_float(n, ATTR_BETA2);
  fprintf(o, "(float)%.9g * a + (float)%.9g * (c * b) * (c * b)", b2, 1.0 - b2);
}
static void ex_adamw_param(FILE *o, const Node *n) {
  fprintf(o, "a - s0 * ((b / s1) / (sqrtf(c / s2) + (float)%.9g) + (float)%.9g * a)", ir_get_float(n, ATTR_EPS), ir_get_float(n, ATTR_WD));
}

typedef void (*ExprFn)(FILE *out, const Node *n);
static const ExprFn code_for_op[OP_COUNT] = {
  [OP_ADD] = ex_add, [OP_MUL] = ex_mul, [OP_SCALE] = ex_scale, [OP_GELU] = ex_gelu, [OP_RELU] = ex_relu,
  [OP_TANH] = ex_tanh, [OP_SQRT] = ex_sqrt, [OP_CAST] = ex_cast, [OP_GELU_GRAD] = ex_gelu_grad, [OP_RELU_GRAD] = ex_relu_grad,
  [OP_TANH_GRAD] = ex_tanh_grad, [OP_ADAM_M] = ex_adam_m, [OP_ADAM_V] = ex_adam_v, [OP_ADAMW_PARAM] = ex_adamw_param,
  [OP_EXP] = ex_exp, [OP_RSQRT] = ex_rsqrt, [OP_SIGMOID] = ex_sigmoid, [OP_SILU] = ex_silu, [OP_SIN] = ex_sin,
  [OP_COS] = ex_cos, [OP_SIGMOID_GRAD] = ex_sigmoid_grad, [OP_SILU_GRAD] = ex_silu_grad,
};
static bool is_elementwise(const Node *n) {
  return n->op < OP_COUNT && code_for_op[n->op] != NULL && (n->dtype == DT_F32 || n->dtype == DT_BF16);
}
static int nload_of(const Node *n) { return n->op == OP_ADAMW_PARAM ? 3 : n->nin; }

static bool aligned16(KBuf b) { return b.slot != KBUF_NO_SLOT || b.offset % 16 == 0; }
/* float4 path: all f32 (bf16 operands take the scalar path), size % 4, every
 * operand same-shape (aligned) or a scalar */
static bool vec4_ok(const Graph *g, const KNode *k) {
  const Node *n = k->n;
  if (numel(&n->shape) % 4 || !aligned16(k->out) || n->dtype != DT_F32) return false;
  for (int i = 0; i < nload_of(n); i++) {
    if (g->nodes[n->in[i]].dtype != DT_F32) return false;
    const Shape *is = &g->nodes[n->in[i]].shape;
    if (numel(is) == 1) continue;
    if (!ir_shape_eq(is, &n->shape) || !aligned16(k->in[i])) return false;
  }
  return true;
}

/* one node's grid-stride loop inside a fused elementwise launch */
static void ew_node(RCu *c, bool vec, int idx) {
  const Node *n = c->k->n;
  const Shape *os = &n->shape;
  int nload = nload_of(n);
  char sfx[16];
  snprintf(sfx, sizeof sfx, "_%d", idx);
  fprintf(c->cu, "  { /* %s */\n", ir_ops[n->op].name);
  decl_bufs(c, sfx);
  if (n->op == OP_ADAMW_PARAM) fprintf(c->cu, "  const float s0 = x3%s[0], s1 = x3%s[1], s2 = x3%s[2];\n", sfx, sfx, sfx);
  static const char *var[] = {"a", "b", "c"};
  if (vec) {
    fputs("  CR_GS(e4, n / 4) {\n", c->cu);
    for (int i = 0; i < nload; i++) {
      if (numel(in_shape(c, i)) == 1) fprintf(c->cu, "    const float %s_s = x%d%s[0];\n", var[i], i, sfx);
      else fprintf(c->cu, "    const float4 %s4 = ((const float4 *)x%d%s)[e4];\n", var[i], i, sfx);
    }
    fputs("    float4 r4;\n", c->cu);
    static const char *comp[] = {"x", "y", "z", "w"};
    for (int q = 0; q < 4; q++) {
      fputs("    { ", c->cu);
      for (int i = 0; i < nload; i++) {
        if (numel(in_shape(c, i)) == 1) fprintf(c->cu, "const float %s = %s_s; ", var[i], var[i]);
        else fprintf(c->cu, "const float %s = %s4.%s; ", var[i], var[i], comp[q]);
      }
      fprintf(c->cu, "r4.%s = ", comp[q]);
      code_for_op[n->op](c->cu, n);
      fputs("; }\n", c->cu);
    }
    fprintf(c->cu, "    ((float4 *)o%s)[e4] = r4;\n  }\n  }\n", sfx);
    return;
  }
  bool need_od = false;
  for (int i = 0; i < nload; i++) {
    const Shape *is = in_shape(c, i);
    if (ir_shape_eq(is, os) || numel(is) == 1) continue;
    bool suffix = is->rank <= os->rank;
    for (int d = 0; suffix && d < is->rank; d++) suffix = is->dim[is->rank - 1 - d] == os->dim[os->rank - 1 - d];
    if (!suffix) {
      if (!need_od) put_dims(c->cu, "od", os), need_od = true;
      char nm[16];
      snprintf(nm, sizeof nm, "id%d", i);
      put_dims(c->cu, nm, is);
    }
  }
  fputs("  CR_GS(e, n) {\n", c->cu);
  for (int i = 0; i < nload; i++) {
    const Shape *is = in_shape(c, i);
    int64_t ni = numel(is);
    fprintf(c->cu, "    const float %s = x%d%s[", var[i], i, sfx);
    if (ir_shape_eq(is, os)) fputs("e", c->cu);
    else if (ni == 1) fputs("0", c->cu);
    else {
      bool suffix = is->rank <= os->rank;
      for (int d = 0; suffix && d < is->rank; d++) suffix = is->dim[is->rank - 1 - d] == os->dim[os->rank - 1 - d];
      if (suffix) fprintf(c->cu, "e %% %" PRId64 "ll", ni);
      else fprintf(c->cu, "cr_bcast(%d, od, %d, id%d, e)", os->rank, is->rank, i);
    }
    fputs("];\n", c->cu);
  }
  fprintf(c->cu, "    o%s[e] = ", sfx);
  code_for_op[n->op](c->cu, n);
  fputs(";\n  }\n  }\n", c->cu);
}

/* A node of an elementwise launch as a call of a __device__ __noinline__
 * function (its text hashed: one function per distinct op/attributes/shape
 * pattern, so a multi-tensor AdamW over hundreds of parameters compiles as a
 * list of calls to three functions). */
static void ew_call(RCu *c, bool vec) {
  FILE *kern = c->cu;
  char *ft = NULL;
  size_t fl = 0;
  FILE *fm = open_memstream(&ft, &fl);
  if (!fm) {
    c->oom = true;
    return;
  }
  c->cu = fm, c->local = true, c->lbase = c->nbuf;
  ew_node(c, vec, 0);
  c->cu = kern, c->local = false;
  fclose(fm);
  const char *txt = ft ? ft : "";
  uint64_t h = fnv64(txt, strlen(txt), 0x84222325cbf29ce4ull);
  if (first_sighting(c, h)) {
    /* c->body is the artifact's output while a kernel is open: the function lands before the kernel */
    fprintf(c->body, "__device__ __noinline__ void f_%016" PRIx64 "(void *const *P, long long n) {\n%s}\n\n", h, txt);
  }
  free(ft);
  fprintf(c->cu, "  f_%016" PRIx64 "(P + %u, %" PRId64 "ll);\n", h, c->lbase, numel(&c->k->n->shape));
}

/* ---- per-op render functions (one or more launches per node) ------------------------- */

static void r_fill(RCu *c) {
  int64_t N = numel(&c->k->n->shape);
  begin(c, grid_for(N, 1), CR_BLOCK);
  decl_bufs(c, "");
  double v = ir_get_float(c->k->n, ATTR_VALUE);
  if (c->k->n->dtype == DT_I32) fprintf(c->cu, "  CR_GS(e, %" PRId64 ") o[e] = %lld;\n", N, (long long)v);
  else fprintf(c->cu, "  CR_GS(e, %" PRId64 ") o[e] = (float)%.9g;\n", N, v);
  end(c);
}
static void r_sinusoid(RCu *c) {
  int64_t S = c->k->n->shape.dim[0], H = c->k->n->shape.dim[1];
  begin(c, grid_for(S * H, 1), CR_BLOCK);
  decl_bufs(c, "");
  fprintf(c->cu,
          "  CR_GS(e, %" PRId64 "ll) {\n    const long long s = e / %" PRId64 ", i = e %% %" PRId64 ", i2 = i & ~1ll;\n"
          "    const double div = exp((double)i2 * (-log(10000.0) / %" PRId64 ".0));\n"
          "    o[e] = (float)((i & 1) ? cos((double)s * div) : sin((double)s * div));\n  }\n",
          S * H, H, H, H);
  end(c);
}
static void r_arange(RCu *c) {
  int64_t N = numel(&c->k->n->shape);
  begin(c, grid_for(N, 1), CR_BLOCK);
  decl_bufs(c, "");
  fprintf(c->cu, "  CR_GS(e, %" PRId64 ") o[e] = (float)e;\n", N);
  end(c);
}
static void r_embedding(RCu *c) {
  const Shape *ts = in_shape(c, 0);
  int64_t n = numel(in_shape(c, 1)), V = ts->dim[0], H = ts->dim[1];
  begin(c, grid_for(n * H, 1), CR_BLOCK);
  decl_bufs(c, "");
  fprintf(c->cu,
          "  CR_GS(e, %" PRId64 "ll) {\n    const long long r = e / %" PRId64 ", j = e %% %" PRId64 ";\n    const int id = x1[r];\n"
          "    if (id < 0 || id >= %" PRId64 ") { cr_fail(E, code); o[e] = 0.f; continue; }\n"
          "    o[e] = x0[(long long)id * %" PRId64 " + j];\n  }\n",
          n * H, H, H, V, H);
  end(c);
}
/* per batch row: the first `count` masked positions of t[b, :] into shared pos[] */
static void masked_pos(RCu *c, int64_t S, int64_t count) {
  fprintf(c->cu,
          "  __shared__ int pos[%" PRId64 "];\n  const long long b = blockIdx.x;\n"
          "  if (threadIdx.x == 0) {\n    int k = 0;\n"
          "    for (long long s = 0; s < %" PRId64 " && k < %" PRId64 "; s++) if (tg[b * %" PRId64 " + s] != -100) pos[k++] = (int)s;\n"
          "    for (; k < %" PRId64 "; k++) pos[k] = -1;\n  }\n  __syncthreads();\n",
          count > 0 ? count : 1, S, count, S, count);
}
static void r_masked_rows(RCu *c) {
  const Shape *xs = in_shape(c, 0);
  int64_t B = xs->dim[0], S = xs->dim[1], H = xs->dim[2], count = ir_get_int(c->k->n, ATTR_SLOTS);
  begin(c, (uint32_t)B, CR_BLOCK);
  decl_bufs(c, "");
  fputs("  const int *tg = x1;\n", c->cu);
  masked_pos(c, S, count);
  fprintf(c->cu,
          "  for (long long e = threadIdx.x; e < %" PRId64 "ll; e += blockDim.x) {\n"
          "    const long long k = e / %" PRId64 ", j = e %% %" PRId64 ";\n"
          "    o[(b * %" PRId64 " + k) * %" PRId64 " + j] = pos[k] < 0 ? 0.f : x0[(b * %" PRId64 " + pos[k]) * %" PRId64 " + j];\n  }\n",
          count * H, H, H, count, H, S, H);
  end(c);
}
static void r_masked_targets(RCu *c) {
  const Shape *ts = in_shape(c, 0);
  int64_t B = ts->dim[0], S = ts->dim[1], count = ir_get_int(c->k->n, ATTR_SLOTS);
  begin(c, (uint32_t)B, 32);
  decl_bufs(c, "");
  fputs("  const int *tg = x0;\n", c->cu);
  masked_pos(c, S, count);
  fprintf(c->cu,
          "  for (long long k = threadIdx.x; k < %" PRId64 "; k += blockDim.x) o[b * %" PRId64 " + k] = pos[k] < 0 ? -100 : tg[b * %" PRId64 " + pos[k]];\n",
          count, count, S);
  end(c);
}
static void zero_launch(RCu *c, int64_t N) {
  begin(c, grid_for(N, 1), CR_BLOCK);
  decl_bufs(c, "");
  fprintf(c->cu, "  CR_GS(e, %" PRId64 "ll) o[e] = 0.f;\n", N);
  end(c);
}
static void r_embedding_grad(RCu *c) {
  int64_t n = numel(in_shape(c, 0)), V = c->k->n->shape.dim[0], H = c->k->n->shape.dim[1];
  zero_launch(c, V * H);
  begin(c, grid_for(n * H, 1), CR_BLOCK);
  decl_bufs(c, "");
  fprintf(c->cu,
          "  CR_GS(e, %" PRId64 "ll) {\n    const long long r = e / %" PRId64 ", j = e %% %" PRId64 ";\n    const int id = x0[r];\n"
          "    if (id >= 0 && id < %" PRId64 ") atomicAdd(&o[(long long)id * %" PRId64 " + j], x1[e]);\n  }\n",
          n * H, H, H, V, H);
  end(c);
}
static void r_masked_rows_grad(RCu *c) {
  const Shape *s = &c->k->n->shape;
  int64_t B = s->dim[0], S = s->dim[1], H = s->dim[2], slots = ir_get_int(c->k->n, ATTR_SLOTS);
  begin(c, (uint32_t)B, CR_BLOCK);
  decl_bufs(c, "");
  fputs("  const int *tg = x1;\n", c->cu);
  fprintf(c->cu,
          "  __shared__ int slot_of[%" PRId64 "];\n  const long long b = blockIdx.x;\n"
          "  if (threadIdx.x == 0) {\n    int k = 0;\n"
          "    for (long long s = 0; s < %" PRId64 "; s++) slot_of[s] = (k < %" PRId64 " && tg[b * %" PRId64 " + s] != -100) ? k++ : -1;\n"
          "  }\n  __syncthreads();\n"
          "  for (long long e = threadIdx.x; e < %" PRId64 "ll; e += blockDim.x) {\n"
          "    const long long s = e / %" PRId64 ", j = e %% %" PRId64 ";\n"
          "    o[(b * %" PRId64 " + s) * %" PRId64 " + j] = slot_of[s] < 0 ? 0.f : x0[(b * %" PRId64 " + slot_of[s]) * %" PRId64 " + j];\n  }\n",
          S, S, slots, S, S * H, H, H, S, H, slots, H);
  end(c);
}

/* GEMM nodes: cuBLASLt (with the bias / relu epilogue where it is exact),
 * then our epilogue kernel where one is needed. */
static int gemm_dt(const Graph *g, ValueId v) { return is_bf16(g, v) ? 1 : 0; }
/* Our kernel (not cuBLASLt) applies the activation: gelu, sigmoid. */
static bool gemm_own_epi(const KGemm *g) { return g->epi == KEPI_ACT && act_code(g->act) != 0 && act_code(g->act) != 2; }
/* The GEMM result goes to f32 scratch for a GLU (grad) kernel, and when our
 * kernel finishes it into a bf16 output: one rounding, after the epilogue, as
 * the interpreter's fused op. */
static bool gemm_to_scratch(const Graph *gr, const KNode *k) {
  const KGemm *g = &k->g;
  return g->epi == KEPI_GLU || g->epi == KEPI_GLU_GRAD || (is_bf16(gr, k->id) && (gemm_own_epi(g) || g->epi == KEPI_ACT_GRAD));
}
static void r_gemm(RCu *c) {
  const KGemm *g = &c->k->g;
  const KNode *k = c->k;
  int64_t rows = g->batch * g->M;
  int act = g->act ? act_code(g->act) : 0;
  bool own_epi = gemm_own_epi(g), scratch = gemm_to_scratch(G(c), k);
  HGemm h = {g->ta, g->tb, g->M, g->N, g->K, g->batch, g->lda, g->ldb, g->ldc, g->stride_a, g->stride_b, g->stride_c,
             norm(k->in[g->a_in]), norm(k->in[g->b_in]), scratch ? scratch_buf(0) : norm(k->out), {0, KBUF_NO_SLOT}, false, 0, 0.0f,
             gemm_dt(G(c), k->n->in[g->a_in]), gemm_dt(G(c), k->n->in[g->b_in]), scratch ? 0 : gemm_dt(G(c), k->id)};
  if (g->epi == KEPI_ACT) {
    if (g->bias) h.has_bias = true, h.bias = norm(k->in[2]);
    if (act == 2) h.epi = g->bias ? 3 : 2;
    else h.epi = g->bias ? 1 : 0;
  }
  if (scratch) need_scratch(c, (uint64_t)(rows * g->N) * 4);
  gemm_entry(c, &h);
  if (own_epi) {
    begin(c, grid_for(rows * g->N, 1), CR_BLOCK);
    decl_bufs(c, "");
    if (scratch) fprintf(c->cu, "  const float *y = (const float *)T;\n  CR_GS(e, %" PRId64 "ll) o[e] = cr_act(%d, y[e]);\n", rows * g->N, act);
    else fprintf(c->cu, "  CR_GS(e, %" PRId64 "ll) o[e] = cr_act(%d, o[e]);\n", rows * g->N, act);
    end(c);
  } else if (g->epi == KEPI_GLU) {
    int64_t F = g->N / 2;
    begin(c, grid_for(rows * F, 1), CR_BLOCK);
    decl_bufs(c, "");
    fprintf(c->cu,
            "  const float *y = (const float *)T;\n"
            "  CR_GS(e, %" PRId64 "ll) {\n    const long long r = e / %" PRId64 ", j = e %% %" PRId64 ";\n"
            "    float a = y[r * %" PRId64 " + j], gg = y[r * %" PRId64 " + %" PRId64 " + j];\n",
            rows * F, F, F, 2 * F, 2 * F, F);
    if (g->bias) fprintf(c->cu, "    a += x2[j], gg += x2[%" PRId64 " + j];\n", F);
    fprintf(c->cu, "    o[e] = a * cr_act(%d, gg);\n  }\n", act);
    end(c);
  } else if (g->epi == KEPI_ACT_GRAD) {
    begin(c, grid_for(numel(&k->n->shape), 1), CR_BLOCK);
    decl_bufs(c, "");
    const char *y = scratch ? "y[e]" : "o[e]";
    if (scratch) fputs("  const float *y = (const float *)T;\n", c->cu);
    fprintf(c->cu,
            "  CR_GS(e, %" PRId64 "ll) { float f, df; cr_act_pair(%d, x0[e], &f, &df); const float g = %s; o[e] = %d == 2 ? (x0[e] > 0.f ? g : 0.f) : g * df; }\n",
            numel(&k->n->shape), act, y, act);
    end(c);
  } else if (g->epi == KEPI_GLU_GRAD) {
    int64_t F = g->N;
    begin(c, grid_for(rows * F, 1), CR_BLOCK);
    decl_bufs(c, "");
    fprintf(c->cu, "  cr_glu_grad_body(o, x0, (const float *)T, %" PRId64 "ll, %" PRId64 "ll, %d);\n", rows, F, act);
    end(c);
  }
}

static void r_dropout(RCu *c) {
  const Node *n = c->k->n;
  int64_t N = numel(&n->shape);
  double p = ir_get_float(n, ATTR_P);
  begin(c, grid_for(N, 1), CR_BLOCK);
  decl_bufs(c, "");
  fprintf(c->cu,
          "  if (!training || %.17g == 0.0) { if ((const void *)o != (const void *)x0) CR_GS(e, %" PRId64 "ll) o[e] = x0[e]; return; }\n"
          "  const u64 seed = *(const u64 *)seedp; /* per run, in device memory: graph replays see it */\n"
          "  CR_GS(e, %" PRId64 "ll) o[e] = cr_uniform(seed, %" PRIu64 "ull, (u64)e) < %.17g ? 0.f : (float)((double)x0[e] / (1.0 - %.17g));\n",
          p, N, N, (uint64_t)ir_get_int(n, ATTR_KEY), p, p);
  end(c);
}
static void r_glu(RCu *c) {
  int64_t F = lastd(&c->k->n->shape), rows = numel(&c->k->n->shape) / F;
  begin(c, grid_for(rows * F, 1), CR_BLOCK);
  decl_bufs(c, "");
  fprintf(c->cu,
          "  CR_GS(e, %" PRId64 "ll) { const long long r = e / %" PRId64 ", j = e %% %" PRId64 "; o[e] = x0[r * %" PRId64 " + j] * cr_act(%d, x0[r * %" PRId64 " + %" PRId64 " + j]); }\n",
          rows * F, F, F, 2 * F, act_code(ir_get_str(c->k->n, ATTR_ACT)), 2 * F, F);
  end(c);
}
static void r_glu_grad(RCu *c) {
  const Shape *dy = in_shape(c, 1);
  int64_t F = lastd(dy), rows = numel(dy) / F;
  begin(c, grid_for(rows * F, 1), CR_BLOCK);
  decl_bufs(c, "");
  fprintf(c->cu, "  cr_glu_grad_body(o, x0, x1, %" PRId64 "ll, %" PRId64 "ll, %d);\n", rows, F, act_code(ir_get_str(c->k->n, ATTR_ACT)));
  end(c);
}

/* warp-per-row launch: declares r (row) and lane, returns for rows past the end */
static void row_begin(RCu *c, int64_t rows) {
  begin(c, grid_rows(rows), CR_BLOCK);
  decl_bufs(c, "");
  fprintf(c->cu,
          "  const long long r = (long long)blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;\n  const int lane = threadIdx.x & 31;\n"
          "  if (r >= %" PRId64 "ll) return;\n",
          rows);
}
static void rows_h(RCu *c, int64_t *rows, int64_t *H) {
  *H = lastd(&c->k->n->shape);
  *rows = numel(&c->k->n->shape) / *H;
}
static void r_layernorm(RCu *c) {
  int64_t rows, H;
  rows_h(c, &rows, &H);
  const Node *n = c->k->n;
  bool add = n->op == OP_ADD_LAYERNORM;
  int w = add ? 2 : 1;
  char xb[64];
  snprintf(xb, sizeof xb, add ? "x1 + r * %" PRId64 : "NULL", H);
  row_begin(c, rows);
  fprintf(c->cu,
          "  const auto xa = x0 + r * %" PRId64 ";\n  const auto xb = %s;\n  const auto w = %s;\n  const auto bi = %s;\n  const auto orow = o + r * %" PRId64 ";\n"
          "  (void)w, (void)bi, (void)xb;\n"
          "#define XV(j) (%s)\n"
          "  float s = 0.f;\n  for (long long j = lane; j < %" PRId64 "; j += 32) s += XV(j);\n"
          "  const float mean = cr_warp_sum(s) / %" PRId64 ".f;\n"
          "  float q = 0.f;\n  for (long long j = lane; j < %" PRId64 "; j += 32) { const float d = XV(j) - mean; q += d * d; }\n"
          "  const float rstd = rsqrtf(cr_warp_sum(q) / %" PRId64 ".f + (float)%.9g);\n"
          "  for (long long j = lane; j < %" PRId64 "; j += 32) orow[j] = (XV(j) - mean) * rstd%s%s;\n#undef XV\n",
          H, xb, n->nin > w ? (w == 1 ? "x1" : "x2") : "NULL",
          n->nin > w + 1 ? (w == 1 ? "x2" : "x3") : "NULL", H, add ? "xa[j] + xb[j]" : "xa[j]", H, H, H, H,
          ir_get_float(n, ATTR_EPS), H, n->nin > w ? " * w[j]" : "", n->nin > w + 1 ? " + bi[j]" : "");
  end(c);
}
static void r_rmsnorm(RCu *c) {
  int64_t rows, H;
  rows_h(c, &rows, &H);
  bool w = c->k->n->nin > 1;
  row_begin(c, rows);
  fprintf(c->cu,
          "  const auto xr = x0 + r * %" PRId64 ";\n  float s = 0.f;\n  for (long long j = lane; j < %" PRId64 "; j += 32) s += xr[j] * xr[j];\n"
          "  const float rr = rsqrtf(cr_warp_sum(s) / %" PRId64 ".f + (float)%.9g);\n"
          "  for (long long j = lane; j < %" PRId64 "; j += 32) o[r * %" PRId64 " + j] = xr[j] * rr%s;\n",
          H, H, H, ir_get_float(c->k->n, ATTR_EPS), H, H, w ? " * x1[j]" : "");
  end(c);
}
static void r_softmax(RCu *c) {
  int64_t rows, H;
  rows_h(c, &rows, &H);
  row_begin(c, rows);
  fprintf(c->cu,
          "  const auto xr = x0 + r * %" PRId64 ";\n  const auto orow = o + r * %" PRId64 ";\n"
          "  float m = -INFINITY;\n  for (long long j = lane; j < %" PRId64 "; j += 32) m = fmaxf(m, xr[j]);\n  m = cr_warp_max(m);\n"
          "  float s = 0.f;\n  for (long long j = lane; j < %" PRId64 "; j += 32) s += __expf(xr[j] - m);\n"
          "  const float inv = 1.f / cr_warp_sum(s);\n"
          "  for (long long j = lane; j < %" PRId64 "; j += 32) orow[j] = __expf(xr[j] - m) * inv;\n",
          H, H, H, H, H);
  end(c);
}
static void r_layernorm_grad(RCu *c) {
  int64_t rows, H;
  rows_h(c, &rows, &H);
  const Node *n = c->k->n;
  bool add = n->op == OP_LAYERNORM_GRAD_ADD;
  int nin = add ? n->nin - 1 : n->nin; /* (x, [w], dy) [, dres] */
  char res[64];
  snprintf(res, sizeof res, add ? "x%d[r * %" PRId64 " + j] + v" : "v", nin == 3 ? 3 : 2, H);
  row_begin(c, rows);
  fprintf(c->cu,
          "  const auto xr = x0 + r * %" PRId64 ";\n  const auto d = x%d + r * %" PRId64 ";\n"
          "  float s = 0.f;\n  for (long long j = lane; j < %" PRId64 "; j += 32) s += xr[j];\n"
          "  const float mean = cr_warp_sum(s) / %" PRId64 ".f;\n"
          "  float q = 0.f;\n  for (long long j = lane; j < %" PRId64 "; j += 32) { const float t = xr[j] - mean; q += t * t; }\n"
          "  const float rstd = rsqrtf(cr_warp_sum(q) / %" PRId64 ".f + (float)%.9g);\n"
          "#define GV(j) (d[j]%s)\n"
          "  float mg = 0.f, mgx = 0.f;\n"
          "  for (long long j = lane; j < %" PRId64 "; j += 32) { const float g = GV(j); mg += g; mgx += g * (xr[j] - mean) * rstd; }\n"
          "  mg = cr_warp_sum(mg) / %" PRId64 ".f, mgx = cr_warp_sum(mgx) / %" PRId64 ".f;\n"
          "  for (long long j = lane; j < %" PRId64 "; j += 32) {\n"
          "    const float v = rstd * (GV(j) - mg - (xr[j] - mean) * rstd * mgx);\n"
          "    o[r * %" PRId64 " + j] = %s;\n  }\n#undef GV\n",
          H, nin - 1, H, H, H, H, H, ir_get_float(n, ATTR_EPS), nin == 3 ? " * x1[j]" : "", H, H, H, H, H,
          res);
  end(c);
}
static void r_rmsnorm_grad(RCu *c) {
  int64_t rows, H;
  rows_h(c, &rows, &H);
  int nin = c->k->n->nin;
  row_begin(c, rows);
  fprintf(c->cu,
          "  const auto xr = x0 + r * %" PRId64 ";\n  const auto d = x%d + r * %" PRId64 ";\n"
          "  float ms = 0.f, mgx = 0.f;\n"
          "  for (long long j = lane; j < %" PRId64 "; j += 32) { ms += xr[j] * xr[j]; mgx += d[j]%s * xr[j]; }\n"
          "  const float rr = rsqrtf(cr_warp_sum(ms) / %" PRId64 ".f + (float)%.9g);\n  mgx = cr_warp_sum(mgx) / %" PRId64 ".f;\n"
          "  for (long long j = lane; j < %" PRId64 "; j += 32) o[r * %" PRId64 " + j] = rr * d[j]%s - rr * rr * rr * xr[j] * mgx;\n",
          H, nin - 1, H, H, nin == 3 ? " * x1[j]" : "", H, ir_get_float(c->k->n, ATTR_EPS), H, H, H, nin == 3 ? " * x1[j]" : "");
  end(c);
}
static void r_softmax_grad(RCu *c) {
  int64_t rows, H;
  rows_h(c, &rows, &H);
  row_begin(c, rows);
  fprintf(c->cu,
          "  const auto y = x0 + r * %" PRId64 ";\n  const auto d = x1 + r * %" PRId64 ";\n  float s = 0.f;\n"
          "  for (long long j = lane; j < %" PRId64 "; j += 32) s += y[j] * d[j];\n  s = cr_warp_sum(s);\n"
          "  for (long long j = lane; j < %" PRId64 "; j += 32) o[r * %" PRId64 " + j] = y[j] * (d[j] - s);\n",
          H, H, H, H, H);
  end(c);
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
  split_axis(in_shape(c, 0), ir_get_int(c->k->n, ATTR_AXIS), &outer, &len, &inner);
  begin(c, grid_for(outer * inner, 1), CR_BLOCK);
  decl_bufs(c, "");
  fprintf(c->cu,
          "  CR_GS(e, %" PRId64 "ll) {\n    const long long a = e / %" PRId64 ", i = e %% %" PRId64 ";\n    double s = 0;\n"
          "    for (long long l = 0; l < %" PRId64 "; l++) s += x0[(a * %" PRId64 " + l) * %" PRId64 " + i];\n"
          "    o[e] = (float)(s / %" PRId64 ".0);\n  }\n",
          outer * inner, inner, inner, len, len, inner, len);
  end(c);
}

/* scratch layout of the loss kernels: [0, 64) counters, [64, ...) doubles */
#define CR_SCR_USED 0
#define CR_SCR_PART 64
/* one block: checks targets, counts used rows into T[0] (int) */
static void count_targets(RCu *c, int ti, int64_t N, int64_t V, int64_t ignore) {
  begin(c, 1, 1024);
  decl_bufs(c, "");
  fprintf(c->cu,
          "  __shared__ int cnt;\n  if (threadIdx.x == 0) cnt = 0;\n  __syncthreads();\n  int mine = 0;\n"
          "  for (long long r = threadIdx.x; r < %" PRId64 "; r += blockDim.x) {\n    const int t = x%d[r];\n"
          "    if (t == %" PRId64 ") continue;\n    if (t < 0 || t >= %" PRId64 ") cr_fail(E, code); else mine++;\n  }\n"
          "  atomicAdd(&cnt, mine);\n  __syncthreads();\n  if (threadIdx.x == 0) *(int *)(T + %d) = cnt;\n",
          N, ti, ignore, V, CR_SCR_USED);
  end(c);
}
/* loss = sum(T doubles [CR_SCR_PART, +n)) / used */
static void loss_reduce(RCu *c, int64_t n, int64_t off) {
  begin(c, 1, 1024);
  decl_bufs(c, "");
  fprintf(c->cu,
          "  const double *part = (const double *)(T + %" PRId64 ");\n  double s = 0;\n"
          "  for (long long i = threadIdx.x; i < %" PRId64 "; i += blockDim.x) s += part[i];\n  s = cr_block_sum_d(s);\n"
          "  if (threadIdx.x == 0) { const int used = *(const int *)(T + %d); o[0] = (float)(used ? s / used : 0.0); }\n",
          off, n, CR_SCR_USED);
  end(c);
}
static void r_cross_entropy(RCu *c) {
  const Shape *ls = in_shape(c, 0);
  int64_t N = ls->dim[0], V = ls->dim[1], ignore = ir_get_int(c->k->n, ATTR_IGNORE);
  count_targets(c, 1, N, V, ignore);
  if (c->k->n->op == OP_CROSS_ENTROPY) {
    need_scratch(c, CR_SCR_PART + (uint64_t)N * 8);
    row_begin(c, N);
    fprintf(c->cu,
            "  double *part = (double *)(T + %d);\n  const int t = x1[r];\n"
            "  if (t == %" PRId64 " || t < 0 || t >= %" PRId64 ") { if (lane == 0) part[r] = 0; return; }\n"
            "  const auto xr = x0 + r * %" PRId64 ";\n"
            "  float m = -INFINITY;\n  for (long long j = lane; j < %" PRId64 "; j += 32) m = fmaxf(m, xr[j]);\n  m = cr_warp_max(m);\n"
            "  float s = 0.f;\n  for (long long j = lane; j < %" PRId64 "; j += 32) s += __expf(xr[j] - m);\n  s = cr_warp_sum(s);\n"
            "  if (lane == 0) part[r] = (double)m + log((double)s) - (double)xr[t];\n",
            CR_SCR_PART, ignore, V, V, V, V);
    end(c);
    loss_reduce(c, N, CR_SCR_PART);
  } else {
    need_scratch(c, CR_SCR_PART);
    row_begin(c, N);
    fprintf(c->cu,
            "  const int t = x1[r];\n  const auto d = o + r * %" PRId64 ";\n  const auto xr = x0 + r * %" PRId64 ";\n"
            "  if (t == %" PRId64 " || t < 0 || t >= %" PRId64 ") { for (long long j = lane; j < %" PRId64 "; j += 32) d[j] = 0.f; return; }\n"
            "  const int used = *(const int *)(T + %d);\n  const float k = used ? x2[0] / (float)used : 0.f;\n"
            "  float m = -INFINITY;\n  for (long long j = lane; j < %" PRId64 "; j += 32) m = fmaxf(m, xr[j]);\n  m = cr_warp_max(m);\n"
            "  float s = 0.f;\n  for (long long j = lane; j < %" PRId64 "; j += 32) s += __expf(xr[j] - m);\n  const float inv = 1.f / cr_warp_sum(s);\n"
            "  for (long long j = lane; j < %" PRId64 "; j += 32) d[j] = k * __expf(xr[j] - m) * inv - (j == t ? k : 0.f);\n",
            V, V, ignore, V, V, CR_SCR_USED, V, V, V);
    end(c);
  }
}

/* Rows per chunk of the fused decoder; CRAMC_XENT_CHUNK (render time) makes it
 * smaller so that tests reach the multi-chunk paths at toy sizes. */
static int64_t xent_chunk(void) {
  const char *e = getenv("CRAMC_XENT_CHUNK");
  long v = e ? strtol(e, NULL, 10) : 0;
  return v > 0 && v < CR_XENT_CHUNK ? v : CR_XENT_CHUNK;
}

/* Fused decoder + cross-entropy in chunks of rows: z = x_c op(W) [+ b] into
 * scratch (cuBLASLt, bias epilogue), a warp-per-row kernel (row losses, or z
 * turned into dlogits), then dx = dz op(W)^T / dW += ... / db += colsum(dz).
 * bf16 operands (autocast) follow the unfused chain's roundings, as the
 * interpreter's kernel: z is the GEMM's bf16 output and the bias is added in
 * f32 after it (so no bias epilogue), dz is stored as bf16 for the GEMMs
 * (f32, in its own region, for db), and dW, a bf16 result, accumulates over
 * chunks in f32 scratch and is rounded once at the end. */
static void r_xent_linear(RCu *c) {
  const Node *n = c->k->n;
  const KNode *k = c->k;
  const Shape *xs = in_shape(c, 0), *ws = in_shape(c, 1);
  bool tb = ir_get_int(n, ATTR_TRANS_B) != 0, bias = n->nin == 4, bf = is_bf16(G(c), n->in[0]);
  int64_t N = xs->dim[0], H = xs->dim[1], V = ws->dim[tb ? 0 : 1], ignore = ir_get_int(n, ATTR_IGNORE);
  int64_t es = bf ? 2 : 4, os = is_bf16(G(c), k->id) ? 2 : 4; /* bytes per element: x, W, z; the result */
  int wrt = n->op == OP_XENT_LINEAR ? -1 : (int)ir_get_int(n, ATTR_WRT), dt = bf ? 1 : 0;
  int64_t chunk = N < xent_chunk() ? N : xent_chunk();
  bool acc32 = wrt == 1 && os == 2 && chunk < N; /* dW summed over chunks in f32 */
  int64_t zoff = CR_SCR_PART + N * 8; /* z after the per-row losses */
  zoff = (zoff + 255) / 256 * 256;
  int64_t goff = (zoff + chunk * V * es + 255) / 256 * 256; /* bf16: f32 dz for db, or the f32 dW */
  int64_t gf = bf && wrt == 2 ? goff : zoff;                 /* where the f32 dz of db lives */
  need_scratch(c, (uint64_t)(zoff + chunk * V * es));
  if (bf && wrt == 2) need_scratch(c, (uint64_t)(goff + chunk * V * 4));
  if (acc32) need_scratch(c, (uint64_t)(goff + V * H * 4));
  count_targets(c, 2, N, V, ignore);
  for (int64_t r0 = 0; r0 < N; r0 += chunk) {
    int64_t nr = N - r0 < chunk ? N - r0 : chunk;
    KBuf xc = norm(k->in[0]);
    xc.offset += r0 * H * es; /* the chunk's rows (within the slot for a slot buffer) */
    HGemm z = {false, tb, nr, V, H, 1, H, tb ? H : V, V, 0, 0, 0, xc, norm(k->in[1]), scratch_buf(zoff), {0, KBUF_NO_SLOT}, false, 0, 0.f, dt, dt, dt};
    if (bias && !bf) z.has_bias = true, z.bias = norm(k->in[3]), z.epi = 1;
    gemm_entry(c, &z);
    row_begin(c, nr);
    fprintf(c->cu,
            "  const int t = x2[%" PRId64 " + r];\n  const auto zr = %s(T + %" PRId64 ") + r * %" PRId64 ";\n"
            "  double *part = (double *)(T + %d);\n",
            r0, bf ? "cr_bf16p" : "(float *)", zoff, V, CR_SCR_PART);
    fprintf(c->cu, "  auto Z = [&](long long j) -> float { return %s; };\n", bias && bf ? "(float)zr[j] + x3[j]" : "(float)zr[j]");
    if (gf != zoff) fprintf(c->cu, "  float *gr = (float *)(T + %" PRId64 ") + r * %" PRId64 ";\n", gf, V);
    const char *gname = gf != zoff ? "gr" : "zr";
    fprintf(c->cu,
            "  if (t == %" PRId64 " || t < 0 || t >= %" PRId64 ") { if (lane == 0) part[%" PRId64 " + r] = 0; for (long long j = lane; j < %" PRId64 "; j += 32) %s[j] = 0.f; return; }\n"
            "  float m = -INFINITY;\n  for (long long j = lane; j < %" PRId64 "; j += 32) m = fmaxf(m, Z(j));\n  m = cr_warp_max(m);\n"
            "  float s = 0.f;\n  for (long long j = lane; j < %" PRId64 "; j += 32) s += __expf(Z(j) - m);\n  s = cr_warp_sum(s);\n",
            ignore, V, r0, V, gname, V, V);
    if (wrt < 0) fprintf(c->cu, "  if (lane == 0) part[%" PRId64 " + r] = (double)m + log((double)s) - (double)Z(t);\n", r0);
    else
      fprintf(c->cu,
              "  const int used = *(const int *)(T + %d);\n  const float k = used ? 1.f / (float)used : 0.f, inv = 1.f / s;\n"
              "  for (long long j = lane; j < %" PRId64 "; j += 32) %s[j] = k * __expf(Z(j) - m) * inv - (j == t ? k : 0.f);\n",
              CR_SCR_USED, V, gname);
    end(c);
    if (wrt == 0) {
      KBuf oc = norm(k->out);
      oc.offset += r0 * H * os;
      HGemm d = {false, !tb, nr, H, V, 1, V, tb ? H : V, H, 0, 0, 0, scratch_buf(zoff), norm(k->in[1]), oc, {0, KBUF_NO_SLOT}, false, 0, 0.f, dt, dt, os == 2};
      gemm_entry(c, &d);
    } else if (wrt == 1) {
      KBuf xc2 = norm(k->in[0]), oc = acc32 ? scratch_buf(goff) : norm(k->out);
      xc2.offset += r0 * H * es;
      HGemm d = tb ? (HGemm){true, false, V, H, nr, 1, V, H, H, 0, 0, 0, scratch_buf(zoff), xc2, oc, {0, KBUF_NO_SLOT}, false, 0, r0 ? 1.f : 0.f, dt, dt, 0}
                   : (HGemm){true, false, H, V, nr, 1, H, V, V, 0, 0, 0, xc2, scratch_buf(zoff), oc, {0, KBUF_NO_SLOT}, false, 0, r0 ? 1.f : 0.f, dt, dt, 0};
      d.dtc = !acc32 && os == 2;
      gemm_entry(c, &d);
    } else if (wrt == 2) {
      begin(c, grid_for(V, 1), CR_BLOCK);
      decl_bufs(c, "");
      fprintf(c->cu,
              "  const float *z = (const float *)(T + %" PRId64 ");\n"
              "  CR_GS(j, %" PRId64 "ll) { float s = 0.f; for (long long i = 0; i < %" PRId64 "; i++) s += z[i * %" PRId64 " + j]; o[j] = %s s; }\n",
              gf, V, nr, V, r0 ? "o[j] +" : "");
      end(c);
    }
  }
  if (wrt < 0) loss_reduce(c, N, CR_SCR_PART);
  if (acc32) { /* the f32 sum of the chunks' dW, rounded once */
    begin(c, grid_for(V * H, 1), CR_BLOCK);
    decl_bufs(c, "");
    fprintf(c->cu, "  const float *acc = (const float *)(T + %" PRId64 ");\n  CR_GS(e, %" PRId64 "ll) o[e] = acc[e];\n", goff, V * H);
    end(c);
  }
}
static void r_reshape(RCu *c) {
  int64_t N = numel(&c->k->n->shape);
  if (c->k->out.slot == c->k->in[0].slot && c->k->out.offset == c->k->in[0].offset) return; /* aliased: nothing */
  begin(c, grid_for(N, 1), CR_BLOCK);
  decl_bufs(c, "");
  fprintf(c->cu, "  CR_GS(e, %" PRId64 "ll) o[e] = x0[e];\n", N);
  end(c);
}
static void r_permute(RCu *c) {
  const Shape *is = in_shape(c, 0), *os = &c->k->n->shape;
  const Attr *pa = ir_attr(c->k->n, ATTR_PERM);
  int64_t ist[IR_MAX_RANK], st = 1;
  for (int a = is->rank - 1; a >= 0; a--) ist[a] = st, st *= is->dim[a];
  begin(c, grid_for(numel(os), 1), CR_BLOCK);
  decl_bufs(c, "");
  put_dims(c->cu, "od", os);
  fputs("  const long long ist[] = {", c->cu);
  for (int a = 0; a < os->rank; a++) fprintf(c->cu, "%s%" PRId64, a ? ", " : "", ist[pa->u.ints.v[a]]);
  fprintf(c->cu,
          "};\n  CR_GS(e, %" PRId64 "ll) {\n    long long rem = e, src = 0;\n"
          "    for (int a = %d; a >= 0; a--) { src += (rem %% od[a]) * ist[a]; rem /= od[a]; }\n"
          "    o[e] = x0[src];\n  }\n",
          numel(os), os->rank - 1);
  end(c);
}
/* `outer` blocks of `len` elements: o[a*ostride + ooff + j] = x[a*istride + ioff + j] */
static void blocks(RCu *c, int xi, int64_t ostride, int64_t ooff, int64_t istride, int64_t ioff, int64_t outer, int64_t len) {
  fprintf(c->cu,
          "  CR_GS(e, %" PRId64 "ll) { const long long a = e / %" PRId64 ", j = e %% %" PRId64 "; "
          "o[a * %" PRId64 " + %" PRId64 " + j] = x%d[a * %" PRId64 " + %" PRId64 " + j]; }\n",
          outer * len, len, len, ostride, ooff, xi, istride, ioff);
}
static void r_slice(RCu *c) {
  int64_t outer, len, inner, start = ir_get_int(c->k->n, ATTR_START), olen = ir_get_int(c->k->n, ATTR_LEN);
  split_axis(in_shape(c, 0), ir_get_int(c->k->n, ATTR_AXIS), &outer, &len, &inner);
  begin(c, grid_for(outer * olen * inner, 1), CR_BLOCK);
  decl_bufs(c, "");
  blocks(c, 0, olen * inner, 0, len * inner, start * inner, outer, olen * inner);
  end(c);
}
static void r_pad(RCu *c) {
  const Node *n = c->k->n;
  int64_t outer, len, inner, start = ir_get_int(n, ATTR_START), size = ir_get_int(n, ATTR_SIZE);
  split_axis(in_shape(c, 0), ir_get_int(n, ATTR_AXIS), &outer, &len, &inner);
  zero_launch(c, numel(&n->shape));
  begin(c, grid_for(outer * len * inner, 1), CR_BLOCK);
  decl_bufs(c, "");
  blocks(c, 0, size * inner, start * inner, len * inner, 0, outer, len * inner);
  end(c);
}
static void r_concat(RCu *c) {
  const Node *n = c->k->n;
  int64_t axis = ir_get_int(n, ATTR_AXIS), outer, total, inner;
  split_axis(&n->shape, axis, &outer, &total, &inner);
  begin(c, grid_for(numel(&n->shape), 1), CR_BLOCK);
  decl_bufs(c, "");
  int64_t off = 0;
  for (int i = 0; i < n->nin; i++) {
    int64_t len = in_shape(c, i)->dim[axis];
    blocks(c, i, total * inner, off * inner, len * inner, 0, outer, len * inner);
    off += len;
  }
  end(c);
}
/* sum_to's common case: os (after leading 1s) is a suffix of xs (bias
 * gradients): a thread per output, no atomics */
static bool sum_to_rows(const Shape *xs, const Shape *os) {
  int lead = 0;
  while (lead < os->rank && os->dim[lead] == 1) lead++;
  bool suffix = os->rank - lead <= xs->rank;
  for (int d = 0; suffix && d < os->rank - lead; d++) suffix = os->dim[os->rank - 1 - d] == xs->dim[xs->rank - 1 - d];
  return suffix && numel(os) > 0 && numel(xs) % numel(os) == 0;
}
static void r_sum_to(RCu *c) {
  const Shape *xs = in_shape(c, 0), *os = &c->k->n->shape;
  int64_t nx = numel(xs), no = numel(os);
  if (sum_to_rows(xs, os)) {
    begin(c, grid_for(no, 1), CR_BLOCK);
    decl_bufs(c, "");
    fprintf(c->cu,
            "  CR_GS(j, %" PRId64 "ll) { double s = 0; for (long long i = 0; i < %" PRId64 "; i++) s += x0[i * %" PRId64 " + j]; o[j] = (float)s; }\n",
            no, nx / no, no);
    end(c);
    return;
  }
  zero_launch(c, no);
  begin(c, grid_for(nx, 1), CR_BLOCK);
  decl_bufs(c, "");
  put_dims(c->cu, "xd", xs);
  put_dims(c->cu, "od", os);
  fprintf(c->cu, "  CR_GS(e, %" PRId64 "ll) atomicAdd(&o[cr_bcast(%d, xd, %d, od, e)], x0[e]);\n", nx, xs->rank, os->rank);
  end(c);
}
static void r_broadcast_to(RCu *c) {
  const Shape *xs = in_shape(c, 0), *os = &c->k->n->shape;
  begin(c, grid_for(numel(os), 1), CR_BLOCK);
  decl_bufs(c, "");
  put_dims(c->cu, "xd", xs);
  put_dims(c->cu, "od", os);
  fprintf(c->cu, "  CR_GS(e, %" PRId64 "ll) o[e] = x0[cr_bcast(%d, od, %d, xd, e)];\n", numel(os), os->rank, xs->rank);
  end(c);
}
#define CR_SUMSQ_BLOCKS 264
static void r_sumsq(RCu *c) {
  int64_t n = numel(in_shape(c, 0));
  need_scratch(c, CR_SCR_PART + CR_SUMSQ_BLOCKS * 8);
  begin(c, CR_SUMSQ_BLOCKS, CR_BLOCK);
  decl_bufs(c, "");
  fprintf(c->cu,
          "  double s = 0;\n  CR_GS(e, %" PRId64 "ll) s += (double)x0[e] * x0[e];\n  s = cr_block_sum_d(s);\n"
          "  if (threadIdx.x == 0) ((double *)(T + %d))[blockIdx.x] = s;\n",
          n, CR_SCR_PART);
  end(c);
  begin(c, 1, CR_BLOCK);
  decl_bufs(c, "");
  fprintf(c->cu,
          "  double s = threadIdx.x < %d ? ((const double *)(T + %d))[threadIdx.x] : 0.0;\n"
          "  if (threadIdx.x + %d < %d) s += ((const double *)(T + %d))[threadIdx.x + %d];\n"
          "  s = cr_block_sum_d(s);\n  if (threadIdx.x == 0) o[0] = (float)s;\n",
          CR_SUMSQ_BLOCKS, CR_SCR_PART, CR_BLOCK, CR_SUMSQ_BLOCKS, CR_SCR_PART, CR_BLOCK);
  end(c);
}
static void r_clip_coef(RCu *c) {
  begin(c, 1, 32);
  decl_bufs(c, "");
  fprintf(c->cu,
          "  if (threadIdx.x) return;\n  const double mn = %.17g, coef = mn / (sqrt((double)x0[0]) + 1e-6);\n"
          "  o[0] = (float)(mn <= 0 ? 1.0 : (coef < 1.0 ? coef : 1.0));\n  if (mn > 0 && isnan(coef)) o[0] = (float)coef;\n",
          ir_get_float(c->k->n, ATTR_MAX_NORM));
  end(c);
}
static void r_adam_sched(RCu *c) {
  begin(c, 1, 32);
  decl_bufs(c, "");
  fprintf(c->cu,
          "  if (threadIdx.x) return;\n  const double t = x0[0];\n  if (!(t >= 1) || t != floor(t)) { cr_fail(E, code); return; }\n"
          "  o[0] = x1[0];\n  o[1] = (float)(1.0 - pow(%.17g, t));\n  o[2] = (float)(1.0 - pow(%.17g, t));\n",
          ir_get_float(c->k->n, ATTR_BETA1), ir_get_float(c->k->n, ATTR_BETA2));
  end(c);
}

typedef void (*RenderFn)(RCu *c);
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

bool render_cuda_supports(OpKind op) { return op < OP_COUNT && (render_op[op] != NULL || code_for_op[op] != NULL); }

void render_cuda_prelude(FILE *cu) {
  fputs("/* cramc CUDA prelude: device helpers of the generated kernels (codegen/render_cuda.c). */\n"
        "#include <cuda_bf16.h>\n"
        "typedef long long i64;\ntypedef unsigned long long u64;\n"
        "/* bf16 storage, f32 math: a load converts to float (exact), a store rounds to nearest even\n"
        " * (__float2bfloat16_rn, as the interpreter's interp_round_bf16); bf16 to bf16 copies are exact. */\n"
        "struct cr_bfref {\n  __nv_bfloat16 *p;\n"
        "  __device__ __forceinline__ operator float() const { return __bfloat162float(*p); }\n"
        "  __device__ __forceinline__ cr_bfref &operator=(float v) { *p = __float2bfloat16_rn(v); return *this; }\n"
        "  __device__ __forceinline__ cr_bfref &operator=(const cr_bfref &o) { *p = *o.p; return *this; }\n};\n"
        "struct cr_bf16p {\n  __nv_bfloat16 *p;\n"
        "  __device__ __forceinline__ explicit cr_bf16p(void *q) : p((__nv_bfloat16 *)q) {}\n"
        "  __device__ __forceinline__ cr_bfref operator[](long long i) const { return cr_bfref{p + i}; }\n"
        "  __device__ __forceinline__ cr_bf16p operator+(long long i) const { return cr_bf16p(p + i); }\n"
        "  __device__ __forceinline__ explicit operator const void *() const { return p; }\n};\n"
        "#ifndef NULL\n#define NULL 0\n#endif\n#ifndef INFINITY\n#define INFINITY __int_as_float(0x7f800000)\n#endif\n"
        "#define CR_GS(e, n) for (long long e = (long long)blockIdx.x * blockDim.x + threadIdx.x; e < (long long)(n); "
        "e += (long long)gridDim.x * blockDim.x)\n"
        "__device__ __forceinline__ float cr_gelu(float x) { return 0.5f * x * (1.f + erff(x * 0.70710678118654752f)); }\n"
        "__device__ __forceinline__ float cr_gelu_d(float x) {\n"
        "  return 0.5f * (1.f + erff(x * 0.70710678118654752f)) + x * __expf(-0.5f * x * x) * 0.3989422804014327f;\n}\n"
        "__device__ __forceinline__ float cr_sigmoid(float x) { return 1.f / (1.f + expf(-x)); }\n"
        "__device__ __forceinline__ float cr_silu_d(float x) { const float s = cr_sigmoid(x); return s * (1.f + x * (1.f - s)); }\n"
        "__device__ __forceinline__ void cr_act_pair(int act, float x, float *f, float *df) {\n"
        "  switch (act) {\n  case 1: *f = cr_gelu(x), *df = cr_gelu_d(x); break;\n"
        "  case 2: *f = x > 0.f ? x : 0.f, *df = x > 0.f ? 1.f : 0.f; break;\n"
        "  case 3: *f = 1.f / (1.f + __expf(-x)), *df = *f * (1.f - *f); break;\n  default: *f = x, *df = 1.f; break;\n  }\n}\n"
        "__device__ __forceinline__ float cr_act(int act, float x) { float f, df; cr_act_pair(act, x, &f, &df); return f; }\n"
        "__device__ __forceinline__ long long cr_bcast(int orank, const long long *od, int irank, const long long *id, long long flat) {\n"
        "  long long idx = 0, stride = 1;\n"
        "  for (int a = orank - 1, b = irank - 1; a >= 0; a--, b--) {\n    const long long coord = flat % od[a];\n    flat /= od[a];\n"
        "    if (b >= 0) { if (id[b] != 1) idx += coord * stride; stride *= id[b]; }\n  }\n  return idx;\n}\n"
        "/* splitmix64, as interp_ops.c hash_uniform: the same dropout masks as the cpu/interp targets */\n"
        "__device__ __forceinline__ double cr_uniform(u64 seed, u64 key, u64 e) {\n"
        "  u64 z = seed ^ (key * 0x9E3779B97F4A7C15ull) ^ (e * 0xD1B54A32D192ED03ull);\n  z += 0x9E3779B97F4A7C15ull;\n"
        "  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;\n  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;\n  z ^= z >> 31;\n"
        "  return (double)(z >> 11) * 1.1102230246251565e-16;\n}\n"
        "__device__ __forceinline__ float cr_warp_sum(float v) {\n"
        "  for (int o = 16; o; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);\n  return v;\n}\n"
        "__device__ __forceinline__ float cr_warp_max(float v) {\n"
        "  for (int o = 16; o; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));\n  return v;\n}\n"
        "__device__ __forceinline__ double cr_warp_sum_d(double v) {\n"
        "  for (int o = 16; o; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);\n  return v;\n}\n"
        "/* whole-block sum (blockDim.x a multiple of 32, <= 1024); the result in every thread */\n"
        "__device__ __forceinline__ double cr_block_sum_d(double v) {\n"
        "  __shared__ double w[32];\n  const int lane = threadIdx.x & 31, wid = threadIdx.x >> 5, nw = blockDim.x >> 5;\n"
        "  v = cr_warp_sum_d(v);\n  __syncthreads();\n  if (lane == 0) w[wid] = v;\n  __syncthreads();\n"
        "  v = lane < nw ? w[lane] : 0.0;\n  return cr_warp_sum_d(v);\n}\n"
        "__device__ __forceinline__ void cr_fail(int *E, int code) { atomicCAS(E, 0, code); }\n"
        "/* glu_grad(x[rows,2F], dy[rows,F]) -> o[rows,2F] */\n"
        "template <class O, class X, class D>\n"
        "__device__ __forceinline__ void cr_glu_grad_body(O o, X x, D dy, long long rows, long long F, int act) {\n"
        "  CR_GS(e, rows * F) {\n    const long long r = e / F, j = e % F;\n    float f, df; const float d = dy[e];\n"
        "    cr_act_pair(act, x[r * 2 * F + F + j], &f, &df);\n"
        "    o[r * 2 * F + j] = d * f;\n    o[r * 2 * F + F + j] = d * x[r * 2 * F + j] * df;\n  }\n}\n\n",
        cu);
}

static void node_desc(RCu *c) {
  const Node *n = c->k->n;
  char loc[160] = "";
  if (n->loc.file) snprintf(loc, sizeof loc, " at %s:%u:%u", n->loc.file, n->loc.line, n->loc.col);
  snprintf(c->node, sizeof c->node, "%%%u (%s%s)", c->k->id, ir_ops[n->op].name, loc);
  for (char *s = c->node; *s; s++)
    if (*s == '"' || *s == '\\' || *s == '*' || (unsigned char)*s < 32) *s = '_';
}

static bool overlap(const Graph *g, KBuf a, ValueId av, KBuf b, ValueId bv) {
  if (a.slot != b.slot) return false;
  if (a.slot != KBUF_NO_SLOT) return true;
  int64_t ae = a.offset + numel(&g->nodes[av].shape) * (int64_t)ir_dtype_size(g->nodes[av].dtype);
  int64_t be = b.offset + numel(&g->nodes[bv].shape) * (int64_t)ir_dtype_size(g->nodes[bv].dtype);
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
    if (overlap(g, k->out, k->id, kq->out, kq->id) &&
        !(k->out.slot == kq->out.slot && k->out.offset == kq->out.offset && ir_shape_eq(&k->n->shape, &kq->n->shape) &&
          k->n->dtype == kq->n->dtype))
      return false;
  }
  return true;
}

static bool render_graph(RCu *cc, char *err, size_t errlen);

void render_cuda_host_free(RenderCudaHost *h) {
  free(h->launch), free(h->tab);
  memset(h, 0, sizeof *h);
}

/* bf16 combinations the kernels do not implement, as a reason (NULL: fine).
 * autocast_bf16 produces none of them: its scatter-adds and fused losses are f32. */
static const char *bf16_unsupported(const Graph *g, const KNode *k) {
  const Node *n = k->n;
  bool any = is_bf16(g, k->id);
  for (int i = 0; i < n->nin; i++) any |= is_bf16(g, n->in[i]);
  if (!any) return NULL;
  if (n->op == OP_EMBEDDING_GRAD && is_bf16(g, k->id)) return "a bf16 scatter-add (atomicAdd) output";
  if (n->op == OP_SUM_TO && is_bf16(g, k->id) && !sum_to_rows(&g->nodes[n->in[0]].shape, &n->shape))
    return "a bf16 scatter-add (atomicAdd) output";
  if ((n->op == OP_XENT_LINEAR || n->op == OP_XENT_LINEAR_GRAD) && is_bf16(g, n->in[0]) != is_bf16(g, n->in[1]))
    return "fused decoder + cross-entropy operands of different dtypes";
  if (k->gemm) {
    const KGemm *m = &k->g;
    if (is_bf16(g, n->in[m->a_in]) != is_bf16(g, n->in[m->b_in])) return "GEMM operands of different dtypes";
    bool c_bf16 = !gemm_to_scratch(g, k) && is_bf16(g, k->id); /* the type cuBLASLt writes */
    if (m->epi == KEPI_ACT && m->bias && is_bf16(g, n->in[2]) != c_bf16)
      return "a GEMM bias whose dtype differs from the GEMM result's (cuBLASLt takes the result's)";
  }
  return NULL;
}

bool render_cuda_graph(FILE *cu, FILE *host, const KProgram *p, const char *prefix, RenderCudaSeen *seen, uint64_t *scratch,
                       RenderCudaHost *h, char *err, size_t errlen) {
  memset(h, 0, sizeof *h);
  char *lt = NULL;
  size_t ltn = 0;
  FILE *hl = open_memstream(&lt, &ltn);
  if (!hl) {
    snprintf(err, errlen, "out of memory");
    return false;
  }
  RCu c = {.cu = cu, .hl = hl, .h = h, .p = p, .prefix = prefix, .seen = seen};
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

static bool render_graph(RCu *cc, char *err, size_t errlen) {
  RCu c = *cc; /* copied back at the end */
  const KProgram *p = c.p;
  for (uint32_t ki = 0; ki < p->nkernels; ki++) {
    const Kernel *K = &p->kernels[ki];
    uint32_t j = K->first, endn = K->first + K->count;
    while (j < endn) {
      c.k = &p->nodes[j];
      const Node *n = c.k->n;
      if (!render_cuda_supports(n->op)) {
        snprintf(err, errlen, "%%%u: op %s has no CUDA kernel", c.k->id, ir_ops[n->op].name);
        *cc = c;
        return false;
      }
      if (!c.k->gemm && is_elementwise(n)) {
        /* a run of elementwise nodes: one launch */
        uint32_t q = j + 1;
        while (q < endn && !p->nodes[q].gemm && is_elementwise(p->nodes[q].n) && can_join(p, j, q)) q++;
        bool vec = true;
        int64_t maxn = 0;
        for (uint32_t t = j; t < q; t++) {
          vec = vec && vec4_ok(p->g, &p->nodes[t]);
          int64_t nn = numel(&p->nodes[t].n->shape);
          if (nn > maxn) maxn = nn;
        }
        node_desc(&c);
        if (q - j > 1) {
          size_t l = strlen(c.node);
          snprintf(c.node + l, sizeof c.node - l, " + %u fused", q - j - 1);
        }
        begin(&c, grid_for(maxn, vec ? 4 : 1), CR_BLOCK);
        for (uint32_t t = j; t < q; t++) {
          c.k = &p->nodes[t];
          ew_call(&c, vec);
        }
        end(&c);
        j = q;
        continue;
      }
      if (!render_op[n->op]) { /* an elementwise op on i32 */
        snprintf(err, errlen, "%%%u: op %s on %s has no CUDA kernel", c.k->id, ir_ops[n->op].name, ir_dtype_name(n->dtype));
        *cc = c;
        return false;
      }
      const char *why = bf16_unsupported(p->g, c.k);
      if (why) {
        snprintf(err, errlen, "%%%u: op %s: %s is not supported by the cuda target", c.k->id, ir_ops[n->op].name, why);
        *cc = c;
        return false;
      }
      node_desc(&c);
      render_op[n->op](&c);
      j++;
    }
  }
  *cc = c;
  return true;
}
