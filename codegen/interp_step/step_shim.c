/* step_shim.c - the step ABI (runtime/cram_step.h) on top of the reference
 * interpreter; linked (as libcram_interp_step.a, PIC) into every artifact of
 * `cramc --target interp`.
 *
 * create() parses the artifact's three embedded IR texts once (forward for
 * eval, pass_accumulate for step, pass_update for update), checks them against
 * the metadata tables, and allocates the persistent state: per parameter its
 * value, Adam moments and gradient accumulator. The interpreter computes in
 * doubles, so the state is held as doubles; in f32 mode every stored value is
 * an exact f32 (the graphs round each result), so the f32 host copies of the
 * ABI lose nothing. Each call binds the state to the graph's source nodes,
 * runs interp_run, and copies the outputs back, exactly as `cramc --interpret`
 * does (driver/interpret.c), which is what makes the two agree bit for bit.
 *
 * Errors never exit: they return an rc and leave a one-line message in the
 * context (last_error). No global mutable state. */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cram_interp_step.h"
#include "diag.h"
#include "init.h"
#include "interp.h"
#include "ir.h"

/* One graph and its buffer table; ids of the nodes the shim binds or reads. */
typedef struct GRun {
  Graph *g;
  double **bufs;
  bool *owned;
} GRun;

struct cram_ctx {
  const cram_interp_artifact *a;
  const cram_step_meta *meta;
  InterpPrecision prec;
  bool training;
  uint64_t dropout_seed, runs;
  GRun fwd, acc, up;
  uint32_t np, nin;
  double **p, **m, **v, **g;   /* per parameter, meta->params[i].numel values */
  double *gblock;              /* every g[i] lies in it, each padded to 64 bytes: grad_buffer() */
  int64_t gcount;              /* its doubles */
  double **in;                 /* per input: the current microbatch as doubles */
  /* node ids: f_ forward, a_ accumulate, u_ update; per param unless scalar */
  ValueId *f_param, *f_in, f_loss, *f_out, f_hits; /* f_out: meta->outputs; f_hits: IR_NONE without */
  ValueId *a_param, *a_acc, *a_in, *a_out_acc, a_scale, a_loss;
  ValueId *u_param, *u_acc, *u_m, *u_v, *u_out_p, *u_out_m, *u_out_v, u_step, u_lr, u_hyper, u_norm;
  double scale_v, step_v, lr_v, hyper_v[CRAM_SHIM_NHYPER];
  long pending;                /* step() calls since the last update/zero_grad */
  char err[1024];
};

static cram_step_rc fail(cram_ctx *c, cram_step_rc rc, const char *fmt, const char *arg) {
  char msg[900];
  snprintf(msg, sizeof msg, fmt, arg);
  snprintf(c->err, sizeof c->err, "%s: %s", c->meta->model, msg);
  return rc;
}

static double rnd(const cram_ctx *c, double x) { return c->prec == INTERP_F32 ? interp_round_f32(x) : x; }

/* ---- graph setup ------------------------------------------------------------ */

/* Parses one embedded IR text; parse diagnostics go to a memory stream so
 * the first line can become the error message. */
static bool parse_graph(cram_ctx *c, GRun *r, const char *text, const char *what) {
  char *dbuf = NULL;
  size_t dlen = 0;
  FILE *mem = open_memstream(&dbuf, &dlen);
  if (!mem) return fail(c, CRAM_STEP_E_NOMEM, "out of memory parsing the %s graph", what), false;
  Diag d;
  diag_init(&d, mem);
  r->g = ir_parse(text, strlen(text), what, &d);
  fclose(mem);
  if (!r->g) {
    if (dbuf && strchr(dbuf, '\n')) *strchr(dbuf, '\n') = '\0';
    char msg[700];
    snprintf(msg, sizeof msg, "embedded %s graph does not parse (artifact corrupt?): %.500s", what, dbuf ? dbuf : "");
    free(dbuf);
    return fail(c, CRAM_STEP_E_STATE, "%s", msg), false;
  }
  free(dbuf);
  uint32_t n = r->g->n ? r->g->n : 1;
  r->bufs = calloc(n, sizeof *r->bufs);
  r->owned = calloc(n, sizeof *r->owned);
  if (!r->bufs || !r->owned) return fail(c, CRAM_STEP_E_NOMEM, "%s", "out of memory"), false;
  return true;
}

