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

/* Renders graph p: its __global__ kernels (extern "C" k_<hash of the text>,
 * each written once per `seen`) into cu, and `static const cram_cuda_buf
 * PREFIX_bufs[]` (each launch's pointer table) + `static const
 * cram_cuda_launch PREFIX_launches[]` (kernel launches and cuBLASLt GEMMs in
 * order) into host. *scratch: device scratch bytes it needs; *nlaunch:
 * entries. False with a message for an op without a template. */
bool render_cuda_graph(FILE *cu, FILE *host, const KProgram *p, const char *prefix, RenderCudaSeen *seen, uint64_t *scratch,
                       uint32_t *nlaunch, char *err, size_t errlen);

#endif
