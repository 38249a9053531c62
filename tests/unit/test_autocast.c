/* test_autocast.c: pass_autocast_bf16 (passes/autocast.c), the GPU default
 * precision, checked in the interpreter (the oracle for the cuda bf16 step).
 *
 * 1. Structure, for tiny and every ablation: the graph verifies; every GEMM
 *    reads bf16 and gives bf16; norms, softmax, reductions and the loss read
 *    f32; parameters stay f32 and each has at most one bf16 copy; after
 *    autodiff every parameter gradient is f32 (the cast's grad rule), and so
 *    are the AdamW moments of the train step.
 * 2. Training: tiny at small dims, 5 AdamW steps (pass_train_step) in the
 *    interpreter's f32 mode, f32 graph vs bf16 graph from the same init and
 *    batch: the losses agree within 1% at every step (the GPU check's
 *    bound; bf16 keeps 8 bits of mantissa, so each GEMM result is off by up
 *    to 2^-9 relative, but the loss averages those errors: observed 3e-4
 *    after 5 steps at lr 1e-2), and both fall. The differences are printed.
 * 3. The same step in f64 (casts are the identity there) equals the f32
 *    graph's to 1e-12: autocast changes precision only, never the function.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "frontend.h"
#include "init.h"
#include "interp.h"
#include "passes.h"

static const FeDefine dims[] = { { "batch", "4" }, { "seq", "16" }, { "vocab", "64" }, { "hidden", "32" },
                                 { "heads", "2" }, { "ffn", "64" }, { "layers", "2" }, { "head", "16" } };

static Graph *compile(const char *path, bool bf16, Diag *d) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  static char text[1 << 16];
  size_t len = fread(text, 1, sizeof text - 1, f);
  text[len] = '\0';
  fclose(f);
  int nd = strstr(text, " head=") ? 8 : 7;
  Graph *g = fe_compile(path, text, len, dims, nd, d);
  if (g && bf16) {
    Graph *m = pass_autocast_bf16(g, d);
    ir_graph_free(g);
    g = m;
  }
  return g;
}

static DType in_dt(const Graph *g, const Node *n, int k) { return g->nodes[n->in[k]].dtype; }

static void check_structure(const char *path) {
  Diag d;
  diag_init(&d, stderr);
  Graph *g = compile(path, true, &d);
  CHECK(g != NULL);
  if (!g) return;
  CHECK(ir_verify(g, &d));
  int gemms = 0, casts_of_params = 0, params = 0;
  uint32_t *copies = calloc(g->n, sizeof *copies);
  for (ValueId v = 0; v < g->n; v++) {
    const Node *n = &g->nodes[v];
    OpClass c = ir_ops[n->op].cls;
    if (n->op == OP_PARAM) {
      params++;
      CHECK(n->dtype == DT_F32);
    }
    if (c == OC_GEMM) {
      gemms++;
      CHECK(n->dtype == DT_BF16 && in_dt(g, n, 0) == DT_BF16 && in_dt(g, n, 1) == DT_BF16);
    }
    if (c == OC_NORM || c == OC_REDUCE || c == OC_LOSS)
      for (int k = 0; k < n->nin; k++) CHECK(in_dt(g, n, k) != DT_BF16);
    if (n->op == OP_CAST && g->nodes[n->in[0]].op == OP_PARAM) {
      casts_of_params++;
      CHECK(++copies[n->in[0]] == 1); /* one bf16 copy per master weight */
    }
  }
  CHECK(gemms > 0 && casts_of_params > 0 && casts_of_params <= params);
  for (uint32_t i = 0; i < g->nout; i++) CHECK(g->nodes[g->outputs[i].value].dtype != DT_BF16);
  Graph *ad = pass_autodiff(g, &d);
  CHECK(ad && ir_verify(ad, &d));
  AdamWOptions ao = pass_adamw_defaults();
  Graph *ts = ad ? pass_train_step(ad, &ao, &d) : NULL;
  CHECK(ts && ir_verify(ts, &d));
  for (uint32_t i = 0; ad && i < ad->nout; i++)
    if (!strncmp(ad->outputs[i].name, "grad.", 5)) CHECK(ad->nodes[ad->outputs[i].value].dtype == DT_F32);
  for (uint32_t i = 0; ts && i < ts->nout; i++) CHECK(ts->nodes[ts->outputs[i].value].dtype == DT_F32);
  free(copies);
  ir_graph_free(ts);
  ir_graph_free(ad);
  ir_graph_free(g);
}

/* ---- training: named state carried between steps ---------------------------- */

typedef struct State {
  const Graph *g;
  double **src; /* per node of g: data for input/param nodes */
} State;

static uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

/* Sources of the train step: params by ir/init.c (seed 1), moments 0, step 1,
 * lr 1e-2, tokens and targets hashed (a quarter of targets real). */
static State state_new(const Graph *ts) {
  State s = { ts, calloc(ts->n, sizeof(double *)) };
  for (ValueId v = 0; v < ts->n; v++) {
    const Node *n = &ts->nodes[v];
    if (n->op != OP_PARAM && n->op != OP_INPUT) continue;
    int64_t cnt = ir_shape_numel(&n->shape);
    double *x = s.src[v] = calloc((size_t)cnt, sizeof(double));
    const char *name = ir_get_str(n, ATTR_NAME);
    char err[256];
    if (n->op == OP_PARAM) CHECK(ir_init_param(n, 1, x, err, sizeof err));
    for (int64_t i = 0; n->op == OP_INPUT && i < cnt; i++) {
      uint64_t h = mix((uint64_t)i * 31 + 7);
      if (!strcmp(name, "tokens")) x[i] = (double)(h % 64);
      else if (!strcmp(name, "targets")) x[i] = h % 4 ? -100.0 : (double)((h >> 8) % 64);
      else if (!strcmp(name, "step")) x[i] = 1;
      else if (!strcmp(name, "lr")) x[i] = interp_round_f32(1e-2);
      else if (!strcmp(name, "hyper")) x[i] = interp_round_f32((double[IR_ADAM_HYPER]){ 0.9, 0.98, 1e-12, 0.01, 0, 0.5 }[i]);
    }
  }
  return s;
}

