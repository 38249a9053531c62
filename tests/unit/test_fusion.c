/* test_fusion.c: the four fusion passes (passes/fuse_*.c, docs/fusions.md).
 *
 *  - equivalence: the train-step graph in the f64 interpreter before and
 *    after each fusion (and all four chained), on tiny.cram and every
 *    ablation at small -D dims and on the fusion test inputs; every output
 *    agrees to a relative 1e-10 (max |a-b| / max |a|);
 *  - the fusions fire: fused-op counts on the same graphs and on
 *    bert_crammed at full size (built, not run): every layer's GLU epilogue
 *    forward + backward, residual + LayerNorm forward + backward, one fused
 *    decoder cross-entropy, no node of rank >= 2 with the vocabulary as its
 *    last axis;
 *  - they do not fire wrongly: biased linears and linears on different
 *    inputs are not merged, no GLU fusion without a GLU, rmsnorm untouched.
 * Inputs and params get values from a hash of their name, so both graphs of
 * a comparison see the same data whatever their node ids.
 *
 * The same again on the mixed-precision graphs (autocast_bf16 before
 * autodiff, as `--precision bf16` builds them): every fusion still fires as
 * often (fuse_xent through the casts around the decoder GEMM), the f64
 * checks hold (a cast is the identity there), and in the f32 mode, which
 * rounds every bf16 value, fuse_xent alone changes no output by more than
 * XENT_BF16_TOL: its ops round the bf16 logits and gradient as the unfused
 * chain does (leaving one of those roundings out moves the loss by ~1e-3).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frontend.h"
#include "fuse_util.h"
#include "interp.h"
#include "passes.h"

#include "check.h"

typedef Graph *(*PassFn)(const Graph *, PassCtx *);
static const struct {
  const char *name;
  PassFn run;
} fusions[] = {
  { "fuse_linear", pass_fuse_linear },
  { "fuse_epilogue", pass_fuse_epilogue },
  { "fuse_ln_residual", pass_fuse_ln_residual },
  { "fuse_xent", pass_fuse_xent },
};
enum { NFUSE = sizeof fusions / sizeof fusions[0] };

static const FeDefine small[] = { { "batch", "2" }, { "seq", "8" },  { "vocab", "40" }, { "hidden", "16" },
                                  { "heads", "2" }, { "ffn", "32" }, { "layers", "2" } };

static bool bf16;                             /* build the graphs through autocast_bf16 */
static InterpPrecision run_prec = INTERP_F64; /* the mode run() interprets in */
#define XENT_BF16_TOL 1e-6

static bool fwd_only; /* train_graph returns the forward (eval) graph */
static Graph *train_graph(const char *path, const FeDefine *defs, int ndefs, Diag *d) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    fprintf(stderr, "test_fusion: cannot open %s (run from the source root)\n", path);
    return NULL;
  }
  static char text[16384];
  size_t len = fread(text, 1, sizeof text - 1, f);
  text[len] = '\0';
  fclose(f);
  Graph *fwd = fe_compile(path, text, len, defs, ndefs, d);
  if (fwd && bf16) {
    Graph *m = pass_autocast_bf16(fwd, d);
    ir_graph_free(fwd);
    fwd = m;
  }
  if (fwd_only) return fwd;
  Graph *ad = fwd ? pass_autodiff(fwd, d) : NULL;
  AdamWOptions o = pass_adamw_defaults();
  Graph *ts = ad ? pass_train_step(ad, &o, d) : NULL;
  ir_graph_free(fwd);
  ir_graph_free(ad);
  return ts;
}

static uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}
static uint64_t hash_str(const char *s) {
  uint64_t h = 1469598103934665603ull;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
  return h;
}
static double unit(uint64_t h) { return (double)(mix(h) >> 11) * 0x1.0p-53; } /* [0,1) */

