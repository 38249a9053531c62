/* test_ir.c: unit tests for the IR core that do not involve the text form:
 * the op table, every shape rule (accepted and rejected inputs, including
 * overflow), the builder's arity and attribute checks, ir_verify on corrupted
 * graphs, and ir_node_flops. Diagnostics go to a memstream so each rejection
 * is checked by its message. Exit status is the number of failures (capped).
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L /* open_memstream */
#endif
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir.h"

#include "check.h"

/* ---- a graph plus a Diag that writes into memory ------------------------- */

typedef struct {
  Graph *g;
  Diag d;
  FILE *f;
  char *buf;
  size_t len;
} T;

static void t_open(T *t) {
  t->buf = NULL;
  t->len = 0;
  t->f = open_memstream(&t->buf, &t->len);
  diag_init(&t->d, t->f);
  t->d.max_errors = 0;
}

/* In place: the memstream keeps pointers to t->buf and t->len. */
static void t_init(T *t) {
  t->g = ir_graph_new("t");
  t_open(t);
}

static const char *t_diag(T *t) {
  fflush(t->f);
  return t->buf ? t->buf : "";
}

static void t_clear(T *t) {
  fclose(t->f);
  free(t->buf);
  t_open(t);
}

static void t_free(T *t) {
  fclose(t->f);
  free(t->buf);
  ir_graph_free(t->g);
}

static const SrcLoc NOLOC = { 0 };

/* An input with the given type: dims end at 0. */
static ValueId src(T *t, DType dt, int rank, const int64_t *dims) {
  Shape s = ir_shape_make(rank, dims);
  Attr a = ir_attr_str(ATTR_NAME, "x");
  return ir_add_source(t->g, OP_INPUT, dt, &s, &a, 1, NOLOC);
}
#define SRC(t, dt, ...) src(t, dt, (int)(sizeof((int64_t[]){ __VA_ARGS__ }) / sizeof(int64_t)), (int64_t[]){ __VA_ARGS__ })
static ValueId scalar(T *t, DType dt) { return src(t, dt, 0, NULL); }

static ValueId add(T *t, OpKind op, int nin, ValueId a, ValueId b, ValueId c, const Attr *at, int nat) {
  ValueId in[3] = { a, b, c };
  return ir_add(t->g, op, in, nin, at, nat, NOLOC, &t->d);
}

static const char *type_of(T *t, ValueId v) {
  static char buf[4][200]; /* test-only scratch: lets a CHECK compare two results */
  static int k;
  if (v == IR_NONE) return "<none>";
  const Node *n = ir_node(t->g, v);
  return ir_type_str(n->dtype, &n->shape, buf[k++ % 4], sizeof buf[0]);
}

/* The node was built with exactly this type. */
#define OK(t, v, want)                                                                     \
  do {                                                                                     \
    ValueId v_ = (v);                                                                      \
    CHECK(v_ != IR_NONE && !strcmp(type_of(t, v_), want));                                 \
    if (v_ == IR_NONE || strcmp(type_of(t, v_), want))                                     \
      fprintf(stderr, "    want %s, got %s; diag: %s\n", want, type_of(t, v_), t_diag(t)); \
    t_clear(t);                                                                            \
  } while (0)

/* The node was rejected with a message containing `sub`. */
#define BAD(t, v, sub)                                                                \
  do {                                                                                \
    ValueId v_ = (v);                                                                 \
    CHECK(v_ == IR_NONE && strstr(t_diag(t), sub));                                   \
    if (v_ != IR_NONE || !strstr(t_diag(t), sub))                                     \
      fprintf(stderr, "    want error containing \"%s\", got: %s\n", sub, t_diag(t)); \
    t_clear(t);                                                                       \
  } while (0)

/* ---- tests --------------------------------------------------------------- */

static void test_tables(void) {
  for (int k = 0; k < OP_COUNT; k++) {
    const OpInfo *o = &ir_ops[k];
    OpKind back;
    CHECK(o->name && ir_op_parse(o->name, strlen(o->name), &back) && back == (OpKind)k);
    CHECK(o->min_in <= o->max_in && o->max_in <= IR_MAX_IN);
    CHECK((o->shape == NULL) == (o->cls == OC_SOURCE));
    CHECK(__builtin_popcount(o->attrs) <= IR_MAX_ATTRS);
    CHECK(o->attrs < (1u << ATTR_COUNT));
  }
  OpKind k;
  CHECK(!ir_op_parse("layer", 5, &k));
  CHECK(!ir_op_parse("layernormx", 10, &k));
  CHECK(ir_op_parse("layernormx", 9, &k) && k == OP_LAYERNORM);
  for (int a = 0; a < ATTR_COUNT; a++) CHECK(ir_attrs[a].name && ir_attrs[a].kind <= AK_INTS);
  CHECK(!strcmp(ir_attrs[ATTR_SHAPE].name, "shape") && ir_attrs[ATTR_SHAPE].kind == AK_INTS);
  DType t;
  CHECK(ir_dtype_parse("bf16", 4, &t) && t == DT_BF16);
  CHECK(ir_dtype_parse("i32", 3, &t) && t == DT_I32);
  CHECK(!ir_dtype_parse("f64", 3, &t) && !ir_dtype_parse("f3", 2, &t));
  CHECK(!strcmp(ir_dtype_name(DT_F32), "f32") && !strcmp(ir_dtype_name((DType)99), "?"));
  CHECK(ir_dtype_size(DT_F32) == 4 && ir_dtype_size(DT_BF16) == 2 && ir_dtype_size(DT_I32) == 4);
}

static void test_shape_helpers(void) {
  char buf[64];
  Shape s0 = ir_shape_make(0, NULL);
  CHECK(!strcmp(ir_type_str(DT_F32, &s0, buf, sizeof buf), "f32[]"));
  CHECK(ir_shape_numel(&s0) == 1);
  Shape s = ir_shape_make(3, (int64_t[]){ 8, 128, 64 });
  CHECK(!strcmp(ir_type_str(DT_I32, &s, buf, sizeof buf), "i32[8,128,64]"));
  CHECK(ir_shape_numel(&s) == 8 * 128 * 64);
  CHECK(!strcmp(ir_type_str(DT_BF16, &s, buf, 6), "bf16[")); /* truncates safely */
  CHECK(ir_type_str(DT_BF16, &s, buf, 0) == buf);
  Shape s2 = ir_shape_make(3, (int64_t[]){ 8, 128, 65 });
  CHECK(ir_shape_eq(&s, &s) && !ir_shape_eq(&s, &s2) && !ir_shape_eq(&s, &s0));
  Shape big = ir_shape_make(3, (int64_t[]){ INT64_C(1) << 40, 2, INT64_MAX });
  CHECK(ir_shape_numel(&big) == -1); /* overflow, not wraparound */
  Shape edge = ir_shape_make(2, (int64_t[]){ INT64_C(1) << 20, INT64_C(1) << 20 });
  CHECK(ir_shape_numel(&edge) == INT64_C(1) << 40);
  edge.dim[1]++;
  CHECK(ir_shape_numel(&edge) == -1);
  Shape zero = ir_shape_make(2, (int64_t[]){ 3, 0 });
  CHECK(ir_shape_numel(&zero) == -1);
}

