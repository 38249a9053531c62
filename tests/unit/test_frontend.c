/* test_frontend.c: unit tests for the .cram frontend below the CLI: the
 * lexer's tokens and indentation, checked dim arithmetic, -D overrides,
 * parameter naming (scopes, auto-numbering, nested repeats) and the error
 * policy (one message per mistake). lit covers messages end to end; these
 * tests look at the data structures. Exit status is the number of failures.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L /* open_memstream */
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ast.h"
#include "frontend.h"
#include "ir.h"

#include "check.h"

/* A Diag writing into memory. */
typedef struct {
  Diag d;
  FILE *f;
  char *buf;
  size_t len;
} D;

static void d_open(D *t) {
  t->buf = NULL;
  t->len = 0;
  t->f = open_memstream(&t->buf, &t->len);
  diag_init(&t->d, t->f);
}

static const char *d_text(D *t) {
  fflush(t->f);
  return t->buf ? t->buf : "";
}

static void d_close(D *t) {
  fclose(t->f);
  free(t->buf);
}

/* ---- lexer --------------------------------------------------------------- */

/* Token kinds as a compact string: i=ident n=int f=float s=str p=punct
 * ;=newline >=indent <=dedent $=eof. */
static const char *kinds(const char *src, int *nerr) {
  static char out[256];
  D t;
  d_open(&t);
  Arena *a = arena_new();
  TokenList tl = fe_lex(a, "t.cram", src, strlen(src), &t.d);
  size_t j = 0;
  for (uint32_t i = 0; i < tl.n && j + 1 < sizeof out; i++) out[j++] = "infsp;><$"[tl.tok[i].kind];
  out[j] = '\0';
  *nerr = t.d.nerrors;
  arena_free(a);
  d_close(&t);
  return out;
}

static void test_lexer(void) {
  int e;
  CHECK(!strcmp(kinds("x = f(1, 2.5, \"s\")\n", &e), "ipipnpfpsp;$") && e == 0);
  CHECK(!strcmp(kinds("a\n  b\n  c\nd\n", &e), "i;>i;i;<i;$") && e == 0);
  CHECK(!strcmp(kinds("a\n  b\n    c\n", &e), "i;>i;>i;<<$") && e == 0);          /* dedents at EOF */
  CHECK(!strcmp(kinds("a\n\n   # comment\n  \n  b\n", &e), "i;>i;<$") && e == 0); /* blank lines ignored */
  CHECK(!strcmp(kinds("a # trailing\n", &e), "i;$") && e == 0);
  CHECK(!strcmp(kinds("a", &e), "i;$") && e == 0);                  /* no final newline */
  CHECK(!strcmp(kinds("a\r\nb\r\n", &e), "i;i;$") && e == 0);       /* CRLF */
  CHECK(!strcmp(kinds("# caf\xc3\xa9\na\n", &e), "i;$") && e == 0); /* UTF-8 in a comment */
  CHECK(!strcmp(kinds("", &e), "$") && e == 0);
  kinds("a\n\tb\n", &e);
  CHECK(e == 1); /* tab in indentation */
  kinds("a\n    b\n  c\n", &e);
  CHECK(e == 1); /* inconsistent dedent */
  kinds("x = \xff\xfe\n", &e);
  CHECK(e == 1); /* one error per bad line */
  kinds("x = 99999999999999999999\n", &e);
  CHECK(e == 1);
  kinds("x = 1e999\n", &e);
  CHECK(e == 1);
  kinds("x = 12ab\n", &e);
  CHECK(e == 1);

  /* values and positions */
  D t;
  d_open(&t);
  Arena *a = arena_new();
  const char *src = "model m\n  x = 9223372036854775807 + 1.5e-3\n";
  TokenList tl = fe_lex(a, "t.cram", src, strlen(src), &t.d);
  CHECK(tl.n == 12);
  CHECK(tl.tok[0].kind == TK_IDENT && !strcmp(tl.tok[0].str, "model") && tl.tok[0].loc.line == 1 && tl.tok[0].loc.col == 1);
  CHECK(tl.tok[3].kind == TK_INDENT);
  CHECK(tl.tok[4].kind == TK_IDENT && tl.tok[4].loc.line == 2 && tl.tok[4].loc.col == 3);
  CHECK(tl.tok[6].kind == TK_INT && tl.tok[6].ival == INT64_MAX);
  CHECK(tl.tok[8].kind == TK_FLOAT && tl.tok[8].fval == 1.5e-3 && tl.tok[8].loc.col == 29);
  arena_free(a);
  d_close(&t);

  /* identifier length limit: 128 is fine, 129 is not */
  char id[200];
  memset(id, 'a', 128);
  strcpy(id + 128, "\n");
  kinds(id, &e);
  CHECK(e == 0);
  memset(id, 'a', 129);
  strcpy(id + 129, "\n");
  kinds(id, &e);
  CHECK(e == 1);
}

