/* test_ir_text.c: unit tests for the IR text form (print.c, parse.c).
 *
 * The printer is checked against an exact golden string; the parser by a
 * round trip over a graph that uses every op (print(parse(print(g))) must be
 * byte-identical), float and string edge cases, and a table of malformed
 * texts, each of which must produce its error at the right line:col. Last, a
 * seeded mutation fuzzer (truncations, byte flips, splices) checks that no
 * input crashes the parser (run under ASan/UBSan) and that whatever parses
 * re-prints stably.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L /* open_memstream */
#endif
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir.h"

static int n_pass, n_fail;

#define CHECK(c)                                                            \
  do {                                                                      \
    if (c) n_pass++;                                                        \
    else {                                                                  \
      n_fail++;                                                             \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #c); \
    }                                                                       \
  } while (0)

static const SrcLoc NOLOC = { 0 };

/* ir_print into a malloc'd string. */
static char *print_str(const Graph *g) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  ir_print(g, f);
  fclose(f);
  return buf;
}

/* Parse `text` as file "t.ir"; diagnostics into *diag (malloc'd). */
static Graph *parse_str(const char *text, size_t len, char **diag, int *nerrors) {
  size_t dlen = 0;
  *diag = NULL;
  FILE *f = open_memstream(diag, &dlen);
  Diag d;
  diag_init(&d, f);
  d.max_errors = 0;
  Graph *g = ir_parse(text, len, "t.ir", &d);
  fclose(f);
  if (nerrors) *nerrors = d.nerrors;
  return g;
}

/* print -> parse -> print must reproduce the first print exactly. */
static bool round_trips(const Graph *g) {
  char *a = print_str(g), *diag;
  Graph *h = parse_str(a, strlen(a), &diag, NULL);
  bool ok = h != NULL;
  if (h) {
    char *b = print_str(h);
    ok = !strcmp(a, b);
    if (!ok) fprintf(stderr, "    first print:\n%s    second print:\n%s", a, b);
    free(b);
  } else {
    fprintf(stderr, "    text:\n%s    parse errors:\n%s", a, diag);
  }
  ir_graph_free(h);
  free(a);
  free(diag);
  return ok;
}

static ValueId input(Graph *g, const char *name, DType dt, int rank, const int64_t *dims, SrcLoc loc) {
  Shape s = ir_shape_make(rank, dims);
  Attr a = ir_attr_str(ATTR_NAME, name);
  return ir_add_source(g, OP_INPUT, dt, &s, &a, 1, loc);
}

static ValueId param(Graph *g, const char *name, const char *init, double scale, int decay, int rank, const int64_t *dims) {
  Shape s = ir_shape_make(rank, dims);
  Attr a[4] = { ir_attr_str(ATTR_NAME, name), ir_attr_str(ATTR_INIT, init), ir_attr_float(ATTR_SCALE, scale),
                ir_attr_int(ATTR_DECAY, decay) };
  return ir_add_source(g, OP_PARAM, DT_F32, &s, a, 4, NOLOC);
}

/* Like ir_add, but a failure is a test failure and aborts: these graphs are valid by construction. */
static ValueId node(Graph *g, OpKind op, int nin, const ValueId *in, const Attr *at, int nat, SrcLoc loc) {
  Diag d;
  diag_init(&d, stderr);
  ValueId v = ir_add(g, op, in, nin, at, nat, loc, &d);
  if (v == IR_NONE) {
    fprintf(stderr, "test_ir_text: could not build %s\n", ir_ops[op].name);
    exit(2);
  }
  return v;
}
#define IN(...) \
  (ValueId[]) { __VA_ARGS__ }
#define ATTRS(...) (Attr[]){ __VA_ARGS__ }, (int)(sizeof((Attr[]){ __VA_ARGS__ }) / sizeof(Attr))
#define NOATTR     NULL, 0

static void test_print_golden(void) {
  Graph *g = ir_graph_new("tiny");
  ValueId tok = input(g, "tokens", DT_I32, 2, (int64_t[]){ 8, 128 }, NOLOC);
  ValueId emb = param(g, "embedding.weight", "normal", 0.02, 1, 2, (int64_t[]){ 512, 64 });
  SrcLoc at = { "models/tiny.cram", 7, 5 };
  ValueId x = node(g, OP_EMBEDDING, 2, IN(emb, tok), NOATTR, at);
  ValueId r = node(g, OP_RESHAPE, 1, IN(x), ATTRS(ir_attr_ints(ATTR_SHAPE, (int64_t[]){ 1024, 64 }, 2)), NOLOC);
  Shape pe = ir_shape_make(2, (int64_t[]){ 128, 64 });
  ir_add_source(g, OP_SINUSOID, DT_F32, &pe, NULL, 0, NOLOC);
  ValueId ln = node(g, OP_LAYERNORM, 1, IN(r), ATTRS(ir_attr_float(ATTR_EPS, 1e-12)), (SrcLoc){ "C:\\m\\a:b.cram", 12, 30 });
  ValueId m = node(g, OP_MEAN, 1, IN(ln), ATTRS(ir_attr_int(ATTR_AXIS, 1)), NOLOC);
  ValueId s = node(g, OP_MEAN, 1, IN(m), ATTRS(ir_attr_int(ATTR_AXIS, 0)), NOLOC);
  ValueId sc = node(g, OP_SCALE, 1, IN(s), ATTRS(ir_attr_float(ATTR_ALPHA, 1.0)), NOLOC);
  ir_add_output(g, "loss", sc);
  ir_add_output(g, "layer 2/out", ln);
  char *text = print_str(g);
  const char *want = "graph tiny\n"
                     "%0 = input {name=\"tokens\"} : i32[8,128]\n"
                     "%1 = param {name=\"embedding.weight\", init=\"normal\", scale=0.02, decay=1} : f32[512,64]\n"
                     "%2 = embedding %1, %0 : f32[8,128,64]  # models/tiny.cram:7:5\n"
                     "%3 = reshape %2 {shape=[1024,64]} : f32[1024,64]\n"
                     "%4 = sinusoid : f32[128,64]\n"
                     "%5 = layernorm %3 {eps=1e-12} : f32[1024,64]  # C:\\m\\a:b.cram:12:30\n"
                     "%6 = mean %5 {axis=1} : f32[1024]\n"
                     "%7 = mean %6 {axis=0} : f32[]\n"
                     "%8 = scale %7 {alpha=1.0} : f32[]\n"
                     "output loss = %8\n"
                     "output \"layer 2/out\" = %5\n";
  CHECK(!strcmp(text, want));
  if (strcmp(text, want)) fprintf(stderr, "    got:\n%s    want:\n%s", text, want);
  CHECK(round_trips(g));
  free(text);
  ir_graph_free(g);
}

