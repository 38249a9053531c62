/* parse.c: tokens -> AST, by recursive descent.
 *
 * A .cram file is a list of line statements; `repeat` owns an indented block.
 * Each parse function has its grammar rule above it (EBNF, as in
 * docs/cram-language.md) and advances P->pos past what it read.
 *
 * Error recovery is per line: the first syntax error in a statement is
 * reported (with Lua's "near 'tok'"), the rest of the line is skipped and
 * parsing resumes at the next line, so one run reports several independent
 * mistakes. A repeat whose header is broken still has its body parsed (for
 * its own errors) and then dropped.
 *
 * Recursion is bounded: parens, calls and unary minus may nest FE_MAX_DEPTH
 * deep, repeat blocks FE_MAX_DEPTH deep, and any expression tree is at most
 * FE_MAX_EXPR_DEPTH high (so `a+a+a+...` cannot blow the stack of a later
 * recursive walk).
 */
#include <string.h>

#include "ast.h"

typedef struct Parser {
  Arena *arena;
  Diag *diag;
  Token *tok;
  uint32_t pos, n;
  int depth;       /* current expression nesting */
  int block_depth; /* current repeat nesting */
  bool err;        /* the current statement already reported an error */
} Parser;

static const char *reserved[] = { "model", "dims", "input", "output", "repeat", "as", "true", "false", "def", "return" };

static bool is_reserved(const char *s) {
  for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++)
    if (strcmp(s, reserved[i]) == 0) return true;
  return false;
}

static Token *peek(Parser *P) { return &P->tok[P->pos]; }
static Token *peek2(Parser *P) { return &P->tok[P->pos + 1 < P->n ? P->pos + 1 : P->n - 1]; }
static Token *next(Parser *P) {
  Token *t = &P->tok[P->pos];
  if (t->kind != TK_EOF) P->pos++;
  return t;
}

static bool is_punct(const Token *t, char c) { return t->kind == TK_PUNCT && t->text[0] == c; }
static bool is_word(const Token *t, const char *w) { return t->kind == TK_IDENT && strcmp(t->str, w) == 0; }

/* Report "msg near 'tok'" once per statement. */
static void syntax_error(Parser *P, const Token *t, const char *msg) {
  if (P->err) return;
  P->err = true;
  if (t->kind == TK_NEWLINE && t->dropped) return; /* the lexer reported this line */
  switch (t->kind) {
  case TK_NEWLINE: diag_error(P->diag, t->loc, "%s near end of line", msg); break;
  case TK_EOF: diag_error(P->diag, t->loc, "%s near end of file", msg); break;
  case TK_INDENT: diag_error(P->diag, t->loc, "%s", msg); break;
  case TK_DEDENT: diag_error(P->diag, t->loc, "%s near end of block", msg); break;
  default: {
    int len = t->len > 40 ? 40 : (int)t->len; /* the token text is printable ASCII (lex.c) */
    diag_error(P->diag, t->loc, "%s near '%.*s'", msg, len, t->text);
  }
  }
}

static bool expect_punct(Parser *P, char c) {
  if (is_punct(peek(P), c)) {
    next(P);
    return true;
  }
  char msg[32];
  snprintf(msg, sizeof msg, "expected '%c'", c);
  syntax_error(P, peek(P), msg);
  return false;
}

static Expr *new_expr(Parser *P, ExprKind k, SrcLoc loc) {
  Expr *e = ARENA_NEW(P->arena, Expr);
  e->kind = k;
  e->loc = loc;
  e->height = 1;
  return e;
}

/* Check the height of a new node over its operands. */
static Expr *grown(Parser *P, Expr *e, const Expr *a, const Expr *b) {
  int h = a ? a->height : 0;
  if (b && b->height > h) h = b->height;
  e->height = h + 1;
  if (e->height > FE_MAX_EXPR_DEPTH) {
    if (!P->err) {
      P->err = true;
      diag_error(P->diag, e->loc, "expression too complex (more than %d levels)", FE_MAX_EXPR_DEPTH);
    }
    return NULL;
  }
  return e;
}

