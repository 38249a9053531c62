/* render_c.h - the C renderer of kernel.h's description (render_c.c). */
#ifndef CRAMC_RENDER_C_H
#define CRAMC_RENDER_C_H

#include <stdbool.h>
#include <stdio.h>

#include "kernel.h"

/* Whether an op has a C template. */
bool render_c_supports(OpKind op);

/* `static int PREFIX_kN(const cram_cpu_run *R)` per kernel (0 = ok, -1 with
 * R->err set). False (with a message) for an op without a template. */
bool render_c_kernels(FILE *out, const KProgram *p, const char *prefix, char *err, size_t errlen);

/* The same for kernels N in [k0, k1); with `external` as hidden-visibility
 * functions, for a step.c split into several translation units. */
bool render_c_kernel_range(FILE *out, const KProgram *p, const char *prefix, uint32_t k0, uint32_t k1, bool external, char *err,
                           size_t errlen);

/* Declarations of every kernel of p as render_c_kernels(external) defines them. */
void render_c_kernel_decls(FILE *out, const KProgram *p, const char *prefix);

/* `static int PREFIX_run(const cram_cpu_run *R)`: the kernels in order. */
void render_c_host(FILE *out, const KProgram *p, const char *prefix);

/* `static const cram_cpu_kernel PREFIX_kernels[]`: per kernel its function,
 * ops, op family and bytes moved (as pass_graph_stats counts them), for the
 * opt-in profile. False when out of memory. */
bool render_c_kernel_table(FILE *out, const KProgram *p, const char *prefix);

#endif
