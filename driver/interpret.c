/* interpret.c: `cramc FILE.cram --interpret ...`, the train step run in the
 * reference interpreter, writing the tensors reference/crammed_torch.py's CLI
 * writes (loss, grad_norm, grad.<p> of step 1, param.<p> after the last step)
 * so the two can be compared tensor by tensor. See docs/train-step.md. */
#include "interpret.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frontend.h"
#include "init.h"
#include "interp.h"
#include "passes.h"
#include "safetensors.h"

static const char usage[] =
  "usage: cramc FILE.cram --interpret --batch B.safetensors [--params P.safetensors | --init-seed S]\n"
  "             [--steps N] [--lr X] [--precision bf16|f32|f64] [--accum K] [--clip C] [--weight-decay W]\n"
  "             [-D name=value]... --out OUT.safetensors\n"
  "\n"
  "Run the whole train step (forward, backward, clip, AdamW) N times on one batch\n"
  "in the reference interpreter. The batch holds every INPUT of the model (tokens,\n"
  "targets, ...) with K * batch rows for --accum K. OUT gets loss [N], grad_norm [N],\n"
  "grad.<p> (step 1, before clipping) and param.<p> (after step N), in the precision's\n"
  "dtype: the tensors reference/crammed_torch.py writes. See docs/train-step.md.\n";

typedef struct IArgs {
  const char *input, *batch, *params, *out;
  long long seed;
  bool have_seed;
  long steps, accum;
  double lr, clip, wd;
  InterpPrecision prec;
  bool bf16; /* autocast_bf16 on the forward graph, then the f32 mode (which rounds bf16 nodes) */
  FeDefine *defs;
  int ndefs;
} IArgs;

static int uerr(const char *fmt, const char *arg) {
  fprintf(stderr, "cramc: error: ");
  fprintf(stderr, fmt, arg);
  fprintf(stderr, " (see cramc --interpret --help)\n");
  return 2;
}

static bool parse_num(const char *s, double *v) {
  char *end;
  errno = 0;
  *v = strtod(s, &end);
  return *s && !*end && !errno && isfinite(*v);
}

static bool parse_int(const char *s, long long *v) {
  char *end;
  errno = 0;
  *v = strtoll(s, &end, 10);
  return *s && !*end && !errno;
}

