/* frontend.h: the public API of the .cram frontend.
 *
 *   .cram text --lex.c--> tokens --parse.c--> AST (ast.h) --lower.c--> Graph (ir.h)
 *
 * Everything reports through a Diag (file:line:col + caret) and returns; no
 * function here exits or aborts on bad input. The language is described in
 * docs/cram-language.md.
 */
#ifndef CRAMC_FRONTEND_H
#define CRAMC_FRONTEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "diag.h"
#include "ir.h"

/* Limits; each one has a clear diagnostic when exceeded. */
#define FE_MAX_SOURCE     (16u << 20) /* bytes of .cram text */
#define FE_MAX_DEPTH      64          /* nesting of parens, calls, unary minus and repeat */
#define FE_MAX_EXPR_DEPTH 256         /* depth of one expression tree (long a+b+c+... chains) */
#define FE_MAX_IDENT      128         /* characters in an identifier */
#define FE_MAX_REPEAT     4096        /* iterations of one repeat block */
#define FE_MAX_NODES      (1u << 18)  /* IR nodes in one graph: stops runaway nested repeats */

/* A -D name=value override from the command line. */
typedef struct FeDefine {
  const char *name;  /* dim name */
  const char *value; /* decimal integer text */
} FeDefine;

/* Compile .cram text into a forward graph. `path` names the text in
 * diagnostics; the text is registered with d (diag_add_source), so `path` and
 * `text` must outlive d. Returns NULL after reporting at least one error.
 * The graph owns all its memory (ir_graph_free). */
Graph *fe_compile(const char *path, const char *text, size_t len, const FeDefine *defs, int ndefs, Diag *d);

/* Parse only and print the AST as s-expressions (--emit=ast). Returns false
 * (nothing printed) after syntax errors. */
bool fe_print_ast(const char *path, const char *text, size_t len, FILE *out, Diag *d);

#endif
