/* render_cuda_launch.c - the kernels and the launch list of the CUDA
 * renderer: each kernel reads its buffers from P[], the launch's pointer
 * table (built by the shim at create()), so kernels of identical layers are
 * identical text, written once (named by the hash of that text); GEMMs are
 * cuBLASLt entries of the same list. See render_cuda_impl.h. */
#include <stdlib.h>
#include <string.h>

#include "render_cuda_impl.h"

const char *rc_act(const char *name) {
  static const char *const lib[ACT_COUNT] = {
#define ACT(id, nm) [ACT_##id] = "CR_ACT_" #id,
#include "acts.def"
#undef ACT
  };
  int a = name ? ir_act_parse(name) : ACT_NONE;
  return lib[a < 0 ? ACT_NONE : a]; /* the verifier has checked the attribute */
}

uint32_t rc_grid_for(int64_t n, int64_t per_thread) {
  int64_t g = (n / (per_thread > 0 ? per_thread : 1) + CR_BLOCK - 1) / CR_BLOCK;
  return (uint32_t)(g < 1 ? 1 : g > CR_GRID_CAP ? CR_GRID_CAP : g);
}
uint32_t rc_grid_rows(int64_t rows) {
  int64_t g = (rows + CR_BLOCK / 32 - 1) / (CR_BLOCK / 32);
  return (uint32_t)(g < 1 ? 1 : g > 2147483647 ? 2147483647 : g);
}
void rc_need_scratch(RCu *c, uint64_t bytes) {
  if (bytes > c->scratch) c->scratch = bytes;
}

/* ---- buffers ------------------------------------------------------------------------ */

/* A buffer as the kernels see it: float / int pointers, or cr_bf16p (common.cuh)
 * for bf16 storage, which reads as float and stores float rounded to nearest even. */
static const char *ptype(const Graph *g, ValueId v) {
  return g->nodes[v].dtype == DT_I32 ? "int *" : rc_is_bf16(g, v) ? "cr_bf16p " : "float *";
}
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
void rc_decl_bufs(RCu *c, const char *sfx) {
  const KNode *k = c->k;
  const Graph *g = rc_graph(c);
  fprintf(c->cu, "  %so%s = ", ptype(g, k->id), sfx);
  put_buf(c, ptype(g, k->id), k->out);
  fputs(";\n", c->cu);
  for (int i = 0; i < k->n->nin; i++) {
    fprintf(c->cu, "  const %sx%d%s = ", ptype(g, k->n->in[i]), i, sfx);
    put_buf(c, ptype(g, k->n->in[i]), k->in[i]);
    fputs(";\n", c->cu);
  }
  fprintf(c->cu, "  (void)o%s;\n", sfx);
}
void rc_decl_out(RCu *c, const char *name, const KNode *k) {
  const char *t = ptype(rc_graph(c), k->id);
  fprintf(c->cu, "  %s%s = ", t, name);
  put_buf(c, t, k->out);
  fputs(";\n", c->cu);
}
void rc_decl_in(RCu *c, const char *name, ValueId v, KBuf b) {
  const char *t = ptype(rc_graph(c), v);
  fprintf(c->cu, "  const %s%s = ", t, name);
  put_buf(c, t, b);
  fputs(";\n", c->cu);
}
void rc_put_dims(FILE *out, const char *name, const Shape *s) {
  fprintf(out, "  const long long %s[] = {", name);
  for (int d = 0; d < s->rank; d++) fprintf(out, "%s%" PRId64, d ? ", " : "", s->dim[d]);
  if (!s->rank) fputs("1", out);
  fputs("};\n", out);
}

/* ---- launches ----------------------------------------------------------------------- */

