/* render_cuda_impl.h - what the files of the CUDA renderer share (not for
 * other modules: render_cuda.h is the interface).
 *
 *   render_cuda.c         the graph walk, the per-op table, the small ops
 *   render_cuda_launch.c  kernels and their launch list: pointer tables,
 *                         de-duplication by text hash, cuBLASLt entries
 *   render_cuda_ew.c      runs of elementwise nodes as one launch
 *   render_cuda_gemm.c    GEMM nodes: cuBLASLt + our epilogue kernels
 *   render_cuda_xent.c    cross-entropy and the chunked fused decoder
 *   render_cuda_attention.c  the fused attention ops (attention.cuh)
 *
 * A kernel is a thin extern "C" __global__ wrapper whose body calls a
 * function of the kernel library (codegen/cuda_kernels/<family>.cuh) with the
 * node's buffers and constants; the renderer never writes a kernel body. */
#ifndef CRAMC_RENDER_CUDA_IMPL_H
#define CRAMC_RENDER_CUDA_IMPL_H

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>

#include "render_cuda.h"

#define CR_BLOCK      256
#define CR_GRID_CAP   4096
#define CR_XENT_CHUNK 1024
/* scratch layout of the loss kernels (common.cuh): [0, 64) counters, [64, ...) doubles */
#define CR_SCR_USED  0
#define CR_SCR_PART  64
#define CR_LNPG_ROWS 32 /* rows per step of the layernorm parameter-gradient partials (norm.cuh) */

typedef struct RCu {
  FILE *cu, *hl;     /* kernels; launch table (names, nodes, GEMM shapes) */
  RenderCudaHost *h; /* the launch sequence and its pointers */
  uint32_t caplaunch, captab;
  const KProgram *p;
  const KNode *k;
  const char *prefix;
  RenderCudaSeen *seen;
  int64_t xent_chunk; /* rows per chunk of the fused decoder */
  uint64_t scratch;   /* max scratch bytes */
  char node[256];     /* the current node, for error messages */
  /* the kernel being rendered */
  FILE *body;
  char *bodytxt;
  size_t bodylen;
  uint32_t grid, block;
  KBuf *bufs;
  uint32_t nbuf, capbuf;
  bool local; /* rendering a device function: P indices from lbase, no sharing */
  uint32_t lbase;
  bool oom;
  /* the graph walk: the index after the current node and the kernel's end; a
   * render function that computes a following node too (attention's lse
   * sibling) advances next */
  uint32_t next, end;
} RCu;

/* ---- shapes and grids (render_cuda_launch.c) ---- */
static inline const Graph *rc_graph(const RCu *c) { return c->p->g; }
static inline const Shape *rc_in_shape(const RCu *c, int i) { return &c->p->g->nodes[c->k->n->in[i]].shape; }
static inline int64_t rc_numel(const Shape *s) { return ir_shape_numel(s); }
static inline int64_t rc_lastd(const Shape *s) { return s->rank ? s->dim[s->rank - 1] : 1; }
static inline bool rc_is_bf16(const Graph *g, ValueId v) { return g->nodes[v].dtype == DT_BF16; }
/* the library's name of an activation (CR_ACT_GELU, ...: common.cuh numbers them as acts.def) */
const char *rc_act(const char *name);
uint32_t rc_grid_for(int64_t n, int64_t per_thread);
uint32_t rc_grid_rows(int64_t rows); /* warp per row, 8 rows a block */
void rc_need_scratch(RCu *c, uint64_t bytes);

/* ---- kernels ---- */
/* Declares the node's buffers o, x0, x1, ... (suffixed with sfx) from the pointer table P. */
void rc_decl_bufs(RCu *c, const char *sfx);
/* Declares `NAME` as another node's output buffer (a second output of the launch). */
void rc_decl_out(RCu *c, const char *name, const KNode *k);
/* Declares `const T NAME` as buffer b holding value v (an input of another node of the launch). */
void rc_decl_in(RCu *c, const char *name, ValueId v, KBuf b);
/* `const long long NAME[] = {dims};` */
void rc_put_dims(FILE *out, const char *name, const Shape *s);
/* Opens a kernel of grid x block threads: its body goes to a buffer until rc_end(). */
void rc_begin(RCu *c, uint32_t grid, uint32_t block);
/* Closes it: named k_<hash of its text>, written once per artifact (identical
 * layers share it), and appended to the launch list. */
void rc_end(RCu *c);
/* One kernel whose body declares the node's buffers and is the one library call fmt. */
void rc_launch(RCu *c, uint32_t grid, uint32_t block, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* The same, with `NAME` declared as a second output: node out's buffer (NULL: none). */
void rc_launch_out(RCu *c, uint32_t grid, uint32_t block, const char *name, const KNode *out, const char *fmt, ...)
  __attribute__((format(printf, 6, 7)));
/* True the first time text hash h is seen in this artifact (then remembered). */
bool rc_first_sighting(RCu *c, uint64_t h);
uint64_t rc_fnv64(const char *s, size_t n, uint64_t h);
/* slot buffers at offset 0 (a kernel adds what it needs within the slot) */
static inline KBuf rc_norm(KBuf b) { return b.slot != KBUF_NO_SLOT ? (KBuf){ 0, b.slot } : b; }
static inline KBuf rc_scratch_buf(int64_t off) { return (KBuf){ off, RC_SCRATCH }; }

/* A cuBLASLt GEMM entry of the launch list (the shim runs it). */
typedef enum { RC_EPI_NONE, RC_EPI_BIAS, RC_EPI_RELU, RC_EPI_RELU_BIAS } RcEpi; /* = CRAM_CUDA_EPI_* */
typedef struct HGemm {
  bool ta, tb;
  int64_t M, N, K, batch, lda, ldb, ldc, sa, sb, sc;
  KBuf a, b, o, bias;
  bool has_bias;
  RcEpi epi;
  float beta;
  bool bf_a, bf_b, bf_c; /* bf16 operands (CRAM_CUDA_DT_BF16) */
} HGemm;
void rc_gemm_entry(RCu *c, const HGemm *g);

/* ---- per-concern renderers ---- */
bool rc_is_elementwise(const Node *n); /* render_cuda_ew.c */
bool rc_ew_supports(OpKind op);
/* renders the elementwise run starting at node j of the kernel ending at endn; returns the next node */
uint32_t rc_render_ew_run(RCu *c, uint32_t j, uint32_t endn);
void rc_render_gemm(RCu *c); /* render_cuda_gemm.c */
bool rc_gemm_to_scratch(const Graph *g, const KNode *k);
void rc_render_cross_entropy(RCu *c); /* render_cuda_xent.c */
void rc_render_xent_linear(RCu *c);
void rc_render_attention(RCu *c); /* render_cuda_attention.c */
void rc_render_attention_grad(RCu *c);
void rc_node_desc(RCu *c);

#endif
