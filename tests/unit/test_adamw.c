/* test_adamw.c: the optimizer pass (passes/adamw.c), its ops
 * (ir/shape_optim.c, ir/interp_optim.c) and parameter init (ir/init.c).
 *
 *  - clip + AdamW on hand-built gradients against values computed here from
 *    the formulas (torch clip_grad_norm_ + AdamW), over 3 steps, clipping
 *    active and inactive, no weight decay for decay=0 params, no clipping
 *    with max_norm <= 0;
 *  - accumulation: 2 microbatches of tiny.cram (accumulate x2 + update)
 *    equal one train step on the whole batch (loss average, gradients,
 *    updated params) when every sequence has the same number of targets;
 *  - shape-rule rejections; the train-step graph's inputs/outputs;
 *  - init: reproducible, independent of param order, seeds differ, N(0, s)
 *    statistics, ones / zeros / const.
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

#define NEAR(a, b, tol) (fabs((a) - (b)) <= (tol) * (1.0 + fabs(b)))

static ValueId find_src(const Graph *g, OpKind op, const char *name) {
  for (ValueId v = 0; v < g->n; v++)
    if (g->nodes[v].op == op && !strcmp(ir_get_str(&g->nodes[v], ATTR_NAME), name)) return v;
  return IR_NONE;
}

static ValueId find_out(const Graph *g, const char *name) {
  for (uint32_t i = 0; i < g->nout; i++)
    if (!strcmp(g->outputs[i].name, name)) return g->outputs[i].value;
  return IR_NONE;
}

static ValueId add_param(Graph *g, const char *name, int64_t n, int decay) {
  Shape s = ir_shape_make(1, (int64_t[]){ n });
  Attr a[4] = { ir_attr_str(ATTR_NAME, name), ir_attr_str(ATTR_INIT, "normal"), ir_attr_float(ATTR_SCALE, 0.02),
                ir_attr_int(ATTR_DECAY, decay) };
  return ir_add_source(g, OP_PARAM, DT_F32, &s, a, 4, (SrcLoc){ 0 });
}

static ValueId add_input(Graph *g, const char *name, DType dt, int rank, const int64_t *dims) {
  Shape s = ir_shape_make(rank, dims);
  Attr a = ir_attr_str(ATTR_NAME, name);
  return ir_add_source(g, OP_INPUT, dt, &s, &a, 1, (SrcLoc){ 0 });
}

/* A stand-in for an autodiff graph: the gradients are inputs "gp", "gq". */
static Graph *fake_autodiff(void) {
  Graph *g = ir_graph_new("fake");
  Diag d;
  diag_init(&d, stderr);
  ValueId p = add_param(g, "p", 3, 1), q = add_param(g, "q", 2, 0);
  ValueId gp = add_input(g, "gp", DT_F32, 1, (int64_t[]){ 3 }), gq = add_input(g, "gq", DT_F32, 1, (int64_t[]){ 2 });
  ValueId sp = ir_add(g, OP_SUMSQ, &p, 1, NULL, 0, (SrcLoc){ 0 }, &d);
  ValueId sq = ir_add(g, OP_SUMSQ, &q, 1, NULL, 0, (SrcLoc){ 0 }, &d);
  ValueId loss = ir_add(g, OP_ADD, (ValueId[]){ sp, sq }, 2, NULL, 0, (SrcLoc){ 0 }, &d);
  ir_add_output(g, "loss", loss);
  ir_add_output(g, "grad.p", gp);
  ir_add_output(g, "grad.q", gq);
  return g;
}

/* Hand reference: one clip + AdamW step over all params (flattened). */
typedef struct Ref {
  double p[5], m[5], v[5];
} Ref;

