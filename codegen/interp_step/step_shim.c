/* step_shim.c - the device table of `cramc --target interp` artifacts for
 * the shim core (shim_core/shim_core.h), on top of the reference
 * interpreter; linked (as libcram_interp_step.a, PIC) into every artifact of
 * that target.
 *
 * create() parses the artifact's three embedded IR texts once (forward for
 * eval, pass_accumulate for step, pass_update for update) and checks them
 * against the metadata tables. The interpreter computes in doubles, so the
 * state is held as doubles; in f32 mode every stored value is an exact f32
 * (the graphs round each result), so the f32 host copies of the ABI lose
 * nothing. A run binds the state to the graph's source nodes and runs
 * interp_run; the core copies the outputs back, exactly as `cramc
 * --interpret` does (driver/interpret.c), which is what makes the two agree
 * bit for bit. No global mutable state. */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cram_interp_step.h"
#include "diag.h"
#include "interp.h"
#include "ir.h"
#include "shim_core.h"

/* One graph and its buffer table. */
typedef struct GRun {
  Graph *g;
  double **bufs;
  bool *owned;
} GRun;

struct cram_ctx {
  cram_shim s; /* first: the core's state */
  const cram_interp_artifact *a;
  InterpPrecision prec;
  GRun run[3]; /* CRAM_G_FWD, CRAM_G_ACC, CRAM_G_UP */
  uint32_t np, nin;
  double **in; /* per input: the current microbatch as doubles */
  /* node ids: f_ forward, a_ accumulate, u_ update; per param unless scalar */
  ValueId *f_param, *f_in, f_loss, *f_out, f_hits; /* f_out: meta->outputs; f_hits: IR_NONE without */
  ValueId *a_param, *a_acc, *a_in, *a_out_acc, a_scale, a_loss;
  ValueId *u_param, *u_acc, *u_m, *u_v, *u_out_p, *u_out_m, *u_out_v, u_step, u_lr, u_hyper, u_norm;
  double scale_v, step_v, lr_v, hyper_v[CRAM_SHIM_NHYPER];
};

static double rnd(const cram_ctx *c, double x) { return c->prec == INTERP_F32 ? interp_round_f32(x) : x; }

/* ---- graph setup ------------------------------------------------------------ */

/* Parses one embedded IR text; parse diagnostics go to a memory stream so
 * the first line can become the error message. */