static void test_embedding_gathers(void) {
  T t;
  t_init(&t);
  ValueId table = SRC(&t, DT_F32, 512, 64), ids = SRC(&t, DT_I32, 8, 128), ftab = SRC(&t, DT_F32, 8, 128);
  ValueId x = SRC(&t, DT_F32, 8, 128, 64), tg = SRC(&t, DT_I32, 8, 128);
  OK(&t, add(&t, OP_EMBEDDING, 2, table, ids, 0, NULL, 0), "f32[8,128,64]");
  OK(&t, add(&t, OP_EMBEDDING, 2, table, scalar(&t, DT_I32), 0, NULL, 0), "f32[64]");
  BAD(&t, add(&t, OP_EMBEDDING, 2, table, ftab, 0, NULL, 0), "embedding: ids must be i32, got f32[8,128]");
  BAD(&t, add(&t, OP_EMBEDDING, 2, ids, ids, 0, NULL, 0), "table must be f32 or bf16, got i32[8,128]");
  BAD(&t, add(&t, OP_EMBEDDING, 2, x, ids, 0, NULL, 0), "table must be a [V,H] matrix, got f32[8,128,64]");
  BAD(&t, add(&t, OP_EMBEDDING, 2, table, SRC(&t, DT_I32, 1, 2, 3, 4, 5, 6), 0, NULL, 0), "the result would exceed rank 6");
  Attr c20 = ir_attr_int(ATTR_SLOTS, 20);
  OK(&t, add(&t, OP_MASKED_ROWS, 2, x, tg, 0, &c20, 1), "f32[160,64]");
  OK(&t, add(&t, OP_MASKED_TARGETS, 1, tg, 0, 0, &c20, 1), "i32[160]");
  Attr c0 = ir_attr_int(ATTR_SLOTS, 0), c129 = ir_attr_int(ATTR_SLOTS, 129), c128 = ir_attr_int(ATTR_SLOTS, 128);
  OK(&t, add(&t, OP_MASKED_ROWS, 2, x, tg, 0, &c128, 1), "f32[1024,64]");
  BAD(&t, add(&t, OP_MASKED_ROWS, 2, x, tg, 0, &c0, 1), "masked_rows: slots=0 must be in 1..128");
  BAD(&t, add(&t, OP_MASKED_ROWS, 2, x, tg, 0, &c129, 1), "slots=129 must be in 1..128");
  BAD(&t, add(&t, OP_MASKED_ROWS, 2, x, SRC(&t, DT_I32, 8, 64), 0, &c20, 1),
      "targets i32[8,64] do not match x f32[8,128,64] in [B,S]");
  BAD(&t, add(&t, OP_MASKED_ROWS, 2, x, ftab, 0, &c20, 1), "targets must be i32[B,S], got f32[8,128]");
  BAD(&t, add(&t, OP_MASKED_ROWS, 2, ftab, tg, 0, &c20, 1), "x must be [B,S,H], got f32[8,128]");
  BAD(&t, add(&t, OP_MASKED_ROWS, 2, SRC(&t, DT_I32, 8, 128, 4), tg, 0, &c20, 1), "x must be f32 or bf16");
  BAD(&t, add(&t, OP_MASKED_TARGETS, 1, tg, 0, 0, &c129, 1), "masked_targets: slots=129");
  BAD(&t, add(&t, OP_MASKED_TARGETS, 1, ids, 0, 0, NULL, 0), "masked_targets: missing attribute 'slots'");
  BAD(&t, add(&t, OP_MASKED_TARGETS, 1, SRC(&t, DT_I32, 8), 0, 0, &c20, 1), "targets must be i32[B,S], got i32[8]");
  t_free(&t);
}

static void test_matmul(void) {
  T t;
  t_init(&t);
  Attr nn[2] = { ir_attr_int(ATTR_TRANS_A, 0), ir_attr_int(ATTR_TRANS_B, 0) };
  Attr nt[2] = { ir_attr_int(ATTR_TRANS_A, 0), ir_attr_int(ATTR_TRANS_B, 1) };
  Attr tn[2] = { ir_attr_int(ATTR_TRANS_A, 1), ir_attr_int(ATTR_TRANS_B, 0) };
  Attr bad2[2] = { ir_attr_int(ATTR_TRANS_A, 2), ir_attr_int(ATTR_TRANS_B, 0) };
  ValueId a = SRC(&t, DT_F32, 8, 128, 64), w = SRC(&t, DT_F32, 64, 192), wt = SRC(&t, DT_F32, 192, 64);
  OK(&t, add(&t, OP_MATMUL, 2, a, w, 0, nn, 2), "f32[8,128,192]");
  OK(&t, add(&t, OP_MATMUL, 2, a, wt, 0, nt, 2), "f32[8,128,192]");
  BAD(&t, add(&t, OP_MATMUL, 2, a, SRC(&t, DT_F32, 192, 32), 0, nt, 2),
      "matmul: inner dimensions differ: A is f32[8,128,64] (K=64), B^T is f32[192,32] (K=32)");
  BAD(&t, add(&t, OP_MATMUL, 2, a, wt, 0, nn, 2), "inner dimensions differ: A is f32[8,128,64] (K=64), B is f32[192,64] (K=192)");
  ValueId q = SRC(&t, DT_F32, 8, 12, 128, 64), k = SRC(&t, DT_F32, 8, 12, 128, 64);
  OK(&t, add(&t, OP_MATMUL, 2, q, k, 0, nt, 2), "f32[8,12,128,128]");
  OK(&t, add(&t, OP_MATMUL, 2, q, k, 0, tn, 2), "f32[8,12,64,64]");
  BAD(&t, add(&t, OP_MATMUL, 2, q, SRC(&t, DT_F32, 8, 6, 64, 128), 0, nn, 2),
      "batch dimensions differ: A is f32[8,12,128,64], B is f32[8,6,64,128]");
  BAD(&t, add(&t, OP_MATMUL, 2, q, SRC(&t, DT_F32, 12, 64, 128), 0, nn, 2),
      "B must have rank 2 or the rank of A (4), got f32[12,64,128]");
  BAD(&t, add(&t, OP_MATMUL, 2, SRC(&t, DT_F32, 64), w, 0, nn, 2), "A must have rank >= 2, got f32[64]");
  BAD(&t, add(&t, OP_MATMUL, 2, a, SRC(&t, DT_BF16, 64, 192), 0, nn, 2),
      "operands differ in dtype: A is f32[8,128,64], B is bf16[64,192]");
  BAD(&t, add(&t, OP_MATMUL, 2, SRC(&t, DT_I32, 2, 2), SRC(&t, DT_I32, 2, 2), 0, nn, 2), "A must be f32 or bf16");
  BAD(&t, add(&t, OP_MATMUL, 2, a, w, 0, bad2, 2), "trans_a=2 must be 0 or 1");
  BAD(&t, add(&t, OP_MATMUL, 2, a, w, 0, nn, 1), "missing attribute 'trans_b'");
  /* [2^39,2] @ [2,2^39] has 2^78 elements: rejected, not wrapped. */
  int64_t h = INT64_C(1) << 39;
  BAD(&t, add(&t, OP_MATMUL, 2, SRC(&t, DT_F32, h, 2), SRC(&t, DT_F32, 2, h), 0, nn, 2),
      "result: f32[549755813888,549755813888] has more than 2^40 elements");
  OK(&t, add(&t, OP_MATMUL, 2, SRC(&t, DT_BF16, 4, 3), SRC(&t, DT_BF16, 3, 5), 0, nn, 2), "bf16[4,5]");
  t_free(&t);
}