static ValueId find_src(const Graph *g, OpKind op, const char *prefix, const char *name) {
  size_t pl = strlen(prefix);
  for (ValueId v = 0; v < g->n; v++) {
    const Node *n = &g->nodes[v];
    if (n->op != op) continue;
    const char *s = ir_get_str(n, ATTR_NAME);
    if (!strncmp(s, prefix, pl) && !strcmp(s + pl, name)) return v;
  }
  return IR_NONE;
}

static ValueId find_out(const Graph *g, const char *prefix, const char *name) {
  size_t pl = strlen(prefix);
  for (uint32_t i = 0; i < g->nout; i++)
    if (!strncmp(g->outputs[i].name, prefix, pl) && !strcmp(g->outputs[i].name + pl, name)) return g->outputs[i].value;
  return IR_NONE;
}

/* Looks up every id the shim needs; false (with a message) when the graphs
 * and the metadata tables disagree, i.e. a corrupt or hand-edited artifact. */
static bool resolve(cram_ctx *c) {
  const cram_step_meta *mt = c->meta;
  const Graph *F = c->fwd.g, *A = c->acc.g, *U = c->up.g;
  ValueId **pp[] = {&c->f_param, &c->a_param, &c->a_acc, &c->a_out_acc, &c->u_param, &c->u_acc,
                    &c->u_m,     &c->u_v,     &c->u_out_p, &c->u_out_m, &c->u_out_v};
  for (size_t k = 0; k < sizeof pp / sizeof pp[0]; k++)
    if (!(*pp[k] = calloc(c->np ? c->np : 1, sizeof(ValueId)))) return fail(c, CRAM_STEP_E_NOMEM, "%s", "out of memory"), false;
  if (!(c->f_in = calloc(c->nin ? c->nin : 1, sizeof(ValueId))) || !(c->a_in = calloc(c->nin ? c->nin : 1, sizeof(ValueId))))
    return fail(c, CRAM_STEP_E_NOMEM, "%s", "out of memory"), false;
  uint32_t nparam_nodes = 0;
  for (ValueId v = 0; v < F->n; v++) nparam_nodes += F->nodes[v].op == OP_PARAM;
  if (nparam_nodes != c->np) return fail(c, CRAM_STEP_E_STATE, "%s", "embedded graph and parameter table disagree"), false;
  for (uint32_t i = 0; i < c->np; i++) {
    const char *nm = mt->params[i].name;
    ValueId fp = find_src(F, OP_PARAM, "", nm);
    if (fp == IR_NONE || ir_shape_numel(&F->nodes[fp].shape) != mt->params[i].numel)
      return fail(c, CRAM_STEP_E_STATE, "parameter '%s' of the table is not in the embedded graph", nm), false;
    c->f_param[i] = fp;
    c->a_param[i] = find_src(A, OP_PARAM, "", nm);
    c->a_acc[i] = find_src(A, OP_INPUT, "grad_acc.", nm);
    c->a_out_acc[i] = find_out(A, "grad_acc.", nm);
    c->u_param[i] = find_src(U, OP_PARAM, "", nm);
    c->u_acc[i] = find_src(U, OP_INPUT, "grad_acc.", nm);
    c->u_m[i] = find_src(U, OP_INPUT, "adam_m.", nm);
    c->u_v[i] = find_src(U, OP_INPUT, "adam_v.", nm);
    c->u_out_p[i] = find_out(U, "param.", nm);
    c->u_out_m[i] = find_out(U, "adam_m.", nm);
    c->u_out_v[i] = find_out(U, "adam_v.", nm);
    if (c->a_param[i] == IR_NONE || c->a_acc[i] == IR_NONE || c->a_out_acc[i] == IR_NONE || c->u_param[i] == IR_NONE ||
        c->u_acc[i] == IR_NONE || c->u_m[i] == IR_NONE || c->u_v[i] == IR_NONE || c->u_out_p[i] == IR_NONE ||
        c->u_out_m[i] == IR_NONE || c->u_out_v[i] == IR_NONE)
      return fail(c, CRAM_STEP_E_STATE, "train graphs lack the nodes of parameter '%s'", nm), false;
  }
  for (uint32_t j = 0; j < c->nin; j++) {
    const char *nm = mt->inputs[j].name;
    c->f_in[j] = find_src(F, OP_INPUT, "", nm);
    c->a_in[j] = find_src(A, OP_INPUT, "", nm);
    if (c->f_in[j] == IR_NONE || c->a_in[j] == IR_NONE ||
        ir_shape_numel(&F->nodes[c->f_in[j]].shape) != mt->inputs[j].numel)
      return fail(c, CRAM_STEP_E_STATE, "input '%s' of the table is not in the embedded graphs", nm), false;
  }
  if (!(c->f_out = calloc(mt->noutputs ? mt->noutputs : 1, sizeof(ValueId))))
    return fail(c, CRAM_STEP_E_NOMEM, "%s", "out of memory"), false;
  for (uint32_t k = 0; k < mt->noutputs; k++) {
    c->f_out[k] = find_out(F, "", mt->outputs[k].name);
    if (c->f_out[k] == IR_NONE || ir_shape_numel(&F->nodes[c->f_out[k]].shape) != mt->outputs[k].numel)
      return fail(c, CRAM_STEP_E_STATE, "output '%s' of the table is not in the embedded forward graph",
                  mt->outputs[k].name), false;
  }
  c->f_loss = find_out(F, "", "loss");
  c->f_hits = find_out(F, "", "accuracy.hits");
  c->a_loss = find_out(A, "", "loss");
  c->a_scale = find_src(A, OP_INPUT, "", "accum_scale");
  c->u_step = find_src(U, OP_INPUT, "", "step");
  c->u_lr = find_src(U, OP_INPUT, "", "lr");
  c->u_hyper = find_src(U, OP_INPUT, "", "hyper");
  c->u_norm = find_out(U, "", "grad_norm");
  if (c->f_loss == IR_NONE || c->a_loss == IR_NONE || c->a_scale == IR_NONE || c->u_step == IR_NONE ||
      c->u_lr == IR_NONE || c->u_hyper == IR_NONE || c->u_norm == IR_NONE)
    return fail(c, CRAM_STEP_E_STATE, "%s", "embedded graphs lack loss/accum_scale/step/lr/hyper/grad_norm"), false;
  return true;
}

