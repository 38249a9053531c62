/* llvm_host.h - the host stepping code of a `--target cuda` artifact,
 * generated with the LLVM-C API (llvm_host.c): from each graph's launch
 * sequence (render_cuda.h's RenderCudaHost) one LLVM module defining, per
 * graph prefix P (fwd, acc, up), two hidden functions
 *
 *   void cram_cuda_P_bind(const uint64_t *slots, uint64_t arena, uint64_t scratch, uint64_t *tab)
 *       tab[i] = arena + OFF | scratch + OFF | slots[s] + OFF | 0, the
 *       memory planner's offsets as constants, for every pointer a launch
 *       uses (the kernels' pointer tables and the GEMMs' a, b, c, bias);
 *   i32 cram_cuda_P_run(i8 *rt)
 *       the launches in order: call i32 @cram_cuda_rt_kernel(rt, launch,
 *       grid, block, first) or @cram_cuda_rt_gemm(rt, launch), returning
 *       the first nonzero rc at once (the shim wrote its message), else 0.
 *
 * The callbacks and the function-pointer types are declared in
 * cuda_step/cram_cuda_step.h. The module is verified (LLVMVerifyModule) and
 * compiled for the host triple (PIC) into an object the artifact build links
 * beside step.c. Library code: errors come back as one line in err. Built
 * without LLVM (no llvm-14-dev at configure time), every call fails saying so. */
#ifndef CRAMC_LLVM_HOST_H
#define CRAMC_LLVM_HOST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "render_cuda.h"

typedef struct LlvmHostGraph {
  const char *prefix; /* "fwd" | "acc" | "up": the functions' names */
  const RenderCudaHost *h;
} LlvmHostGraph;

/* Tests only: leave the last block of the first run function without its
 * terminator, so the verifier must refuse the module (and cramc report it). */
#define LLVM_HOST_TEST_BREAK 1u

/* Whether cramc was built with LLVM. */
bool llvm_host_available(void);

/* Builds and verifies the module of graphs g[0, n); then, each when
 * non-NULL, prints it as text to `text` and compiles it to the object file
 * `obj_path`. False with a one-line message (a verifier failure quotes the
 * verifier's first line). */
bool llvm_host_emit(const LlvmHostGraph *g, int n, unsigned flags, FILE *text, const char *obj_path, char *err, size_t errlen);

#endif