static void test_elementwise(void) {
  T t;
  t_init(&t);
  ValueId x = SRC(&t, DT_F32, 8, 128, 64), b = SRC(&t, DT_F32, 64);
  OK(&t, add(&t, OP_ADD, 2, x, b, 0, NULL, 0), "f32[8,128,64]");
  OK(&t, add(&t, OP_MUL, 2, b, x, 0, NULL, 0), "f32[8,128,64]");
  OK(&t, add(&t, OP_ADD, 2, SRC(&t, DT_F32, 8, 1, 64), SRC(&t, DT_F32, 1, 128, 1), 0, NULL, 0), "f32[8,128,64]");
  OK(&t, add(&t, OP_ADD, 2, scalar(&t, DT_F32), SRC(&t, DT_F32, 3), 0, NULL, 0), "f32[3]");
  OK(&t, add(&t, OP_ADD, 2, scalar(&t, DT_BF16), scalar(&t, DT_BF16), 0, NULL, 0), "bf16[]");
  BAD(&t, add(&t, OP_ADD, 2, SRC(&t, DT_F32, 8, 3), SRC(&t, DT_F32, 4), 0, NULL, 0),
      "add: cannot broadcast f32[8,3] with f32[4]: axis -1 is 3 vs 4");
  BAD(&t, add(&t, OP_MUL, 2, SRC(&t, DT_F32, 2, 8, 3), SRC(&t, DT_F32, 4, 3), 0, NULL, 0), "axis -2 is 8 vs 4");
  BAD(&t, add(&t, OP_ADD, 2, x, SRC(&t, DT_BF16, 64), 0, NULL, 0), "operands differ in dtype: f32[8,128,64] vs bf16[64]");
  BAD(&t, add(&t, OP_ADD, 2, SRC(&t, DT_I32, 2), SRC(&t, DT_I32, 2), 0, NULL, 0), "lhs must be f32 or bf16, got i32[2]");
  int64_t m = INT64_C(1) << 30;
  BAD(&t, add(&t, OP_ADD, 2, SRC(&t, DT_F32, m, 1), SRC(&t, DT_F32, 1, m), 0, NULL, 0), "has more than 2^40 elements");
  BAD(&t, add(&t, OP_ADD, 1, x, 0, 0, NULL, 0), "add: expects 2 inputs, got 1");

  Attr half = ir_attr_float(ATTR_ALPHA, 0.5), inf = ir_attr_float(ATTR_ALPHA, INFINITY);
  OK(&t, add(&t, OP_SCALE, 1, x, 0, 0, &half, 1), "f32[8,128,64]");
  BAD(&t, add(&t, OP_SCALE, 1, x, 0, 0, &inf, 1), "scale: alpha=inf must be finite");
  OK(&t, add(&t, OP_GELU, 1, x, 0, 0, NULL, 0), "f32[8,128,64]");
  OK(&t, add(&t, OP_RELU, 1, b, 0, 0, NULL, 0), "f32[64]");
  OK(&t, add(&t, OP_TANH, 1, scalar(&t, DT_BF16), 0, 0, NULL, 0), "bf16[]");
  BAD(&t, add(&t, OP_GELU, 1, SRC(&t, DT_I32, 4), 0, 0, NULL, 0), "gelu: x must be f32 or bf16, got i32[4]");
  Attr key = ir_attr_int(ATTR_KEY, 7);
  Attr p0[2] = { ir_attr_float(ATTR_P, 0.1), key }, p1[2] = { ir_attr_float(ATTR_P, 1.0), key },
       pn[2] = { ir_attr_float(ATTR_P, NAN), key }, pm[2] = { ir_attr_float(ATTR_P, -0.1), key };
  OK(&t, add(&t, OP_DROPOUT, 1, x, 0, 0, p0, 2), "f32[8,128,64]");
  BAD(&t, add(&t, OP_DROPOUT, 1, x, 0, 0, p1, 2), "dropout: p=1 must be in [0, 1)");
  BAD(&t, add(&t, OP_DROPOUT, 1, x, 0, 0, pn, 2), "must be in [0, 1)");
  BAD(&t, add(&t, OP_DROPOUT, 1, x, 0, 0, pm, 2), "must be in [0, 1)");
  OK(&t, add(&t, OP_SOFTMAX, 1, x, 0, 0, NULL, 0), "f32[8,128,64]");
  BAD(&t, add(&t, OP_SOFTMAX, 1, scalar(&t, DT_F32), 0, 0, NULL, 0), "softmax: x must have rank >= 1, got f32[]");

  Attr gelu = ir_attr_str(ATTR_ACT, "gelu"), swish = ir_attr_str(ATTR_ACT, "swish\n");
  OK(&t, add(&t, OP_GLU, 1, SRC(&t, DT_F32, 8, 128, 6144), 0, 0, &gelu, 1), "f32[8,128,3072]");
  BAD(&t, add(&t, OP_GLU, 1, SRC(&t, DT_F32, 8, 7), 0, 0, &gelu, 1), "glu: last axis of f32[8,7] is odd (7)");
  BAD(&t, add(&t, OP_GLU, 1, scalar(&t, DT_F32), 0, 0, &gelu, 1), "x must have rank >= 1");
  BAD(&t, add(&t, OP_GLU, 1, x, 0, 0, &swish, 1), "act=\"swish\\x0a\" is not one of gelu, relu, sigmoid, none");

  Attr tb = ir_attr_str(ATTR_TO, "bf16"), tf = ir_attr_str(ATTR_TO, "f32"), ti = ir_attr_str(ATTR_TO, "i32");
  OK(&t, add(&t, OP_CAST, 1, x, 0, 0, &tb, 1), "bf16[8,128,64]");
  OK(&t, add(&t, OP_CAST, 1, SRC(&t, DT_BF16, 4), 0, 0, &tf, 1), "f32[4]");
  OK(&t, add(&t, OP_CAST, 1, b, 0, 0, &tf, 1), "f32[64]");
  BAD(&t, add(&t, OP_CAST, 1, x, 0, 0, &ti, 1), "cast: to=\"i32\" is not one of f32, bf16");
  BAD(&t, add(&t, OP_CAST, 1, SRC(&t, DT_I32, 4), 0, 0, &tb, 1), "cast: x must be f32 or bf16, got i32[4]");
  BAD(&t, add(&t, OP_CAST, 1, x, 0, 0, NULL, 0), "missing attribute 'to'");
  t_free(&t);
}