static bool enter(Parser *P, const Token *t) {
  if (++P->depth > FE_MAX_DEPTH) {
    if (!P->err) {
      P->err = true;
      diag_error(P->diag, t->loc, "expression nested too deeply (limit %d)", FE_MAX_DEPTH);
    }
    return false;
  }
  return true;
}

static Expr *expr(Parser *P);

/* arg = IDENT "=" expr | expr */
static bool parse_arg(Parser *P, Arg *out) {
  Token *t = peek(P);
  if (t->kind == TK_IDENT && is_punct(peek2(P), '=')) {
    next(P);
    next(P);
    out->key = t->str;
    out->loc = t->loc;
  } else {
    out->key = NULL;
    out->loc = t->loc;
  }
  out->val = expr(P);
  return out->val != NULL;
}

/* call = IDENT "(" (arg ("," arg)*)? ")" */
static Expr *call(Parser *P, Token *name) {
  Expr *e = new_expr(P, EX_CALL, name->loc);
  e->str = name->str;
  next(P); /* ( */
  int cap = 0;
  if (!is_punct(peek(P), ')')) {
    for (;;) {
      if (e->nargs == cap) {
        cap = cap ? cap * 2 : 4;
        Arg *a = ARENA_ARRAY(P->arena, Arg, cap);
        if (e->nargs) memcpy(a, e->args, sizeof(Arg) * (size_t)e->nargs);
        e->args = a;
      }
      Arg *a = &e->args[e->nargs++];
      if (!parse_arg(P, a)) return NULL;
      if (a->val->height + 1 > e->height) e->height = a->val->height + 1;
      if (!is_punct(peek(P), ',')) break;
      next(P);
    }
  }
  if (!expect_punct(P, ')')) return NULL;
  return grown(P, e, NULL, NULL) ? e : NULL;
}

/* list = "[" [ expr { "," expr } ] "]" */
static Expr *list(Parser *P, Token *open) {
  Expr *e = new_expr(P, EX_LIST, open->loc);
  next(P); /* [ */
  int cap = 0;
  if (!is_punct(peek(P), ']')) {
    for (;;) {
      if (e->nargs == cap) {
        cap = cap ? cap * 2 : 4;
        Arg *a = ARENA_ARRAY(P->arena, Arg, cap);
        if (e->nargs) memcpy(a, e->args, sizeof(Arg) * (size_t)e->nargs);
        e->args = a;
      }
      Arg *a = &e->args[e->nargs++];
      a->loc = peek(P)->loc;
      if (!(a->val = expr(P))) return NULL;
      if (a->val->height + 1 > e->height) e->height = a->val->height + 1;
      if (!is_punct(peek(P), ',')) break;
      next(P);
    }
  }
  if (!expect_punct(P, ']')) return NULL;
  return grown(P, e, NULL, NULL) ? e : NULL;
}

/* primary = INT | FLOAT | STR | "true" | "false" | IDENT | call | list | "(" expr ")" */
static Expr *primary(Parser *P) {
  Token *t = peek(P);
  switch (t->kind) {
  case TK_INT: {
    next(P);
    Expr *e = new_expr(P, EX_INT, t->loc);
    e->ival = t->ival;
    return e;
  }
  case TK_FLOAT: {
    next(P);
    Expr *e = new_expr(P, EX_FLOAT, t->loc);
    e->fval = t->fval;
    return e;
  }
  case TK_STR: {
    next(P);
    Expr *e = new_expr(P, EX_STR, t->loc);
    e->str = t->str;
    return e;
  }
  case TK_IDENT: {
    if (is_word(t, "true") || is_word(t, "false")) {
      next(P);
      Expr *e = new_expr(P, EX_BOOL, t->loc);
      e->ival = is_word(t, "true");
      return e;
    }
    if (is_reserved(t->str)) {
      syntax_error(P, t, "expected an expression, found a keyword");
      return NULL;
    }
    if (is_punct(peek2(P), '(')) {
      if (!enter(P, t)) return NULL;
      next(P);
      Expr *e = call(P, t);
      P->depth--;
      return e;
    }
    next(P);
    Expr *e = new_expr(P, EX_IDENT, t->loc);
    e->str = t->str;
    return e;
  }
  case TK_PUNCT:
    if (t->text[0] == '[') {
      if (!enter(P, t)) return NULL;
      Expr *e = list(P, t);
      P->depth--;
      return e;
    }
    if (t->text[0] == '(') {
      if (!enter(P, t)) return NULL;
      next(P);
      Expr *e = expr(P);
      P->depth--;
      if (!e || !expect_punct(P, ')')) return NULL;
      return e;
    }
    break;
  default: break;
  }
  syntax_error(P, t, "expected an expression");
  return NULL;
}