static double ref_step(Ref *r, const double *g, const int *decay, int t, double lr, const AdamWOptions *o) {
  double tot = 0;
  for (int i = 0; i < 5; i++) tot += g[i] * g[i];
  double norm = sqrt(tot), coef = o->max_norm > 0 ? fmin(1.0, o->max_norm / (norm + 1e-6)) : 1.0;
  double bc1 = 1 - pow(o->beta1, t), bc2 = 1 - pow(o->beta2, t);
  for (int i = 0; i < 5; i++) {
    double gc = g[i] * coef;
    r->m[i] = o->beta1 * r->m[i] + (1 - o->beta1) * gc;
    r->v[i] = o->beta2 * r->v[i] + (1 - o->beta2) * gc * gc;
    double wd = decay[i] ? o->weight_decay : o->weight_decay_other;
    r->p[i] -= lr * ((r->m[i] / bc1) / (sqrt(r->v[i] / bc2) + o->eps) + wd * r->p[i]);
  }
  return norm;
}

/* other_recipe: betas, eps and both decays away from the defaults, all read
 * from the "hyper" input at run time (one graph, any recipe). */
static void test_update_by_hand(double max_norm, double gscale, bool other_recipe) {
  Graph *ad = fake_autodiff();
  Diag d;
  diag_init(&d, stderr);
  AdamWOptions o = pass_adamw_defaults();
  o.max_norm = max_norm;
  o.eps = 1e-8; /* visible in the result */
  if (other_recipe) o.beta1 = 0.8, o.beta2 = 0.95, o.eps = 1e-6, o.weight_decay = 0.1, o.weight_decay_other = 0.05;
  Graph *ts = pass_train_step(ad, &o, &d);
  CHECK(ts != NULL);
  if (!ts) {
    ir_graph_free(ad);
    return;
  }
  CHECK(ir_verify(ts, &d));
  double p[3] = { 0.5, -1.0, 2.0 }, q[2] = { 1.5, -0.25 }, mp[3] = { 0 }, vp[3] = { 0 }, mq[2] = { 0 }, vq[2] = { 0 };
  Ref r = { { 0.5, -1.0, 2.0, 1.5, -0.25 }, { 0 }, { 0 } };
  int decay[5] = { 1, 1, 1, 0, 0 };
  double lr = 0.01;
  for (int t = 1; t <= 3; t++) {
    double gp[3] = { 0.3 * gscale * t, -0.1 * gscale, 0.0 }, gq[2] = { 0.0, 0.7 * gscale };
    double g[5] = { gp[0], gp[1], gp[2], gq[0], gq[1] };
    double step = t;
    double **bufs = calloc(ts->n, sizeof *bufs);
    bool *owned = calloc(ts->n, sizeof *owned);
    bufs[find_src(ts, OP_PARAM, "p")] = p;
    bufs[find_src(ts, OP_PARAM, "q")] = q;
    bufs[find_src(ts, OP_INPUT, "gp")] = gp;
    bufs[find_src(ts, OP_INPUT, "gq")] = gq;
    bufs[find_src(ts, OP_INPUT, "adam_m.p")] = mp;
    bufs[find_src(ts, OP_INPUT, "adam_v.p")] = vp;
    bufs[find_src(ts, OP_INPUT, "adam_m.q")] = mq;
    bufs[find_src(ts, OP_INPUT, "adam_v.q")] = vq;
    bufs[find_src(ts, OP_INPUT, "step")] = &step;
    bufs[find_src(ts, OP_INPUT, "lr")] = &lr;
    double hyper[IR_ADAM_HYPER];
    pass_adamw_hyper(&o, hyper);
    bufs[find_src(ts, OP_INPUT, "hyper")] = hyper;
    char err[256];
    InterpOpts io = { .prec = INTERP_F64 };
    bool ok = interp_run(ts, &io, bufs, owned, err, sizeof err);
    CHECK(ok);
    if (!ok) fprintf(stderr, "    %s\n", err);
    double norm = ref_step(&r, g, decay, t, lr, &o);
    if (ok) {
      CHECK(NEAR(bufs[find_out(ts, "grad_norm")][0], norm, 1e-14));
      const double *np = bufs[find_out(ts, "param.p")], *nq = bufs[find_out(ts, "param.q")];
      const double *nmp = bufs[find_out(ts, "adam_m.p")], *nvq = bufs[find_out(ts, "adam_v.q")];
      for (int i = 0; i < 3; i++) CHECK(NEAR(np[i], r.p[i], 1e-14));
      for (int i = 0; i < 2; i++) CHECK(NEAR(nq[i], r.p[3 + i], 1e-14));
      for (int i = 0; i < 3; i++) CHECK(NEAR(nmp[i], r.m[i], 1e-14));
      for (int i = 0; i < 2; i++) CHECK(NEAR(nvq[i], r.v[3 + i], 1e-14));
      /* q[0] has zero gradient and decay 0: unchanged (shrinks by lr*wd_other when that is set); p[2] has zero
       * gradient and decay 1: shrinks by lr*wd */
      CHECK(o.weight_decay_other == 0 ? nq[0] == q[0] : NEAR(nq[0], q[0] * (1 - lr * o.weight_decay_other), 1e-14));
      CHECK(NEAR(np[2], p[2] * (1 - lr * o.weight_decay), 1e-14) && np[2] != p[2]);
      memcpy(p, np, sizeof p);
      memcpy(q, nq, sizeof q);
      memcpy(mp, nmp, sizeof mp);
      memcpy(vq, nvq, sizeof vq);
      memcpy(vp, bufs[find_out(ts, "adam_v.p")], sizeof vp);
      memcpy(mq, bufs[find_out(ts, "adam_m.q")], sizeof mq);
    }
    interp_free(ts, bufs, owned);
    free(bufs);
    free(owned);
  }
  ir_graph_free(ts);
  ir_graph_free(ad);
}