static void test_norm_reduce_loss(void) {
  T t;
  t_init(&t);
  ValueId x = SRC(&t, DT_F32, 8, 128, 64), w = SRC(&t, DT_F32, 64), w32 = SRC(&t, DT_F32, 32);
  Attr eps = ir_attr_float(ATTR_EPS, 1e-12), eps0 = ir_attr_float(ATTR_EPS, 0), epsn = ir_attr_float(ATTR_EPS, NAN);
  OK(&t, add(&t, OP_LAYERNORM, 1, x, 0, 0, &eps, 1), "f32[8,128,64]");
  OK(&t, add(&t, OP_LAYERNORM, 3, x, w, w, &eps, 1), "f32[8,128,64]");
  OK(&t, add(&t, OP_RMSNORM, 2, x, w, 0, &eps, 1), "f32[8,128,64]");
  BAD(&t, add(&t, OP_LAYERNORM, 2, x, w32, 0, &eps, 1),
      "layernorm: weight must be f32[64] (the last axis of x f32[8,128,64]), got f32[32]");
  BAD(&t, add(&t, OP_LAYERNORM, 3, x, w, SRC(&t, DT_BF16, 64), &eps, 1), "bias must be f32[64]");
  BAD(&t, add(&t, OP_LAYERNORM, 2, x, SRC(&t, DT_F32, 1, 64), 0, &eps, 1), "got f32[1,64]");
  BAD(&t, add(&t, OP_LAYERNORM, 1, x, 0, 0, &eps0, 1), "layernorm: eps=0 must be positive and finite");
  BAD(&t, add(&t, OP_LAYERNORM, 1, x, 0, 0, &epsn, 1), "must be positive and finite");
  BAD(&t, add(&t, OP_LAYERNORM, 1, x, 0, 0, NULL, 0), "layernorm: missing attribute 'eps'");
  BAD(&t, add(&t, OP_RMSNORM, 3, x, w, w, &eps, 1), "rmsnorm: expects 1 to 2 inputs, got 3");
  BAD(&t, add(&t, OP_LAYERNORM, 0, 0, 0, 0, &eps, 1), "layernorm: expects 1 to 3 inputs, got 0");
  BAD(&t, add(&t, OP_LAYERNORM, 1, scalar(&t, DT_F32), 0, 0, &eps, 1), "x must have rank >= 1");

  Attr ax1 = ir_attr_int(ATTR_AXIS, 1), ax0 = ir_attr_int(ATTR_AXIS, 0), ax3 = ir_attr_int(ATTR_AXIS, 3),
       axm = ir_attr_int(ATTR_AXIS, -1);
  OK(&t, add(&t, OP_MEAN, 1, x, 0, 0, &ax1, 1), "f32[8,64]");
  OK(&t, add(&t, OP_MEAN, 1, w, 0, 0, &ax0, 1), "f32[]");
  BAD(&t, add(&t, OP_MEAN, 1, x, 0, 0, &ax3, 1), "mean: axis=3 is out of range for f32[8,128,64] (rank 3)");
  BAD(&t, add(&t, OP_MEAN, 1, x, 0, 0, &axm, 1), "axis=-1 is out of range");
  BAD(&t, add(&t, OP_MEAN, 1, scalar(&t, DT_F32), 0, 0, &ax0, 1), "axis=0 is out of range for f32[] (rank 0)");

  ValueId logits = SRC(&t, DT_F32, 160, 32768), tg = SRC(&t, DT_I32, 160);
  Attr ig = ir_attr_int(ATTR_IGNORE, -100), igbig = ir_attr_int(ATTR_IGNORE, INT64_C(1) << 40);
  OK(&t, add(&t, OP_CROSS_ENTROPY, 2, logits, tg, 0, &ig, 1), "f32[]");
  OK(&t, add(&t, OP_CROSS_ENTROPY, 2, SRC(&t, DT_BF16, 160, 32768), tg, 0, &ig, 1), "f32[]");
  BAD(&t, add(&t, OP_CROSS_ENTROPY, 2, logits, SRC(&t, DT_I32, 161), 0, &ig, 1),
      "cross_entropy: targets must be i32[160] (N of logits f32[160,32768]), got i32[161]");
  BAD(&t, add(&t, OP_CROSS_ENTROPY, 2, logits, SRC(&t, DT_F32, 160), 0, &ig, 1), "got f32[160]");
  BAD(&t, add(&t, OP_CROSS_ENTROPY, 2, x, tg, 0, &ig, 1), "logits must be [N,V], got f32[8,128,64]");
  BAD(&t, add(&t, OP_CROSS_ENTROPY, 2, logits, tg, 0, &igbig, 1), "ignore=1099511627776 is outside the i32 range");
  t_free(&t);
}