/* unary = "-" unary | primary */
static Expr *unary(Parser *P) {
  Token *t = peek(P);
  if (!is_punct(t, '-')) return primary(P);
  if (!enter(P, t)) return NULL;
  next(P);
  Expr *a = unary(P);
  P->depth--;
  if (!a) return NULL;
  Expr *e = new_expr(P, EX_NEG, t->loc);
  e->lhs = a;
  return grown(P, e, a, NULL);
}

static Expr *binary(Parser *P, Token *op, Expr *a, Expr *b) {
  Expr *e = new_expr(P, EX_BIN, op->loc);
  e->op = op->text[0];
  e->lhs = a;
  e->rhs = b;
  return grown(P, e, a, b);
}

/* term = unary (("*" | "/" | "%") unary)* */
static Expr *term(Parser *P) {
  Expr *e = unary(P);
  while (e && (is_punct(peek(P), '*') || is_punct(peek(P), '/') || is_punct(peek(P), '%'))) {
    Token *op = next(P);
    Expr *r = unary(P);
    e = r ? binary(P, op, e, r) : NULL;
  }
  return e;
}

/* expr = term (("+" | "-") term)* */
static Expr *expr(Parser *P) {
  Expr *e = term(P);
  while (e && (is_punct(peek(P), '+') || is_punct(peek(P), '-'))) {
    Token *op = next(P);
    Expr *r = term(P);
    e = r ? binary(P, op, e, r) : NULL;
  }
  return e;
}

static Token *expect_ident(Parser *P, const char *what) {
  Token *t = peek(P);
  if (t->kind == TK_IDENT && !is_reserved(t->str)) return next(P);
  char msg[96];
  snprintf(msg, sizeof msg, "expected %s", what);
  syntax_error(P, t, msg);
  return NULL;
}

/* End of a statement: NEWLINE. */
static bool end_of_line(Parser *P) {
  if (peek(P)->kind == TK_NEWLINE && !peek(P)->dropped) {
    next(P);
    return true;
  }
  syntax_error(P, peek(P), "expected end of line");
  return false;
}

/* Skip to the end of the line after an error inside a statement. */
static void skip_line(Parser *P) {
  while (peek(P)->kind != TK_NEWLINE && peek(P)->kind != TK_EOF) next(P);
  if (peek(P)->kind == TK_NEWLINE) next(P);
}

static Stmt *new_stmt(Parser *P, StmtKind k, SrcLoc loc) {
  Stmt *s = ARENA_NEW(P->arena, Stmt);
  s->kind = k;
  s->loc = loc;
  return s;
}

/* model = "model" IDENT NEWLINE */
static Stmt *model_stmt(Parser *P, Token *kw) {
  Token *name = expect_ident(P, "a model name after 'model'");
  if (!name) return NULL;
  if (!end_of_line(P)) skip_line(P); /* keep the model name anyway */
  Stmt *s = new_stmt(P, ST_MODEL, kw->loc);
  s->name = name->str;
  s->name_loc = name->loc;
  return s;
}

