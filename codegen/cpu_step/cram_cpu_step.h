/* cram_cpu_step.h - the step ABI of `cramc --target cpu` artifacts: the
 * generated C (kernels + host functions + the tables below) and the shim
 * (cpu_shim.c, in libcram_cpu_step.a) that allocates the arena and the
 * persistent buffers, binds them, and runs the host functions. Everything
 * mutable lives in cram_ctx. See docs/codegen.md. */
#ifndef CRAM_CPU_STEP_H
#define CRAM_CPU_STEP_H

#include <stddef.h>
#include <stdint.h>

#include "cram_cpu_kernels.h"
#include "cram_step.h"
#include "cram_step_shim.h"

#define CRAM_CPU_SHIM_VERSION \
  3u /* 2: per-graph kernel tables (profiling); 3: the update graph reads the AdamW/clip hyper-parameters from a HYPER slot */

typedef struct cram_cpu_slot {
  uint32_t kind, index; /* kind: CRAM_S_* (slots.def) */
  uint64_t bytes;
} cram_cpu_slot;

typedef struct cram_cpu_out {
  uint32_t kind, index, slot; /* kind: CRAM_O_* */
} cram_cpu_out;

/* One kernel of a graph, for the per-kernel profile (cpu_profile.c): the
 * function the host function calls, what it computes, and the bytes it
 * moves counted as `cramc --stats` counts bytes_moved (docs/benchmarks.md). */
typedef struct cram_cpu_kernel {
  int (*run)(const cram_cpu_run *R);
  const char *ops;    /* "%12 layernorm+mul+sum_to" */
  const char *family; /* gemm, loss, norm, softmax, optimizer, reduction, gather, layout, elementwise */
  uint64_t bytes;
} cram_cpu_kernel;

typedef struct cram_cpu_graph {
  uint32_t nslots;
  const cram_cpu_slot *slots;
  uint32_t nouts;
  const cram_cpu_out *outs;
  uint64_t arena_bytes;
  int (*run)(const cram_cpu_run *R);
  uint32_t nkernels; /* the kernels run() calls, in order */
  const cram_cpu_kernel *kernels;
} cram_cpu_graph;

typedef struct cram_cpu_artifact {
  uint32_t shim_version;
  const cram_step_meta *meta;
  const char *fwd_ir;          /* forward graph IR text: parameter init rules */
  cram_cpu_graph fwd, acc, up; /* eval, step, update */
} cram_cpu_artifact;

/* The step ABI under the prefix cram_cpu_: cram_cpu_create(a, opts, out, err,
 * errlen) and the entries of cram_step_shim.h. */
CRAM_STEP_SHIM_DECLARE(cram_cpu, cram_cpu_artifact)

#endif