static int parse(int argc, char **argv, IArgs *a) {
  a->steps = 1;
  a->accum = 1;
  a->lr = 1e-3;
  a->clip = 0.5;
  a->wd = 0.01;
  a->prec = INTERP_F32;
  a->defs = calloc((size_t)argc, sizeof(FeDefine));
  if (!a->defs) {
    fputs("cramc: error: out of memory\n", stderr);
    return 1;
  }
  for (int i = 1; i < argc; i++) {
    char *s = argv[i];
    const char *val = i + 1 < argc ? argv[i + 1] : NULL;
    double x;
    long long n;
#define NEED()                                    \
  do {                                            \
    if (!val) return uerr("%s needs a value", s); \
    i++;                                          \
  } while (0)
    if (!strcmp(s, "--help") || !strcmp(s, "-h")) {
      fputs(usage, stdout);
      return 0;
    } else if (!strcmp(s, "--interpret")) {
    } else if (!strcmp(s, "--batch")) {
      NEED();
      a->batch = val;
    } else if (!strcmp(s, "--params")) {
      NEED();
      a->params = val;
    } else if (!strcmp(s, "--out")) {
      NEED();
      a->out = val;
    } else if (!strcmp(s, "--init-seed")) {
      NEED();
      if (!parse_int(val, &n) || n < 0) return uerr("--init-seed needs a non-negative integer, got '%s'", val);
      a->seed = n;
      a->have_seed = true;
    } else if (!strcmp(s, "--steps") || !strcmp(s, "--accum")) {
      NEED();
      if (!parse_int(val, &n) || n < 1 || n > 1000000) return uerr("expected an integer in [1, 1000000], got '%s'", val);
      if (s[2] == 's') a->steps = (long)n;
      else a->accum = (long)n;
    } else if (!strcmp(s, "--lr") || !strcmp(s, "--clip") || !strcmp(s, "--weight-decay")) {
      NEED();
      if (!parse_num(val, &x)) return uerr("expected a number, got '%s'", val);
      if (!strcmp(s, "--lr")) a->lr = x;
      else if (!strcmp(s, "--clip")) a->clip = x;
      else a->wd = x;
    } else if (!strcmp(s, "--precision")) {
      NEED();
      a->bf16 = !strcmp(val, "bf16");
      if (!strcmp(val, "f32") || a->bf16) a->prec = INTERP_F32;
      else if (!strcmp(val, "f64")) a->prec = INTERP_F64;
      else return uerr("--precision must be bf16, f32 or f64, got '%s'", val);
    } else if (!strncmp(s, "-D", 2)) {
      const char *def = s[2] ? s + 2 : (val ? argv[++i] : NULL);
      if (!def) return uerr("%s needs name=value", s);
      char *copy = strdup(def);
      char *eq = copy ? strchr(copy, '=') : NULL;
      if (!eq || eq == copy || !eq[1]) {
        free(copy);
        return uerr("malformed define '%s' (expected -D name=value)", def);
      }
      *eq = '\0';
      for (int k = 0; k < a->ndefs; k++)
        if (!strcmp(a->defs[k].name, copy)) {
          free(copy);
          return uerr("-D %s given twice: give each dim once", a->defs[k].name);
        }
      a->defs[a->ndefs].name = copy;
      a->defs[a->ndefs].value = eq + 1;
      a->ndefs++;
    } else if (s[0] == '-' && s[1]) {
      return uerr("unknown option '%s' for --interpret", s);
    } else {
      if (a->input) return uerr("more than one input file ('%s')", s);
      a->input = s;
    }
#undef NEED
  }
  if (!a->input) return uerr("%s", "no input file");
  if (!a->batch) return uerr("%s", "--interpret needs --batch B.safetensors");
  if (!a->out) return uerr("%s", "--interpret needs --out OUT.safetensors");
  if (a->params && a->have_seed) return uerr("%s", "give --params or --init-seed, not both");
  if (!a->params && !a->have_seed) a->have_seed = true; /* seed 0 */
  return -1;
}

/* ---- running graphs ---------------------------------------------------------- */

/* One graph with its buffer table. Sources are bound to caller arrays. */
typedef struct Run {
  const Graph *g;
  double **bufs;
  bool *owned;
} Run;

static bool run_init(Run *r, const Graph *g) {
  r->g = g;
  r->bufs = calloc(g->n ? g->n : 1, sizeof *r->bufs);
  r->owned = calloc(g->n ? g->n : 1, sizeof *r->owned);
  return r->bufs && r->owned;
}

static ValueId find_source(const Graph *g, OpKind op, const char *name) {
  for (ValueId v = 0; v < g->n; v++)
    if (g->nodes[v].op == op && !strcmp(ir_get_str(&g->nodes[v], ATTR_NAME), name)) return v;
  return IR_NONE;
}

static ValueId find_out(const Graph *g, const char *name) {
  for (uint32_t i = 0; i < g->nout; i++)
    if (!strcmp(g->outputs[i].name, name)) return g->outputs[i].value;
  return IR_NONE;
}

static bool bind(Run *r, OpKind op, const char *name, double *data) {
  ValueId v = find_source(r->g, op, name);
  if (v == IR_NONE) return false;
  r->bufs[v] = data;
  return true;
}

static bool execute(Run *r, const InterpOpts *o) {
  char err[512];
  /* interp_run clears owned[]; caller-bound sources are never owned. */
  if (!interp_run(r->g, o, r->bufs, r->owned, err, sizeof err)) {
    fprintf(stderr, "cramc: error: interpreter: %s\n", err);
    return false;
  }
  return true;
}

/* After a run: drop computed buffers (keep the source bindings). */
static void reset(Run *r) {
  interp_free(r->g, r->bufs, r->owned);
  for (ValueId v = 0; v < r->g->n; v++)
    if (ir_ops[r->g->nodes[v].op].cls != OC_SOURCE || r->g->nodes[v].op == OP_FILL || r->g->nodes[v].op == OP_SINUSOID ||
        r->g->nodes[v].op == OP_ARANGE)
      r->bufs[v] = NULL;
}