/* Concrete numbers, step 1, clipping active: g = (3, 4) has norm 5, coef = 0.5 / (5 + 1e-6). */
static void test_clip_numbers(void) {
  Graph *g = ir_graph_new("clip");
  Diag d;
  diag_init(&d, stderr);
  ValueId x = add_input(g, "x", DT_F32, 1, (int64_t[]){ 2 });
  ValueId hy = add_input(g, "hyper", DT_F32, 1, (int64_t[]){ IR_ADAM_HYPER });
  ValueId sq = ir_add(g, OP_SUMSQ, &x, 1, NULL, 0, (SrcLoc){ 0 }, &d);
  ValueId c = ir_add(g, OP_CLIP_COEF, (ValueId[]){ sq, hy }, 2, NULL, 0, (SrcLoc){ 0 }, &d);
  ValueId n = ir_add(g, OP_SQRT, &sq, 1, NULL, 0, (SrcLoc){ 0 }, &d);
  double xv[2] = { 3, 4 }, hv[IR_ADAM_HYPER] = { 0.9, 0.98, 1e-12, 0.01, 0, 0.5 };
  double *bufs[8] = { 0 };
  bool owned[8];
  bufs[x] = xv;
  bufs[hy] = hv;
  char err[128];
  InterpOpts io = { .prec = INTERP_F64 };
  CHECK(interp_run(g, &io, bufs, owned, err, sizeof err));
  CHECK(bufs[sq][0] == 25.0 && bufs[n][0] == 5.0);
  CHECK(bufs[c][0] == 0.5 / (5.0 + 1e-6));
  interp_free(g, bufs, owned);
  xv[0] = 0.3;
  xv[1] = 0.4; /* norm 0.5: coef = 0.5 / 0.500001 < 1 */
  bufs[x] = xv;
  bufs[hy] = hv;
  CHECK(interp_run(g, &io, bufs, owned, err, sizeof err));
  CHECK(NEAR(bufs[c][0], 0.5 / (0.5 + 1e-6), 1e-15) && bufs[c][0] < 1.0);
  interp_free(g, bufs, owned);
  xv[0] = 0.03;
  xv[1] = 0.04;
  bufs[x] = xv;
  bufs[hy] = hv;
  CHECK(interp_run(g, &io, bufs, owned, err, sizeof err));
  CHECK(bufs[c][0] == 1.0);
  interp_free(g, bufs, owned);
  /* the clip norm is read at run time: 0 turns clipping off, 2.5 halves (3, 4) */
  xv[0] = 3, xv[1] = 4, hv[IR_HYP_MAX_NORM] = 0;
  bufs[x] = xv, bufs[hy] = hv;
  CHECK(interp_run(g, &io, bufs, owned, err, sizeof err) && bufs[c][0] == 1.0);
  interp_free(g, bufs, owned);
  hv[IR_HYP_MAX_NORM] = 2.5;
  bufs[x] = xv, bufs[hy] = hv;
  CHECK(interp_run(g, &io, bufs, owned, err, sizeof err) && NEAR(bufs[c][0], 2.5 / (5.0 + 1e-6), 1e-15));
  interp_free(g, bufs, owned);
  /* shape-rule rejections */
  FILE *sink = fopen("/dev/null", "w");
  Diag q;
  diag_init(&q, sink);
  CHECK(ir_add(g, OP_CLIP_COEF, (ValueId[]){ x, hy }, 2, NULL, 0, (SrcLoc){ 0 }, &q) == IR_NONE); /* not a scalar */
  CHECK(ir_add(g, OP_CLIP_COEF, (ValueId[]){ sq, x }, 2, NULL, 0, (SrcLoc){ 0 }, &q) == IR_NONE); /* hyper not [6] */
  ValueId st = add_input(g, "step", DT_F32, 0, NULL), lr = add_input(g, "lr", DT_F32, 0, NULL);
  ValueId sch = ir_add(g, OP_ADAM_SCHED, (ValueId[]){ st, lr, hy }, 3, NULL, 0, (SrcLoc){ 0 }, &d);
  CHECK(sch != IR_NONE);
  CHECK(ir_add(g, OP_ADAM_M, (ValueId[]){ x, sq, sq, sch }, 4, NULL, 0, (SrcLoc){ 0 }, &q) == IR_NONE); /* shape mismatch */
  ValueId ids = add_input(g, "ids", DT_I32, 1, (int64_t[]){ 2 });
  CHECK(ir_add(g, OP_ADAM_M, (ValueId[]){ x, ids, sq, sch }, 4, NULL, 0, (SrcLoc){ 0 }, &q) == IR_NONE); /* i32 gradient */
  CHECK(ir_add(g, OP_ADAM_V, (ValueId[]){ x, x, sq, hy }, 4, NULL, 0, (SrcLoc){ 0 }, &q) == IR_NONE);    /* sched not [8] */
  Attr dec = ir_attr_int(ATTR_DECAY, 1);
  CHECK(ir_add(g, OP_ADAMW_PARAM, (ValueId[]){ x, x, x, x }, 4, &dec, 1, (SrcLoc){ 0 }, &q) == IR_NONE); /* sched not [8] */
  CHECK(q.nerrors == 6);
  fclose(sink);
  ir_graph_free(g);
}

