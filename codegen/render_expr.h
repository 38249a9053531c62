/* render_expr.h - the expression of every elementwise op, written once for
 * all renderers (tinygrad's code_for_op): render_c.c (the cpu target, double
 * math) and render_cuda_ew.c (CUDA, float math) differ only in a dialect: the
 * prefix of their kernel libraries' helpers, the libm names, how a constant
 * is written, and an optional table of per-op overrides. An op with an entry
 * here is elementwise for every backend; one a backend cannot express in the
 * base form gets an override entry in that backend's dialect. */
#ifndef CRAMC_RENDER_EXPR_H
#define CRAMC_RENDER_EXPR_H

#include <stdbool.h>
#include <stdio.h>

#include "ir.h"

typedef struct CgDialect CgDialect;
/* Writes the expression of node n over its operands a, b, c (the values at
 * this element) and, for the optimizer ops, s0..s7 (adam_sched's vector, IR_SCH_*). */
typedef void (*CgExprFn)(FILE *out, const Node *n, const CgDialect *d);

struct CgDialect {
  const char *helper; /* prefix of the library's helpers: "cc_" (cram_cpu_kernels.h), "cr_" (common.cuh) */
  const char *libm;   /* suffix of libm functions: "" (double), "f" (float) */
  const char *zero, *one;
  const char *lit;          /* printf format of an attribute constant: "%.17g", "(float)%.9g" */
  const CgExprFn *override; /* [OP_COUNT] or NULL: entries that replace the base table's */
};

/* Whether op has an expression (base or d's override). */
bool cg_expr_supports(const CgDialect *d, OpKind op);
/* Writes n's expression in dialect d (false: op has none). */
bool cg_expr(FILE *out, const Node *n, const CgDialect *d);
/* adam_m, adam_v, adamw_param: the fourth operand is adam_sched's vector
 * (IR_SCH_*), read whole as s0..s7 before the loop. */
bool cg_expr_reads_sched(const Node *n);
/* Operands read elementwise (not the schedule vector). */
int cg_expr_nload(const Node *n);

#endif