static const double *out_data(const Run *r, const char *name) {
  ValueId v = find_out(r->g, name);
  return v == IR_NONE ? NULL : r->bufs[v];
}

/* ---- the driver ------------------------------------------------------------- */

typedef struct Param {
  const char *name;
  ValueId node;
  int64_t numel;
  double *p, *m, *v, *acc, *grad1;
} Param;

static char *join(const char *a, const char *b) {
  size_t n = strlen(a) + strlen(b) + 1;
  char *s = malloc(n);
  if (s) snprintf(s, n, "%s%s", a, b);
  return s;
}

static void round_all(double *x, int64_t n, InterpPrecision prec) {
  if (prec == INTERP_F32)
    for (int64_t i = 0; i < n; i++) x[i] = interp_round_f32(x[i]);
}

/* Every failure path says why: an allocation failure used to exit 1 silently. */
static bool oom(const char *what) {
  fprintf(stderr, "cramc: error: --interpret: out of memory for %s\n", what);
  return false;
}
static bool internal(const char *what) {
  fprintf(stderr, "cramc: internal error: --interpret: %s (or out of memory)\n", what);
  return false;
}

/* The state of one `cramc --interpret` run; each step below fills or uses
 * part of it, and interp_free_state() releases all of it. */
typedef struct Interp {
  const IArgs *a;
  const Graph *fwd;
  Graph *ad, *ts, *acc, *up; /* ts: the single train-step graph (accum 1), else acc + up */
  Param *ps;
  int np;
  double **inputs; /* per forward INPUT node, per microbatch */
  ValueId *in_nodes;
  int nin;
  Run r1, r2; /* the train-step (or accumulate) graph's run; the update's */
  double *losses, *norms;
  double step_v, lr_v, scale_v;
  double hyper_v[IR_ADAM_HYPER]; /* betas, eps, both weight decays, clip: the update graph's `hyper` input */
  cram_st_file batch, pfile;
} Interp;

/* autodiff, then the train-step graph (accum 1) or the accumulate + update graphs */
static bool build_graphs(Interp *I, Diag *d) {
  const IArgs *a = I->a;
  AdamWOptions o = pass_adamw_defaults();
  o.max_norm = a->clip;
  o.weight_decay = a->wd;
  o.accum = (int)a->accum;
  o.emit_grads = true;
  pass_adamw_hyper(&o, I->hyper_v);
  for (int i = 0; i < IR_ADAM_HYPER && a->prec == INTERP_F32; i++) I->hyper_v[i] = interp_round_f32(I->hyper_v[i]);
  if (!(I->ad = pass_autodiff(I->fwd, d))) return false;
  if (a->accum == 1) return (I->ts = pass_train_step(I->ad, &o, d)) != NULL;
  return (I->acc = pass_accumulate(I->ad, d)) && (I->up = pass_update(I->fwd, &o, d));
}

/* One parameter's values: from --params (checked against the model) or its init rule. */
static bool param_values(Interp *I, Param *p, const Node *n) {
  const IArgs *a = I->a;
  if (!a->params) {
    char msg[256];
    if (!ir_init_param(n, (uint64_t)a->seed, p->p, msg, sizeof msg)) {
      fprintf(stderr, "cramc: error: %s\n", msg);
      return false;
    }
    return true;
  }
  const cram_st_tensor *t = cram_st_find(&I->pfile, p->name);
  if (!t) {
    fprintf(stderr, "cramc: error: %s: no tensor '%s' (a parameter of model %s)\n", a->params, p->name, I->fwd->name);
    return false;
  }
  bool same = t->rank == n->shape.rank && t->dtype != CRAM_ST_I32 && t->dtype != CRAM_ST_I64;
  for (int i = 0; same && i < t->rank; i++) same = t->shape[i] == n->shape.dim[i];
  if (!same) {
    char ty[200];
    fprintf(stderr, "cramc: error: %s: tensor '%s' is %s with %d dims; the model wants %s\n", a->params, p->name,
            cram_st_dtype_name(t->dtype), t->rank, ir_type_str(n->dtype, &n->shape, ty, sizeof ty));
    return false;
  }
  for (int64_t i = 0; i < p->numel; i++) p->p[i] = cram_st_get(t, i);
  return true;
}