/* ---- lifecycle -------------------------------------------------------------- */

cram_step_rc cram_interp_create(const cram_interp_artifact *a, const cram_create_opts *opts, cram_ctx **out,
                                char *err, size_t errlen) {
  cram_step_rc rc;
  cram_ctx *c = cram_shim_create_ctx(out, "interp", a && a->shim_version == CRAM_INTERP_SHIM_VERSION, a ? a->meta : NULL,
                                     sizeof *c, err, errlen, &rc);
  if (!c) return rc;
  c->a = a;
  c->meta = a->meta;
  c->prec = a->f64 ? INTERP_F64 : INTERP_F32;
  c->training = opts && opts->training;
  c->dropout_seed = opts ? opts->dropout_seed : 0;
  c->np = a->meta->nparams;
  c->nin = a->meta->ninputs;
  rc = CRAM_STEP_E_NOMEM;
  if (!parse_graph(c, &c->fwd, a->fwd_ir, "forward") || !parse_graph(c, &c->acc, a->acc_ir, "accumulate") ||
      !parse_graph(c, &c->up, a->up_ir, "update") || !resolve(c)) {
    rc = strstr(c->err, "out of memory") ? CRAM_STEP_E_NOMEM : CRAM_STEP_E_STATE;
    goto bad;
  }
  size_t np = c->np ? c->np : 1, nin = c->nin ? c->nin : 1;
  c->p = calloc(np, sizeof *c->p);
  c->m = calloc(np, sizeof *c->m);
  c->v = calloc(np, sizeof *c->v);
  c->g = calloc(np, sizeof *c->g);
  c->in = calloc(nin, sizeof *c->in);
  if (!c->p || !c->m || !c->v || !c->g || !c->in) goto oom;
  /* one zeroed block, so data-parallel training all-reduces a single array */
  for (uint32_t i = 0; i < c->np; i++) c->gcount += (c->meta->params[i].numel + 7) / 8 * 8;
  if (!(c->gblock = calloc((size_t)(c->gcount ? c->gcount : 1), sizeof(double)))) goto oom;
  int64_t off = 0;
  for (uint32_t i = 0; i < c->np; i++) {
    size_t n = (size_t)(c->meta->params[i].numel ? c->meta->params[i].numel : 1);
    if (!(c->p[i] = calloc(n, sizeof(double))) || !(c->m[i] = calloc(n, sizeof(double))) ||
        !(c->v[i] = calloc(n, sizeof(double))))
      goto oom;
    c->g[i] = c->gblock + off;
    off += (c->meta->params[i].numel + 7) / 8 * 8;
  }
  for (uint32_t j = 0; j < c->nin; j++)
    if (!(c->in[j] = calloc((size_t)(c->meta->inputs[j].numel ? c->meta->inputs[j].numel : 1), sizeof(double))))
      goto oom;
  *out = c;
  return CRAM_STEP_OK;
oom:
  fail(c, CRAM_STEP_E_NOMEM, "%s", "out of memory allocating parameters and optimizer state");
bad:
  cram_shim_err(err, errlen, rc, "%s", c->err);
  cram_interp_destroy(c);
  return rc;
}