static bool parse_graph(cram_ctx *c, GRun *r, const char *text, const char *what) {
  char *dbuf = NULL;
  size_t dlen = 0;
  FILE *mem = open_memstream(&dbuf, &dlen);
  if (!mem) return cram_shim_fail(c, CRAM_STEP_E_NOMEM, "out of memory parsing the %s graph", what), false;
  Diag d;
  diag_init(&d, mem);
  r->g = ir_parse(text, strlen(text), what, &d);
  fclose(mem);
  if (!r->g) {
    if (dbuf && strchr(dbuf, '\n')) *strchr(dbuf, '\n') = '\0';
    char msg[700];
    snprintf(msg, sizeof msg, "embedded %s graph does not parse (artifact corrupt?): %.500s", what, dbuf ? dbuf : "");
    free(dbuf);
    return cram_shim_fail(c, CRAM_STEP_E_STATE, "%s", msg), false;
  }
  free(dbuf);
  uint32_t n = r->g->n ? r->g->n : 1;
  r->bufs = calloc(n, sizeof *r->bufs);
  r->owned = calloc(n, sizeof *r->owned);
  if (!r->bufs || !r->owned) return cram_shim_fail(c, CRAM_STEP_E_NOMEM, "out of memory"), false;
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
  const cram_step_meta *mt = c->s.meta;
  const Graph *F = c->run[CRAM_G_FWD].g, *A = c->run[CRAM_G_ACC].g, *U = c->run[CRAM_G_UP].g;
  ValueId **pp[] = { &c->f_param, &c->a_param, &c->a_acc,   &c->a_out_acc, &c->u_param, &c->u_acc,
                     &c->u_m,     &c->u_v,     &c->u_out_p, &c->u_out_m,   &c->u_out_v };
  for (size_t k = 0; k < sizeof pp / sizeof pp[0]; k++)
    if (!(*pp[k] = calloc(c->np ? c->np : 1, sizeof(ValueId))))
      return cram_shim_fail(c, CRAM_STEP_E_NOMEM, "out of memory"), false;
  if (!(c->f_in = calloc(c->nin ? c->nin : 1, sizeof(ValueId))) || !(c->a_in = calloc(c->nin ? c->nin : 1, sizeof(ValueId))))
    return cram_shim_fail(c, CRAM_STEP_E_NOMEM, "out of memory"), false;
  uint32_t nparam_nodes = 0;
  for (ValueId v = 0; v < F->n; v++) nparam_nodes += F->nodes[v].op == OP_PARAM;
  if (nparam_nodes != c->np) return cram_shim_fail(c, CRAM_STEP_E_STATE, "embedded graph and parameter table disagree"), false;
  for (uint32_t i = 0; i < c->np; i++) {
    const char *nm = mt->params[i].name;
    ValueId fp = find_src(F, OP_PARAM, "", nm);
    if (fp == IR_NONE || ir_shape_numel(&F->nodes[fp].shape) != mt->params[i].numel)
      return cram_shim_fail(c, CRAM_STEP_E_STATE, "parameter '%s' of the table is not in the embedded graph", nm), false;
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
      return cram_shim_fail(c, CRAM_STEP_E_STATE, "train graphs lack the nodes of parameter '%s'", nm), false;
  }
  for (uint32_t j = 0; j < c->nin; j++) {
    const char *nm = mt->inputs[j].name;
    c->f_in[j] = find_src(F, OP_INPUT, "", nm);
    c->a_in[j] = find_src(A, OP_INPUT, "", nm);
    if (c->f_in[j] == IR_NONE || c->a_in[j] == IR_NONE || ir_shape_numel(&F->nodes[c->f_in[j]].shape) != mt->inputs[j].numel)
      return cram_shim_fail(c, CRAM_STEP_E_STATE, "input '%s' of the table is not in the embedded graphs", nm), false;
  }
  if (!(c->f_out = calloc(mt->noutputs ? mt->noutputs : 1, sizeof(ValueId))))
    return cram_shim_fail(c, CRAM_STEP_E_NOMEM, "out of memory"), false;
  for (uint32_t k = 0; k < mt->noutputs; k++) {
    c->f_out[k] = find_out(F, "", mt->outputs[k].name);
    if (c->f_out[k] == IR_NONE || ir_shape_numel(&F->nodes[c->f_out[k]].shape) != mt->outputs[k].numel)
      return cram_shim_fail(c, CRAM_STEP_E_STATE, "output '%s' of the table is not in the embedded forward graph",
                            mt->outputs[k].name),
             false;
  }
  c->f_loss = find_out(F, "", "loss");
  c->f_hits = find_out(F, "", "accuracy.hits");
  c->a_loss = find_out(A, "", "loss");
  c->a_scale = find_src(A, OP_INPUT, "", "accum_scale");
  c->u_step = find_src(U, OP_INPUT, "", "step");
  c->u_lr = find_src(U, OP_INPUT, "", "lr");
  c->u_hyper = find_src(U, OP_INPUT, "", "hyper");
  c->u_norm = find_out(U, "", "grad_norm");
  if (c->f_loss == IR_NONE || c->a_loss == IR_NONE || c->a_scale == IR_NONE || c->u_step == IR_NONE || c->u_lr == IR_NONE ||
      c->u_hyper == IR_NONE || c->u_norm == IR_NONE)
    return cram_shim_fail(c, CRAM_STEP_E_STATE, "embedded graphs lack loss/accum_scale/step/lr/hyper/grad_norm"), false;
  return true;
}

/* ---- the state in host memory (doubles) ---------------------------------------- */

static cram_step_rc h_put(cram_ctx *c, cram_dptr dst, const float *src, size_t n) {
  double *d = (double *)dst;
  for (size_t k = 0; k < n; k++) d[k] = (double)src[k];
  (void)c;
  return CRAM_STEP_OK;
}
/* initial values: rounded to f32 in the f32 mode, as every stored value is */
static cram_step_rc h_put_f64(cram_ctx *c, cram_dptr dst, const double *src, size_t n) {
  double *d = (double *)dst;
  for (size_t k = 0; k < n; k++) d[k] = rnd(c, src[k]);
  return CRAM_STEP_OK;
}
static cram_step_rc h_get(cram_ctx *c, float *dst, cram_dptr src, size_t n) {
  const double *s = (const double *)src;
  for (size_t k = 0; k < n; k++) dst[k] = (float)s[k];
  (void)c;
  return CRAM_STEP_OK;
}