/* dims = "dims" (IDENT "=" expr)+ NEWLINE
 * On an error the definitions before it are kept and the broken one is kept
 * without a value (lowering poisons its name, so uses stay quiet). */
static Stmt *dims_stmt(Parser *P, Token *kw) {
  Stmt *s = new_stmt(P, ST_DIMS, kw->loc);
  int cap = 0;
  do {
    Token *name = expect_ident(P, "a dim name (dims NAME=EXPR ...)");
    Expr *e = name && expect_punct(P, '=') ? expr(P) : NULL;
    if (name) {
      if (s->ndims == cap) {
        cap = cap ? cap * 2 : 8;
        DimDef *d = ARENA_ARRAY(P->arena, DimDef, cap);
        if (s->ndims) memcpy(d, s->dims, sizeof(DimDef) * (size_t)s->ndims);
        s->dims = d;
      }
      s->dims[s->ndims++] = (DimDef){ name->str, name->loc, e };
    }
    if (!e) break;
  } while (peek(P)->kind != TK_NEWLINE);
  if (P->err || !end_of_line(P)) skip_line(P);
  return s;
}

/* input = "input" IDENT ":" DTYPE "[" expr ("," expr)* "]" NEWLINE */
static Stmt *input_stmt(Parser *P, Token *kw) {
  Token *name = expect_ident(P, "an input name after 'input'");
  if (!name || !expect_punct(P, ':')) return NULL;
  Token *dt = peek(P);
  DType dtype;
  if (dt->kind != TK_IDENT) {
    syntax_error(P, dt, "expected a dtype (f32, bf16 or i32)");
    return NULL;
  }
  if (!ir_dtype_parse(dt->text, dt->len, &dtype)) {
    if (!P->err) diag_error(P->diag, dt->loc, "unknown dtype '%s' (expected f32, bf16 or i32)", dt->str);
    P->err = true;
    dtype = DT_F32;
  }
  next(P);
  Stmt *s = new_stmt(P, ST_INPUT, kw->loc);
  s->name = name->str;
  s->name_loc = name->loc;
  s->dtype = dtype;
  s->shape = ARENA_ARRAY(P->arena, Expr *, IR_MAX_RANK);
  if (!expect_punct(P, '[')) goto broken;
  for (;;) {
    if (s->rank == IR_MAX_RANK) {
      if (!P->err) diag_error(P->diag, peek(P)->loc, "too many dimensions (rank limit %d)", IR_MAX_RANK);
      P->err = true;
      goto broken;
    }
    Expr *e = expr(P);
    if (!e) goto broken;
    s->shape[s->rank++] = e;
    if (!is_punct(peek(P), ',')) break;
    next(P);
  }
  if (expect_punct(P, ']') && end_of_line(P)) {
    if (P->err) s->rank = -1; /* bad dtype */
    return s;
  }
broken: /* keep the name, without a type: lowering poisons it */
  skip_line(P);
  s->rank = -1;
  return s;
}

/* output = "output" IDENT ("," IDENT)* NEWLINE */
static Stmt *output_stmt(Parser *P, Token *kw) {
  Stmt *s = new_stmt(P, ST_OUTPUT, kw->loc);
  int cap = 0;
  for (;;) {
    Token *name = expect_ident(P, "a value name");
    if (!name) return NULL;
    if (s->nnames == cap) {
      cap = cap ? cap * 2 : 4;
      Name *nm = ARENA_ARRAY(P->arena, Name, cap);
      if (s->nnames) memcpy(nm, s->names, sizeof(Name) * (size_t)s->nnames);
      s->names = nm;
    }
    s->names[s->nnames++] = (Name){ name->str, name->loc };
    if (!is_punct(peek(P), ',')) break;
    next(P);
  }
  return end_of_line(P) ? s : NULL;
}

static Stmt *block(Parser *P);

