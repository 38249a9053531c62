/* codegen.h - code generation: a forward graph (+ the train passes) into a
 * step.so artifact implementing the step ABI (runtime/cram_step.h).
 *
 * Targets: "interp" (the three train graphs run by the reference interpreter,
 * codegen/interp_step/step_shim.c: the correctness baseline) and "cpu"
 * (generated C kernels + BLAS, codegen/target_cpu.c). See
 * docs/codegen.md. Library code: errors come back as one line in err, never
 * printed and never exit(). */
#ifndef CRAMC_CODEGEN_H
#define CRAMC_CODEGEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "frontend.h"
#include "ir.h"

typedef struct CgOptions {
  const char *src_path;        /* the .cram file (names it in metadata) */
  const char *src_text;        /* its text: source hash and the dims table */
  size_t src_len;
  const FeDefine *defs;        /* -D overrides, for the dims table */
  int ndefs;
  bool f64;                    /* --precision f64: interpreter f64 mode */
  bool bf16;                   /* --precision bf16: fwd went through pass_autocast_bf16 (metadata says "bf16") */
  const char *cc;              /* C compiler; NULL: $CC, else the one cramc was built with, else "cc" */
  const char *libdir;          /* holds libcram_interp_step.a + include/; NULL: $CRAMC_LIBDIR, else built-in */
  int opt_level;               /* cpu target: 2 = the pass pipeline (fusions, partition), 0 = none */
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

#endif