/* The parameters and their Adam state; every tensor of --params must be one of them. */
static bool load_params(Interp *I) {
  const IArgs *a = I->a;
  const Graph *fwd = I->fwd;
  cram_err err = { 0 };
  for (ValueId v = 0; v < fwd->n; v++) I->np += fwd->nodes[v].op == OP_PARAM;
  if (!(I->ps = calloc((size_t)(I->np ? I->np : 1), sizeof *I->ps))) return oom("the parameter table");
  if (a->params && cram_st_read(a->params, &I->pfile, &err) != CRAM_OK) {
    fprintf(stderr, "cramc: error: %s\n", err.msg);
    return false;
  }
  int k = 0;
  for (ValueId v = 0; v < fwd->n; v++) {
    const Node *n = &fwd->nodes[v];
    if (n->op != OP_PARAM) continue;
    Param *p = &I->ps[k++];
    p->name = ir_get_str(n, ATTR_NAME);
    p->node = v;
    p->numel = ir_shape_numel(&n->shape);
    size_t sz = (size_t)p->numel * sizeof(double);
    p->p = malloc(sz);
    p->m = calloc(1, sz);
    p->v = calloc(1, sz);
    p->acc = calloc(1, sz);
    p->grad1 = calloc(1, sz);
    if (!p->p || !p->m || !p->v || !p->acc || !p->grad1) return oom(p->name);
    if (!param_values(I, p, n)) return false;
    round_all(p->p, p->numel, a->prec);
  }
  for (size_t i = 0; a->params && i < I->pfile.count; i++) {
    bool known = false;
    for (int j = 0; j < I->np && !known; j++) known = !strcmp(I->ps[j].name, I->pfile.tensors[i].name);
    if (!known) {
      fprintf(stderr, "cramc: error: %s: tensor '%s' is not a parameter of model %s\n", a->params, I->pfile.tensors[i].name,
              fwd->name);
      return false;
    }
  }
  return true;
}

/* The batch: every forward INPUT, with accum * B rows split into microbatches. */
static bool load_batch(Interp *I) {
  const IArgs *a = I->a;
  const Graph *fwd = I->fwd;
  cram_err err = { 0 };
  if (cram_st_read(a->batch, &I->batch, &err) != CRAM_OK) {
    fprintf(stderr, "cramc: error: %s\n", err.msg);
    return false;
  }
  for (ValueId v = 0; v < fwd->n; v++) I->nin += fwd->nodes[v].op == OP_INPUT;
  I->in_nodes = calloc((size_t)(I->nin ? I->nin : 1), sizeof *I->in_nodes);
  I->inputs = calloc((size_t)(I->nin ? I->nin : 1) * (size_t)a->accum, sizeof *I->inputs);
  if (!I->in_nodes || !I->inputs) return oom("the input table");
  int k = 0;
  for (ValueId v = 0; v < fwd->n; v++) {
    const Node *n = &fwd->nodes[v];
    if (n->op != OP_INPUT) continue;
    I->in_nodes[k] = v;
    const char *name = ir_get_str(n, ATTR_NAME);
    const cram_st_tensor *t = cram_st_find(&I->batch, name);
    char ty[200];
    ir_type_str(n->dtype, &n->shape, ty, sizeof ty);
    if (!t) {
      fprintf(stderr, "cramc: error: %s: no tensor '%s' (model input %s)\n", a->batch, name, ty);
      return false;
    }
    bool ok = t->rank == n->shape.rank && t->rank >= 1 && t->shape[0] == n->shape.dim[0] * a->accum;
    for (int i = 1; ok && i < t->rank; i++) ok = t->shape[i] == n->shape.dim[i];
    if (ok && n->dtype == DT_I32) ok = t->dtype == CRAM_ST_I32 || t->dtype == CRAM_ST_I64;
    if (!ok) {
      fprintf(stderr, "cramc: error: %s: tensor '%s' (%s, %d dims, first dim %lld) does not fit model input %s%s\n", a->batch,
              name, cram_st_dtype_name(t->dtype), t->rank, (long long)(t->rank ? t->shape[0] : 0), ty,
              a->accum > 1 ? " with --accum rows per microbatch" : "");
      return false;
    }
    int64_t per = ir_shape_numel(&n->shape);
    for (long mb = 0; mb < a->accum; mb++) {
      double *x = malloc((size_t)per * sizeof(double));
      if (!x) return oom("a batch input");
      I->inputs[(size_t)k * (size_t)a->accum + (size_t)mb] = x;
      for (int64_t i = 0; i < per; i++) x[i] = cram_st_get(t, (int64_t)mb * per + i);
      if (n->dtype != DT_I32) round_all(x, per, a->prec);
    }
    k++;
  }
  return true;
}