/* repeat = "repeat" expr ("as" IDENT)? ":" NEWLINE block */
static Stmt *repeat_stmt(Parser *P, Token *kw) {
  Stmt *s = new_stmt(P, ST_REPEAT, kw->loc);
  s->expr = expr(P);
  if (s->expr && is_word(peek(P), "as")) {
    next(P);
    Token *name = expect_ident(P, "a name after 'as'");
    if (name) {
      s->name = name->str;
      s->name_loc = name->loc;
    } else {
      s->expr = NULL;
    }
  }
  if (s->expr && !(expect_punct(P, ':') && end_of_line(P))) s->expr = NULL;
  if (!s->expr) { /* skip the rest of the header; still parse the body below */
    while (peek(P)->kind != TK_NEWLINE && peek(P)->kind != TK_EOF) next(P);
    if (peek(P)->kind == TK_NEWLINE) next(P);
  }
  if (peek(P)->kind != TK_INDENT) {
    /* a body line dropped by the lexer (tab indentation...) was already reported */
    if (s->expr && !(peek(P)->kind == TK_NEWLINE && peek(P)->dropped))
      syntax_error(P, peek(P), "expected an indented block after 'repeat ...:'");
    return NULL;
  }
  if (P->block_depth >= FE_MAX_DEPTH) {
    if (!P->err) diag_error(P->diag, kw->loc, "repeat blocks nested too deeply (limit %d)", FE_MAX_DEPTH);
    P->err = true;
  }
  bool header_ok = s->expr && !P->err;
  P->block_depth++;
  s->body = block(P);
  P->block_depth--;
  return header_ok ? s : NULL;
}

/* def = "def" IDENT "(" [ IDENT { "," IDENT } ] ")" ":" NEWLINE block */
static Stmt *def_stmt(Parser *P, Token *kw) {
  Stmt *s = new_stmt(P, ST_DEF, kw->loc);
  Token *name = expect_ident(P, "a function name after 'def'");
  bool ok = name && expect_punct(P, '(');
  int cap = 0;
  if (ok && !is_punct(peek(P), ')')) {
    for (;;) {
      Token *pn = expect_ident(P, "a parameter name");
      if (!pn) {
        ok = false;
        break;
      }
      if (s->nnames == cap) {
        cap = cap ? cap * 2 : 4;
        Name *nm = ARENA_ARRAY(P->arena, Name, cap);
        if (s->nnames) memcpy(nm, s->names, sizeof(Name) * (size_t)s->nnames);
        s->names = nm;
      }
      s->names[s->nnames++] = (Name){ pn->str, pn->loc };
      if (!is_punct(peek(P), ',')) break;
      next(P);
    }
  }
  ok = ok && expect_punct(P, ')') && expect_punct(P, ':') && end_of_line(P);
  if (!ok) { /* skip the rest of the header; still parse the body below */
    while (peek(P)->kind != TK_NEWLINE && peek(P)->kind != TK_EOF) next(P);
    if (peek(P)->kind == TK_NEWLINE) next(P);
  }
  if (name) {
    s->name = name->str;
    s->name_loc = name->loc;
  }
  if (peek(P)->kind != TK_INDENT) {
    if (ok && !(peek(P)->kind == TK_NEWLINE && peek(P)->dropped))
      syntax_error(P, peek(P), "expected an indented block after 'def ...:'");
    return NULL;
  }
  if (P->block_depth >= FE_MAX_DEPTH) {
    if (!P->err) diag_error(P->diag, kw->loc, "blocks nested too deeply (limit %d)", FE_MAX_DEPTH);
    P->err = true;
  }
  bool header_ok = ok && !P->err;
  P->block_depth++;
  s->body = block(P);
  P->block_depth--;
  return header_ok ? s : NULL;
}

/* return = "return" expr NEWLINE */
static Stmt *return_stmt(Parser *P, Token *kw) {
  Stmt *s = new_stmt(P, ST_RETURN, kw->loc);
  s->expr = expr(P);
  if (!s->expr || !end_of_line(P)) return NULL;
  return s;
}

static Stmt *stmt(Parser *P);