/* ---- running ---------------------------------------------------------------- */

/* Copies the caller's microbatch into the double arrays the graphs read. */
static void load_inputs(cram_ctx *c, const void *const *inputs) {
  for (uint32_t j = 0; j < c->nin; j++) {
    const cram_tensor_info *t = &c->s.meta->inputs[j];
    if (t->dtype == CRAM_DT_I32) {
      const int32_t *x = inputs[j];
      for (int64_t k = 0; k < t->numel; k++) c->in[j][k] = (double)x[k];
    } else {
      const float *x = inputs[j];
      for (int64_t k = 0; k < t->numel; k++) c->in[j][k] = rnd(c, (double)x[k]);
    }
  }
}

#define B(v, ptr) (r->bufs[(v)] = (double *)(ptr))

/* Binds the state, the inputs and the scalars to g's source nodes and runs
 * it. A failing run is bad data: the interpreter only fails on values (a
 * token id outside the vocabulary, ...), its message naming the node and
 * .cram line. */
static cram_step_rc h_run(cram_ctx *c, int g, const void *const *inputs, const cram_shim_scalars *sc, int training,
                          uint64_t seed) {
  const cram_shim *s = &c->s;
  GRun *r = &c->run[g];
  memset(r->bufs, 0, r->g->n * sizeof *r->bufs);
  if (inputs) load_inputs(c, inputs);
  if (g == CRAM_G_FWD) {
    for (uint32_t j = 0; j < c->nin; j++) B(c->f_in[j], c->in[j]);
    for (uint32_t i = 0; i < c->np; i++) B(c->f_param[i], s->p[i]);
  } else if (g == CRAM_G_ACC) {
    c->scale_v = rnd(c, sc->scale);
    B(c->a_scale, &c->scale_v);
    for (uint32_t j = 0; j < c->nin; j++) B(c->a_in[j], c->in[j]);
    for (uint32_t i = 0; i < c->np; i++) B(c->a_param[i], s->p[i]), B(c->a_acc[i], s->g[i]);
  } else {
    c->step_v = sc->step, c->lr_v = rnd(c, sc->lr);
    for (int i = 0; i < CRAM_SHIM_NHYPER; i++) c->hyper_v[i] = rnd(c, sc->hyper[i]);
    B(c->u_step, &c->step_v), B(c->u_lr, &c->lr_v), B(c->u_hyper, c->hyper_v);
    for (uint32_t i = 0; i < c->np; i++)
      B(c->u_param[i], s->p[i]), B(c->u_acc[i], s->g[i]), B(c->u_m[i], s->m[i]), B(c->u_v[i], s->v[i]);
  }
  char msg[700];
  InterpOpts o = { .prec = c->prec, .training = training, .seed = seed };
  if (!interp_run(r->g, &o, r->bufs, r->owned, msg, sizeof msg)) {
    bool oom = strstr(msg, "out of memory") != NULL;
    interp_free(r->g, r->bufs, r->owned);
    return cram_shim_fail(c, oom ? CRAM_STEP_E_NOMEM : CRAM_STEP_E_DATA, "%s", msg);
  }
  return CRAM_STEP_OK;
}

static cram_dptr h_output(cram_ctx *c, int g, uint32_t kind, uint32_t index) {
  ValueId v = IR_NONE;
  if (g == CRAM_G_FWD)
    v = kind == CRAM_O_LOSS                                   ? c->f_loss
        : kind == CRAM_O_HITS                                 ? c->f_hits
        : kind == CRAM_O_OTHER && index < c->s.meta->noutputs ? c->f_out[index]
                                                              : IR_NONE;
  else if (g == CRAM_G_ACC)
    v = kind == CRAM_O_LOSS ? c->a_loss : kind == CRAM_O_GRAD && index < c->np ? c->a_out_acc[index] : IR_NONE;
  else if (kind == CRAM_O_GRAD_NORM) v = c->u_norm;
  else if (index < c->np)
    v = kind == CRAM_O_PARAM   ? c->u_out_p[index]
        : kind == CRAM_O_MOM_M ? c->u_out_m[index]
        : kind == CRAM_O_MOM_V ? c->u_out_v[index]
                               : IR_NONE;
  return v == IR_NONE ? 0 : (cram_dptr)c->run[g].bufs[v];
}