/* Deterministic data for a source node, from its name. */
static void fill_source(const Graph *g, const Node *n, double *buf, int64_t vocab) {
  const char *name = ir_get_str(n, ATTR_NAME);
  uint64_t h = hash_str(name);
  int64_t cnt = ir_shape_numel(&n->shape);
  for (int64_t e = 0; e < cnt; e++) {
    double u = unit(h + (uint64_t)e * 7919u);
    if (n->dtype == DT_I32) {
      if (!strcmp(name, "targets")) buf[e] = u < 0.5 ? -100 : (double)(mix(h + (uint64_t)e) % (uint64_t)vocab);
      else if (!strcmp(name, "tokens")) buf[e] = (double)(mix(h + (uint64_t)e) % (uint64_t)vocab);
      else buf[e] = (double)(mix(h + (uint64_t)e) % 2u);
    } else if (!strcmp(name, "step")) {
      buf[e] = 3;
    } else if (!strcmp(name, "lr")) {
      buf[e] = 1e-3;
    } else if (!strcmp(name, "hyper")) {
      buf[e] = (double[IR_ADAM_HYPER]){ 0.9, 0.98, 1e-12, 0.01, 0, 0.5 }[e];
    } else if (!strcmp(name, "mask")) {
      buf[e] = u < 0.2 ? -10000.0 : 0.0;
    } else if (!strncmp(name, "adam_v.", 7)) {
      buf[e] = 1e-4 * u;
    } else if (n->op == OP_PARAM && n->shape.rank == 1 && strstr(name, "weight")) {
      buf[e] = 1.0 + 0.2 * (u - 0.5); /* norm gains near 1 */
    } else {
      buf[e] = 0.5 * (u - 0.5);
    }
  }
  (void)g;
}

static int64_t vocab_of(const Graph *g) {
  for (ValueId v = 0; v < g->n; v++)
    if (g->nodes[v].op == OP_EMBEDDING) return g->nodes[g->nodes[v].in[0]].shape.dim[0];
  return 2;
}

/* Runs g; returns its output buffers (malloc'd copies), NULL on error. */
static double **run(const Graph *g) {
  double **bufs = calloc(g->n, sizeof *bufs);
  bool *owned = calloc(g->n, sizeof *owned);
  int64_t V = vocab_of(g);
  for (ValueId v = 0; v < g->n; v++) {
    const Node *n = &g->nodes[v];
    if (n->op != OP_INPUT && n->op != OP_PARAM) continue;
    bufs[v] = malloc((size_t)ir_shape_numel(&n->shape) * sizeof(double));
    fill_source(g, n, bufs[v], V);
  }
  InterpOpts o = { .prec = run_prec };
  char err[512];
  double **outs = NULL;
  if (interp_run(g, &o, bufs, owned, err, sizeof err)) {
    outs = calloc(g->nout, sizeof *outs);
    for (uint32_t i = 0; i < g->nout; i++) {
      size_t sz = (size_t)ir_shape_numel(&g->nodes[g->outputs[i].value].shape) * sizeof(double);
      outs[i] = malloc(sz);
      memcpy(outs[i], bufs[g->outputs[i].value], sz);
    }
  } else {
    fprintf(stderr, "test_fusion: interp: %s\n", err);
  }
  interp_free(g, bufs, owned);
  for (ValueId v = 0; v < g->n; v++)
    if (g->nodes[v].op == OP_INPUT || g->nodes[v].op == OP_PARAM) free(bufs[v]);
  free(bufs);
  free(owned);
  return outs;
}

static void free_outs(const Graph *g, double **o) {
  if (!o) return;
  for (uint32_t i = 0; i < g->nout; i++) free(o[i]);
  free(o);
}

static double worst_xent_bf16; /* the largest relative change of fuse_xent in the bf16 f32-mode check */

/* Every output of b equals a's (by name) to relative tol (max |a-b| / max |a|). */
static bool close_outputs(const char *what, const Graph *a, double **oa, const Graph *b, double **ob, double tol, double *worst) {
  if (!oa || !ob || a->nout != b->nout) return false;
  bool ok = true;
  for (uint32_t i = 0; i < a->nout; i++) {
    if (strcmp(a->outputs[i].name, b->outputs[i].name)) return false;
    int64_t n = ir_shape_numel(&a->nodes[a->outputs[i].value].shape);
    double mx = 0, diff = 0;
    for (int64_t e = 0; e < n; e++) {
      mx = fmax(mx, fabs(oa[i][e]));
      diff = fmax(diff, fabs(oa[i][e] - ob[i][e]));
      if (isnan(ob[i][e]) != isnan(oa[i][e])) diff = INFINITY;
    }
    if (worst && diff / (mx > 0 ? mx : 1) > *worst) *worst = diff / (mx > 0 ? mx : 1);
    if (!(diff <= tol * (mx > 0 ? mx : 1e-300)) && diff > 1e-300) {
      fprintf(stderr, "test_fusion: %s: output %s differs: max |a-b| %g, max |a| %g\n", what, a->outputs[i].name, diff, mx);
      ok = false;
    }
  }
  return ok;
}
static bool same_outputs(const char *what, const Graph *a, double **oa, const Graph *b, double **ob) {
  return close_outputs(what, a, oa, b, ob, 1e-10, NULL);
}

static int count(const Graph *g, OpKind op) {
  int c = 0;
  for (ValueId v = 0; v < g->n; v++) c += g->nodes[v].op == op;
  return c;
}

