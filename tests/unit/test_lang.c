/* test_lang.c: the .cram tensor primitives and def (docs/cram-language.md
 * §5-6), beyond what the lit tests print:
 *   1. models/ablations/attention_explicit.cram is tiny.cram's graph: the
 *      forward after cse + dce, and the -O2 train step, node for node (op,
 *      type, inputs, attributes; only source positions differ), at tiny's
 *      dims and at toy dims; and bert_crammed's at toy dims. Their losses in
 *      the interpreter agree bit for bit. With fuse_attention on, both fuse
 *      both layers into attention / attention_grad, to the same -O2 step,
 *      whose loss is the unfused one to 1e-12.
 *   2. primitives' values in the f64 interpreter against a direct
 *      computation: softmax over a middle axis, rotary, sum/mean with keepdim,
 *      tensor - tensor and +- number, concat of five, full, param init, the
 *      slice-of-permute canonical form, number folding (sqrt(16) = 4).
 *   3. def: parameter scopes (default name, numbering, name=), locals that do
 *      not leak, a def calling a def, one inside repeat.
 *   4. every model of models/ablations/ builds its train step, and the
 *      interpreter runs it to a finite loss.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "frontend.h"
#include "init.h"
#include "interp.h"
#include "pass.h"
#include "passes.h"

static Diag diag;

static char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    fprintf(stderr, "test_lang: cannot open %s (run from the source root)\n", path);
    exit(1);
  }
  char *buf = calloc(1 << 16, 1);
  *len = fread(buf, 1, (1 << 16) - 1, f);
  fclose(f);
  return buf;
}

static Graph *compile_file(const char *path, const FeDefine *defs, int nd) {
  size_t len;
  char *text = slurp(path, &len);
  Graph *g = fe_compile(path, text, len, defs, nd, &diag);
  free(text);
  return g;
}

static Graph *compile_text(const char *text) { return fe_compile("t.cram", text, strlen(text), NULL, 0, &diag); }

/* ---- 1. graph equality ------------------------------------------------------ */

static bool attr_eq(const Attr *a, const Attr *b) {
  if (a->id != b->id) return false;
  switch (ir_attrs[a->id].kind) {
  case AK_INT: return a->u.i == b->u.i;
  case AK_FLOAT: return a->u.f == b->u.f;
  case AK_STR: return !strcmp(a->u.s, b->u.s);
  case AK_INTS: return a->u.ints.n == b->u.ints.n && !memcmp(a->u.ints.v, b->u.ints.v, a->u.ints.n * sizeof(int64_t));
  }
  return false;
}

/* Same nodes in the same order (source positions aside) and the same outputs. */
static bool same_graph(const Graph *a, const Graph *b, const char *what) {
  if (a->n != b->n || a->nout != b->nout) {
    fprintf(stderr, "  %s: %u vs %u nodes, %u vs %u outputs\n", what, a->n, b->n, a->nout, b->nout);
    return false;
  }
  for (ValueId v = 0; v < a->n; v++) {
    const Node *x = &a->nodes[v], *y = &b->nodes[v];
    bool eq =
      x->op == y->op && x->dtype == y->dtype && ir_shape_eq(&x->shape, &y->shape) && x->nin == y->nin && x->nattr == y->nattr;
    for (int k = 0; eq && k < x->nin; k++) eq = x->in[k] == y->in[k];
    for (int k = 0; eq && k < x->nattr; k++) eq = attr_eq(&x->attr[k], &y->attr[k]);
    if (!eq) {
      fprintf(stderr, "  %s: node %%%u differs (%s vs %s)\n", what, v, ir_ops[x->op].name, ir_ops[y->op].name);
      return false;
    }
  }
  for (uint32_t i = 0; i < a->nout; i++)
    if (strcmp(a->outputs[i].name, b->outputs[i].name) || a->outputs[i].value != b->outputs[i].value) {
      fprintf(stderr, "  %s: output %u differs\n", what, i);
      return false;
    }
  return true;
}