static ValueId input_named(const Graph *g, const char *name) {
  for (ValueId v = 0; v < g->n; v++)
    if ((g->nodes[v].op == OP_INPUT || g->nodes[v].op == OP_PARAM) && !strcmp(ir_get_str(&g->nodes[v], ATTR_NAME), name))
      return v;
  return IR_NONE;
}

/* One step: outputs param.<p>, adam_m.<p>, adam_v.<p> become the next inputs. */
static bool state_step(State *s, InterpPrecision prec, double *loss) {
  const Graph *g = s->g;
  double **bufs = calloc(g->n, sizeof *bufs);
  bool *owned = calloc(g->n, sizeof *owned);
  for (ValueId v = 0; v < g->n; v++) bufs[v] = s->src[v];
  InterpOpts o = { prec, false, 0 };
  char err[512];
  bool ok = interp_run(g, &o, bufs, owned, err, sizeof err);
  if (!ok) fprintf(stderr, "interp: %s\n", err);
  for (uint32_t i = 0; ok && i < g->nout; i++) {
    const char *name = g->outputs[i].name;
    const double *val = bufs[g->outputs[i].value];
    if (!strcmp(name, "loss")) *loss = val[0];
    ValueId dst = !strncmp(name, "param.", 6)  ? input_named(g, name + 6)
                  : !strncmp(name, "adam_", 5) ? input_named(g, name)
                                               : IR_NONE;
    if (dst != IR_NONE) memcpy(s->src[dst], val, (size_t)ir_shape_numel(&g->nodes[dst].shape) * sizeof(double));
  }
  ValueId st = input_named(g, "step");
  if (st != IR_NONE) s->src[st][0] += 1;
  interp_free(g, bufs, owned);
  free(bufs);
  free(owned);
  return ok;
}

static void state_free(State *s) {
  for (ValueId v = 0; v < s->g->n; v++) free(s->src[v]);
  free(s->src);
}

static Graph *train_step(const char *path, bool bf16, Diag *d) {
  Graph *f = compile(path, bf16, d), *ad = f ? pass_autodiff(f, d) : NULL;
  AdamWOptions ao = pass_adamw_defaults();
  Graph *ts = ad ? pass_train_step(ad, &ao, d) : NULL;
  ir_graph_free(ad);
  ir_graph_free(f);
  return ts;
}

#define STEPS 5
static void check_training(const char *path) {
  Diag d;
  diag_init(&d, stderr);
  Graph *t32 = train_step(path, false, &d), *t16 = train_step(path, true, &d);
  CHECK(t32 && t16);
  if (!t32 || !t16) goto out;
  double l32[STEPS], l16[STEPS], l64a = 0, l64b = 0, worst = 0;
  {
    State a = state_new(t32), b = state_new(t16);
    for (int i = 0; i < STEPS; i++) {
      CHECK(state_step(&a, INTERP_F32, &l32[i]) && state_step(&b, INTERP_F32, &l16[i]));
      double rel = fabs(l16[i] - l32[i]) / fabs(l32[i]);
      printf("%s step %d: loss f32 %.6f, bf16 %.6f (relative difference %.2e)\n", path, i + 1, l32[i], l16[i], rel);
      CHECK(rel < 0.01);
      if (rel > worst) worst = rel;
    }
    CHECK(l32[STEPS - 1] < l32[0] && l16[STEPS - 1] < l16[0]);
    state_free(&a);
    state_free(&b);
  }
  {
    State a = state_new(t32), b = state_new(t16);
    CHECK(state_step(&a, INTERP_F64, &l64a) && state_step(&b, INTERP_F64, &l64b));
    CHECK(fabs(l64a - l64b) <= 1e-12 * fabs(l64a));
    state_free(&a);
    state_free(&b);
  }
  printf("%s: worst loss difference f32 vs bf16 over %d steps: %.2e; f64 mode: %.1e\n", path, STEPS, worst, fabs(l64a - l64b));
out:
  ir_graph_free(t32);
  ir_graph_free(t16);
}

int main(void) {
  check_structure("models/tiny.cram");
  check_structure("models/bert_crammed.cram");
  static const char *ablations[] = { "dense_prediction",
                                     "finetune_classifier",
                                     "glu_relu",
                                     "learned_positions",
                                     "postln_noglu",
                                     "rmsnorm",
                                     "untied_biases",
                                     "rotary",
                                     "alibi",
                                     "attention_temperature",
                                     "multi_query",
                                     "swiglu",
                                     "scalenorm" };
  for (size_t i = 0; i < sizeof ablations / sizeof *ablations; i++) {
    char path[128];
    snprintf(path, sizeof path, "models/ablations/%s.cram", ablations[i]);
    check_structure(path);
  }
  check_training("models/tiny.cram");
  check_training("models/ablations/postln_noglu.cram");
  return check_summary("test_autocast");
}