/* A graph that uses every op in ops.def: a one-layer crammed BERT plus the odd ones out. */
static void test_round_trip_every_op(void) {
  Graph *g = ir_graph_new("every-op");
  bool used[OP_COUNT] = { false };
  SrcLoc L = { "models/x.cram", 3, 1 };
  ValueId tok = input(g, "tokens", DT_I32, 2, (int64_t[]){ 2, 8 }, L);
  ValueId tgt = input(g, "targets", DT_I32, 2, (int64_t[]){ 2, 8 }, NOLOC);
  ValueId emb = param(g, "emb", "normal", 0.02, 1, 2, (int64_t[]){ 32, 16 });
  ValueId lnw = param(g, "ln.w", "ones", 0, 0, 1, (int64_t[]){ 16 });
  ValueId lnb = param(g, "ln.b", "zeros", 0, 0, 1, (int64_t[]){ 16 });
  ValueId wq = param(g, "qkv", "const", -0.30000000000000004, 1, 2, (int64_t[]){ 16, 48 });
  ValueId w1 = param(g, "ffn.in", "normal", 5e-324, 1, 2, (int64_t[]){ 16, 64 });
  ValueId w2 = param(g, "ffn.out\n\"q\"\\\x01\xff", "normal", 1e300, 1, 2, (int64_t[]){ 32, 16 });
  Shape pes = ir_shape_make(2, (int64_t[]){ 8, 16 });
  ValueId pe = ir_add_source(g, OP_SINUSOID, DT_F32, &pes, NULL, 0, NOLOC);
  Attr nn[] = { ir_attr_int(ATTR_TRANS_A, 0), ir_attr_int(ATTR_TRANS_B, 0) };
  Attr nt[] = { ir_attr_int(ATTR_TRANS_A, 0), ir_attr_int(ATTR_TRANS_B, 1) };
  ValueId x = node(g, OP_EMBEDDING, 2, IN(emb, tok), NOATTR, L);
  x = node(g, OP_ADD, 2, IN(x, pe), NOATTR, NOLOC);
  x = node(g, OP_LAYERNORM, 3, IN(x, lnw, lnb), ATTRS(ir_attr_float(ATTR_EPS, 1e-12)), NOLOC);
  ValueId h = node(g, OP_RMSNORM, 2, IN(x, lnw), ATTRS(ir_attr_float(ATTR_EPS, 1e-6)), NOLOC);
  ValueId qkv = node(g, OP_MATMUL, 2, IN(h, wq), nn, 2, NOLOC);
  ValueId q =
    node(g, OP_SLICE, 1, IN(qkv), ATTRS(ir_attr_int(ATTR_AXIS, 2), ir_attr_int(ATTR_START, 0), ir_attr_int(ATTR_LEN, 16)), NOLOC);
  ValueId k = node(g, OP_SLICE, 1, IN(qkv),
                   ATTRS(ir_attr_int(ATTR_AXIS, 2), ir_attr_int(ATTR_START, 16), ir_attr_int(ATTR_LEN, 16)), NOLOC);
  q = node(g, OP_RESHAPE, 1, IN(q), ATTRS(ir_attr_ints(ATTR_SHAPE, (int64_t[]){ 2, 8, 2, 8 }, 4)), NOLOC);
  q = node(g, OP_PERMUTE, 1, IN(q), ATTRS(ir_attr_ints(ATTR_PERM, (int64_t[]){ 0, 2, 1, 3 }, 4)), NOLOC);
  k = node(g, OP_RESHAPE, 1, IN(k), ATTRS(ir_attr_ints(ATTR_SHAPE, (int64_t[]){ 2, 8, 2, 8 }, 4)), NOLOC);
  k = node(g, OP_PERMUTE, 1, IN(k), ATTRS(ir_attr_ints(ATTR_PERM, (int64_t[]){ 0, 2, 1, 3 }, 4)), NOLOC);
  ValueId sc = node(g, OP_MATMUL, 2, IN(q, k), nt, 2, NOLOC);
  sc = node(g, OP_SCALE, 1, IN(sc), ATTRS(ir_attr_float(ATTR_ALPHA, 0.35355339059327373)), NOLOC);
  ValueId p = node(g, OP_SOFTMAX, 1, IN(sc), NOATTR, NOLOC);
  p = node(g, OP_DROPOUT, 1, IN(p), ATTRS(ir_attr_float(ATTR_P, 0.1), ir_attr_int(ATTR_KEY, 3)), NOLOC);
  ValueId f = node(g, OP_MATMUL, 2, IN(x, w1), nn, 2, NOLOC);
  f = node(g, OP_GLU, 1, IN(f), ATTRS(ir_attr_str(ATTR_ACT, "gelu")), NOLOC);
  ValueId r = node(g, OP_RELU, 1, IN(f), NOATTR, NOLOC);
  ValueId t = node(g, OP_TANH, 1, IN(f), NOATTR, NOLOC);
  /* the .cram primitives' elementwise ops and the arange table */
  {
    static const OpKind un[] = { OP_EXP, OP_RSQRT, OP_SIGMOID, OP_SILU, OP_SIN, OP_COS };
    ValueId u = t;
    for (size_t i = 0; i < sizeof un / sizeof un[0]; i++) u = node(g, un[i], 1, IN(u), NOATTR, NOLOC);
    node(g, OP_SIGMOID_GRAD, 2, IN(u, f), NOATTR, NOLOC);
    node(g, OP_SILU_GRAD, 2, IN(u, f), NOATTR, NOLOC);
    Shape as = ir_shape_make(1, (int64_t[]){ 5 });
    ir_add_source(g, OP_ARANGE, DT_F32, &as, NULL, 0, NOLOC);
  }
  ValueId gl = node(g, OP_GELU, 1, IN(f), NOATTR, NOLOC);
  f = node(g, OP_MUL, 2, IN(r, t), NOATTR, NOLOC);
  f = node(g, OP_ADD, 2, IN(f, gl), NOATTR, NOLOC);
  f = node(g, OP_MATMUL, 2, IN(f, w2), nn, 2, NOLOC);
  x = node(g, OP_ADD, 2, IN(x, f), NOATTR, NOLOC);
  ValueId rows = node(g, OP_MASKED_ROWS, 2, IN(x, tgt), ATTRS(ir_attr_int(ATTR_SLOTS, 3)), NOLOC);
  ValueId mt = node(g, OP_MASKED_TARGETS, 1, IN(tgt), ATTRS(ir_attr_int(ATTR_SLOTS, 3)), NOLOC);
  ValueId logits = node(g, OP_MATMUL, 2, IN(rows, emb), nt, 2, NOLOC);
  ValueId loss =
    node(g, OP_CROSS_ENTROPY, 2, IN(logits, mt), ATTRS(ir_attr_int(ATTR_IGNORE, -100)), (SrcLoc){ "m.cram", 4294967295u, 0 });
  node(g, OP_XENT_HITS, 2, IN(logits, mt), ATTRS(ir_attr_int(ATTR_IGNORE, -100)), NOLOC);
  ValueId pm = node(g, OP_MEAN, 1, IN(p), ATTRS(ir_attr_int(ATTR_AXIS, 3)), NOLOC);
  /* precision: a bf16 copy of a master weight, a bf16 GEMM, its result back to f32 */
  {
    ValueId wb = node(g, OP_CAST, 1, IN(w1), ATTRS(ir_attr_str(ATTR_TO, "bf16")), NOLOC);
    ValueId xb = node(g, OP_CAST, 1, IN(x), ATTRS(ir_attr_str(ATTR_TO, "bf16")), NOLOC);
    ValueId yb = node(g, OP_MATMUL, 2, IN(xb, wb), nn, 2, NOLOC);
    node(g, OP_CAST, 1, IN(yb), ATTRS(ir_attr_str(ATTR_TO, "f32")), NOLOC);
  }
  /* backward ops (autodiff) */
  Shape scalar = { .rank = 0 };
  Attr one_v = ir_attr_float(ATTR_VALUE, 1.0);
  ValueId one = ir_add_source(g, OP_FILL, DT_F32, &scalar, &one_v, 1, NOLOC);
  node(g, OP_GELU_GRAD, 2, IN(f, f), NOATTR, NOLOC);
  node(g, OP_RELU_GRAD, 2, IN(f, f), NOATTR, NOLOC);
  node(g, OP_TANH_GRAD, 2, IN(f, f), NOATTR, NOLOC);
  node(g, OP_SOFTMAX_GRAD, 2, IN(p, p), NOATTR, NOLOC);
  ValueId pre = node(g, OP_MATMUL, 2, IN(x, w1), nn, 2, NOLOC);
  ValueId half = node(g, OP_GLU, 1, IN(pre), ATTRS(ir_attr_str(ATTR_ACT, "sigmoid")), NOLOC);
  node(g, OP_GLU_GRAD, 2, IN(pre, half), ATTRS(ir_attr_str(ATTR_ACT, "sigmoid")), NOLOC);
  node(g, OP_LAYERNORM_GRAD, 3, IN(x, lnw, x), ATTRS(ir_attr_float(ATTR_EPS, 1e-12)), NOLOC);
  node(g, OP_LAYERNORM_WGRAD, 2, IN(x, x), ATTRS(ir_attr_float(ATTR_EPS, 1e-12)), NOLOC);
  node(g, OP_LAYERNORM_BGRAD, 2, IN(x, x), ATTRS(ir_attr_float(ATTR_EPS, 1e-12)), NOLOC);
  node(g, OP_RMSNORM_GRAD, 2, IN(x, x), ATTRS(ir_attr_float(ATTR_EPS, 1e-6)), NOLOC);
  node(g, OP_CROSS_ENTROPY_GRAD, 3, IN(logits, mt, one), ATTRS(ir_attr_int(ATTR_IGNORE, -100)), NOLOC);
  node(g, OP_EMBEDDING_GRAD, 2, IN(tok, x), ATTRS(ir_attr_int(ATTR_ROWS, 32)), NOLOC);
  node(g, OP_MASKED_ROWS_GRAD, 2, IN(rows, tgt), ATTRS(ir_attr_int(ATTR_SLOTS, 3)), NOLOC);
  node(g, OP_SUM_TO, 1, IN(x), ATTRS(ir_attr_ints(ATTR_SHAPE, (int64_t[]){ 8, 1 }, 2)), NOLOC);
  node(g, OP_BROADCAST_TO, 1, IN(lnw), ATTRS(ir_attr_ints(ATTR_SHAPE, (int64_t[]){ 2, 8, 16 }, 3)), NOLOC);
  node(g, OP_PAD, 1, IN(x), ATTRS(ir_attr_int(ATTR_AXIS, 2), ir_attr_int(ATTR_START, 1), ir_attr_int(ATTR_SIZE, 20)), NOLOC);
  /* optimizer ops */
  {
    ValueId sq = node(g, OP_SUMSQ, 1, IN(lnw), NOATTR, NOLOC);
    node(g, OP_SQRT, 1, IN(sq), NOATTR, NOLOC);
    ValueId hy = input(g, "hyper", DT_F32, 1, (int64_t[]){ IR_ADAM_HYPER }, NOLOC);
    ValueId cc = node(g, OP_CLIP_COEF, 2, IN(sq, hy), NOATTR, NOLOC);
    ValueId sch = node(g, OP_ADAM_SCHED, 3, IN(one, one, hy), NOATTR, NOLOC);
    ValueId m = node(g, OP_ADAM_M, 4, IN(lnw, lnb, cc, sch), NOATTR, NOLOC);
    ValueId v = node(g, OP_ADAM_V, 4, IN(lnw, lnb, cc, sch), NOATTR, NOLOC);
    node(g, OP_ADAMW_PARAM, 4, IN(lnw, m, v, sch), ATTRS(ir_attr_int(ATTR_DECAY, 1)), NOLOC);
  }
  /* fused ops (passes/fuse_*.c) */
  {
    Attr ng[] = { ir_attr_int(ATTR_TRANS_A, 0), ir_attr_int(ATTR_TRANS_B, 0), ir_attr_str(ATTR_ACT, "gelu") };
    Attr eps = ir_attr_float(ATTR_EPS, 1e-12);
    ValueId db = param(g, "dec.b", "zeros", 0, 0, 1, (int64_t[]){ 32 });
    node(g, OP_CONCAT, 2, IN(w1, w1), ATTRS(ir_attr_int(ATTR_AXIS, 1)), NOLOC);
    node(g, OP_MATMUL_ACT, 2, IN(x, w1), ng, 3, NOLOC);
    ValueId gl2 = node(g, OP_MATMUL_GLU, 2, IN(x, w1), ng, 3, NOLOC);
    node(g, OP_MATMUL_ACT_GRAD, 3, IN(x, gl2, w2), ng, 3, NOLOC);
    node(g, OP_MATMUL_GLU_GRAD, 3, IN(gl2, gl2, w2), ng, 3, NOLOC);
    node(g, OP_ADD_LAYERNORM, 4, IN(x, x, lnw, lnb), &eps, 1, NOLOC);
    node(g, OP_LAYERNORM_GRAD_ADD, 4, IN(x, lnw, x, x), &eps, 1, NOLOC);
    node(g, OP_XENT_LINEAR, 3, IN(rows, emb, mt), ATTRS(ir_attr_int(ATTR_TRANS_B, 1), ir_attr_int(ATTR_IGNORE, -100)), NOLOC);
    node(g, OP_XENT_LINEAR_GRAD, 4, IN(rows, emb, mt, db),
         ATTRS(ir_attr_int(ATTR_TRANS_B, 1), ir_attr_int(ATTR_IGNORE, -100), ir_attr_int(ATTR_WRT, 2)), NOLOC);
    node(g, OP_XENT_LINEAR_HITS, 3, IN(rows, emb, mt), ATTRS(ir_attr_int(ATTR_TRANS_B, 1), ir_attr_int(ATTR_IGNORE, -100)),
         NOLOC);
  }
  /* fused attention: packed qkv [B,S,heads,3dh] + a key-padding bias, its lse and backward */
  {
    int64_t off[3] = { 0, 2, 4 };
    Attr at[] = { ir_attr_float(ATTR_ALPHA, 0.5), ir_attr_float(ATTR_P, 0.1), ir_attr_int(ATTR_KEY, 9),
                  ir_attr_int(ATTR_HEAD_DIM, 2), ir_attr_ints(ATTR_OFFSETS, off, 3) };
    ValueId pk = param(g, "qkv", "normal", 0.02, 1, 4, (int64_t[]){ 2, 3, 2, 6 });
    ValueId mk = input(g, "mask", DT_F32, 4, (int64_t[]){ 2, 1, 1, 3 }, NOLOC);
    ValueId o = node(g, OP_ATTENTION, 4, IN(pk, pk, pk, mk), at, 5, NOLOC);
    ValueId l = node(g, OP_ATTENTION_LSE, 4, IN(pk, pk, pk, mk), at, 5, NOLOC);
    Attr ag[6];
    memcpy(ag, at, sizeof at);
    ag[5] = ir_attr_int(ATTR_WRT, 7);
    node(g, OP_ATTENTION_GRAD, 7, IN(pk, pk, pk, o, l, o, mk), ag, 6, NOLOC);
  }
  ir_add_output(g, "loss", loss);
  ir_add_output(g, "attn", pm);
  for (ValueId v = 0; v < g->n; v++) used[g->nodes[v].op] = true;
  for (int o = 0; o < OP_COUNT; o++) {
    CHECK(used[o]);
    if (!used[o]) fprintf(stderr, "    op '%s' is not in the round-trip graph\n", ir_ops[o].name);
  }
  CHECK(round_trips(g));

  /* Floats come back bit-exactly, strings byte-exactly. */
  char *text = print_str(g), *diag;
  Graph *h2 = parse_str(text, strlen(text), &diag, NULL);
  CHECK(h2 && h2->n == g->n);
  for (ValueId v = 0; h2 && v < g->n; v++) {
    const Node *a = &g->nodes[v], *b = &h2->nodes[v];
    CHECK(a->op == b->op && a->nattr == b->nattr && a->loc.line == b->loc.line && a->loc.col == b->loc.col);
    for (int i = 0; i < a->nattr; i++) {
      if (ir_attrs[a->attr[i].id].kind == AK_FLOAT) CHECK(!memcmp(&a->attr[i].u.f, &b->attr[i].u.f, sizeof(double)));
      if (ir_attrs[a->attr[i].id].kind == AK_STR) CHECK(!strcmp(a->attr[i].u.s, b->attr[i].u.s));
    }
  }
  CHECK(strstr(text, "name=\"ffn.out\\n\\\"q\\\"\\\\\\x01\\xff\"") != NULL);
  CHECK(strstr(text, "scale=-0.30000000000000004") && strstr(text, "scale=4.94065646e-324") && strstr(text, "scale=1e+300") &&
        strstr(text, "scale=0.0,"));
  CHECK(strstr(text, "graph every-op\n") && strstr(text, "# m.cram:4294967295:0\n"));
  free(text);
  free(diag);
  ir_graph_free(h2);
  ir_graph_free(g);
}