/* Nodes of rank >= 2 whose last axis is the vocabulary. */
static int vocab_wide(const Graph *g, int64_t V) {
  int c = 0;
  for (ValueId v = 0; v < g->n; v++) {
    const Shape *s = &g->nodes[v].shape;
    c += s->rank >= 2 && s->dim[s->rank - 1] == V;
  }
  return c;
}

static Graph *apply(const Graph *g, PassFn f, Diag *d) {
  PassCtx cx = { .diag = d };
  Graph *r = f(g, &cx);
  CHECK(r != NULL);
  if (r) CHECK(ir_verify(r, d));
  return r;
}

static Graph *apply_all(const Graph *g, Diag *d) {
  Graph *cur = NULL;
  for (int i = 0; i < NFUSE; i++) {
    Graph *next = apply(cur ? cur : g, fusions[i].run, d);
    ir_graph_free(cur);
    cur = next;
    if (!cur) return NULL;
  }
  return cur;
}

typedef struct Counts {
  int concat, glu, glu_grad, act, act_grad, add_ln, ln_grad_add, xent, xent_grad;
} Counts;
static Counts counts(const Graph *g) {
  return (
    Counts){ count(g, OP_CONCAT),          count(g, OP_MATMUL_GLU),    count(g, OP_MATMUL_GLU_GRAD),    count(g, OP_MATMUL_ACT),
             count(g, OP_MATMUL_ACT_GRAD), count(g, OP_ADD_LAYERNORM), count(g, OP_LAYERNORM_GRAD_ADD), count(g, OP_XENT_LINEAR),
             count(g, OP_XENT_LINEAR_GRAD) };
}
static void print_counts(const char *what, const Counts *c) {
  printf("  %-28s concat %d, matmul_glu %d/%d, matmul_act %d/%d, add_layernorm %d, layernorm_grad_add %d, "
         "xent_linear %d/%d\n",
         what, c->concat, c->glu, c->glu_grad, c->act, c->act_grad, c->add_ln, c->ln_grad_add, c->xent, c->xent_grad);
}

/* Every fusion alone and all four chained agree with the unfused graph. */
static Counts check_model(const char *path, const FeDefine *defs, int ndefs, Diag *d) {
  Counts c = { 0 };
  Graph *g = train_graph(path, defs, ndefs, d);
  CHECK(g != NULL);
  if (!g) return c;
  double **ref = run(g);
  CHECK(ref != NULL);
  char what[256];
  for (int i = 0; i < NFUSE; i++) {
    Graph *f = apply(g, fusions[i].run, d);
    if (!f) continue;
    double **o = run(f);
    snprintf(what, sizeof what, "%s %s", path, fusions[i].name);
    CHECK(same_outputs(what, g, ref, f, o));
    free_outs(f, o);
    ir_graph_free(f);
  }
  if (bf16) { /* the f32 mode rounds every bf16 value: fuse_xent must round as the chain it replaces */
    Graph *f = apply(g, pass_fuse_xent, d);
    run_prec = INTERP_F32;
    double **r32 = run(g), **o32 = f ? run(f) : NULL;
    snprintf(what, sizeof what, "%s fuse_xent (bf16, f32 mode)", path);
    CHECK(f && close_outputs(what, g, r32, f, o32, XENT_BF16_TOL, &worst_xent_bf16));
    run_prec = INTERP_F64;
    free_outs(g, r32);
    if (f) free_outs(f, o32);
    ir_graph_free(f);
  }
  Graph *all = apply_all(g, d);
  if (all) {
    double **o = run(all);
    snprintf(what, sizeof what, "%s all fusions", path);
    CHECK(same_outputs(what, g, ref, all, o));
    free_outs(all, o);
    c = counts(all);
    print_counts(path, &c);
    /* sparse prediction: no [rows x vocab] tensor once the decoder is fused */
    if (c.xent) CHECK(vocab_wide(all, vocab_of(g)) == 0);
    ir_graph_free(all);
  }
  free_outs(g, ref);
  ir_graph_free(g);
  return c;
}

