/* test_train_interp.c: a short training run of tiny.cram (small -D dims) in
 * the interpreter with the full train-step graph (autodiff + clip + AdamW).
 *
 * Corpus: a fixed repeating pattern, token at position s of sequence b is
 * 2 + (s + b) % 6 (vocab 16). Each step masks 4 of the 16 positions of every
 * sequence (a different deterministic choice each step) by replacing them
 * with token 1 ([MASK]); the targets are the original tokens. The pattern is
 * learnable from context, so the loss must fall from ~ln(16) to well below:
 * the mean loss of the last 5 steps must be < 0.5 x the mean of the first 5.
 * Prints "N passed, M failed"; exit status 1 on any failure. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frontend.h"
#include "init.h"
#include "interp.h"
#include "passes.h"

#include "check.h"

enum { B = 4, S = 16, V = 16, STEPS = 500 };

static ValueId find(const Graph *g, OpKind op, const char *name) {
  for (ValueId v = 0; v < g->n; v++)
    if (g->nodes[v].op == op && !strcmp(ir_get_str(&g->nodes[v], ATTR_NAME), name)) return v;
  return IR_NONE;
}

static ValueId out(const Graph *g, const char *name) {
  for (uint32_t i = 0; i < g->nout; i++)
    if (!strcmp(g->outputs[i].name, name)) return g->outputs[i].value;
  return IR_NONE;
}

static uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

int main(void) {
  FILE *f = fopen("models/tiny.cram", "rb");
  if (!f) {
    fprintf(stderr, "test_train_interp: run from the source root (models/tiny.cram)\n");
    printf("test_train_interp: 0 passed, 1 failed\n");
    return 1;
  }
  char text[8192];
  size_t len = fread(text, 1, sizeof text - 1, f);
  text[len] = '\0';
  fclose(f);
  Diag d;
  diag_init(&d, stderr);
  FeDefine defs[] = { { "batch", "4" }, { "seq", "16" }, { "vocab", "16" }, { "hidden", "16" },
                      { "heads", "2" }, { "ffn", "32" }, { "layers", "1" } };
  Graph *fwd = fe_compile("models/tiny.cram", text, len, defs, 7, &d);
  CHECK(fwd != NULL);
  if (!fwd) goto done;
  Graph *ad = pass_autodiff(fwd, &d);
  AdamWOptions o = pass_adamw_defaults();
  Graph *ts = ad ? pass_train_step(ad, &o, &d) : NULL;
  CHECK(ts != NULL);
  if (!ts) goto done;

  int np = 0;
  for (ValueId v = 0; v < fwd->n; v++) np += fwd->nodes[v].op == OP_PARAM;
  double **p = calloc((size_t)np, sizeof *p), **m = calloc((size_t)np, sizeof *m), **vv = calloc((size_t)np, sizeof *vv);
  const char **names = calloc((size_t)np, sizeof *names);
  int64_t *sizes = calloc((size_t)np, sizeof *sizes);
  int k = 0;
  char err[256], nm[256];
  for (ValueId v = 0; v < fwd->n; v++) {
    const Node *n = &fwd->nodes[v];
    if (n->op != OP_PARAM) continue;
    names[k] = ir_get_str(n, ATTR_NAME);
    sizes[k] = ir_shape_numel(&n->shape);
    p[k] = malloc((size_t)sizes[k] * sizeof(double));
    m[k] = calloc((size_t)sizes[k], sizeof(double));
    vv[k] = calloc((size_t)sizes[k], sizeof(double));
    CHECK(ir_init_param(n, 1, p[k], err, sizeof err));
    for (int64_t i = 0; i < sizes[k]; i++) p[k][i] = interp_round_f32(p[k][i]);
    k++;
  }
  double tok[B * S], tgt[B * S], step, lr = 1e-2, first = 0, last = 0, hyper[IR_ADAM_HYPER];
  pass_adamw_hyper(&o, hyper);
  double **bufs = calloc(ts->n, sizeof *bufs);
  bool *owned = calloc(ts->n, sizeof *owned);
  InterpOpts io = { .prec = INTERP_F32 };
  bool ok = true;
  for (int t = 1; t <= STEPS && ok; t++) {
    for (int b = 0; b < B; b++) {
      int chosen[S] = { 0 }, c = 0;
      uint64_t r = mix((uint64_t)t * 1000 + (uint64_t)b);
      while (c < 4) {
        int s = (int)(r % S);
        r = mix(r);
        if (!chosen[s]) chosen[s] = 1, c++;
      }
      for (int s = 0; s < S; s++) {
        int orig = 2 + (s + b) % 6;
        tok[b * S + s] = chosen[s] ? 1 : orig;
        tgt[b * S + s] = chosen[s] ? orig : -100;
      }
    }
    step = t;
    memset(bufs, 0, ts->n * sizeof *bufs);
    bufs[find(ts, OP_INPUT, "tokens")] = tok;
    bufs[find(ts, OP_INPUT, "targets")] = tgt;
    bufs[find(ts, OP_INPUT, "step")] = &step;
    bufs[find(ts, OP_INPUT, "lr")] = &lr;
    bufs[find(ts, OP_INPUT, "hyper")] = hyper;
    for (int i = 0; i < np; i++) {
      bufs[find(ts, OP_PARAM, names[i])] = p[i];
      snprintf(nm, sizeof nm, "adam_m.%s", names[i]);
      bufs[find(ts, OP_INPUT, nm)] = m[i];
      snprintf(nm, sizeof nm, "adam_v.%s", names[i]);
      bufs[find(ts, OP_INPUT, nm)] = vv[i];
    }
    ok = interp_run(ts, &io, bufs, owned, err, sizeof err);
    if (!ok) {
      fprintf(stderr, "interp: %s\n", err);
      break;
    }
    double loss = bufs[out(ts, "loss")][0];
    if (t <= 5) first += loss / 5;
    if (t > STEPS - 5) last += loss / 5;
    if (t == 1 || t % 100 == 0) fprintf(stderr, "step %d: loss %.4f grad_norm %.4f\n", t, loss, bufs[out(ts, "grad_norm")][0]);
    for (int i = 0; i < np; i++) {
      size_t sz = (size_t)sizes[i] * sizeof(double);
      snprintf(nm, sizeof nm, "param.%s", names[i]);
      memcpy(p[i], bufs[out(ts, nm)], sz);
      snprintf(nm, sizeof nm, "adam_m.%s", names[i]);
      memcpy(m[i], bufs[out(ts, nm)], sz);
      snprintf(nm, sizeof nm, "adam_v.%s", names[i]);
      memcpy(vv[i], bufs[out(ts, nm)], sz);
    }
    interp_free(ts, bufs, owned);
  }
  CHECK(ok);
  fprintf(stderr, "mean loss: first 5 steps %.4f, last 5 steps %.4f (ln %d = %.4f)\n", first, last, V, log((double)V));
  CHECK(fabs(first - log((double)V)) < 0.5); /* starts near chance */
  CHECK(last < 0.5 * first);
  for (int i = 0; i < np; i++) {
    free(p[i]);
    free(m[i]);
    free(vv[i]);
  }
  free(p);
  free(m);
  free(vv);
  free(names);
  free(sizes);
  free(bufs);
  free(owned);
  ir_graph_free(ts);
  ir_graph_free(ad);
done:
  ir_graph_free(fwd);
  return check_summary("test_train_interp");
}