static cram_step_rc h_read_output(cram_ctx *c, uint32_t k, float *dst) {
  return h_get(c, dst, h_output(c, CRAM_G_FWD, CRAM_O_OTHER, k), (size_t)c->s.meta->outputs[k].numel);
}

/* the outputs have been read: the run's buffers go */
static void h_done(cram_ctx *c, int g) { interp_free(c->run[g].g, c->run[g].bufs, c->run[g].owned); }

static void h_destroy(cram_ctx *c) {
  for (uint32_t j = 0; c->in && j < c->nin; j++) free(c->in[j]);
  free(c->in);
  free(c->f_out);
  ValueId *ids[] = { c->f_param, c->f_in, c->a_param, c->a_acc,   c->a_in,    c->a_out_acc, c->u_param,
                     c->u_acc,   c->u_m,  c->u_v,     c->u_out_p, c->u_out_m, c->u_out_v };
  for (size_t k = 0; k < sizeof ids / sizeof ids[0]; k++) free(ids[k]);
  for (int g = 0; g < 3; g++) {
    GRun *r = &c->run[g];
    if (r->g && r->bufs && r->owned) interp_free(r->g, r->bufs, r->owned);
    free(r->bufs);
    free(r->owned);
    ir_graph_free(r->g);
  }
}

static const cram_shim_dev interp_dev = {
  .elem = sizeof(double),
  .align = CRAM_SHIM_HOST_ALIGN,
  .on_device = 0,
  .alloc = cram_shim_host_alloc,
  .release = cram_shim_host_release,
  .put = h_put,
  .put_f64 = h_put_f64,
  .get = h_get,
  .zero = cram_shim_host_zero,
  .move = cram_shim_host_move,
  .run = h_run,
  .output = h_output,
  .read_output = h_read_output,
  .done = h_done,
  .destroy = h_destroy,
};

/* ---- lifecycle -------------------------------------------------------------- */

cram_step_rc cram_interp_create(const cram_interp_artifact *a, const cram_create_opts *opts, cram_ctx **out, char *err,
                                size_t errlen) {
  cram_step_rc rc;
  cram_ctx *c = cram_shim_new(out, "interp", a && a->shim_version == CRAM_INTERP_SHIM_VERSION, a ? a->meta : NULL, sizeof *c,
                              &interp_dev, opts, err, errlen, &rc);
  if (!c) return rc;
  c->a = a;
  c->prec = a->f64 ? INTERP_F64 : INTERP_F32;
  c->np = a->meta->nparams;
  c->nin = a->meta->ninputs;
  if (!parse_graph(c, &c->run[CRAM_G_FWD], a->fwd_ir, "forward") ||
      !parse_graph(c, &c->run[CRAM_G_ACC], a->acc_ir, "accumulate") || !parse_graph(c, &c->run[CRAM_G_UP], a->up_ir, "update") ||
      !resolve(c))
    return cram_shim_create_failed(c, strstr(c->s.err, "out of memory") ? CRAM_STEP_E_NOMEM : CRAM_STEP_E_STATE, err, errlen);
  if ((rc = cram_shim_setup(c, a->fwd_ir)) != CRAM_STEP_OK) return cram_shim_create_failed(c, rc, err, errlen);
  bool ok = (c->in = calloc(c->nin ? c->nin : 1, sizeof *c->in)) != NULL;
  for (uint32_t j = 0; ok && j < c->nin; j++)
    ok = (c->in[j] = calloc((size_t)(c->s.meta->inputs[j].numel ? c->s.meta->inputs[j].numel : 1), sizeof(double))) != NULL;
  if (!ok) {
    cram_shim_fail(c, CRAM_STEP_E_NOMEM, "out of memory allocating the input buffers");
    return cram_shim_create_failed(c, CRAM_STEP_E_NOMEM, err, errlen);
  }
  *out = c;
  return CRAM_STEP_OK;
}