/* ---- dims arithmetic ----------------------------------------------------- */

static bool op(char o, int64_t a, int64_t b, int64_t *r) {
  const char *why = NULL;
  return fe_int_binop(o, a, b, r, &why);
}

static void test_dims_arith(void) {
  int64_t r;
  CHECK(op('/', 7, 2, &r) && r == 3);
  CHECK(op('/', -7, 2, &r) && r == -4); /* floor, not truncation */
  CHECK(op('%', -7, 2, &r) && r == 1);  /* sign of the divisor */
  CHECK(op('%', 7, -2, &r) && r == -1);
  CHECK(op('/', 7, -2, &r) && r == -4);
  CHECK(op('/', 6, 3, &r) && r == 2);
  CHECK(!op('/', 1, 0, &r));
  CHECK(!op('%', 1, 0, &r));
  CHECK(!op('/', INT64_MIN, -1, &r));
  CHECK(!op('%', INT64_MIN, -1, &r));
  CHECK(!op('*', INT64_C(1) << 62, 4, &r));
  CHECK(!op('+', INT64_MAX, 1, &r));
  CHECK(!op('-', INT64_MIN, 1, &r));
  CHECK(op('*', INT64_C(1) << 31, INT64_C(1) << 31, &r) && r == INT64_C(1) << 62);
  CHECK(op('-', 3, 5, &r) && r == -2);
  const char *why = NULL;
  CHECK(!fe_int_binop('/', 1, 0, &r, &why) && why && strstr(why, "division by zero"));

  CHECK(fe_parse_int("9223372036854775807", &r) && r == INT64_MAX);
  CHECK(fe_parse_int("-9223372036854775808", &r) && r == INT64_MIN);
  CHECK(!fe_parse_int("9223372036854775808", &r));
  CHECK(!fe_parse_int("12x", &r));
  CHECK(!fe_parse_int("", &r));
  CHECK(!fe_parse_int("-", &r));
  CHECK(fe_parse_int("+42", &r) && r == 42);

  CHECK(fe_edit_distance("lyernorm", "layernorm", 3) == 1);
  CHECK(fe_edit_distance("linear", "linear", 3) == 0);
  CHECK(fe_edit_distance("abc", "xyzxyzxyz", 3) > 3);
}

/* ---- compiling small programs -------------------------------------------- */

static Graph *compile(const char *src, const FeDefine *defs, int ndefs, D *t) {
  d_open(t);
  return fe_compile("t.cram", src, strlen(src), defs, ndefs, &t->d);
}

static const Node *find_named(const Graph *g, OpKind op, const char *name) {
  for (uint32_t i = 0; i < g->n; i++)
    if (g->nodes[i].op == op && !strcmp(ir_get_str(&g->nodes[i], ATTR_NAME), name)) return &g->nodes[i];
  return NULL;
}

static int count_op(const Graph *g, OpKind op) {
  int n = 0;
  for (uint32_t i = 0; i < g->n; i++) n += g->nodes[i].op == op;
  return n;
}

#define HEAD                                \
  "model m\n"                               \
  "dims batch=2 seq=8 hidden=16 vocab=50\n" \
  "input tokens : i32[batch, seq]\n"        \
  "x = embed(tokens, vocab, hidden)\n"
#define LOSS "loss = cross_entropy(decoder(x, vocab, tie=\"embedding\"), tokens)\n"

