/* ast_print.c: the AST as s-expressions, for `cramc --emit=ast` and tests.
 *
 *   (= x (+ (call embed tokens vocab hidden) (call sinusoidal seq hidden (scaled true))))
 *
 * One statement per line; a repeat body is indented two spaces per level.
 * Floats print with %.17g so the dump shows exactly what was parsed.
 */
#include "ast.h"

static void print_expr(const Expr *e, FILE *out) {
  switch (e->kind) {
  case EX_INT: fprintf(out, "%lld", (long long)e->ival); break;
  case EX_FLOAT: fprintf(out, "%.17g", e->fval); break;
  case EX_STR: fprintf(out, "\"%s\"", e->str); break;
  case EX_BOOL: fputs(e->ival ? "true" : "false", out); break;
  case EX_IDENT: fputs(e->str, out); break;
  case EX_NEG:
    fputs("(- ", out);
    print_expr(e->lhs, out);
    fputc(')', out);
    break;
  case EX_BIN:
    fprintf(out, "(%c ", e->op);
    print_expr(e->lhs, out);
    fputc(' ', out);
    print_expr(e->rhs, out);
    fputc(')', out);
    break;
  case EX_LIST:
    fputs("(list", out);
    for (int i = 0; i < e->nargs; i++) {
      fputc(' ', out);
      print_expr(e->args[i].val, out);
    }
    fputc(')', out);
    break;
  case EX_CALL:
    fprintf(out, "(call %s", e->str);
    for (int i = 0; i < e->nargs; i++) {
      fputc(' ', out);
      if (e->args[i].key) fprintf(out, "(%s ", e->args[i].key);
      print_expr(e->args[i].val, out);
      if (e->args[i].key) fputc(')', out);
    }
    fputc(')', out);
    break;
  }
}

static void print_stmts(const Stmt *s, int indent, FILE *out) {
  for (; s; s = s->next) {
    fprintf(out, "%*s", indent * 2, "");
    switch (s->kind) {
    case ST_MODEL: fprintf(out, "(model %s)\n", s->name); break;
    case ST_DIMS:
      fputs("(dims", out);
      for (int i = 0; i < s->ndims; i++) {
        fprintf(out, " (%s ", s->dims[i].name);
        if (s->dims[i].val) print_expr(s->dims[i].val, out);
        else fputs("<error>", out);
        fputc(')', out);
      }
      fputs(")\n", out);
      break;
    case ST_INPUT:
      fprintf(out, "(input %s %s (", s->name, ir_dtype_name(s->dtype));
      for (int i = 0; i < s->rank; i++) {
        if (i) fputc(' ', out);
        print_expr(s->shape[i], out);
      }
      fputs("))\n", out);
      break;
    case ST_ASSIGN:
      fprintf(out, "(= %s ", s->name);
      if (s->expr) print_expr(s->expr, out);
      else fputs("<error>", out);
      fputs(")\n", out);
      break;
    case ST_OUTPUT:
      fputs("(output", out);
      for (int i = 0; i < s->nnames; i++) fprintf(out, " %s", s->names[i].name);
      fputs(")\n", out);
      break;
    case ST_REPEAT:
      fputs("(repeat ", out);
      print_expr(s->expr, out);
      if (s->name) fprintf(out, " (as %s)", s->name);
      fputc('\n', out);
      print_stmts(s->body, indent + 1, out);
      fprintf(out, "%*s)\n", indent * 2, "");
      break;
    case ST_DEF:
      fprintf(out, "(def %s (", s->name);
      for (int i = 0; i < s->nnames; i++) fprintf(out, "%s%s", i ? " " : "", s->names[i].name);
      fputs(")\n", out);
      print_stmts(s->body, indent + 1, out);
      fprintf(out, "%*s)\n", indent * 2, "");
      break;
    case ST_RETURN:
      fputs("(return ", out);
      print_expr(s->expr, out);
      fputs(")\n", out);
      break;
    }
  }
}

void fe_ast_print(const Program *p, FILE *out) { print_stmts(p->stmts, 0, out); }