/* Hand-written text: names out of order, comments, blank lines, CRLF, ints for floats. */
static void test_parse_lenient(void) {
  const char *text = "# a comment before the header\n"
                     "\n"
                     "graph \"my model\"\r\n"
                     "%10 = input {name=\"x\"} : f32[4,8]\n"
                     "   # indented comment\n"
                     "%3 = gelu %10 : f32[4,8]   # \"we\\\"ird\":1:2\n"
                     "%7 = layernorm   %3{eps=1}:f32[4,8]\n"
                     "\t%1 = add %7,%10 : f32[4,8]  # a:b:c.cram:9:3  \n"
                     "output y = %1\n"
                     "output \"z\" = %3";
  char *diag;
  Graph *g = parse_str(text, strlen(text), &diag, NULL);
  CHECK(g != NULL);
  if (!g) fprintf(stderr, "    %s", diag);
  if (g) {
    char *out = print_str(g);
    const char *want = "graph \"my model\"\n"
                       "%0 = input {name=\"x\"} : f32[4,8]\n"
                       "%1 = gelu %0 : f32[4,8]  # we\"ird:1:2\n"
                       "%2 = layernorm %1 {eps=1.0} : f32[4,8]\n"
                       "%3 = add %2, %0 : f32[4,8]  # a:b:c.cram:9:3\n"
                       "output y = %3\n"
                       "output z = %1\n";
    CHECK(!strcmp(out, want));
    if (strcmp(out, want)) fprintf(stderr, "    got:\n%s", out);
    CHECK(!strcmp(g->nodes[3].loc.file, "a:b:c.cram") && g->nodes[3].loc.line == 9 && g->nodes[3].loc.col == 3);
    CHECK(!strcmp(g->nodes[1].loc.file, "we\"ird"));
    free(out);
  }
  ir_graph_free(g);
  free(diag);
}