/* Binds parameter i's `prefix<name>` input of run r to data. */
static bool bind_state(Run *r, const char *prefix, const Param *p, double *data) {
  char *nm = join(prefix, p->name);
  bool ok = nm && bind(r, OP_INPUT, nm, data);
  free(nm);
  return ok;
}
/* Run r's `prefix<name>` output of parameter p (NULL if missing). */
static const double *state_out(const Run *r, const char *prefix, const Param *p) {
  char *nm = join(prefix, p->name);
  const double *d = nm ? out_data(r, nm) : NULL;
  free(nm);
  return d;
}

/* Copies the new parameters and moments out of run r (staged: r's inputs stay bound until reset);
 * missing: what to say if an output is missing. */
static bool take_update(Interp *I, Run *r, const char *missing) {
  for (int i = 0; i < I->np; i++) {
    Param *p = &I->ps[i];
    const double *np_ = state_out(r, "param.", p), *nm = state_out(r, "adam_m.", p), *nv = state_out(r, "adam_v.", p);
    if (!np_ || !nm || !nv) return internal(missing);
    size_t sz = (size_t)p->numel * sizeof(double);
    memcpy(p->acc, np_, sz); /* staging */
    memcpy(p->m, nm, sz);
    memcpy(p->v, nv, sz);
  }
  reset(r);
  for (int i = 0; i < I->np; i++) memcpy(I->ps[i].p, I->ps[i].acc, (size_t)I->ps[i].numel * sizeof(double));
  return true;
}

/* Step s with the single train-step graph (accum 1). */
static bool train_step(Interp *I, long s, const InterpOpts *io) {
  Run *r = &I->r1;
  for (int j = 0; j < I->nin; j++) r->bufs[I->in_nodes[j]] = I->inputs[(size_t)j * (size_t)I->a->accum];
  bool okb = bind(r, OP_INPUT, "step", &I->step_v) && bind(r, OP_INPUT, "lr", &I->lr_v) && bind(r, OP_INPUT, "hyper", I->hyper_v);
  for (int i = 0; okb && i < I->np; i++)
    okb = bind(r, OP_PARAM, I->ps[i].name, I->ps[i].p) && bind_state(r, "adam_m.", &I->ps[i], I->ps[i].m) &&
          bind_state(r, "adam_v.", &I->ps[i], I->ps[i].v);
  if (!okb) {
    fprintf(stderr, "cramc: internal error: train-step graph inputs do not match the model\n");
    return false;
  }
  if (!execute(r, io)) return false;
  I->losses[s - 1] = out_data(r, "loss")[0];
  I->norms[s - 1] = out_data(r, "grad_norm")[0];
  for (int i = 0; s == 1 && i < I->np; i++) {
    const double *g = state_out(r, "grad.", &I->ps[i]);
    if (!g) return internal("a train-step output is missing");
    memcpy(I->ps[i].grad1, g, (size_t)I->ps[i].numel * sizeof(double));
  }
  return take_update(I, r, "a train-step output is missing");
}

