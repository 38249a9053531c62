/* target_cuda.h - the "cuda" target (target_cuda.c): the train graphs
 * through the pass pipeline, the kernel description rendered as CUDA C
 * (render_cuda.c), compiled by NVRTC to cubins for sm_80 and sm_90 (+ PTX),
 * embedded with the launch tables in step.c, the host stepping code emitted
 * with LLVM-C (llvm_host.c) as an object, linked with libcram_cuda_step.a
 * (cuda_step/: lazy libcuda + cuBLASLt). See docs/codegen.md. */
#ifndef CRAMC_TARGET_CUDA_H
#define CRAMC_TARGET_CUDA_H

#include <stdbool.h>
#include <stdio.h>

#include "codegen.h"

/* The generated CUDA C of the three graphs (`cramc --emit=cuda`). */
bool cg_cuda_emit_cu(const Graph *fwd, const CgOptions *o, FILE *out, char *err, size_t errlen);
/* The host C of the artifact (`--emit=step-c --target cuda`); compiles the cubins. */
bool cg_cuda_emit_c(const Graph *fwd, const CgOptions *o, FILE *out, char *err, size_t errlen);
/* The host stepping code as a textual LLVM module (`cramc --emit=llvm`),
 * verified; flags: llvm_host.h's (LLVM_HOST_TEST_BREAK for tests). */
bool cg_cuda_emit_llvm(const Graph *fwd, const CgOptions *o, unsigned flags, FILE *out, char *err, size_t errlen);
bool cg_cuda_build(const Graph *fwd, const CgOptions *o, const char *output, char *err, size_t errlen);

#endif