static void test_dims_eval(void) {
  D t;
  Graph *g = compile("model m\n"
                     "dims a=7 b=a/2 c=(a*30+50)/100 d=-a/2+10 e=a%3 f=2*(a-1)*a\n"
                     "input t : f32[a, b, c, d, e, f]\n"
                     "x = t\nloss = cross_entropy(x, t2)\n",
                     NULL, 0, &t);
  CHECK(!g); /* t2 undefined */
  CHECK(t.d.nerrors == 1 && strstr(d_text(&t), "undefined name 't2'"));
  d_close(&t);

  g = compile("model m\n"
              "dims a=7 b=a/2 c=(a*30+50)/100 d=-a/2+10 e=a%3 f=2*(a-1)*a\n"
              "input t : f32[a, b, c, d, e, f]\n"
              "input y : i32[a, b, c, d, e]\n"
              "loss = cross_entropy(t, y)\n",
              NULL, 0, &t);
  CHECK(g != NULL);
  if (g) {
    const Node *in = find_named(g, OP_INPUT, "t");
    CHECK(in && in->shape.rank == 6);
    if (in) {
      CHECK(in->shape.dim[0] == 7 && in->shape.dim[1] == 3 && in->shape.dim[2] == 2);
      CHECK(in->shape.dim[3] == 6); /* -7/2 floors to -4 */
      CHECK(in->shape.dim[4] == 1 && in->shape.dim[5] == 84);
    }
  }
  ir_graph_free(g);
  d_close(&t);

  /* -D replaces a definition before later dims use it */
  FeDefine defs[] = { { "seq", "4" }, { "hidden", "32" } };
  g = compile(HEAD "dims half=hidden/2 masked=seq/2\n"
                   "y = masked_only(x, tokens, masked)\n" LOSS,
              defs, 2, &t);
  CHECK(g != NULL);
  if (g) {
    const Node *in = find_named(g, OP_INPUT, "tokens");
    CHECK(in && in->shape.dim[1] == 4);
    const Node *w = find_named(g, OP_PARAM, "embedding.weight");
    CHECK(w && w->shape.dim[1] == 32);
    bool found = false;
    for (uint32_t i = 0; i < g->n; i++)
      if (g->nodes[i].op == OP_MASKED_ROWS) found = g->nodes[i].shape.dim[0] == 2 * 2;
    CHECK(found);
  }
  ir_graph_free(g);
  d_close(&t);

  FeDefine bad[] = { { "nope", "4" } };
  g = compile(HEAD LOSS, bad, 1, &t);
  CHECK(!g && strstr(d_text(&t), "no dim named 'nope'"));
  d_close(&t);

  g = compile("model m\ndims a=3 b=a*0\n", NULL, 0, &t);
  CHECK(!g && strstr(d_text(&t), "dim 'b' must be positive, got 0"));
  d_close(&t);
}

static void test_param_names(void) {
  D t;
  Graph *g = compile(HEAD "repeat 2 as outer:\n"
                          "    x = x + linear(x, hidden)\n"
                          "    x = x + linear(x, hidden)\n"
                          "    repeat 3 as inner:\n"
                          "        x = layernorm(x, name=\"ln\")\n"
                          "        x = x + linear(x, hidden, bias=false)\n"
                          "x = linear(x, hidden)\n" LOSS,
                     NULL, 0, &t);
  CHECK(g != NULL);
  if (!g) fprintf(stderr, "%s", d_text(&t));
  if (g) {
    CHECK(find_named(g, OP_PARAM, "outer.0.linear.weight"));
    CHECK(find_named(g, OP_PARAM, "outer.0.linear.bias"));
    CHECK(find_named(g, OP_PARAM, "outer.0.linear_1.weight")); /* auto-numbered in a scope */
    CHECK(find_named(g, OP_PARAM, "outer.1.linear.weight"));   /* each iteration is a fresh scope */
    CHECK(find_named(g, OP_PARAM, "outer.1.inner.2.ln.weight"));
    CHECK(find_named(g, OP_PARAM, "outer.1.inner.2.linear.weight"));
    CHECK(!find_named(g, OP_PARAM, "outer.1.inner.2.linear.bias"));
    CHECK(!find_named(g, OP_PARAM, "outer.2.linear.weight"));
    CHECK(find_named(g, OP_PARAM, "linear.weight")); /* top-level scope */
    /* embedding 1 + 2 x (2 linears x 2 + 3 x (ln 2 + linear 1)) + 2 */
    CHECK(count_op(g, OP_PARAM) == 1 + 2 * (4 + 3 * 3) + 2);
    const Node *w = find_named(g, OP_PARAM, "outer.0.linear.weight");
    CHECK(w && ir_get_int(w, ATTR_DECAY) == 1 && !strcmp(ir_get_str(w, ATTR_INIT), "normal") &&
          ir_get_float(w, ATTR_SCALE) == 0.02);
    const Node *b = find_named(g, OP_PARAM, "outer.0.linear.bias");
    CHECK(b && ir_get_int(b, ATTR_DECAY) == 0 && !strcmp(ir_get_str(b, ATTR_INIT), "zeros"));
    const Node *ln = find_named(g, OP_PARAM, "outer.0.inner.0.ln.weight");
    CHECK(ln && ir_get_int(ln, ATTR_DECAY) == 0 && !strcmp(ir_get_str(ln, ATTR_INIT), "ones"));
    /* SrcLocs point at the call and name the file */
    CHECK(w && w->loc.line == 6 && w->loc.col == 13 && !strcmp(w->loc.file, "t.cram"));
    CHECK(g->nout == 1 && !strcmp(g->outputs[0].name, "loss"));
  }
  ir_graph_free(g);
  d_close(&t);

  /* an explicit default-looking name collides with an auto name */
  g = compile(HEAD "x = linear(x, hidden)\nx = linear(x, hidden, name=\"linear\")\n" LOSS, NULL, 0, &t);
  CHECK(!g && t.d.nerrors == 1 && strstr(d_text(&t), "duplicate name \"linear\"") &&
        strstr(d_text(&t), "note: first defined here"));
  d_close(&t);

  /* explicit dotted names that produce the same parameter */
  g = compile(HEAD "x = attention(x, 2)\ny = linear(x, 48, name=\"attn.qkv\")\n" LOSS, NULL, 0, &t);
  CHECK(!g && t.d.nerrors == 1 && strstr(d_text(&t), "parameter 'attn.qkv.weight' is already defined"));
  d_close(&t);

  /* the same explicit name in different repeat iterations is fine */
  g = compile(HEAD "repeat 2 as l:\n    x = linear(x, hidden, name=\"p\")\n" LOSS, NULL, 0, &t);
  CHECK(g && find_named(g, OP_PARAM, "l.1.p.weight"));
  ir_graph_free(g);
  d_close(&t);

  /* default repeat name is the dim */
  g = compile(HEAD "dims layers=2\nrepeat layers:\n    x = gelu(linear(x, hidden))\n" LOSS, NULL, 0, &t);
  CHECK(g && find_named(g, OP_PARAM, "layers.1.linear.weight"));
  ir_graph_free(g);
  d_close(&t);
}