static void grun_free(GRun *r) {
  if (r->g && r->bufs && r->owned) interp_free(r->g, r->bufs, r->owned);
  free(r->bufs);
  free(r->owned);
  ir_graph_free(r->g);
}

void cram_interp_destroy(cram_ctx *c) {
  if (!c) return;
  for (uint32_t i = 0; i < c->np; i++) {
    if (c->p) free(c->p[i]);
    if (c->m) free(c->m[i]);
    if (c->v) free(c->v[i]);
  }
  for (uint32_t j = 0; c->in && j < c->nin; j++) free(c->in[j]);
  free(c->p), free(c->m), free(c->v), free(c->g), free(c->gblock), free(c->in);
  free(c->f_out);
  ValueId *ids[] = {c->f_param, c->f_in,  c->a_param, c->a_acc,   c->a_in,    c->a_out_acc, c->u_param,
                    c->u_acc,   c->u_m,   c->u_v,     c->u_out_p, c->u_out_m, c->u_out_v};
  for (size_t k = 0; k < sizeof ids / sizeof ids[0]; k++) free(ids[k]);
  grun_free(&c->fwd);
  grun_free(&c->acc);
  grun_free(&c->up);
  free(c);
}

const char *cram_interp_last_error(const cram_ctx *c) { return c ? c->err : "interp step: no context"; }

/* ---- parameters and optimizer state ------------------------------------------ */

cram_step_rc cram_interp_init_params(cram_ctx *c, uint64_t seed) {
  if (!c) return CRAM_STEP_E_ARG;
  for (uint32_t i = 0; i < c->np; i++) {
    char msg[256];
    if (!ir_init_param(&c->fwd.g->nodes[c->f_param[i]], seed, c->p[i], msg, sizeof msg))
      return fail(c, CRAM_STEP_E_STATE, "%s", msg);
    size_t n = (size_t)c->meta->params[i].numel;
    for (size_t k = 0; k < n; k++) c->p[i][k] = rnd(c, c->p[i][k]);
    memset(c->m[i], 0, n * sizeof(double));
    memset(c->v[i], 0, n * sizeof(double));
    memset(c->g[i], 0, n * sizeof(double));
  }
  c->pending = 0;
  return CRAM_STEP_OK;
}