static void test_bad_options(void) {
  Graph *ad = fake_autodiff();
  FILE *sink = fopen("/dev/null", "w");
  Diag d;
  diag_init(&d, sink);
  AdamWOptions o = pass_adamw_defaults();
  o.beta2 = 1.0;
  CHECK(pass_train_step(ad, &o, &d) == NULL && d.nerrors == 1);
  o = pass_adamw_defaults();
  o.accum = 0;
  CHECK(pass_update(ad, &o, &d) == NULL && d.nerrors == 2);
  Graph *nol = ir_graph_new("x");
  add_param(nol, "p", 3, 1);
  o = pass_adamw_defaults();
  CHECK(pass_train_step(nol, &o, &d) == NULL && d.nerrors == 3); /* no loss */
  ir_add_output(nol, "loss", 0);
  CHECK(pass_train_step(nol, &o, &d) == NULL && d.nerrors == 4); /* no grad.p */
  ir_graph_free(nol);
  fclose(sink);
  ir_graph_free(ad);
}

/* ---- accumulation on tiny.cram ------------------------------------------------ */

static char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *b = malloc((size_t)n + 1);
  *len = fread(b, 1, (size_t)n, f);
  b[*len] = '\0';
  fclose(f);
  return b;
}

static Graph *tiny(int batch, Diag *d) {
  size_t len;
  char *text = slurp("models/tiny.cram", &len);
  if (!text) return NULL;
  char bs[16];
  snprintf(bs, sizeof bs, "%d", batch);
  FeDefine defs[] = { { "batch", bs },  { "seq", "8" },  { "vocab", "24" }, { "hidden", "8" },
                      { "heads", "2" }, { "ffn", "16" }, { "layers", "1" } };
  Graph *g = fe_compile("models/tiny.cram", text, len, defs, 7, d);
  free(text);
  return g;
}