static void test_error_policy(void) {
  D t;
  /* an error inside repeat is reported once, not once per iteration */
  Graph *g = compile(HEAD "repeat 16 as l:\n    x = x + linear(x, 3)\n" LOSS, NULL, 0, &t);
  CHECK(!g && t.d.nerrors == 1);
  d_close(&t);

  /* a poisoned name does not cascade */
  g = compile(HEAD "y = lyernorm(x)\nz = y + y\nw = gelu(z)\n" LOSS, NULL, 0, &t);
  CHECK(!g && t.d.nerrors == 1);
  d_close(&t);

  /* syntax errors on several lines are all reported, and lowering still
   * reports independent mistakes */
  g = compile(HEAD "y = (x\nz = x +\nw = foo\n" LOSS, NULL, 0, &t);
  CHECK(!g && t.d.nerrors == 3);
  d_close(&t);

  /* too many errors: stop early (diag prints 20 then one "too many") */
  char *src = malloc(64 * 1000 + 100);
  strcpy(src, "model m\n");
  for (int i = 0; i < 1000; i++) sprintf(src + strlen(src), "v%d = undefined_%d\n", i, i);
  g = compile(src, NULL, 0, &t);
  CHECK(!g && t.d.nerrors > 20 && strstr(d_text(&t), "too many errors"));
  d_close(&t);
  free(src);

  /* the node limit stops runaway nested repeats */
  g = compile(HEAD "repeat 4096 as a:\n    repeat 4096 as b:\n        x = gelu(x)\n" LOSS, NULL, 0, &t);
  CHECK(!g && strstr(d_text(&t), "model too large"));
  d_close(&t);

  /* AST dump */
  d_open(&t);
  char *buf = NULL;
  size_t len = 0;
  FILE *out = open_memstream(&buf, &len);
  const char *p = "model m\nrepeat 2 as r:\n    x = -f(a, k=1.5)*2\n";
  CHECK(fe_print_ast("t.cram", p, strlen(p), out, &t.d));
  fclose(out);
  CHECK(buf && !strcmp(buf, "(model m)\n(repeat 2 (as r)\n  (= x (* (- (call f a (k 1.5))) 2))\n)\n"));
  free(buf);
  d_close(&t);
}

int main(void) {
  test_lexer();
  test_dims_arith();
  test_dims_eval();
  test_param_names();
  test_error_policy();
  return check_summary("test_frontend");
}