static cram_step_rc check_index(cram_ctx *c, uint32_t i, const void *a, const void *b) {
  char msg[64];
  cram_step_rc rc = cram_shim_check_index(i, c->np, a, b, msg, sizeof msg);
  return rc == CRAM_STEP_OK ? rc : fail(c, rc, "%s", msg);
}

static void to_f32(float *dst, const double *src, int64_t n) {
  for (int64_t k = 0; k < n; k++) dst[k] = (float)src[k];
}
static void from_f32(double *dst, const float *src, int64_t n) {
  for (int64_t k = 0; k < n; k++) dst[k] = (double)src[k];
}

cram_step_rc cram_interp_get_param(cram_ctx *c, uint32_t i, float *dst) {
  if (!c) return CRAM_STEP_E_ARG;
  cram_step_rc rc = check_index(c, i, dst, dst);
  if (rc == CRAM_STEP_OK) to_f32(dst, c->p[i], c->meta->params[i].numel);
  return rc;
}
cram_step_rc cram_interp_set_param(cram_ctx *c, uint32_t i, const float *src) {
  if (!c) return CRAM_STEP_E_ARG;
  cram_step_rc rc = check_index(c, i, src, src);
  if (rc == CRAM_STEP_OK) from_f32(c->p[i], src, c->meta->params[i].numel);
  return rc;
}
cram_step_rc cram_interp_get_moments(cram_ctx *c, uint32_t i, float *m, float *v) {
  if (!c) return CRAM_STEP_E_ARG;
  cram_step_rc rc = check_index(c, i, m, v);
  if (rc == CRAM_STEP_OK) to_f32(m, c->m[i], c->meta->params[i].numel), to_f32(v, c->v[i], c->meta->params[i].numel);
  return rc;
}
cram_step_rc cram_interp_set_moments(cram_ctx *c, uint32_t i, const float *m, const float *v) {
  if (!c) return CRAM_STEP_E_ARG;
  cram_step_rc rc = check_index(c, i, m, v);
  if (rc == CRAM_STEP_OK)
    from_f32(c->m[i], m, c->meta->params[i].numel), from_f32(c->v[i], v, c->meta->params[i].numel);
  return rc;
}

/* ---- running ---------------------------------------------------------------- */

/* Copies the caller's microbatch into the double arrays the graphs read. */
static cram_step_rc load_inputs(cram_ctx *c, const void *const *inputs) {
  if (!inputs) return fail(c, CRAM_STEP_E_ARG, "%s", "inputs is NULL");
  for (uint32_t j = 0; j < c->nin; j++) {
    const cram_tensor_info *t = &c->meta->inputs[j];
    if (!inputs[j]) return fail(c, CRAM_STEP_E_ARG, "input '%s' is NULL", t->name);
    if (t->dtype == CRAM_DT_I32) {
      const int32_t *x = inputs[j];
      for (int64_t k = 0; k < t->numel; k++) c->in[j][k] = (double)x[k];
    } else {
      const float *x = inputs[j];
      for (int64_t k = 0; k < t->numel; k++) c->in[j][k] = rnd(c, (double)x[k]);
    }
  }
  return CRAM_STEP_OK;
}

/* Runs r->g with the sources already bound in r->bufs (everything else NULL).
 * A failing run is bad data: the interpreter only fails on values (a token id
 * outside the vocabulary, ...), its message naming the node and .cram line. */