typedef struct Bound {
  double **bufs;
  bool *owned;
} Bound;

static void bind_name(const Graph *g, Bound *b, OpKind op, const char *name, double *data) {
  ValueId v = find_src(g, op, name);
  IR_ASSERT(v != IR_NONE);
  b->bufs[v] = data;
}

static void test_accumulation(void) {
  Diag d;
  diag_init(&d, stderr);
  Graph *f4 = tiny(4, &d), *f2 = tiny(2, &d);
  CHECK(f4 && f2);
  if (!f4 || !f2) return;
  Graph *ad4 = pass_autodiff(f4, &d), *ad2 = pass_autodiff(f2, &d);
  AdamWOptions o = pass_adamw_defaults();
  o.emit_grads = true;
  Graph *ts = pass_train_step(ad4, &o, &d), *acc = pass_accumulate(ad2, &d), *up = pass_update(f2, &o, &d);
  CHECK(ts && acc && up);
  if (!ts || !acc || !up) return;
  CHECK(ir_verify(ts, &d) && ir_verify(acc, &d) && ir_verify(up, &d));
  /* outputs of the train step: loss, grad_norm, param.*, adam_m.*, adam_v.*, grad.* */
  int np = 0;
  for (ValueId v = 0; v < f4->n; v++) np += f4->nodes[v].op == OP_PARAM;
  CHECK(ts->nout == (uint32_t)(2 + 4 * np) && !strcmp(ts->outputs[0].name, "loss") && !strcmp(ts->outputs[1].name, "grad_norm"));
  CHECK(acc->nout == (uint32_t)(1 + np) && up->nout == (uint32_t)(1 + 3 * np));
  /* batch: 4 sequences, exactly 2 targets each */
  double tok[4 * 8], tgt[4 * 8];
  for (int i = 0; i < 32; i++) {
    tok[i] = (i * 7 + 3) % 24;
    tgt[i] = (i % 8 == (i / 8) % 8 || i % 8 == 5) ? (i * 5 + 1) % 24 : -100;
  }
  /* params */
  typedef struct P {
    const char *name;
    int64_t n;
    double *p, *m, *v, *acc;
  } P;
  P *ps = calloc((size_t)np, sizeof *ps);
  int k = 0;
  for (ValueId v = 0; v < f4->n; v++) {
    const Node *n = &f4->nodes[v];
    if (n->op != OP_PARAM) continue;
    ps[k].name = ir_get_str(n, ATTR_NAME);
    ps[k].n = ir_shape_numel(&n->shape);
    ps[k].p = malloc((size_t)ps[k].n * sizeof(double));
    ps[k].m = calloc((size_t)ps[k].n, sizeof(double));
    ps[k].v = calloc((size_t)ps[k].n, sizeof(double));
    ps[k].acc = calloc((size_t)ps[k].n, sizeof(double));
    char err[128];
    CHECK(ir_init_param(n, 42, ps[k].p, err, sizeof err));
    k++;
  }
  double step = 1, lr = 1e-3, half = 0.5;
  char err[256];
  InterpOpts io = { .prec = INTERP_F64 };
  /* whole batch */
  Bound a = { calloc(ts->n, sizeof(double *)), calloc(ts->n, sizeof(bool)) };
  bind_name(ts, &a, OP_INPUT, "tokens", tok);
  bind_name(ts, &a, OP_INPUT, "targets", tgt);
  bind_name(ts, &a, OP_INPUT, "step", &step);
  bind_name(ts, &a, OP_INPUT, "lr", &lr);
  double hyper[IR_ADAM_HYPER];
  AdamWOptions dflt = pass_adamw_defaults();
  pass_adamw_hyper(&dflt, hyper);
  bind_name(ts, &a, OP_INPUT, "hyper", hyper);
  char nm[256];
  for (int i = 0; i < np; i++) {
    bind_name(ts, &a, OP_PARAM, ps[i].name, ps[i].p);
    snprintf(nm, sizeof nm, "adam_m.%s", ps[i].name);
    bind_name(ts, &a, OP_INPUT, nm, ps[i].m);
    snprintf(nm, sizeof nm, "adam_v.%s", ps[i].name);
    bind_name(ts, &a, OP_INPUT, nm, ps[i].v);
  }
  CHECK(interp_run(ts, &io, a.bufs, a.owned, err, sizeof err));
  /* two microbatches */
  Bound b = { calloc(acc->n, sizeof(double *)), calloc(acc->n, sizeof(bool)) };
  double loss_sum = 0;
  for (int mb = 0; mb < 2; mb++) {
    bind_name(acc, &b, OP_INPUT, "tokens", tok + mb * 16);
    bind_name(acc, &b, OP_INPUT, "targets", tgt + mb * 16);
    bind_name(acc, &b, OP_INPUT, "accum_scale", &half);
    for (int i = 0; i < np; i++) {
      bind_name(acc, &b, OP_PARAM, ps[i].name, ps[i].p);
      snprintf(nm, sizeof nm, "grad_acc.%s", ps[i].name);
      bind_name(acc, &b, OP_INPUT, nm, ps[i].acc);
    }
    CHECK(interp_run(acc, &io, b.bufs, b.owned, err, sizeof err));
    loss_sum += b.bufs[find_out(acc, "loss")][0];
    for (int i = 0; i < np; i++) {
      snprintf(nm, sizeof nm, "grad_acc.%s", ps[i].name);
      memcpy(ps[i].acc, b.bufs[find_out(acc, nm)], (size_t)ps[i].n * sizeof(double));
    }
    interp_free(acc, b.bufs, b.owned);
  }
  CHECK(NEAR(loss_sum / 2, a.bufs[find_out(ts, "loss")][0], 1e-13));
  double worst = 0;
  for (int i = 0; i < np; i++) {
    snprintf(nm, sizeof nm, "grad.%s", ps[i].name);
    const double *gw = a.bufs[find_out(ts, nm)];
    for (int64_t j = 0; j < ps[i].n; j++) worst = fmax(worst, fabs(gw[j] - ps[i].acc[j]));
  }
  CHECK(worst < 1e-13);
  if (worst >= 1e-13) fprintf(stderr, "    accumulated gradient differs by %g\n", worst);
  Bound c = { calloc(up->n, sizeof(double *)), calloc(up->n, sizeof(bool)) };
  bind_name(up, &c, OP_INPUT, "step", &step);
  bind_name(up, &c, OP_INPUT, "lr", &lr);
  bind_name(up, &c, OP_INPUT, "hyper", hyper);
  for (int i = 0; i < np; i++) {
    bind_name(up, &c, OP_PARAM, ps[i].name, ps[i].p);
    snprintf(nm, sizeof nm, "grad_acc.%s", ps[i].name);
    bind_name(up, &c, OP_INPUT, nm, ps[i].acc);
    snprintf(nm, sizeof nm, "adam_m.%s", ps[i].name);
    bind_name(up, &c, OP_INPUT, nm, ps[i].m);
    snprintf(nm, sizeof nm, "adam_v.%s", ps[i].name);
    bind_name(up, &c, OP_INPUT, nm, ps[i].v);
  }
  CHECK(interp_run(up, &io, c.bufs, c.owned, err, sizeof err));
  CHECK(NEAR(c.bufs[find_out(up, "grad_norm")][0], a.bufs[find_out(ts, "grad_norm")][0], 1e-13));
  worst = 0;
  for (int i = 0; i < np; i++) {
    snprintf(nm, sizeof nm, "param.%s", ps[i].name);
    const double *x = c.bufs[find_out(up, nm)], *y = a.bufs[find_out(ts, nm)];
    for (int64_t j = 0; j < ps[i].n; j++) worst = fmax(worst, fabs(x[j] - y[j]));
  }
  CHECK(worst < 1e-12);
  interp_free(up, c.bufs, c.owned);
  interp_free(ts, a.bufs, a.owned);
  free(a.bufs);
  free(a.owned);
  free(b.bufs);
  free(b.owned);
  free(c.bufs);
  free(c.owned);
  for (int i = 0; i < np; i++) {
    free(ps[i].p);
    free(ps[i].m);
    free(ps[i].v);
    free(ps[i].acc);
  }
  free(ps);
  ir_graph_free(ts);
  ir_graph_free(acc);
  ir_graph_free(up);
  ir_graph_free(ad4);
  ir_graph_free(ad2);
  ir_graph_free(f4);
  ir_graph_free(f2);
}