void rc_begin(RCu *c, uint32_t grid, uint32_t block) {
  c->grid = grid, c->block = block, c->nbuf = 0;
  c->bodytxt = NULL, c->bodylen = 0;
  c->body = open_memstream(&c->bodytxt, &c->bodylen);
  if (!c->body) c->oom = true, c->body = fopen("/dev/null", "w");
  FILE *t = c->cu;
  c->cu = c->body, c->body = t; /* render into the body; c->body holds the real output meanwhile */
}
uint64_t rc_fnv64(const char *s, size_t n, uint64_t h) {
  for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 0x100000001b3ull;
  return h;
}
bool rc_first_sighting(RCu *c, uint64_t h) {
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
static RenderCudaRef ref_of(KBuf b) { return (RenderCudaRef){ b.slot, b.offset }; } /* arena / scratch / slot */

void rc_end(RCu *c) {
  FILE *mem = c->cu;
  c->cu = c->body, c->body = NULL;
  fclose(mem);
  const char *txt = c->bodytxt ? c->bodytxt : "";
  uint64_t h = rc_fnv64(txt, strlen(txt), 0xcbf29ce484222325ull ^ c->block);
  if (rc_first_sighting(c, h)) {
    fprintf(c->cu,
            "/* first: %s */\nextern \"C\" __global__ void __launch_bounds__(%u) k_%016" PRIx64
            "(void *const *P, char *T, u64 seedp, int training, int *E, int code) {\n"
            "  (void)P, (void)T, (void)seedp, (void)training, (void)E, (void)code;\n%s}\n\n",
            c->node, c->block, h, txt);
  }
  free(c->bodytxt), c->bodytxt = NULL;
  fprintf(c->hl, "  {CRAM_CUDA_L_KERNEL, \"k_%016" PRIx64 "\", \"%s\", %u, {0}},\n", h, c->node, c->h->ntab);
  uint32_t first = c->h->ntab;
  for (uint32_t i = 0; i < c->nbuf; i++)
    add_ref(c, c->bufs[i].slot != KBUF_NO_SLOT ? (RenderCudaRef){ c->bufs[i].slot, 0 }
                                               : (RenderCudaRef){ RC_ARENA, c->bufs[i].offset });
  add_launch(c, (RenderCudaLaunch){ .grid = c->grid, .block = c->block, .first = first, .nbuf = c->nbuf, .kernel = h });
}

static void vlaunch(RCu *c, uint32_t grid, uint32_t block, const char *name, const KNode *out, const char *fmt, va_list ap) {
  rc_begin(c, grid, block);
  rc_decl_bufs(c, "");
  if (out) rc_decl_out(c, name, out);
  fputs("  ", c->cu);
  vfprintf(c->cu, fmt, ap);
  fputs(";\n", c->cu);
  rc_end(c);
}
void rc_launch(RCu *c, uint32_t grid, uint32_t block, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vlaunch(c, grid, block, NULL, NULL, fmt, ap);
  va_end(ap);
}
void rc_launch_out(RCu *c, uint32_t grid, uint32_t block, const char *name, const KNode *out, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vlaunch(c, grid, block, name, out, fmt, ap);
  va_end(ap);
}

void rc_gemm_entry(RCu *c, const HGemm *g) {
  static const char *const epi[] = { "CRAM_CUDA_EPI_NONE", "CRAM_CUDA_EPI_BIAS", "CRAM_CUDA_EPI_RELU",
                                     "CRAM_CUDA_EPI_RELU_BIAS" };
  static const char *const dt[] = { "CRAM_CUDA_DT_F32", "CRAM_CUDA_DT_BF16" };
  uint32_t first = c->h->ntab;
  fprintf(c->hl,
          "  {CRAM_CUDA_L_GEMM, NULL, \"%s\", %u, {%d, %d, %" PRId64 ", %" PRId64 ", %" PRId64 ", %" PRId64 ", %" PRId64
          ", %" PRId64 ", %" PRId64 ", %" PRId64 ", %" PRId64 ", %" PRId64 ", %s, (float)%.9g, %s, %s, %s}},\n",
          c->node, first, g->ta, g->tb, g->M, g->N, g->K, g->batch, g->lda, g->ldb, g->ldc, g->sa, g->sb, g->sc, epi[g->epi],
          g->beta, dt[g->bf_a], dt[g->bf_b], dt[g->bf_c]);
  add_ref(c, ref_of(g->a)), add_ref(c, ref_of(g->b)), add_ref(c, ref_of(g->o));
  add_ref(c, g->has_bias ? ref_of(g->bias) : (RenderCudaRef){ RC_NONE, 0 });
  RenderCudaGemm d = { g->ta, g->tb, g->M,  g->N,        g->K,    g->batch, g->lda,  g->ldb, g->ldc,
                       g->sa, g->sb, g->sc, (int)g->epi, g->beta, g->bf_a,  g->bf_b, g->bf_c };
  add_launch(c, (RenderCudaLaunch){ .gemm = true, .first = first, .nbuf = 4, .g = d });
}

void rc_node_desc(RCu *c) {
  const Node *n = c->k->n;
  char loc[160] = "";
  if (n->loc.file) snprintf(loc, sizeof loc, " at %s:%u:%u", n->loc.file, n->loc.line, n->loc.col);
  snprintf(c->node, sizeof c->node, "%%%u (%s%s)", c->k->id, ir_ops[n->op].name, loc);
  for (char *s = c->node; *s; s++)
    if (*s == '"' || *s == '\\' || *s == '*' || (unsigned char)*s < 32) *s = '_';
}