static void test_views(void) {
  T t;
  t_init(&t);
  ValueId x = SRC(&t, DT_F32, 8, 128, 64);
  int64_t sh[] = { 1024, 64 }, sh_bad[] = { 1000, 64 }, sh_zero[] = { 1024, 0, 64 }, sh7[] = { 1, 1, 1, 1, 1, 1, 1 };
  int64_t sh_huge[] = { INT64_C(1) << 40, INT64_C(1) << 40 }, sh_neg[] = { -1024, -64 };
  Attr r = ir_attr_ints(ATTR_SHAPE, sh, 2);
  OK(&t, add(&t, OP_RESHAPE, 1, x, 0, 0, &r, 1), "f32[1024,64]");
  r = ir_attr_ints(ATTR_SHAPE, sh_bad, 2);
  BAD(&t, add(&t, OP_RESHAPE, 1, x, 0, 0, &r, 1), "reshape: shape f32[1000,64] has 64000 elements but x f32[8,128,64] has 65536");
  r = ir_attr_ints(ATTR_SHAPE, sh_zero, 3);
  BAD(&t, add(&t, OP_RESHAPE, 1, x, 0, 0, &r, 1), "shape[1]=0 must be >= 1");
  r = ir_attr_ints(ATTR_SHAPE, sh_neg, 2); /* (-1024)*(-64) has the right count: still rejected */
  BAD(&t, add(&t, OP_RESHAPE, 1, x, 0, 0, &r, 1), "shape[0]=-1024 must be >= 1");
  r = ir_attr_ints(ATTR_SHAPE, sh7, 7);
  BAD(&t, add(&t, OP_RESHAPE, 1, x, 0, 0, &r, 1), "shape has 7 dims; the maximum rank is 6");
  r = ir_attr_ints(ATTR_SHAPE, sh_huge, 2);
  BAD(&t, add(&t, OP_RESHAPE, 1, x, 0, 0, &r, 1), "has more than 2^40 elements");
  r = ir_attr_ints(ATTR_SHAPE, NULL, 0);
  OK(&t, add(&t, OP_RESHAPE, 1, SRC(&t, DT_I32, 1, 1), 0, 0, &r, 1), "i32[]");
  r = ir_attr_ints(ATTR_SHAPE, NULL, 2);
  BAD(&t, add(&t, OP_RESHAPE, 1, x, 0, 0, &r, 1), "attribute 'shape' has no value");

  ValueId h = SRC(&t, DT_F32, 8, 128, 12, 64);
  int64_t p[] = { 0, 2, 1, 3 }, prep[] = { 0, 0, 1, 2 }, pout[] = { 0, 1, 2, 4 }, pneg[] = { 0, -1, 2, 3 };
  Attr pa = ir_attr_ints(ATTR_PERM, p, 4);
  OK(&t, add(&t, OP_PERMUTE, 1, h, 0, 0, &pa, 1), "f32[8,12,128,64]");
  pa = ir_attr_ints(ATTR_PERM, prep, 4);
  BAD(&t, add(&t, OP_PERMUTE, 1, h, 0, 0, &pa, 1), "permute: perm[1]=0 repeats an axis");
  pa = ir_attr_ints(ATTR_PERM, pout, 4);
  BAD(&t, add(&t, OP_PERMUTE, 1, h, 0, 0, &pa, 1), "perm[3]=4 is out of range 0..3");
  pa = ir_attr_ints(ATTR_PERM, pneg, 4);
  BAD(&t, add(&t, OP_PERMUTE, 1, h, 0, 0, &pa, 1), "perm[1]=-1 is out of range 0..3");
  pa = ir_attr_ints(ATTR_PERM, p, 3);
  BAD(&t, add(&t, OP_PERMUTE, 1, h, 0, 0, &pa, 1), "perm has 3 entries but x f32[8,128,12,64] has rank 4");

  ValueId qkv = SRC(&t, DT_F32, 8, 128, 192);
#define SLICE(ax, st, ln) (Attr[]){ ir_attr_int(ATTR_AXIS, ax), ir_attr_int(ATTR_START, st), ir_attr_int(ATTR_LEN, ln) }
  OK(&t, add(&t, OP_SLICE, 1, qkv, 0, 0, SLICE(2, 64, 64), 3), "f32[8,128,64]");
  OK(&t, add(&t, OP_SLICE, 1, qkv, 0, 0, SLICE(0, 7, 1), 3), "f32[1,128,192]");
  BAD(&t, add(&t, OP_SLICE, 1, qkv, 0, 0, SLICE(2, 160, 64), 3),
      "slice: start=160 + len=64 exceeds axis 2 of f32[8,128,192] (size 192)");
  BAD(&t, add(&t, OP_SLICE, 1, qkv, 0, 0, SLICE(2, -1, 64), 3), "start=-1 must be >= 0");
  BAD(&t, add(&t, OP_SLICE, 1, qkv, 0, 0, SLICE(2, 0, 0), 3), "len=0 must be >= 1");
  BAD(&t, add(&t, OP_SLICE, 1, qkv, 0, 0, SLICE(3, 0, 1), 3), "axis=3 is out of range");
  BAD(&t, add(&t, OP_SLICE, 1, qkv, 0, 0, SLICE(2, INT64_MAX, 1), 3), "exceeds axis 2");
  BAD(&t, add(&t, OP_SLICE, 1, qkv, 0, 0, SLICE(2, 1, INT64_MAX), 3), "exceeds axis 2");
  BAD(&t, add(&t, OP_SLICE, 1, qkv, 0, 0, SLICE(INT64_MIN, 0, 1), 3), "is out of range");
  t_free(&t);
}