/* ---- malformed texts ------------------------------------------------------ */

typedef struct {
  const char *text;
  size_t len;       /* 0: strlen(text) */
  const char *want; /* must appear in the diagnostics */
} BadCase;

#define H "graph g\n%0 = input {name=\"x\"} : f32[4,8]\n"

static void test_parse_errors(void) {
  static const char nul_line[] = H "%1 = gelu %0\0 : f32[4,8]\n";
  static const char nul_str[] = H "%1 = input {name=\"a\0b\"} : f32[2]\n";
  static const BadCase cases[] = {
    { "", 0, "t.ir:1:1: error: expected 'graph NAME': the IR text has no content" },
    { "# only a comment\n\n", 0, "t.ir:1:1: error: expected 'graph NAME'" },
    { "%0 = input {name=\"x\"} : f32[4]\n", 0, "t.ir:1:1: error: expected 'graph NAME' before the first node" },
    { H "%1 = lyernorm %0 {eps=1e-5} : f32[4,8]\n", 0, "t.ir:3:6: error: unknown op 'lyernorm'" },
    { H "%1 = gelu %7 : f32[4,8]\n", 0, "t.ir:3:11: error: use of undefined value %7" },
    { H "%0 = gelu %0 : f32[4,8]\n", 0, "t.ir:3:1: error: redefinition of %0" },
    { H "%1 = gelu %0 : f32[4,9]\n", 0, "t.ir:3:16: error: type f32[4,9] does not match the inferred type f32[4,8]" },
    { H "%1 = gelu %0 : bf16[4,8]\n", 0, "t.ir:3:16: error: type bf16[4,8] does not match" },
    { H "%1 = param {name=\"w\", init=\"normal\", scale=0.02, decay=1} : f32[9,3]\n"
        "%2 = matmul %0, %1 {trans_a=0, trans_b=0} : f32[4,3]\n",
      0, "t.ir:4:6: error: matmul: inner dimensions differ: A is f32[4,8] (K=8), B is f32[9,3] (K=9)" },
    { H "%1 = gelu %0 {eps=1e-5} : f32[4,8]\n", 0, "t.ir:3:15: error: attribute 'eps' does not apply to 'gelu'" },
    { H "%1 = gelu %0 {epsilon=1e-5} : f32[4,8]\n", 0, "t.ir:3:15: error: unknown attribute 'epsilon'" },
    { H "%1 = layernorm %0 {eps=1e-5, eps=1e-5} : f32[4,8]\n", 0, "t.ir:3:30: error: attribute 'eps' is given twice" },
    { H "%1 = layernorm %0 : f32[4,8]\n", 0, "t.ir:3:6: error: layernorm: missing attribute 'eps'" },
    { H "%1 = layernorm %0, %0, %0, %0 {eps=1e-5} : f32[4,8]\n", 0,
      "t.ir:3:28: error: too many operands: 'layernorm' takes at most 3" },
    { H "%1 = add %0 : f32[4,8]\n", 0, "t.ir:3:6: error: add: expects 2 inputs, got 1" },
    { H "%1 = input %0 {name=\"y\"} : f32[4,8]\n", 0, "t.ir:3:12: error: 'input' takes no operands" },
    { H "%1 = input : f32[4,8]\n", 0, "t.ir:3:6: error: input: missing attribute 'name'" },
    { H "%1 = input {name=\"\"} : f32[4,8]\n", 0, "t.ir:3:6: error: input: name must not be empty" },
    { H "%1 = param {name=\"w\", init=\"uniform\", scale=0.02, decay=1} : f32[2]\n", 0,
      "init must be one of normal, zeros, ones, const" },
    { H "%1 = param {name=\"w\", init=\"zeros\", scale=0.0, decay=1} : i32[2]\n", 0,
      "t.ir:3:6: error: param: a parameter must be f32 or bf16" },
    { H "%1 = sinusoid : f32[2,3,4]\n", 0, "t.ir:3:6: error: sinusoid: must be a float [S,H] matrix, got f32[2,3,4]" },
    { H "%1 = input {name=\"abc} : f32[2]\n", 0, "t.ir:3:18: error: unterminated string" },
    { H "%1 = input {name=\"a\\qb\"} : f32[2]\n", 0, "t.ir:3:20: error: unknown escape '\\q' in string" },
    { H "%1 = input {name=\"a\\x00b\"} : f32[2]\n", 0, "t.ir:3:20: error: string contains a NUL byte" },
    { H "%1 = input {name=\"a\\x4\"} : f32[2]\n", 0, "t.ir:3:20: error: \\x needs two hex digits" },
    { nul_str, sizeof nul_str - 1, "t.ir:3:20: error: control character \\x00 in string" },
    { H "%1 = input {name=\"x\"} : f32[99999999999999999999]\n", 0,
      "t.ir:3:29: error: integer 99999999999999999999 is out of range" },
    { H "%1 = input {name=\"x\"} : f32[1048576,1048576,2]\n", 0,
      "t.ir:3:25: error: f32[1048576,1048576,2] has more than 2^40 elements" },
    { H "%1 = input {name=\"x\"} : f32[1,1,1,1,1,1,1]\n", 0, "t.ir:3:41: error: rank exceeds the maximum 6" },
    { H "%1 = input {name=\"x\"} : f32[4,0]\n", 0, "t.ir:3:31: error: dimension 0 must be >= 1" },
    { H "%1 = input {name=\"x\"} : f32[4,-2]\n", 0, "t.ir:3:31: error: dimension -2 must be >= 1" },
    { H "%1 = input {name=\"x\"} : f64[4]\n", 0, "t.ir:3:25: error: unknown dtype 'f64' (expected f32, bf16 or i32)" },
    { H "%1 = input {name=\"x\"} : f32[4\n", 0, "t.ir:3:30: error: expected ',' or ']' near end of line" },
    { H "%1 = input {name=", 0, "t.ir:3:18: error: attribute 'name' expects a string near end of line" },
    { H "%1 = gelu %0", 0, "t.ir:3:13: error: expected ':' and the result type near end of line" },
    { H "%1 =", 0, "t.ir:3:5: error: expected an op name near end of line" },
    { H "%1 gelu %0 : f32[4,8]\n", 0, "t.ir:3:4: error: expected '=' near 'gelu'" },
    { nul_line, sizeof nul_line - 1, "t.ir:3:13: error: expected ':' and the result type near '\\x00'" },
    { H "%1 = gelu %0 : f32[4,8] \xff\xfe\n", 0, "t.ir:3:25: error: unexpected '\\xff' after the type" },
    { H "\xc3\xa9t\xc3\xa9\n", 0, "t.ir:3:1: error: expected '%N = op ...', 'output NAME = %N' or 'graph NAME' near '\\xc3'" },
    { H "%99999999999 = gelu %0 : f32[4,8]\n", 0, "t.ir:3:1: error: value number '%99999999999' is too large" },
    { H "%x1 = gelu %0 : f32[4,8]\n", 0, "t.ir:3:1: error: malformed value name '%x1'" },
    { H "%1 = gelu %0 : f32[4,8]  # nowhere\n", 0, "t.ir:3:28: error: expected a source location 'file:line:col' after '#'" },
    { H "%1 = gelu %0 : f32[4,8]  # a.cram:x:3\n", 0, "t.ir:3:35: error: bad line number" },
    { H "%1 = gelu %0 : f32[4,8]  # a.cram:0:3\n", 0, "t.ir:3:35: error: bad line number" },
    { H "%1 = gelu %0 : f32[4,8]  # a.cram:7:99999999999\n", 0, "t.ir:3:37: error: bad column number" },
    { H "%1 = layernorm %0 {eps=1e} : f32[4,8]\n", 0, "t.ir:3:24: error: malformed number '1e'" },
    { H "%1 = layernorm %0 {eps=0x1p3} : f32[4,8]\n", 0, "t.ir:3:24: error: malformed number '0x1p3'" },
    { H "%1 = layernorm %0 {eps=1e999} : f32[4,8]\n", 0, "t.ir:3:24: error: float 1e999 is out of range" },
    { H "%1 = layernorm %0 {eps=\"small\"} : f32[4,8]\n", 0, "t.ir:3:24: error: attribute 'eps' expects a number near '\"'" },
    { H "%1 = layernorm %0 {eps=0} : f32[4,8]\n", 0, "t.ir:3:6: error: layernorm: eps=0 must be positive and finite" },
    { H "%1 = mean %0 {axis=1.5} : f32[4]\n", 0, "t.ir:3:20: error: attribute 'axis' expects an integer near '1.5'" },
    { H "%1 = reshape %0 {shape=32} : f32[32]\n", 0, "t.ir:3:24: error: attribute 'shape' expects a list like [2,3]" },
    { H "%1 = reshape %0 {shape=[32,]} : f32[32]\n", 0, "t.ir:3:28: error: expected an integer near ']'" },
    { H "%1 = reshape %0 {shape=[8,4} : f32[8,4]\n", 0, "t.ir:3:28: error: expected ',' or ']' near '}'" },
    { H "%1 = gelu %0 {} : f32[4,8]\noutput y = %1\noutput y = %0\n", 0, "t.ir:5:8: error: duplicate output name 'y'" },
    { H "output y = %5\n", 0, "t.ir:3:12: error: use of undefined value %5" },
    { H "output \"\" = %0\n", 0, "t.ir:3:8: error: output name must not be empty" },
    { H "output y = %0 %0\n", 0, "t.ir:3:15: error: unexpected '%0' after the output" },
    { H "graph h\n", 0, "t.ir:3:1: error: duplicate 'graph' line" },
    { "graph a b\n", 0, "t.ir:1:9: error: unexpected 'b' after the graph name" },
    { "graph\n", 0, "t.ir:1:6: error: expected a name near end of line" },
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const BadCase *c = &cases[i];
    char *diag;
    int nerr;
    Graph *g = parse_str(c->text, c->len ? c->len : strlen(c->text), &diag, &nerr);
    bool ok = !g && nerr >= 1 && strstr(diag, c->want);
    CHECK(ok);
    if (!ok) fprintf(stderr, "    case %zu: want \"%s\"\n    got (%d errors): %s\n", i, c->want, nerr, diag);
    ir_graph_free(g);
    free(diag);
  }
}

