/* codegen.h - code generation: a forward graph (+ the train passes) into a
 * step.so artifact implementing the step ABI (runtime/cram_step.h).
 *
 * Targets (the registry cg_targets[], targets.c): "interp" (the three train
 * graphs run by the reference interpreter, codegen/interp_step/step_shim.c:
 * the correctness baseline), "cpu" (generated C kernels + BLAS,
 * codegen/target_cpu.c) and "cuda" (the default: NVRTC kernels from the
 * kernel library + cuBLASLt + LLVM-emitted host code, target_cuda.c). See
 * docs/codegen.md. Library code: errors come back in err, never printed and
 * never exit(). */
#ifndef CRAMC_CODEGEN_H
#define CRAMC_CODEGEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "ir.h"

typedef struct CgOptions {
  const char *src_path; /* the .cram file (names it in metadata) */
  const char *src_text; /* its text: the source hash (the dims table comes from the graph: Graph.dims) */
  size_t src_len;
  bool f64;           /* --precision f64: interpreter f64 mode */
  bool bf16;          /* --precision bf16: fwd went through pass_autocast_bf16 (metadata says "bf16") */
  const char *cc;     /* C compiler; NULL: $CC, else the one cramc was built with, else "cc" */
  const char *libdir; /* holds libcram_interp_step.a + include/; NULL: $CRAMC_LIBDIR, else built-in */
  int opt_level;      /* cpu target: 2 = the pass pipeline (fusions, partition), 0 = none */
  int64_t xent_chunk; /* cuda: rows per chunk of the fused decoder (0: 1024; cramc reads CRAMC_XENT_CHUNK) */
  bool no_ptx;        /* cuda: embed only the sm_80/sm_90 cubins, no compute_90 PTX (cramc: CRAMC_NVRTC_PTX=0) */
  FILE *nvrtc_log;    /* cuda: where to report NVRTC's compile times, or NULL (cramc: CRAMC_NVRTC_TIMES) */
  int64_t
    cpu_unit_nodes; /* cpu: kernel nodes per parallel-compiled unit of a split build (0: 4000; cramc: CRAMC_CPU_UNIT_NODES) */
} CgOptions;

/* FNV-1a 64 of the text, as 16 lower-case hex digits into buf[17]. */
void cg_source_hash(const char *text, size_t len, char buf[17]);

/* Writes the C source of an interp artifact for model fwd to out. */
bool cg_interp_emit_c(const Graph *fwd, const CgOptions *o, FILE *out, char *err, size_t errlen);

/* Builds the artifact at `output` (written atomically: temp file + rename). */
bool cg_interp_build(const Graph *fwd, const CgOptions *o, const char *output, char *err, size_t errlen);

/* The cpu target (target_cpu.c): the train graphs through the pass pipeline,
 * the kernel description (kernel.h) rendered as C (render_c.c), compiled with
 * -O3 -fopenmp and linked with libcram_cpu_step.a and OpenBLAS. */
bool cg_cpu_emit_c(const Graph *fwd, const CgOptions *o, FILE *out, char *err, size_t errlen);
bool cg_cpu_build(const Graph *fwd, const CgOptions *o, const char *output, char *err, size_t errlen);

/* The registry of targets: what the driver validates, lists in its help and
 * builds through. */
typedef struct CgTargetInfo {
  const char *name;       /* --target NAME */
  const char *help;       /* what its artifact runs (help text; lines split by \n) */
  const char *precision;  /* its default --precision */
  const char *precisions; /* the --precision values it computes in: "bf16 f32" */
  const char *refuse;     /* why another precision is refused (printf, %s: the precision) */
  bool (*build)(const Graph *fwd, const CgOptions *o, const char *output, char *err, size_t errlen);
  bool (*emit_c)(const Graph *fwd, const CgOptions *o, FILE *out, char *err, size_t errlen); /* --emit=step-c */
  bool fused_attention; /* renders the fused attention ops (OC_ATTENTION): the driver runs fuse_attention */
} CgTargetInfo;
extern const CgTargetInfo cg_targets[];
extern const int cg_ntargets;
extern const char *const cg_default_target;
const CgTargetInfo *cg_target_find(const char *name); /* NULL: no such target */
bool cg_target_accepts(const CgTargetInfo *t, const char *precision);

#endif