static void test_builder(void) {
  T t;
  t_init(&t);
  ValueId x = SRC(&t, DT_F32, 8, 192);
  /* Attributes given in any order are stored sorted by AttrId. */
  Attr rev[3] = { ir_attr_int(ATTR_LEN, 64), ir_attr_int(ATTR_START, 0), ir_attr_int(ATTR_AXIS, 1) };
  ValueId s = add(&t, OP_SLICE, 1, x, 0, 0, rev, 3);
  CHECK(s != IR_NONE);
  const Node *n = ir_node(t.g, s);
  CHECK(n->nattr == 3 && n->attr[0].id == ATTR_AXIS && n->attr[1].id == ATTR_START && n->attr[2].id == ATTR_LEN);
  CHECK(ir_get_int(n, ATTR_LEN) == 64 && ir_get_int(n, ATTR_AXIS) == 1 && ir_attr(n, ATTR_EPS) == NULL);
  /* Strings and arrays are copied: the caller's buffers may change afterwards. */
  char act[8] = "relu";
  int64_t shp[2] = { 4, 384 };
  Attr aa = ir_attr_str(ATTR_ACT, act), sa = ir_attr_ints(ATTR_SHAPE, shp, 2);
  ValueId gl = add(&t, OP_GLU, 1, x, 0, 0, &aa, 1), rs = add(&t, OP_RESHAPE, 1, x, 0, 0, &sa, 1);
  strcpy(act, "xxxx");
  shp[0] = 99;
  CHECK(gl != IR_NONE && !strcmp(ir_get_str(ir_node(t.g, gl), ATTR_ACT), "relu"));
  CHECK(rs != IR_NONE && ir_attr(ir_node(t.g, rs), ATTR_SHAPE)->u.ints.v[0] == 4);
  t_clear(&t);

  Attr dup[3] = { ir_attr_int(ATTR_AXIS, 1), ir_attr_int(ATTR_START, 0), ir_attr_int(ATTR_AXIS, 1) };
  BAD(&t, add(&t, OP_SLICE, 1, x, 0, 0, dup, 3), "slice: attribute 'axis' is given twice");
  Attr extra = ir_attr_float(ATTR_EPS, 1e-5);
  BAD(&t, add(&t, OP_GELU, 1, x, 0, 0, &extra, 1), "gelu: unexpected attribute 'eps'");
  Attr unknown = { .id = ATTR_COUNT }; /* the sentinel: no such attribute */
  BAD(&t, add(&t, OP_GELU, 1, x, 0, 0, &unknown, 1), "unknown attribute id");
  Attr nulls = ir_attr_str(ATTR_ACT, NULL);
  BAD(&t, add(&t, OP_GLU, 1, x, 0, 0, &nulls, 1), "glu: attribute 'act' has no value");
  BAD(&t, add(&t, OP_GELU, 1, 12345, 0, 0, NULL, 0), "gelu: input 0 is %12345, which is not defined (the graph has");
  BAD(&t, add(&t, OP_GELU, 1, IR_NONE, 0, 0, NULL, 0), "input 0 is IR_NONE");
  BAD(&t, add(&t, OP_INPUT, 0, 0, 0, 0, NULL, 0), "input: is a source op");
  BAD(&t, add(&t, OP_COUNT, 1, x, 0, 0, NULL, 0), "is not in ops.def");
  BAD(&t, add(&t, OP_GELU, -1, x, 0, 0, NULL, 0), "gelu: expects 1 inputs, got -1");
  BAD(&t, ir_add(t.g, OP_GELU, NULL, 1, NULL, 0, NOLOC, &t.d), "gelu: the input array is NULL");
  BAD(&t, ir_add(t.g, OP_GELU, &x, 1, NULL, -1, NOLOC, &t.d), "invalid attribute list");
  CHECK(ir_add(t.g, OP_GELU, &x, 2, NULL, 0, NOLOC, NULL) == IR_NONE); /* no Diag: still no crash */
  /* The error is reported at the builder's SrcLoc. */
  SrcLoc loc = { "m.cram", 7, 5 };
  CHECK(ir_add(t.g, OP_GELU, &x, 2, NULL, 0, loc, &t.d) == IR_NONE);
  CHECK(strstr(t_diag(&t), "m.cram:7:5: error: gelu: expects 1 inputs, got 2") != NULL);
  t_clear(&t);

  /* Sources and outputs. */
  Attr pa[4] = { ir_attr_str(ATTR_NAME, "w"), ir_attr_str(ATTR_INIT, "normal"), ir_attr_float(ATTR_SCALE, 0.02),
                 ir_attr_int(ATTR_DECAY, 1) };
  Shape ws = ir_shape_make(2, (int64_t[]){ 64, 64 });
  ValueId w = ir_add_source(t.g, OP_PARAM, DT_F32, &ws, pa, 4, NOLOC);
  CHECK(!strcmp(ir_get_str(ir_node(t.g, w), ATTR_NAME), "w") && ir_get_float(ir_node(t.g, w), ATTR_SCALE) == 0.02);
  Shape pe = ir_shape_make(2, (int64_t[]){ 128, 64 });
  ValueId sn = ir_add_source(t.g, OP_SINUSOID, DT_F32, &pe, NULL, 0, NOLOC);
  CHECK(ir_node(t.g, sn)->op == OP_SINUSOID && ir_node(t.g, sn)->nattr == 0);
  for (int i = 0; i < 40; i++) ir_add_output(t.g, i % 2 ? "a" : "b", w); /* outputs grow by doubling */
  CHECK(t.g->nout == 40 && t.g->outputs[39].value == w && !strcmp(t.g->outputs[39].name, "a"));
  /* Many nodes: the node array grows by doubling and keeps earlier nodes. */
  ValueId v = x;
  for (int i = 0; i < 1000; i++) v = add(&t, OP_GELU, 1, v, 0, 0, NULL, 0);
  CHECK(v != IR_NONE && ir_node(t.g, v)->in[0] == v - 1 && t.g->n >= 1000 && t.g->cap >= t.g->n);
  CHECK(!strcmp(ir_get_str(ir_node(t.g, w), ATTR_NAME), "w"));
  t_free(&t);
}

/* Builds a small valid graph for ir_verify to start from. */
static void verify_base(T *t) {
  t_init(t);
  ValueId x = SRC(t, DT_F32, 4, 8), w = SRC(t, DT_F32, 8, 16);
  Attr nn[2] = { ir_attr_int(ATTR_TRANS_A, 0), ir_attr_int(ATTR_TRANS_B, 0) };
  ValueId y = add(t, OP_MATMUL, 2, x, w, 0, nn, 2);
  Attr r = ir_attr_ints(ATTR_SHAPE, (int64_t[]){ 64 }, 1);
  ValueId z = add(t, OP_RESHAPE, 1, y, 0, 0, &r, 1);
  ir_add_output(t->g, "y", y);
  ir_add_output(t->g, "z", z);
}

#define VERIFY_BAD(t, sub)                                                                   \
  do {                                                                                       \
    bool ok_ = ir_verify((t)->g, &(t)->d);                                                   \
    CHECK(!ok_ && strstr(t_diag(t), sub));                                                   \
    if (ok_ || !strstr(t_diag(t), sub)) fprintf(stderr, "    verify said: %s\n", t_diag(t)); \
  } while (0)