/* Step s as accumulate over the microbatches, then update. */
static bool accum_step(Interp *I, long s, const InterpOpts *io) {
  const IArgs *a = I->a;
  Run *r = &I->r1;
  double loss_sum = 0;
  for (int i = 0; i < I->np; i++) memset(I->ps[i].acc, 0, (size_t)I->ps[i].numel * sizeof(double));
  for (long mb = 0; mb < a->accum; mb++) {
    for (int j = 0; j < I->nin; j++) r->bufs[I->in_nodes[j]] = I->inputs[(size_t)j * (size_t)a->accum + (size_t)mb];
    bool okb = bind(r, OP_INPUT, "accum_scale", &I->scale_v);
    for (int i = 0; okb && i < I->np; i++)
      okb = bind(r, OP_PARAM, I->ps[i].name, I->ps[i].p) && bind_state(r, "grad_acc.", &I->ps[i], I->ps[i].acc);
    if (!okb || !execute(r, io)) return false;
    loss_sum += out_data(r, "loss")[0];
    for (int i = 0; i < I->np; i++) {
      const double *x = state_out(r, "grad_acc.", &I->ps[i]);
      if (!x) return internal("a gradient accumulator output is missing");
      memcpy(I->ps[i].acc, x, (size_t)I->ps[i].numel * sizeof(double));
    }
    reset(r);
  }
  I->losses[s - 1] = loss_sum / (double)a->accum;
  if (s == 1)
    for (int i = 0; i < I->np; i++) memcpy(I->ps[i].grad1, I->ps[i].acc, (size_t)I->ps[i].numel * sizeof(double));
  Run *u = &I->r2;
  bool okb = bind(u, OP_INPUT, "step", &I->step_v) && bind(u, OP_INPUT, "lr", &I->lr_v) && bind(u, OP_INPUT, "hyper", I->hyper_v);
  for (int i = 0; okb && i < I->np; i++)
    okb = bind(u, OP_PARAM, I->ps[i].name, I->ps[i].p) && bind_state(u, "grad_acc.", &I->ps[i], I->ps[i].acc) &&
          bind_state(u, "adam_m.", &I->ps[i], I->ps[i].m) && bind_state(u, "adam_v.", &I->ps[i], I->ps[i].v);
  if (!okb || !execute(u, io)) return false;
  I->norms[s - 1] = out_data(u, "grad_norm")[0];
  return take_update(I, u, "an update output is missing");
}

/* OUT: loss, grad_norm, grad.<p> (of step 1), param.<p> (after the last step). */
static bool write_out(const Interp *I) {
  const IArgs *a = I->a;
  cram_err err = { 0 };
  cram_st_dtype dt = a->prec == INTERP_F64 ? CRAM_ST_F64 : CRAM_ST_F32;
  size_t es = cram_st_dtype_size(dt), nt = 2 + 2 * (size_t)I->np;
  cram_st_tensor *t = calloc(nt, sizeof *t);
  unsigned char **blobs = calloc(nt, sizeof *blobs);
  char **names = calloc(nt, sizeof *names);
  bool ok = t && blobs && names;
  for (size_t i = 0; ok && i < nt; i++) {
    const double *src;
    int64_t count;
    if (i < 2) {
      names[i] = strdup(i == 0 ? "loss" : "grad_norm");
      src = i == 0 ? I->losses : I->norms;
      count = a->steps;
      t[i].rank = 1;
      t[i].shape[0] = a->steps;
    } else {
      const Param *p = &I->ps[(i - 2) % (size_t)I->np];
      bool is_grad = i - 2 < (size_t)I->np;
      names[i] = join(is_grad ? "grad." : "param.", p->name);
      src = is_grad ? p->grad1 : p->p;
      count = p->numel;
      const Node *pn = &I->fwd->nodes[p->node];
      t[i].rank = pn->shape.rank;
      for (int j = 0; j < pn->shape.rank; j++) t[i].shape[j] = pn->shape.dim[j];
    }
    blobs[i] = malloc((size_t)(count ? count : 1) * es);
    if (!names[i] || !blobs[i]) {
      ok = false;
      break;
    }
    for (int64_t j = 0; j < count; j++) cram_st_put(dt, blobs[i], j, src[j]);
    t[i].name = names[i];
    t[i].dtype = dt;
    t[i].data = blobs[i];
  }
  char steps_s[32];
  snprintf(steps_s, sizeof steps_s, "%ld", a->steps);
  cram_st_meta meta[3] = { { "model", (char *)I->fwd->name },
                           { "steps", steps_s },
                           { "producer", a->prec == INTERP_F64 ? "cramc --interpret f64" : "cramc --interpret f32" } };
  bool written = false;
  if (!ok) fprintf(stderr, "cramc: error: out of memory writing '%s'\n", a->out);
  else if (cram_st_write(a->out, t, nt, meta, 3, &err) != CRAM_OK) fprintf(stderr, "cramc: error: %s\n", err.msg);
  else written = true;
  for (size_t i = 0; i < nt && names && blobs; i++) {
    free(names[i]);
    free(blobs[i]);
  }
  free(names);
  free(blobs);
  free(t);
  return written;
}

