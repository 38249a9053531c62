/* ast.h: the frontend's internal header, split into sections by the file that
 * defines each part (as chibicc.h). Tokens come from lex.c, the AST from
 * parse.c; every token and node carries the SrcLoc it was read at. All of it
 * lives in one Arena that is dropped after lowering.
 */
#ifndef CRAMC_FRONTEND_AST_H
#define CRAMC_FRONTEND_AST_H

#include <stdbool.h>
#include <stdint.h>

#include "arena.h"
#include "diag.h"
#include "frontend.h"

/* ---- lex.c --------------------------------------------------------------- */

typedef enum {
  TK_IDENT,   /* name (keywords are identifiers; the parser knows them) */
  TK_INT,     /* 123 */
  TK_FLOAT,   /* 1.5, 1e-12 */
  TK_STR,     /* "attn.out" (no escapes) */
  TK_PUNCT,   /* one of ( ) [ ] , = : + - * / % */
  TK_NEWLINE, /* end of a non-blank line */
  TK_INDENT,  /* the next line is indented deeper */
  TK_DEDENT,  /* one indentation level closes */
  TK_EOF,
} TokenKind;

typedef struct Token {
  TokenKind kind;
  const char *text; /* points into the source; len bytes (not NUL-terminated) */
  uint32_t len;
  int64_t ival;    /* TK_INT */
  double fval;     /* TK_FLOAT */
  const char *str; /* TK_STR: contents, arena copy, NUL-terminated */
  bool dropped;    /* TK_NEWLINE standing for a line dropped after a lexical error */
  SrcLoc loc;
} Token;

typedef struct TokenList {
  Token *tok;
  uint32_t n;
} TokenList;

/* Tokenize. Errors are reported and the offending bytes skipped, so the
 * token list is always well formed (balanced INDENT/DEDENT, ends in EOF). */
TokenList fe_lex(Arena *a, const char *file, const char *text, size_t len, Diag *d);
const char *fe_token_kind_name(TokenKind k);

/* ---- parse.c ------------------------------------------------------------- */

typedef enum {
  EX_INT,   /* ival */
  EX_FLOAT, /* fval */
  EX_STR,   /* str */
  EX_BOOL,  /* ival 0/1 */
  EX_IDENT, /* str = name */
  EX_CALL,  /* str = callee, args */
  EX_NEG,   /* -lhs */
  EX_BIN,   /* lhs op rhs, op one of + - * / % */
  EX_LIST,  /* [e, ...]: the elements in args (keys NULL) */
} ExprKind;

typedef struct Expr Expr;

typedef struct Arg {
  const char *key; /* NULL = positional */
  Expr *val;
  SrcLoc loc; /* of the key, or of the value when positional */
} Arg;

struct Expr {
  ExprKind kind;
  SrcLoc loc; /* binary: the operator; call: the callee name */
  int64_t ival;
  double fval;
  const char *str;
  char op;
  Expr *lhs, *rhs;
  Arg *args;
  int nargs;
  int height; /* 1 + height of the deepest operand; bounded by FE_MAX_EXPR_DEPTH */
};

typedef enum {
  ST_MODEL,  /* model NAME */
  ST_DIMS,   /* dims A=e B=e ... */
  ST_INPUT,  /* input NAME : DTYPE[e, ...] */
  ST_ASSIGN, /* NAME = e */
  ST_OUTPUT, /* output A, B */
  ST_REPEAT, /* repeat e [as NAME]: body */
  ST_DEF,    /* def NAME(a, b): body (names = the parameters) */
  ST_RETURN, /* return e (the last statement of a def body) */
} StmtKind;

typedef struct Name {
  const char *name;
  SrcLoc loc;
} Name;

typedef struct DimDef {
  const char *name;
  SrcLoc loc;
  Expr *val; /* NULL after a syntax error (the name is poisoned) */
} DimDef;

typedef struct Stmt Stmt;
struct Stmt {
  StmtKind kind;
  SrcLoc loc;       /* the keyword, or the assigned name */
  const char *name; /* model / input / assign target / repeat `as` (NULL = default) */
  SrcLoc name_loc;
  Expr *expr;   /* assign value (NULL: the line had a syntax error), repeat count, return value */
  DimDef *dims; /* ST_DIMS */
  int ndims;
  DType dtype;  /* ST_INPUT */
  Expr **shape; /* ST_INPUT: dim expressions */
  int rank;     /* ST_INPUT: -1 after a syntax error (the name is poisoned) */
  Name *names;  /* ST_OUTPUT; ST_DEF: its parameters */
  int nnames;
  Stmt *body; /* ST_REPEAT, ST_DEF: first statement of the body */
  Stmt *next;
};

typedef struct Program {
  Stmt *stmts;
  const char *file;
  int errors_before; /* Diag errors before parsing: errors since then mean "don't pile on" */
} Program;

/* Parse a whole file. Syntax errors are reported and the line skipped; the
 * returned program holds the statements that parsed. */
Program *fe_parse(Arena *a, const char *file, const char *text, size_t len, Diag *d);

/* ---- ast_print.c --------------------------------------------------------- */

void fe_ast_print(const Program *p, FILE *out);

/* ---- dims.c -------------------------------------------------------------- */

/* Checked int64 arithmetic for dim expressions: op is + - * / % ('/' floors,
 * '%' takes the sign of the divisor). On overflow or division by zero returns
 * false and sets *why to a short reason. */
bool fe_int_binop(char op, int64_t a, int64_t b, int64_t *out, const char **why);
/* Parse a decimal int64 (optional leading '-'); false on junk or overflow. */
bool fe_parse_int(const char *s, int64_t *out);
/* Edit distance for "did you mean" (bounded: returns > limit early). */
int fe_edit_distance(const char *a, const char *b, int limit);

/* ---- lower.c ------------------------------------------------------------- */

Graph *fe_lower(const Program *p, const FeDefine *defs, int ndefs, Diag *d);

#endif