static Graph *run_passes(const Graph *g, int level, const char *only) {
  PassOptions po = { .opt_level = level, .only = only };
  return pass_pipeline_run(g, &(PassCtx){ &diag, &po });
}

static Graph *train_step_o2(const Graph *fwd) {
  Graph *ad = pass_autodiff(fwd, &diag);
  AdamWOptions ao = pass_adamw_defaults();
  Graph *ts = ad ? pass_train_step(ad, &ao, &diag) : NULL;
  Graph *o2 = ts ? run_passes(ts, 2, NULL) : NULL;
  ir_graph_free(ad);
  ir_graph_free(ts);
  return o2;
}

/* The forward graph through the forward passes, fused attention on (as for a target that renders it). */
static Graph *fuse_attention(const Graph *fwd) {
  PassOptions po = { .opt_level = 2, .fused_attention = true, .verify_each = true };
  return pass_forward_run(fwd, &(PassCtx){ &diag, &po });
}

static int count_op(const Graph *g, OpKind op) {
  int k = 0;
  for (ValueId v = 0; v < g->n; v++) k += g->nodes[v].op == op;
  return k;
}

/* Sources: params from their init (seed 1, by name), ids and targets from a
 * fixed pattern below vocab. Returns the buffers after a forward run (f64). */
static double **run_forward(const Graph *g, bool **owned, int64_t vocab, bool *ok) {
  double **b = calloc(g->n, sizeof *b);
  *owned = calloc(g->n, sizeof **owned);
  char err[256];
  for (ValueId v = 0; v < g->n; v++) {
    const Node *n = &g->nodes[v];
    if (n->op != OP_PARAM && n->op != OP_INPUT) continue;
    int64_t count = ir_shape_numel(&n->shape);
    b[v] = calloc((size_t)count, sizeof(double));
    if (n->op == OP_PARAM) CHECK(ir_init_param(n, 1, b[v], err, sizeof err));
    else if (!strcmp(ir_get_str(n, ATTR_NAME), "targets"))
      for (int64_t i = 0; i < count; i++) b[v][i] = i % 3 ? -100.0 : (double)((i * 7) % vocab);
    else if (n->dtype == DT_I32)
      for (int64_t i = 0; i < count; i++) b[v][i] = (double)((i * 13 + 5) % vocab);
    else
      for (int64_t i = 0; i < count; i++) b[v][i] = sin(0.37 * (double)i + 0.1 * (double)v);
  }
  bool *src = calloc(g->n, 1);
  for (ValueId v = 0; v < g->n; v++) src[v] = b[v] != NULL;
  InterpOpts o = { INTERP_F64, false, 0 };
  *ok = interp_run(g, &o, b, *owned, err, sizeof err);
  if (!*ok) fprintf(stderr, "  interp: %s\n", err);
  for (ValueId v = 0; v < g->n; v++) (*owned)[v] |= src[v]; /* free the sources too */
  free(src);
  return b;
}

static void free_run(const Graph *g, double **b, bool *owned) {
  interp_free(g, b, owned);
  free(b);
  free(owned);
}

static const double *output_of(const Graph *g, double **b, const char *name) {
  for (uint32_t i = 0; i < g->nout; i++)
    if (!strcmp(g->outputs[i].name, name)) return b[g->outputs[i].value];
  return NULL;
}

static double loss_of(const Graph *g, int64_t vocab) {
  bool *owned, ok;
  double **b = run_forward(g, &owned, vocab, &ok);
  double l = ok ? output_of(g, b, "loss")[0] : NAN;
  free_run(g, b, owned);
  return l;
}