static cram_step_rc run(cram_ctx *c, GRun *r) {
  char msg[700];
  InterpOpts o = {.prec = c->prec, .training = c->training, .seed = CRAM_STEP_RUN_SEED(c->dropout_seed, c->runs++)};
  if (!interp_run(r->g, &o, r->bufs, r->owned, msg, sizeof msg)) {
    bool oom = strstr(msg, "out of memory") != NULL;
    interp_free(r->g, r->bufs, r->owned);
    return fail(c, oom ? CRAM_STEP_E_NOMEM : CRAM_STEP_E_DATA, "%s", msg);
  }
  return CRAM_STEP_OK;
}

static void unbind(GRun *r) { memset(r->bufs, 0, r->g->n * sizeof *r->bufs); }

static const double *outv(const GRun *r, ValueId v) { return r->bufs[v]; }

cram_step_rc cram_interp_step(cram_ctx *c, const void *const *inputs, float scale, float *loss) {
  if (!c) return CRAM_STEP_E_ARG;
  if (!loss) return fail(c, CRAM_STEP_E_ARG, "%s", "loss is NULL");
  cram_step_rc rc = load_inputs(c, inputs);
  if (rc != CRAM_STEP_OK) return rc;
  GRun *r = &c->acc;
  unbind(r);
  c->scale_v = rnd(c, (double)scale);
  r->bufs[c->a_scale] = &c->scale_v;
  for (uint32_t j = 0; j < c->nin; j++) r->bufs[c->a_in[j]] = c->in[j];
  for (uint32_t i = 0; i < c->np; i++) r->bufs[c->a_param[i]] = c->p[i], r->bufs[c->a_acc[i]] = c->g[i];
  if ((rc = run(c, r)) != CRAM_STEP_OK) return rc; /* grad_acc untouched: the batch is dropped whole */
  *loss = (float)outv(r, c->a_loss)[0];
  for (uint32_t i = 0; i < c->np; i++)
    memmove(c->g[i], outv(r, c->a_out_acc[i]), (size_t)c->meta->params[i].numel * sizeof(double));
  interp_free(r->g, r->bufs, r->owned);
  c->pending++;
  return CRAM_STEP_OK;
}

cram_step_rc cram_interp_update(cram_ctx *c, const cram_update_args *args, float *grad_norm) {
  if (!c) return CRAM_STEP_E_ARG;
  char msg[200];
  if (cram_shim_update_hyper(args, c->hyper_v, msg, sizeof msg) != CRAM_STEP_OK) return fail(c, CRAM_STEP_E_ARG, "%s", msg);
  if (c->pending == 0) return fail(c, CRAM_STEP_E_STATE, "%s", "update() without a step() since the last update");
  GRun *r = &c->up;
  unbind(r);
  c->step_v = (double)args->step;
  c->lr_v = rnd(c, (double)args->lr);
  for (int i = 0; i < CRAM_SHIM_NHYPER; i++) c->hyper_v[i] = rnd(c, c->hyper_v[i]);
  r->bufs[c->u_step] = &c->step_v;
  r->bufs[c->u_lr] = &c->lr_v;
  r->bufs[c->u_hyper] = c->hyper_v;
  for (uint32_t i = 0; i < c->np; i++) {
    r->bufs[c->u_param[i]] = c->p[i];
    r->bufs[c->u_acc[i]] = c->g[i];
    r->bufs[c->u_m[i]] = c->m[i];
    r->bufs[c->u_v[i]] = c->v[i];
  }
  cram_step_rc rc = run(c, r);
  if (rc != CRAM_STEP_OK) return rc;
  if (grad_norm) *grad_norm = (float)outv(r, c->u_norm)[0];
  /* The run is over, so overwriting its (bound) inputs is safe. */
  for (uint32_t i = 0; i < c->np; i++) {
    size_t sz = (size_t)c->meta->params[i].numel * sizeof(double);
    memmove(c->p[i], outv(r, c->u_out_p[i]), sz);
    memmove(c->m[i], outv(r, c->u_out_m[i]), sz);
    memmove(c->v[i], outv(r, c->u_out_v[i]), sz);
    memset(c->g[i], 0, sz);
  }
  interp_free(r->g, r->bufs, r->owned);
  c->pending = 0;
  return CRAM_STEP_OK;
}