static void test_verify(void) {
  T t;
  verify_base(&t);
  CHECK(ir_verify(t.g, &t.d) && t.d.nerrors == 0);
  t_free(&t);

  verify_base(&t);
  t.g->nodes[2].shape.dim[1] = 17;
  VERIFY_BAD(&t, "verify: %2 = matmul: type is f32[4,17] but the shape rule gives f32[4,16]");
  t_free(&t);

  verify_base(&t);
  t.g->nodes[2].dtype = DT_BF16;
  VERIFY_BAD(&t, "type is bf16[4,16] but the shape rule gives f32[4,16]");
  t_free(&t);

  verify_base(&t);
  t.g->nodes[2].in[1] = 2;
  VERIFY_BAD(&t, "%2 = matmul: input 1 is %2, not an earlier value");
  t_free(&t);

  verify_base(&t);
  t.g->nodes[2].nin = 1;
  VERIFY_BAD(&t, "1 inputs (expects 2 to 2)");
  t_free(&t);

  verify_base(&t);
  Attr tmp = t.g->nodes[2].attr[0];
  t.g->nodes[2].attr[0] = t.g->nodes[2].attr[1];
  t.g->nodes[2].attr[1] = tmp;
  VERIFY_BAD(&t, "attributes are not sorted");
  t_free(&t);

  verify_base(&t);
  t.g->nodes[2].nattr = 1;
  VERIFY_BAD(&t, "missing attribute 'trans_b'");
  t_free(&t);

  verify_base(&t);
  t.g->nodes[2].attr[1].u.i = 7;
  VERIFY_BAD(&t, "trans_b=7 must be 0 or 1");
  t_free(&t);

  verify_base(&t);
  t.g->nodes[0].nattr = 0; /* an input without a name */
  VERIFY_BAD(&t, "%0 = input: missing attribute 'name'");
  t_free(&t);

  verify_base(&t);
  t.g->nodes[1].shape.dim[0] = 0;
  VERIFY_BAD(&t, "%1 = input: bad type: dimension 0 is 0");
  CHECK(t.d.nerrors == 1); /* the matmul reading %1 is not blamed as well */
  t_free(&t);

  verify_base(&t);
  t.g->nodes[1].nin = 1;
  VERIFY_BAD(&t, "a source has 1 inputs");
  t_free(&t);

  verify_base(&t);
  t.g->nodes[3].op = (OpKind)200;
  VERIFY_BAD(&t, "%3 = ?: op id 200 is not in ops.def");
  t_free(&t);

  verify_base(&t);
  t.g->nodes[3].nattr = 9;
  VERIFY_BAD(&t, "9 attributes (a node holds at most 6)");
  t_free(&t);

  verify_base(&t);
  t.g->nodes[3].shape.rank = 9;
  VERIFY_BAD(&t, "rank 9 exceeds the maximum rank 6");
  t_free(&t);

  verify_base(&t);
  t.g->outputs[1].value = 99;
  VERIFY_BAD(&t, "output 'z' refers to %99, but the graph has 4 values");
  t_free(&t);

  verify_base(&t);
  t.g->outputs[1].name = "y";
  VERIFY_BAD(&t, "output name 'y' is used twice");
  t_free(&t);

  verify_base(&t);
  t.g->outputs[1].name = "";
  VERIFY_BAD(&t, "output 1 has no name");
  t_free(&t);

  verify_base(&t);
  SrcLoc loc = { "tiny.cram", 9, 3 };
  t.g->nodes[3].loc = loc;
  t.g->nodes[3].shape.dim[0] = 65;
  VERIFY_BAD(&t, "tiny.cram:9:3: error: verify: %3 = reshape: type is f32[65] but the shape rule gives f32[64]");
  t_free(&t);

  verify_base(&t);
  t.g->n = t.g->cap + 1;
  VERIFY_BAD(&t, "graph arrays are inconsistent");
  t.g->n = 4;
  t_free(&t);
}

static void test_flops(void) {
  T t;
  t_init(&t);
  Attr nn[2] = { ir_attr_int(ATTR_TRANS_A, 0), ir_attr_int(ATTR_TRANS_B, 0) };
  Attr tn[2] = { ir_attr_int(ATTR_TRANS_A, 1), ir_attr_int(ATTR_TRANS_B, 0) };
  ValueId a = SRC(&t, DT_F32, 8, 128, 64), w = SRC(&t, DT_F32, 64, 192);
  ValueId y = add(&t, OP_MATMUL, 2, a, w, 0, nn, 2);
  CHECK(ir_node_flops(t.g, ir_node(t.g, y)) == INT64_C(2) * 8 * 128 * 192 * 64);
  ValueId at = SRC(&t, DT_F32, 3, 64, 128), bt = SRC(&t, DT_F32, 3, 64, 32);
  ValueId z = add(&t, OP_MATMUL, 2, at, bt, 0, tn, 2); /* [3,128,32], K = 64 */
  CHECK(ir_node_flops(t.g, ir_node(t.g, z)) == INT64_C(2) * 3 * 128 * 32 * 64);
  ValueId gl = add(&t, OP_GELU, 1, a, 0, 0, NULL, 0);
  CHECK(ir_node_flops(t.g, ir_node(t.g, gl)) == 0);
  CHECK(ir_node_flops(t.g, ir_node(t.g, a)) == 0);
  /* Operands and result are each capped at 2^40 elements, so M*N*K <= 2^60:
   * the largest GEMMs still count exactly (the saturation is a backstop). */
  int64_t big = INT64_C(1) << 20, k = INT64_C(1) << 30;
  ValueId huge = add(&t, OP_MATMUL, 2, SRC(&t, DT_F32, big, k / 1024), SRC(&t, DT_F32, k / 1024, big), 0, nn, 2);
  CHECK(huge != IR_NONE && ir_node_flops(t.g, ir_node(t.g, huge)) == INT64_C(2) * (INT64_C(1) << 40) * (k / 1024));
  int64_t m = INT64_C(1) << 21;
  ValueId sat = add(&t, OP_MATMUL, 2, SRC(&t, DT_F32, m, m / 4), SRC(&t, DT_F32, m / 4, m / 4), 0, nn, 2);
  CHECK(sat != IR_NONE && ir_node_flops(t.g, ir_node(t.g, sat)) == INT64_C(2) * (m * (m / 4)) * (m / 4));
  t_free(&t);
}

/* Fused attention: the geometry (ir_attention_geom) its shape rules check, good and bad cases, and its FLOPs. */
static ValueId attn(T *t, OpKind op, int nin, const ValueId *in, int64_t dh, int64_t q_off, int64_t k_off, int64_t v_off,
                    double p, int64_t wrt) {
  int64_t off[3] = { q_off, k_off, v_off };
  Attr a[6] = { ir_attr_float(ATTR_ALPHA, 0.125), ir_attr_float(ATTR_P, p),           ir_attr_int(ATTR_KEY, 1),
                ir_attr_int(ATTR_HEAD_DIM, dh),   ir_attr_ints(ATTR_OFFSETS, off, 3), ir_attr_int(ATTR_WRT, wrt) };
  return ir_add(t->g, op, in, nin, a, op == OP_ATTENTION_GRAD ? 6 : 5, NOLOC, &t->d);
}