static void test_explicit_equals_builtin(void) {
  static const FeDefine toy[] = { { "batch", "2" }, { "seq", "16" }, { "vocab", "96" }, { "hidden", "32" },
                                  { "heads", "4" }, { "ffn", "64" }, { "layers", "2" } };
  for (int dims = 0; dims < 2; dims++) {
    int nd = dims ? 7 : 0;
    Graph *a = compile_file("models/tiny.cram", toy, nd), *b = compile_file("models/ablations/attention_explicit.cram", toy, nd);
    CHECK(a && b);
    if (!a || !b) return;
    Graph *ca = run_passes(a, 2, "cse,dce"), *cb = run_passes(b, 2, "cse,dce");
    CHECK(ca && cb && same_graph(ca, cb, "forward after cse, dce"));
    Graph *ta = train_step_o2(a), *tb = train_step_o2(b);
    CHECK(ta && tb && same_graph(ta, tb, "-O2 train step"));
    CHECK(ta && ta->kernel && tb && tb->kernel && ta->nkernels == tb->nkernels);
    /* fused attention (fuse_attention on the forward graph): both fuse every layer, to one step */
    Graph *fa = fuse_attention(a), *fb = fuse_attention(b);
    CHECK(fa && fb && count_op(fa, OP_ATTENTION) == 2 && count_op(fb, OP_ATTENTION) == 2);
    Graph *tfa = fa ? train_step_o2(fa) : NULL, *tfb = fb ? train_step_o2(fb) : NULL;
    CHECK(tfa && tfb && same_graph(tfa, tfb, "-O2 train step, attention fused"));
    CHECK(tfa && count_op(tfa, OP_ATTENTION) == 2 && count_op(tfa, OP_ATTENTION_GRAD) == 2 && count_op(tfa, OP_SOFTMAX) == 0 &&
          count_op(tfa, OP_SOFTMAX_GRAD) == 0);
    if (dims && fa && fb) {
      double la = loss_of(a, 96), lfa = loss_of(fa, 96), lfb = loss_of(fb, 96);
      CHECK(lfa == lfb && fabs(lfa - la) <= 1e-12 * fabs(la));
    }
    ir_graph_free(fa), ir_graph_free(fb), ir_graph_free(tfa), ir_graph_free(tfb);
    if (dims) {
      double la = loss_of(a, 96), lb = loss_of(b, 96);
      CHECK(isfinite(la) && la == lb);
      /* bert_crammed at the same dims is the same graph too */
      Graph *bert = compile_file("models/bert_crammed.cram", toy, nd);
      Graph *cbert = bert ? run_passes(bert, 2, "cse,dce") : NULL;
      CHECK(cbert && cb && same_graph(cbert, cb, "bert_crammed forward"));
      ir_graph_free(bert);
      ir_graph_free(cbert);
    }
    ir_graph_free(a), ir_graph_free(b), ir_graph_free(ca), ir_graph_free(cb), ir_graph_free(ta), ir_graph_free(tb);
  }
}

/* ---- 2. primitives' values ---------------------------------------------------- */

#define HEAD "model t\ninput x : f32[2, 3, 4]\n"

/* Runs `text` (which must define loss) and hands its outputs to the caller. */
typedef struct Ran {
  Graph *g;
  double **b;
  bool *owned;
  const double *x; /* the input x */
} Ran;

static bool ran(Ran *r, const char *text) {
  memset(r, 0, sizeof *r);
  r->g = compile_text(text);
  CHECK(r->g != NULL);
  if (!r->g) return false;
  bool ok;
  r->b = run_forward(r->g, &r->owned, 7, &ok);
  CHECK(ok);
  for (ValueId v = 0; v < r->g->n; v++)
    if (r->g->nodes[v].op == OP_INPUT && !strcmp(ir_get_str(&r->g->nodes[v], ATTR_NAME), "x")) r->x = r->b[v];
  return ok;
}
static void ran_free(Ran *r) {
  if (r->g) free_run(r->g, r->b, r->owned);
  ir_graph_free(r->g);
}
static const double *out(Ran *r, const char *name) {
  const double *p = output_of(r->g, r->b, name);
  CHECK(p != NULL);
  return p;
}
static bool close_to(double a, double b) { return fabs(a - b) <= 1e-12 * fmax(1.0, fabs(b)); }

