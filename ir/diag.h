/* diag.h: compiler diagnostics in the clang/chibicc form
 *
 *   models/x.cram:12:7: error: unknown op 'lyernorm' (did you mean 'layernorm'?)
 *      12 |     x = lyernorm(x)
 *         |         ^
 *
 * Library code reports through a Diag and returns; only main() exits. A Diag
 * knows the text of every source it has been given, so it can print the
 * offending line under the message.
 */
#ifndef CRAMC_DIAG_H
#define CRAMC_DIAG_H

#include <stdint.h>
#include <stdio.h>

/* A position in a source file. line/col are 1-based; line 0 = no position. */
typedef struct SrcLoc {
  const char *file; /* arena- or caller-owned; NULL = unknown */
  uint32_t line, col;
} SrcLoc;

typedef struct DiagSource {
  const char *name, *text;
  size_t len;
} DiagSource;

typedef struct Diag {
  FILE *out;   /* where messages go (stderr in cramc, a memstream in tests) */
  int nerrors; /* errors reported so far */
  int nwarnings;
  int max_errors;    /* stop printing after this many (0 = unlimited) */
  DiagSource src[8]; /* sources known for caret display */
  int nsrc;
} Diag;

void diag_init(Diag *d, FILE *out);
/* Register a source text (not copied: must outlive the Diag) for caret lines. */
void diag_add_source(Diag *d, const char *name, const char *text, size_t len);

void diag_error(Diag *d, SrcLoc loc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void diag_warn(Diag *d, SrcLoc loc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void diag_note(Diag *d, SrcLoc loc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Internal invariant: prints "internal error at file:line" and aborts. */
#define IR_ASSERT(c)                                     \
  do {                                                   \
    if (!(c)) ir_internal_error(__FILE__, __LINE__, #c); \
  } while (0)
_Noreturn void ir_internal_error(const char *file, int line, const char *what);

#endif