cram_step_rc cram_interp_eval(cram_ctx *c, const void *const *inputs, float *loss) {
  return cram_interp_predict(c, inputs, loss, NULL);
}

/* The forward graph with dropout off: the loss, the outputs predict() asks
 * for, the accuracy counts eval_accuracy() asks for (hits NULL: not asked). */
static cram_step_rc forward(cram_ctx *c, const void *const *inputs, float *loss, float *const *outputs, double *hits) {
  if (!c) return CRAM_STEP_E_ARG;
  if (!loss) return fail(c, CRAM_STEP_E_ARG, "%s", "loss is NULL");
  cram_step_rc rc = load_inputs(c, inputs);
  if (rc != CRAM_STEP_OK) return rc;
  GRun *r = &c->fwd;
  unbind(r);
  for (uint32_t j = 0; j < c->nin; j++) r->bufs[c->f_in[j]] = c->in[j];
  for (uint32_t i = 0; i < c->np; i++) r->bufs[c->f_param[i]] = c->p[i];
  bool tr = c->training;
  c->training = false; /* eval never drops out */
  rc = run(c, r);
  c->training = tr;
  if (rc != CRAM_STEP_OK) return rc;
  *loss = (float)outv(r, c->f_loss)[0];
  for (uint32_t k = 0; outputs && k < c->meta->noutputs; k++)
    if (outputs[k]) to_f32(outputs[k], outv(r, c->f_out[k]), c->meta->outputs[k].numel);
  if (hits) hits[0] = c->f_hits == IR_NONE ? 0 : outv(r, c->f_hits)[0];
  if (hits) hits[1] = c->f_hits == IR_NONE ? 0 : outv(r, c->f_hits)[1];
  interp_free(r->g, r->bufs, r->owned);
  return CRAM_STEP_OK;
}

cram_step_rc cram_interp_predict(cram_ctx *c, const void *const *inputs, float *loss, float *const *outputs) {
  return forward(c, inputs, loss, outputs, NULL);
}

cram_step_rc cram_interp_eval_accuracy(cram_ctx *c, const void *const *inputs, float *loss, double *correct,
                                       double *counted) {
  double h[2];
  if (c && (!correct || !counted)) return fail(c, CRAM_STEP_E_ARG, "%s", "correct or counted is NULL");
  cram_step_rc rc = forward(c, inputs, loss, NULL, h);
  if (rc == CRAM_STEP_OK) *correct = h[0], *counted = h[1];
  return rc;
}

cram_step_rc cram_interp_grad_norm(cram_ctx *c, float *norm) {
  if (!c) return CRAM_STEP_E_ARG;
  if (!norm) return fail(c, CRAM_STEP_E_ARG, "%s", "norm is NULL");
  double s = 0;
  for (uint32_t i = 0; i < c->np; i++)
    for (int64_t k = 0; k < c->meta->params[i].numel; k++) s += c->g[i][k] * c->g[i][k];
  *norm = (float)sqrt(s);
  return CRAM_STEP_OK;
}

cram_step_rc cram_interp_zero_grad(cram_ctx *c) {
  if (!c) return CRAM_STEP_E_ARG;
  for (uint32_t i = 0; i < c->np; i++) memset(c->g[i], 0, (size_t)c->meta->params[i].numel * sizeof(double));
  c->pending = 0;
  return CRAM_STEP_OK;
}

cram_step_rc cram_interp_grad_buffer(cram_ctx *c, cram_grad_buffer *out) {
  if (!c) return CRAM_STEP_E_ARG;
  if (!out) return fail(c, CRAM_STEP_E_ARG, "%s", "grad_buffer out is NULL");
  *out = (cram_grad_buffer){.data = c->gblock, .dtype = CRAM_DT_F64, .count = c->gcount, .on_device = 0};
  return CRAM_STEP_OK;
}
