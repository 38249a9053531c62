/* render_cuda.h - the CUDA renderer of kernel.h's description (render_cuda.c). */
#ifndef CRAMC_RENDER_CUDA_H
#define CRAMC_RENDER_CUDA_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "kernel.h"

/* What every generated .cu starts with: an #include of each file of the
 * kernel library (cuda_lib.h), whose functions the kernels call. */
void render_cuda_prelude(FILE *cu);

/* Whether an op has a CUDA template. */
bool render_cuda_supports(OpKind op);

/* The kernels already written (hashes of their text), across the graphs of
 * one artifact: identical kernels (the layers) are compiled once. Zero it
 * first; free(seen.h) after. */
typedef struct RenderCudaSeen {
  uint64_t *h;
  uint32_t n, cap;
} RenderCudaSeen;

/* The host side of one graph, for the code that runs it (llvm_host.c): the
 * launches in order and `tab`, every device pointer they use. A launch's
 * pointers are tab[first, first+nbuf): a kernel's pointer table P (nbuf of
 * them), or a GEMM's a, b, c, bias (nbuf = 4). A pointer is base + off with
 * base a slot index, or RC_ARENA / RC_SCRATCH (the graph's arena / scratch),
 * or RC_NONE (a null pointer: a GEMM without bias). */
#define RC_ARENA   0xFFFFFFFFu /* = KBUF_NO_SLOT */
#define RC_SCRATCH 0xFFFFFFFEu
#define RC_NONE    0xFFFFFFFDu
typedef struct RenderCudaRef {
  uint32_t base;
  int64_t off;
} RenderCudaRef;
/* A GEMM of the launch list, as the shim's cram_cuda_gemm (cram_cuda_step.h):
 * row-major C[p] = op(A[p]) op(B[p]) (+ beta C[p]), then the epilogue
 * (0 none, 1 + bias[N], 2 relu, 3 relu(+ bias)); *_bf16: operand dtypes. */
typedef struct RenderCudaGemm {
  bool ta, tb;
  int64_t M, N, K, batch, lda, ldb, ldc, sa, sb, sc;
  int epi;
  float beta;
  bool a_bf16, b_bf16, c_bf16;
} RenderCudaGemm;
typedef struct RenderCudaLaunch {
  bool gemm;
  uint32_t grid, block; /* kernel launches */
  uint32_t first, nbuf;
  uint64_t kernel;  /* kernel launches: the kernel is k_<kernel as 16 hex digits> */
  RenderCudaGemm g; /* GEMM launches */
} RenderCudaLaunch;
typedef struct RenderCudaHost {
  RenderCudaLaunch *launch;
  uint32_t nlaunch;
  RenderCudaRef *tab;
  uint32_t ntab;
} RenderCudaHost;
void render_cuda_host_free(RenderCudaHost *h);

/* Renders graph p: its __global__ kernels (extern "C" k_<hash of the text>,
 * each a call of a library function, written once per `seen`) into cu, `static const cram_cuda_launch
 * PREFIX_launches[]` (kernel names, node descriptions, GEMM shapes: what the
 * shim needs at create()) into host, and the launch sequence with its
 * pointers into *h (free with render_cuda_host_free, also on failure).
 * *scratch: device scratch bytes it needs. False with a message for an op
 * without a template. */
/* xent_chunk: rows per chunk of the fused decoder (0: the default, 1024; a
 * smaller one lets tests reach the multi-chunk paths at toy sizes). */
bool render_cuda_graph(FILE *cu, FILE *host, const KProgram *p, const char *prefix, int64_t xent_chunk, RenderCudaSeen *seen,
                       uint64_t *scratch, RenderCudaHost *h, char *err, size_t errlen);

#endif