/* Several bad lines: each reported once, at its own line; uses of a value
 * whose line failed stay quiet instead of cascading. */
static void test_parse_many_errors(void) {
  const char *text = H "%1 = gelu %9 : f32[4,8]\n"      /* 3: undefined */
                       "%2 = gelu %1 : f32[4,8]\n"      /* 4: quiet: %1 is poisoned */
                       "%3 = relu %0 : f32[4,8] junk\n" /* 5: trailing junk */
                       "%4 = tanh %0 : f32[4,8]\n"      /* fine */
                       "%5 = bogus\n"                   /* 7: unknown op */
                       "output y = %2\n"                /* quiet */
                       "output z = %4\n";
  char *diag;
  int nerr;
  Graph *g = parse_str(text, strlen(text), &diag, &nerr);
  CHECK(!g && nerr == 3);
  CHECK(strstr(diag, "t.ir:3:11: error: use of undefined value %9") && strstr(diag, "t.ir:5:25: error: unexpected 'junk'") &&
        strstr(diag, "t.ir:7:6: error: unknown op 'bogus'"));
  if (nerr != 3) fprintf(stderr, "    %s", diag);
  free(diag);
}

/* Pathological sizes: long lines, deep brackets, many values. */
static void test_parse_stress(void) {
  size_t n = 200000;
  char *buf = malloc(n + 64);
  char *diag;
  int nerr;
  /* 1: a very long line of '%'; 2: 100k '['; 3: a huge operand list. */
  const char *heads[] = { "graph g\n", "graph g\n%0 = input {name=\"x\"} : f32", H "%1 = add " };
  const char fill[] = { '%', '[', ',' };
  for (int k = 0; k < 3; k++) {
    size_t hl = strlen(heads[k]);
    memcpy(buf, heads[k], hl);
    memset(buf + hl, fill[k], n);
    if (k == 2)
      for (size_t i = hl; i + 3 < hl + n; i += 4) memcpy(buf + i, "%0, ", 4);
    Graph *g = parse_str(buf, hl + n, &diag, &nerr);
    CHECK(!g && nerr >= 1);
    free(diag);
  }
  free(buf);

  /* 20k nodes in reverse %N order, then printed densely. */
  size_t cap = 2 * 1024 * 1024, len = 0;
  char *text = malloc(cap);
  len += (size_t)snprintf(text + len, cap - len, "graph big\n%%20000 = input {name=\"x\"} : f32[3]\n");
  for (int i = 19999; i >= 0; i--) len += (size_t)snprintf(text + len, cap - len, "%%%d = tanh %%%d : f32[3]\n", i, i + 1);
  len += (size_t)snprintf(text + len, cap - len, "output y = %%0\n");
  Graph *g = parse_str(text, len, &diag, &nerr);
  CHECK(g && g->n == 20001 && g->outputs[0].value == 20000);
  if (g) CHECK(round_trips(g));
  ir_graph_free(g);
  free(diag);
  free(text);
}