static void test_primitives(void) {
  Ran r;
  if (ran(&r, HEAD "s = softmax(x, axis=1)\nm = mean(x, axis=0, keepdim=true)\nt = sum(x, -1)\n"
                   "d = x - 2 * x + 1.5\ne = 3 - x\nf = full([2, 2], 0.25)\nr = rsqrt(x * x + 1) - exp(x) / 2\n"
                   "loss = mean(reshape(x, [24]), 0)\noutput s, m, t, d, e, f, r\n")) {
    const double *x = r.x, *s = out(&r, "s"), *m = out(&r, "m"), *t = out(&r, "t"), *d = out(&r, "d"), *e = out(&r, "e"),
                 *f = out(&r, "f"), *rr = out(&r, "r");
    bool ok = true;
    for (int i = 0; i < 2; i++)
      for (int k = 0; k < 4; k++) {
        double z = 0;
        for (int j = 0; j < 3; j++) z += exp(x[(i * 3 + j) * 4 + k]);
        for (int j = 0; j < 3; j++) ok &= close_to(s[(i * 3 + j) * 4 + k], exp(x[(i * 3 + j) * 4 + k]) / z);
      }
    for (int jk = 0; jk < 12; jk++) ok &= close_to(m[jk], (x[jk] + x[12 + jk]) / 2);
    for (int ij = 0; ij < 6; ij++) ok &= close_to(t[ij], x[ij * 4] + x[ij * 4 + 1] + x[ij * 4 + 2] + x[ij * 4 + 3]);
    for (int q = 0; q < 24; q++)
      ok &= close_to(d[q], -x[q] + 1.5) && close_to(e[q], 3 - x[q]) && close_to(rr[q], 1 / sqrt(x[q] * x[q] + 1) - exp(x[q]) / 2);
    for (int q = 0; q < 4; q++) ok &= f[q] == 0.25;
    CHECK(ok);
  }
  ran_free(&r);

  /* rotary over [.., S=3, D=4] against the formula; concat of five; the slice of a
   * permute, emitted as the permute of a slice, has the same values */
  if (ran(&r, HEAD "y = rotary(x, base=100)\nc = concat([x, x, x, x, x], axis=1)\n"
                   "p = slice(transpose(x, 1, 2), 1, 1, 2)\nq = transpose(slice(x, -1, 1, 2), 1, 2)\n"
                   "loss = mean(reshape(y, [24]), 0)\noutput y, c, p, q\n")) {
    const double *x = r.x, *y = out(&r, "y"), *c = out(&r, "c"), *p = out(&r, "p"), *q = out(&r, "q");
    bool ok = true;
    for (int b = 0; b < 2; b++)
      for (int s = 0; s < 3; s++)
        for (int i = 0; i < 2; i++) {
          double th = s * pow(100.0, -2.0 * i / 4.0);
          const double *xr = x + (b * 3 + s) * 4;
          const double *yr = y + (b * 3 + s) * 4;
          ok &= close_to(yr[i], xr[i] * cos(th) - xr[i + 2] * sin(th));
          ok &= close_to(yr[i + 2], xr[i + 2] * cos(th) + xr[i] * sin(th));
        }
    for (int b = 0; b < 2; b++)
      for (int j = 0; j < 15; j++)
        for (int k = 0; k < 4; k++) ok &= c[(b * 15 + j) * 4 + k] == x[(b * 3 + j % 3) * 4 + k];
    for (int i = 0; i < 12; i++) ok &= p[i] == q[i];
    CHECK(ok);
    int permutes = 0, slices = 0; /* slice(permute(x)) -> permute(slice(x)): the slice reads x itself */
    for (ValueId v = 0; v < r.g->n; v++) {
      permutes += r.g->nodes[v].op == OP_PERMUTE;
      slices += r.g->nodes[v].op == OP_SLICE && r.g->nodes[v].in[0] == 0;
    }
    CHECK(slices >= 3 && permutes == 3);
  }
  ran_free(&r);

  /* numbers fold: the scale is exactly 1/sqrt(16); param inits */
  if (ran(&r, HEAD "w = param([4], init=\"const\", value=sqrt(16) + exp(0), name=\"w\")\n"
                   "loss = mean(reshape(x * w * (1 / sqrt(16)), [24]), 0)\n")) {
    bool found = false;
    for (ValueId v = 0; v < r.g->n; v++) {
      const Node *n = &r.g->nodes[v];
      if (n->op == OP_SCALE) found |= ir_get_float(n, ATTR_ALPHA) == 0.25;
      if (n->op == OP_PARAM) CHECK(!strcmp(ir_get_str(n, ATTR_NAME), "w") && r.b[v][3] == 5.0 && ir_get_int(n, ATTR_DECAY) == 1);
    }
    CHECK(found);
  }
  ran_free(&r);
}