/* block = INDENT stmt+ DEDENT */
static Stmt *block(Parser *P) {
  next(P); /* INDENT */
  Stmt head = { 0 }, *tail = &head;
  while (peek(P)->kind != TK_DEDENT && peek(P)->kind != TK_EOF) {
    Stmt *s = stmt(P);
    if (s) tail = tail->next = s;
  }
  if (peek(P)->kind == TK_DEDENT) next(P);
  return head.next;
}

/* stmt = model | dims | input | output | repeat | def | return | IDENT "=" expr NEWLINE | NEWLINE */
static Stmt *stmt(Parser *P) {
  P->err = false;
  P->depth = 0;
  Token *t = peek(P);
  Stmt *s = NULL;
  if (t->kind == TK_NEWLINE) { /* a line the lexer dropped after an error */
    next(P);
    return NULL;
  }
  if (t->kind == TK_INDENT) {
    syntax_error(P, t, "unexpected indentation");
    P->block_depth++;
    block(P); /* report its errors, drop it */
    P->block_depth--;
    return NULL;
  }
  if (t->kind == TK_DEDENT) { /* stray (cannot happen from fe_lex; be safe) */
    next(P);
    return NULL;
  }
  if (t->kind == TK_IDENT) {
    if (is_word(t, "repeat") && !is_punct(peek2(P), '=')) return next(P), repeat_stmt(P, t);
    if (is_word(t, "def") && !is_punct(peek2(P), '=')) return next(P), def_stmt(P, t);
    if (is_word(t, "return") && !is_punct(peek2(P), '=')) s = (next(P), return_stmt(P, t));
    else if (is_word(t, "model") && !is_punct(peek2(P), '=')) s = (next(P), model_stmt(P, t));
    else if (is_word(t, "dims") && !is_punct(peek2(P), '=')) s = (next(P), dims_stmt(P, t));
    else if (is_word(t, "input") && !is_punct(peek2(P), '=')) s = (next(P), input_stmt(P, t));
    else if (is_word(t, "output") && !is_punct(peek2(P), '=')) s = (next(P), output_stmt(P, t));
    else if (is_reserved(t->str)) {
      if (!P->err) diag_error(P->diag, t->loc, "'%s' is a keyword and cannot be assigned", t->str);
      P->err = true;
    } else if (is_punct(peek2(P), '=')) {
      next(P);
      next(P);
      Expr *e = expr(P);
      if (!e || !end_of_line(P)) { /* keep the statement, value-less: lowering poisons the name */
        skip_line(P);
        e = NULL;
      }
      s = new_stmt(P, ST_ASSIGN, t->loc);
      s->name = t->str;
      s->name_loc = t->loc;
      s->expr = e;
      return s;
    } else {
      char msg[200];
      snprintf(msg, sizeof msg,
               "expected '=' after '%s' (statements are: model, dims, input, output, repeat, def, return, NAME = EXPR)", t->str);
      syntax_error(P, peek2(P), msg);
    }
  } else {
    syntax_error(P, t, "expected a statement (model, dims, input, output, repeat, def, return, NAME = EXPR)");
  }
  if (!s) { /* skip to the next line */
    while (peek(P)->kind != TK_NEWLINE && peek(P)->kind != TK_EOF) next(P);
    if (peek(P)->kind == TK_NEWLINE) next(P);
  }
  return s;
}

/* program = stmt* EOF */
Program *fe_parse(Arena *a, const char *file, const char *text, size_t len, Diag *d) {
  int errors_before = d->nerrors;
  TokenList tl = fe_lex(a, file, text, len, d);
  Parser P = { .arena = a, .diag = d, .tok = tl.tok, .n = tl.n };
  Program *prog = ARENA_NEW(a, Program);
  prog->file = file;
  prog->errors_before = errors_before;
  Stmt head = { 0 }, *tail = &head;
  while (peek(&P)->kind != TK_EOF) {
    Stmt *s = stmt(&P);
    if (s) tail = tail->next = s;
  }
  prog->stmts = head.next;
  return prog;
}