/* ---- fuzzing --------------------------------------------------------------- */

static uint64_t rng_state = 0x9E3779B97F4A7C15u;
static uint64_t rng(void) { /* xorshift64*: deterministic, so a failure reproduces */
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return rng_state * 2685821657736338717u;
}

/* Parses `text`; if it parses, its print must round-trip. Returns false on a violation. */
static bool fuzz_one(const char *text, size_t len) {
  char *diag;
  Graph *g = parse_str(text, len, &diag, NULL);
  bool ok = true;
  if (g) ok = round_trips(g);
  ir_graph_free(g);
  free(diag);
  return ok;
}

static void test_fuzz(void) {
  /* Seed corpus: the every-op graph's text. */
  Graph *seed = ir_graph_new("seed");
  ValueId x = input(seed, "x", DT_F32, 3, (int64_t[]){ 2, 4, 8 }, (SrcLoc){ "s.cram", 1, 2 });
  ValueId w = param(seed, "w", "normal", 0.02, 1, 2, (int64_t[]){ 8, 8 });
  ValueId y = node(seed, OP_MATMUL, 2, IN(x, w), ATTRS(ir_attr_int(ATTR_TRANS_A, 0), ir_attr_int(ATTR_TRANS_B, 1)), NOLOC);
  y = node(seed, OP_LAYERNORM, 1, IN(y), ATTRS(ir_attr_float(ATTR_EPS, 1e-12)), NOLOC);
  y = node(seed, OP_GLU, 1, IN(y), ATTRS(ir_attr_str(ATTR_ACT, "relu")), NOLOC);
  y = node(seed, OP_PERMUTE, 1, IN(y), ATTRS(ir_attr_ints(ATTR_PERM, (int64_t[]){ 2, 0, 1 }, 3)), NOLOC);
  ir_add_output(seed, "y", y);
  char *base = print_str(seed);
  size_t blen = strlen(base);
  ir_graph_free(seed);

  int bad = 0;
  /* Every truncation. */
  for (size_t cut = 0; cut <= blen; cut++) bad += !fuzz_one(base, cut);
  /* Random byte edits: flips, inserts of interesting bytes, deletions, line swaps. */
  static const char interesting[] = "%=,:{}[]\"\\#\n\r\t 0123456789-+.eE\x00\xff";
  char *buf = malloc(blen * 2 + 64);
  for (int iter = 0; iter < 20000; iter++) {
    memcpy(buf, base, blen);
    size_t len = blen;
    int edits = 1 + (int)(rng() % 4);
    for (int e = 0; e < edits && len; e++) {
      size_t at = rng() % len;
      switch (rng() % 4) {
      case 0: buf[at] = (char)rng(); break;
      case 1: buf[at] = interesting[rng() % (sizeof interesting - 1)]; break;
      case 2: memmove(buf + at, buf + at + 1, len - at - 1), len--; break;
      case 3:
        if (len < blen * 2) {
          memmove(buf + at + 1, buf + at, len - at);
          buf[at] = interesting[rng() % (sizeof interesting - 1)];
          len++;
        }
        break;
      }
    }
    if (!fuzz_one(buf, len)) {
      bad++;
      fprintf(stderr, "    fuzz iteration %d broke the round trip\n", iter);
    }
  }
  CHECK(bad == 0);
  free(buf);
  free(base);
}

int main(void) {
  test_print_golden();
  test_round_trip_every_op();
  test_parse_lenient();
  test_parse_errors();
  test_parse_many_errors();
  test_parse_stress();
  test_fuzz();
  printf("test_ir_text: %d passed, %d failed\n", n_pass, n_fail);
  return n_fail ? 1 : 0;
}