/* ---- 3. def ------------------------------------------------------------------------------ */

static bool has_param(const Graph *g, const char *name) {
  for (ValueId v = 0; v < g->n; v++)
    if (g->nodes[v].op == OP_PARAM && !strcmp(ir_get_str(&g->nodes[v], ATTR_NAME), name)) return true;
  return false;
}

static void test_def(void) {
  Graph *g = compile_text("model t\ninput x : f32[2, 4]\n"
                          "def lin(x, n):\n    h = linear(x, n, name=\"proj\")\n    return h\n"
                          "def block(x):\n    a = lin(x, 4)\n    repeat 2 as r:\n        a = a + lin(a, 4)\n    return a\n"
                          "h = 1 * x\n"
                          "y = block(x) + block(x) + block(x, name=\"named\") + lin(x, 4)\n"
                          "repeat 2 as layer:\n    y = y + lin(y, 4)\n"
                          "loss = mean(reshape(y + h, [8]), 0)\n");
  CHECK(g != NULL);
  if (!g) return;
  CHECK(has_param(g, "block.lin.proj.weight") && has_param(g, "block.r.1.lin.proj.bias"));
  CHECK(has_param(g, "block_1.lin.proj.weight") && has_param(g, "named.r.0.lin.proj.weight"));
  CHECK(has_param(g, "lin.proj.weight") && has_param(g, "layer.1.lin.proj.weight"));
  CHECK(!has_param(g, "block_2.lin.proj.weight"));
  ir_graph_free(g);
}

/* ---- 4. every ablation trains in the interpreter ------------------------------------------- */

static void test_ablations_run(void) {
  static const char *names[] = { "attention_explicit", "rotary", "alibi",     "attention_temperature",
                                 "multi_query",        "swiglu", "scalenorm", "deep_narrow",
                                 "shallow_wide" };
  static const FeDefine toy[] = { { "batch", "2" }, { "seq", "8" }, { "vocab", "50" }, { "layers", "1" } };
  for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
    char path[128];
    snprintf(path, sizeof path, "models/ablations/%s.cram", names[i]);
    int warnings = diag.nwarnings;
    Graph *g = compile_file(path, toy, 4);
    CHECK(g != NULL && diag.nwarnings == warnings);
    if (!g) continue;
    double l = loss_of(g, 50);
    if (!(isfinite(l) && fabs(l - log(50.0)) < 0.5)) fprintf(stderr, "  %s: loss %g\n", names[i], l);
    CHECK(isfinite(l) && fabs(l - log(50.0)) < 0.5); /* near ln(vocab) at init */
    Graph *ts = train_step_o2(g);
    CHECK(ts != NULL);
    ir_graph_free(ts);
    ir_graph_free(g);
  }
}

int main(void) {
  diag_init(&diag, stderr);
  test_explicit_equals_builtin();
  test_primitives();
  test_def();
  test_ablations_run();
  CHECK(diag.nerrors == 0);
  return check_summary("test_lang");
}