/* ---- init ---------------------------------------------------------------------- */

static void test_init(void) {
  Graph *g1 = ir_graph_new("a"), *g2 = ir_graph_new("b");
  ValueId a1 = add_param(g1, "layers.0.w", 10001, 1);
  add_param(g1, "other", 5, 1);
  add_param(g2, "other", 5, 1);
  ValueId a2 = add_param(g2, "layers.0.w", 10001, 1);
  double *x = malloc(10001 * sizeof(double)), *y = malloc(10001 * sizeof(double)), *z = malloc(10001 * sizeof(double));
  char err[128];
  CHECK(ir_init_param(ir_node(g1, a1), 7, x, err, sizeof err));
  CHECK(ir_init_param(ir_node(g2, a2), 7, y, err, sizeof err));
  CHECK(!memcmp(x, y, 10001 * sizeof(double))); /* independent of graph order */
  CHECK(ir_init_param(ir_node(g1, a1), 8, z, err, sizeof err));
  CHECK(memcmp(x, z, 10001 * sizeof(double)) != 0); /* seed matters */
  double s = 0, s2 = 0;
  for (int i = 0; i < 10001; i++) {
    s += x[i];
    s2 += x[i] * x[i];
  }
  double mean = s / 10001, sd = sqrt(s2 / 10001 - mean * mean);
  CHECK(fabs(mean) < 0.001 && fabs(sd - 0.02) < 0.0007);
  ValueId o1 = 1; /* "other" in g1 */
  CHECK(ir_init_param(ir_node(g1, o1), 7, z, err, sizeof err));
  CHECK(z[0] != x[0]); /* names give different streams */
  Graph *g3 = ir_graph_new("c");
  Shape s4 = ir_shape_make(1, (int64_t[]){ 4 });
  const char *kinds[] = { "ones", "zeros", "const" };
  double want[] = { 1, 0, 0.125 };
  for (int k = 0; k < 3; k++) {
    Attr at[4] = { ir_attr_str(ATTR_NAME, kinds[k]), ir_attr_str(ATTR_INIT, kinds[k]), ir_attr_float(ATTR_SCALE, 0.125),
                   ir_attr_int(ATTR_DECAY, 0) };
    ValueId v = ir_add_source(g3, OP_PARAM, DT_F32, &s4, at, 4, (SrcLoc){ 0 });
    CHECK(ir_init_param(ir_node(g3, v), 1, z, err, sizeof err));
    CHECK(z[0] == want[k] && z[3] == want[k]);
  }
  Graph *g4 = fake_autodiff(); /* node 2 is an input, not a param */
  CHECK(!ir_init_param(&g4->nodes[2], 1, z, err, sizeof err) && strstr(err, "not a param"));
  ir_graph_free(g4);
  CHECK(ir_init_name_hash("a") != ir_init_name_hash("b"));
  free(x);
  free(y);
  free(z);
  ir_graph_free(g1);
  ir_graph_free(g2);
  ir_graph_free(g3);
}

int main(void) {
  test_update_by_hand(0.5, 1.0, false);  /* norm > 0.5: clipping active */
  test_update_by_hand(0.5, 0.01, false); /* small gradients: coef 1 */
  test_update_by_hand(0.0, 3.0, false);  /* clipping off */
  test_update_by_hand(1.0, 1.0, true);   /* another recipe through the same graph shape */
  test_clip_numbers();
  test_bad_options();
  test_accumulation();
  test_init();
  return check_summary("test_adamw");
}