static void test_attention(void) {
  T t;
  t_init(&t);
  ValueId qkv = SRC(&t, DT_F32, 2, 16, 4, 24), mask = SRC(&t, DT_F32, 2, 1, 1, 16);
  OK(&t, attn(&t, OP_ATTENTION, 3, (ValueId[]){ qkv, qkv, qkv }, 8, 0, 8, 16, 0, 0), "f32[2,16,4,8]");
  OK(&t, attn(&t, OP_ATTENTION, 4, (ValueId[]){ qkv, qkv, qkv, mask }, 8, 0, 8, 16, 0.1, 0), "f32[2,16,4,8]");
  OK(&t, attn(&t, OP_ATTENTION_LSE, 4, (ValueId[]){ qkv, qkv, qkv, mask }, 8, 0, 8, 16, 0.1, 0), "f32[2,4,16]");
  OK(&t, attn(&t, OP_ATTENTION, 4, (ValueId[]){ qkv, qkv, qkv, SRC(&t, DT_F32, 4, 16, 16) }, 8, 0, 8, 16, 0, 0),
     "f32[2,16,4,8]"); /* ALiBi [heads,S,S] */
  ValueId q = SRC(&t, DT_BF16, 2, 16, 4, 8), kv = SRC(&t, DT_BF16, 2, 16, 2, 16), kv1 = SRC(&t, DT_BF16, 2, 16, 1, 16);
  OK(&t, attn(&t, OP_ATTENTION, 3, (ValueId[]){ q, kv, kv }, 8, 0, 0, 8, 0, 0), "bf16[2,16,4,8]");   /* grouped-query */
  OK(&t, attn(&t, OP_ATTENTION, 3, (ValueId[]){ q, kv1, kv1 }, 8, 0, 0, 8, 0, 0), "bf16[2,16,4,8]"); /* multi-query */
  BAD(&t, attn(&t, OP_ATTENTION, 3, (ValueId[]){ qkv, qkv, qkv }, 8, 0, 8, 17, 0, 0),
      "attention: v part [17, 17+8) is outside the source's width 24");
  BAD(
    &t,
    attn(&t, OP_ATTENTION, 3, (ValueId[]){ q, SRC(&t, DT_BF16, 2, 16, 3, 16), SRC(&t, DT_BF16, 2, 16, 3, 16) }, 8, 0, 0, 8, 0, 0),
    "k/v heads (3) must divide the query heads (4)");
  BAD(&t, attn(&t, OP_ATTENTION, 3, (ValueId[]){ q, kv, kv1 }, 8, 0, 0, 8, 0, 0), "differ in heads");
  BAD(&t, attn(&t, OP_ATTENTION, 3, (ValueId[]){ qkv, kv, kv }, 8, 0, 0, 8, 0, 0), "differ in dtype");
  BAD(&t, attn(&t, OP_ATTENTION, 3, (ValueId[]){ qkv, SRC(&t, DT_F32, 2, 8, 4, 24), qkv }, 8, 0, 8, 16, 0, 0),
      "differ in batch or sequence");
  BAD(&t, attn(&t, OP_ATTENTION, 3, (ValueId[]){ SRC(&t, DT_F32, 2, 16, 96), qkv, qkv }, 8, 0, 8, 16, 0, 0),
      "q source must be rank 4 [batch, seq, groups, width], got f32[2,16,96]");
  BAD(&t, attn(&t, OP_ATTENTION, 4, (ValueId[]){ qkv, qkv, qkv, SRC(&t, DT_F32, 3, 16, 16) }, 8, 0, 8, 16, 0, 0),
      "bias f32[3,16,16] does not broadcast to [2,4,16,16]");
  BAD(&t, attn(&t, OP_ATTENTION, 3, (ValueId[]){ qkv, qkv, qkv }, 8, 0, 8, 16, 1.0, 0), "p=1 must be in [0, 1)");
  BAD(&t, attn(&t, OP_ATTENTION, 3, (ValueId[]){ qkv, qkv, qkv }, 0, 0, 8, 16, 0, 0), "head_dim=0 must be positive");
  /* the backward: one source's gradient */
  ValueId o = attn(&t, OP_ATTENTION, 4, (ValueId[]){ qkv, qkv, qkv, mask }, 8, 0, 8, 16, 0.1, 0);
  ValueId l = attn(&t, OP_ATTENTION_LSE, 4, (ValueId[]){ qkv, qkv, qkv, mask }, 8, 0, 8, 16, 0.1, 0);
  CHECK(ir_siblings(ir_node(t.g, o), ir_node(t.g, l)));
  ValueId l2 = attn(&t, OP_ATTENTION_LSE, 4, (ValueId[]){ qkv, qkv, qkv, mask }, 8, 0, 8, 16, 0.2, 0);
  CHECK(!ir_siblings(ir_node(t.g, o), ir_node(t.g, l2))); /* other p */
  t_clear(&t);
  OK(&t, attn(&t, OP_ATTENTION_GRAD, 7, (ValueId[]){ qkv, qkv, qkv, o, l, o, mask }, 8, 0, 8, 16, 0.1, 7), "f32[2,16,4,24]");
  OK(&t, attn(&t, OP_ATTENTION_GRAD, 7, (ValueId[]){ qkv, qkv, qkv, o, l, o, mask }, 8, 0, 8, 16, 0.1, 2), "f32[2,16,4,24]");
  ValueId mo = attn(&t, OP_ATTENTION, 3, (ValueId[]){ q, kv1, kv1 }, 8, 0, 0, 8, 0, 0);
  ValueId ml = attn(&t, OP_ATTENTION_LSE, 3, (ValueId[]){ q, kv1, kv1 }, 8, 0, 0, 8, 0, 0);
  OK(&t, attn(&t, OP_ATTENTION_GRAD, 6, (ValueId[]){ q, kv1, kv1, mo, ml, mo }, 8, 0, 0, 8, 0, 6), "bf16[2,16,1,16]");
  BAD(&t, attn(&t, OP_ATTENTION_GRAD, 6, (ValueId[]){ q, kv1, kv1, mo, ml, mo }, 8, 0, 0, 8, 0, 3),
      "wrt=3 selects q and k, which read different sources");
  BAD(&t, attn(&t, OP_ATTENTION_GRAD, 7, (ValueId[]){ qkv, qkv, qkv, o, l, o, mask }, 8, 0, 4, 16, 0.1, 3),
      "parts q and k overlap");
  BAD(&t, attn(&t, OP_ATTENTION_GRAD, 6, (ValueId[]){ q, kv1, kv1, mo, ml, mo }, 8, 0, 0, 8, 0, 0),
      "wrt=0 must be a non-empty mask");
  BAD(&t, attn(&t, OP_ATTENTION_GRAD, 6, (ValueId[]){ q, kv1, kv1, mo, mo, mo }, 8, 0, 0, 8, 0, 6), "lse must be f32[2,4,16]");
  BAD(&t, attn(&t, OP_ATTENTION_GRAD, 6, (ValueId[]){ q, kv1, kv1, mo, ml, q }, 8, 0, 0, 8, 1, 6), "p=1 must be in [0, 1)");
  /* FLOPs: the GEMMs it replaces (B*heads*S*S*dh multiply-adds each) */
  int64_t unit = INT64_C(2) * 2 * 4 * 16 * 16 * 8;
  CHECK(ir_node_flops(t.g, ir_node(t.g, o)) == 2 * unit && ir_node_flops(t.g, ir_node(t.g, l)) == 0);
  ValueId g7 = attn(&t, OP_ATTENTION_GRAD, 7, (ValueId[]){ qkv, qkv, qkv, o, l, o, mask }, 8, 0, 8, 16, 0.1, 7);
  CHECK(g7 != IR_NONE && ir_node_flops(t.g, ir_node(t.g, g7)) == 4 * unit);
  t_free(&t);
}

int main(void) {
  test_tables();
  test_shape_helpers();
  test_embedding_gathers();
  test_matmul();
  test_elementwise();
  test_norm_reduce_loss();
  test_views();
  test_builder();
  test_verify();
  test_flops();
  test_attention();
  return check_summary("test_ir");
}
