/* render_cuda.h - the CUDA renderer of kernel.h's description (render_cuda.c). */
#ifndef CRAMC_RENDER_CUDA_H
#define CRAMC_RENDER_CUDA_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "kernel.h"

/* The device prelude every generated .cu starts with (helpers, reductions). */
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
#define RC_ARENA 0xFFFFFFFFu   /* = KBUF_NO_SLOT */
#define RC_SCRATCH 0xFFFFFFFEu
#define RC_NONE 0xFFFFFFFDu
typedef struct RenderCudaRef {
  uint32_t base;
  int64_t off;
} RenderCudaRef;
typedef struct RenderCudaLaunch {
  bool gemm;
  uint32_t grid, block; /* kernel launches */
  uint32_t first, nbuf;
} RenderCudaLaunch;
typedef struct RenderCudaHost {
  RenderCudaLaunch *launch;
  uint32_t nlaunch;
  RenderCudaRef *tab;
  uint32_t ntab;
} RenderCudaHost;
void render_cuda_host_free(RenderCudaHost *h);

/* Renders graph p: its __global__ kernels (extern "C" k_<hash of the text>,
 * each written once per `seen`) into cu, `static const cram_cuda_launch
 * PREFIX_launches[]` (kernel names, node descriptions, GEMM shapes: what the
 * shim needs at create()) into host, and the launch sequence with its
 * pointers into *h (free with render_cuda_host_free, also on failure).
 * *scratch: device scratch bytes it needs. False with a message for an op
 * without a template. */
bool render_cuda_graph(FILE *cu, FILE *host, const KProgram *p, const char *prefix, RenderCudaSeen *seen, uint64_t *scratch,
                       RenderCudaHost *h, char *err, size_t errlen);

#endif