/* Every check, on the graphs as written or (bf16) through autocast_bf16. */
static void check_all(Diag *dg) {
  Diag d = *dg;
  int ns = (int)(sizeof small / sizeof small[0]);

  /* tiny (the crammed structure): GLU + add/LN + xent fire in every layer */
  Counts t = check_model("models/tiny.cram", small, ns, &d);
  /* the train step keeps the GLU apart from its GEMM (the backward reads the pre-activation: fusing would
   * run the GEMM twice); the eval graph, where nothing else reads it, fuses */
  CHECK(t.glu == 0 && t.glu_grad == 2 && t.act == 0 && t.concat == 0);
  fwd_only = true;
  Counts e = check_model("models/tiny.cram", small, ns, &d);
  Counts ep = check_model("models/ablations/postln_noglu.cram", small, ns, &d);
  fwd_only = false;
  CHECK(e.glu == 2 && e.glu_grad == 0 && ep.act == 2 && ep.act_grad == 0);
  /* add_layernorm only where nothing else reads the sum: never in a train step (the norm's backward
   * reads it); in a pre-LN eval graph the final norm (the residual stream feeds the others), in a
   * post-LN eval graph every norm */
  CHECK(t.add_ln == 0 && e.add_ln == 1 && ep.add_ln == 4);
  CHECK(t.ln_grad_add == 2 * 2);
  CHECK(t.xent == 1 && t.xent_grad == 2); /* dx, dW (tied) */

  const char *abl[] = { "dense_prediction", "finetune_classifier", "glu_relu", "learned_positions", "postln_noglu",
                        "rmsnorm",          "untied_biases" };
  Counts ca[7];
  for (int i = 0; i < 7; i++) {
    char path[256];
    snprintf(path, sizeof path, "models/ablations/%s.cram", abl[i]);
    ca[i] = check_model(path, small, ns, &d);
  }
  CHECK(ca[2].glu == 0 && ca[2].glu_grad == 2);                   /* glu_relu: act=relu epilogue */
  CHECK(ca[4].glu == 0 && ca[4].act == 0 && ca[4].act_grad == 2); /* postln_noglu: no GLU, plain GELU epilogue */
  CHECK(ca[4].add_ln == 0 && ca[4].xent == 1);                    /* post-LN train step: the sums feed the backward */
  CHECK(ca[4].ln_grad_add == 0); /* and its LN gradient feeds two branches: no single-use add to fold into */
  CHECK(ca[5].add_ln == 0 && ca[5].ln_grad_add == 0 && ca[5].glu_grad == 2); /* rmsnorm: left alone */
  /* biases: dx, dW, db. bf16: a biased GEMM's bias add reads the product cast up
   * to f32, which fuse_epilogue does not match (yet): no matmul_glu_grad there */
  CHECK(ca[6].concat == 0 && ca[6].glu == 0 && ca[6].glu_grad == (bf16 ? 0 : 2) && ca[6].xent == 1 && ca[6].xent_grad == 3);
  CHECK(ca[0].xent == 0);                                                /* dense prediction: logits reshaped, skipped */
  CHECK(ca[1].xent == 1 && ca[1].xent_grad == 3 && ca[1].glu_grad == 2); /* classifier head (train step: logits not an output) */

  /* merged linears: separate q, k, v fire forward and backward ... */
  Counts s = check_model("tests/lit/fusion/Inputs/sep_linears.cram", NULL, 0, &d);
  /* joined weights (forward), joined dY (backward dX); bf16: fuse_linear wants
   * param B operands and autocast gives it casts of params (not matched yet) */
  CHECK(s.concat == (bf16 ? 0 : 2));
  /* ... biased ones and ones on different inputs do not */
  Counts b = check_model("tests/lit/fusion/Inputs/biased_linears.cram", NULL, 0, &d);
  CHECK(b.concat == 0);

  /* bert_crammed at full size: built and fused, not run */
  Graph *g = train_graph("models/bert_crammed.cram", NULL, 0, &d);
  CHECK(g != NULL);
  if (g) {
    int64_t V = vocab_of(g);
    CHECK(vocab_wide(g, V) > 0);
    Graph *all = apply_all(g, &d);
    if (all) {
      Counts c = counts(all);
      print_counts("models/bert_crammed.cram", &c);
      int L = 16;
      CHECK(c.glu == 0 && c.glu_grad == L); /* one ffn.in GEMM per layer: the GLU reads its stored result */
      CHECK(c.add_ln == 0);                 /* every sum is read by its norm's backward */
      CHECK(c.ln_grad_add == 2 * L);
      CHECK(c.xent == 1 && c.xent_grad == 2);
      CHECK(vocab_wide(all, V) == 0);
      ir_graph_free(all);
    }
    ir_graph_free(g);
  }
  *dg = d;
}

int main(void) {
  Diag d;
  diag_init(&d, stderr);
  check_all(&d);
  printf("bf16 (autocast) graphs:\n");
  bf16 = true;
  check_all(&d);
  printf("fuse_xent on the bf16 graphs in the f32 mode: largest relative change %.3g (limit %g)\n", worst_xent_bf16,
         XENT_BF16_TOL);
  return check_summary("test_fusion");
}