static void interp_free_state(Interp *I) {
  if (I->r1.bufs) reset(&I->r1);
  if (I->r2.bufs) reset(&I->r2);
  free(I->r1.bufs);
  free(I->r1.owned);
  free(I->r2.bufs);
  free(I->r2.owned);
  if (I->inputs)
    for (size_t i = 0; i < (size_t)I->nin * (size_t)I->a->accum; i++) free(I->inputs[i]);
  free(I->inputs);
  free(I->in_nodes);
  for (int i = 0; I->ps && i < I->np; i++) {
    free(I->ps[i].p);
    free(I->ps[i].m);
    free(I->ps[i].v);
    free(I->ps[i].acc);
    free(I->ps[i].grad1);
  }
  free(I->ps);
  free(I->losses);
  free(I->norms);
  cram_st_free(&I->batch);
  cram_st_free(&I->pfile);
  ir_graph_free(I->ad);
  ir_graph_free(I->ts);
  ir_graph_free(I->acc);
  ir_graph_free(I->up);
}

/* `cramc --interpret`: the graphs, the parameters, the batch, then the steps
 * (one train-step graph, or accumulate + update per step), then OUT. */
static int interpret(const IArgs *a, const Graph *fwd) {
  Diag d;
  diag_init(&d, stderr);
  Interp I = { .a = a, .fwd = fwd };
  I.losses = calloc((size_t)a->steps, sizeof(double));
  I.norms = calloc((size_t)a->steps, sizeof(double));
  I.lr_v = a->prec == INTERP_F32 ? interp_round_f32(a->lr) : a->lr;
  I.scale_v = 1.0 / (double)a->accum;
  if (a->prec == INTERP_F32) I.scale_v = interp_round_f32(I.scale_v);
  InterpOpts io = { .prec = a->prec, .training = false, .seed = 0 };
  bool ok = (I.losses && I.norms) || oom("the loss and norm tables");
  ok = ok && build_graphs(&I, &d) && load_params(&I) && load_batch(&I);
  ok = ok && ((run_init(&I.r1, I.ts ? I.ts : I.acc) && (!I.up || run_init(&I.r2, I.up))) || oom("the graphs' buffer tables"));
  for (long s = 1; ok && s <= a->steps; s++) {
    I.step_v = (double)s;
    ok = I.ts ? train_step(&I, s, &io) : accum_step(&I, s, &io);
  }
  for (long s = 0; ok && s < a->steps; s++)
    fprintf(stderr, "step %ld: loss %.6f grad_norm %.6f\n", s + 1, I.losses[s], I.norms[s]);
  ok = ok && write_out(&I);
  interp_free_state(&I);
  return ok ? 0 : 1;
}

int cramc_interpret_main(int argc, char **argv) {
  IArgs a = { 0 };
  int rc = parse(argc, argv, &a);
  if (rc < 0) {
    rc = 1;
    size_t len = 0;
    char *text = cramc_read_source(a.input, &len);
    if (text) {
      Diag d;
      diag_init(&d, stderr);
      Graph *fwd = fe_compile(a.input, text, len, a.defs, a.ndefs, &d);
      if (fwd && a.bf16) {
        Graph *m = pass_autocast_bf16(fwd, &d);
        ir_graph_free(fwd);
        fwd = m;
      }
      if (fwd) rc = interpret(&a, fwd);
      ir_graph_free(fwd);
      free(text);
    }
  }
  for (int i = 0; i < a.ndefs; i++) free((char *)a.defs[i].name);
  free(a.defs);
  return rc;
}

Graph *cramc_train_ir(const Graph *fwd, Diag *d) {
  Graph *ad = pass_autodiff(fwd, d);
  if (!ad) return NULL;
  AdamWOptions o = pass_adamw_defaults();
  Graph *ts = pass_train_step(ad, &o, d);
  ir_graph_free(ad);
  return ts;
}
