/* shim_core.c - the step ABI once, over a target's device table
 * (shim_core.h). Entry points check their arguments and the call order,
 * count dropout runs, move a run's outputs into the state only after the run
 * succeeded (a bad batch leaves parameters, moments and gradients as they
 * were), and convert between the ABI's host f32 and the state's element
 * type through the table. No global mutable state. */
#include "shim_core.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diag.h"
#include "init.h"

#define S(c) cram_shim_of(c)

cram_step_rc cram_shim_fail(cram_ctx *c, cram_step_rc rc, const char *fmt, ...) {
  char msg[960];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  snprintf(S(c)->err, sizeof S(c)->err, "%s: %s", S(c)->meta->model, msg);
  return rc;
}

/* ---- host memory (the interp and cpu targets' state) ---------------------------------- */

cram_step_rc cram_shim_host_alloc(cram_ctx *c, size_t bytes, cram_dptr *out) {
  size_t n = (bytes + CRAM_SHIM_HOST_ALIGN - 1) / CRAM_SHIM_HOST_ALIGN * CRAM_SHIM_HOST_ALIGN;
  void *p = aligned_alloc(CRAM_SHIM_HOST_ALIGN, n ? n : CRAM_SHIM_HOST_ALIGN);
  if (!p) return cram_shim_fail(c, CRAM_STEP_E_NOMEM, "out of memory allocating parameters and optimizer state");
  memset(p, 0, n ? n : CRAM_SHIM_HOST_ALIGN);
  *out = (cram_dptr)p;
  return CRAM_STEP_OK;
}
void cram_shim_host_release(cram_ctx *c, cram_dptr p) { (void)c, free((void *)p); }
cram_step_rc cram_shim_host_zero(cram_ctx *c, cram_dptr dst, size_t bytes) {
  (void)c, memset((void *)dst, 0, bytes);
  return CRAM_STEP_OK;
}
cram_step_rc cram_shim_host_move(cram_ctx *c, cram_dptr dst, cram_dptr src, size_t bytes) {
  (void)c, memmove((void *)dst, (const void *)src, bytes);
  return CRAM_STEP_OK;
}

/* ---- lifecycle -------------------------------------------------------------------- */

cram_ctx *cram_shim_new(cram_ctx **out, const char *target, bool version_ok, const cram_step_meta *meta, size_t ctx_size,
                        const cram_shim_dev *dev, const cram_create_opts *opts, char *err, size_t errlen, cram_step_rc *rc) {
  cram_ctx *c = cram_shim_create_ctx(out, target, version_ok, meta, ctx_size, err, errlen, rc);
  if (!c) return NULL;
  cram_shim *s = S(c);
  s->dev = dev;
  s->meta = meta;
  s->training = opts && opts->training;
  s->dropout_seed = opts ? opts->dropout_seed : 0;
  return c;
}

static size_t state_bytes(const cram_shim *s, uint32_t i) { return (size_t)s->meta->params[i].numel * s->dev->elem; }

cram_step_rc cram_shim_setup(cram_ctx *c, const char *fwd_ir) {
  cram_shim *s = S(c);
  const cram_shim_dev *d = s->dev;
  char *dbuf = NULL;
  size_t dlen = 0;
  FILE *mem = open_memstream(&dbuf, &dlen);
  if (!mem) return cram_shim_fail(c, CRAM_STEP_E_NOMEM, "out of memory");
  Diag dg;
  diag_init(&dg, mem);
  s->init_ir = fwd_ir ? ir_parse(fwd_ir, strlen(fwd_ir), "forward", &dg) : NULL;
  fclose(mem);
  free(dbuf);
  if (!s->init_ir) return cram_shim_fail(c, CRAM_STEP_E_STATE, "embedded forward graph does not parse (artifact corrupt?)");
  uint32_t np = s->meta->nparams;
  size_t n = np ? np : 1;
  if (!(s->p = calloc(n, sizeof *s->p)) || !(s->m = calloc(n, sizeof *s->m)) || !(s->v = calloc(n, sizeof *s->v)) ||
      !(s->g = calloc(n, sizeof *s->g)))
    return cram_shim_fail(c, CRAM_STEP_E_NOMEM, "out of memory");
  /* one block per kind (the gradients one array: grad_buffer), each parameter aligned in it */
  for (uint32_t i = 0; i < np; i++) s->block_bytes += (state_bytes(s, i) + d->align - 1) / d->align * d->align;
  cram_dptr *per[4] = { s->p, s->m, s->v, s->g };
  for (int k = 0; k < 4; k++) {
    cram_step_rc rc = d->alloc(c, s->block_bytes ? s->block_bytes : d->align, &s->block[k]);
    if (rc != CRAM_STEP_OK) return rc;
    size_t off = 0;
    for (uint32_t i = 0; i < np; i++) {
      per[k][i] = s->block[k] + off;
      off += (state_bytes(s, i) + d->align - 1) / d->align * d->align;
    }
  }
  return CRAM_STEP_OK;
}

void cram_shim_destroy(cram_ctx *c) {
  if (!c) return;
  cram_shim *s = S(c);
  for (int k = 0; k < 4; k++)
    if (s->block[k]) s->dev->release(c, s->block[k]);
  s->dev->destroy(c);
  free(s->p), free(s->m), free(s->v), free(s->g);
  ir_graph_free(s->init_ir);
  free(c);
}

cram_step_rc cram_shim_create_failed(cram_ctx *c, cram_step_rc rc, char *err, size_t errlen) {
  cram_shim_err(err, errlen, rc, "%s", S(c)->err);
  cram_shim_destroy(c);
  return rc;
}

const char *cram_shim_last_error(const cram_ctx *c) { return c ? ((const cram_shim *)(const void *)c)->err : "no step context"; }

/* ---- parameters and optimizer state ------------------------------------------------ */

/* Parameters by their init rules (the forward IR's param nodes, in table
 * order), moments and gradients zeroed. */
cram_step_rc cram_shim_init_params(cram_ctx *c, uint64_t seed) {
  if (!c) return CRAM_STEP_E_ARG;
  cram_shim *s = S(c);
  uint32_t i = 0;
  for (ValueId v = 0; v < s->init_ir->n && i < s->meta->nparams; v++) {
    const Node *n = &s->init_ir->nodes[v];
    if (n->op != OP_PARAM) continue;
    size_t cnt = (size_t)s->meta->params[i].numel;
    if (strcmp(ir_get_str(n, ATTR_NAME), s->meta->params[i].name) || (int64_t)cnt != ir_shape_numel(&n->shape))
      return cram_shim_fail(c, CRAM_STEP_E_STATE, "parameter '%s': embedded graph and table disagree", s->meta->params[i].name);
    double *tmp = malloc((cnt ? cnt : 1) * sizeof(double));
    if (!tmp) return cram_shim_fail(c, CRAM_STEP_E_NOMEM, "out of memory");
    char msg[256];
    cram_step_rc rc = ir_init_param(n, seed, tmp, msg, sizeof msg) ? s->dev->put_f64(c, s->p[i], tmp, cnt)
                                                                   : cram_shim_fail(c, CRAM_STEP_E_STATE, "%s", msg);
    free(tmp);
    if (rc != CRAM_STEP_OK) return rc;
    i++;
  }
  if (i != s->meta->nparams) return cram_shim_fail(c, CRAM_STEP_E_STATE, "embedded graph lacks parameters of the table");
  for (int k = 1; k < 4; k++) {
    cram_step_rc rc = s->dev->zero(c, s->block[k], s->block_bytes);
    if (rc != CRAM_STEP_OK) return rc;
  }
  s->pending = 0;
  return CRAM_STEP_OK;
}

static cram_step_rc check_index(cram_ctx *c, uint32_t i, const void *a, const void *b) {
  char msg[64];
  cram_step_rc rc = cram_shim_check_index(i, S(c)->meta->nparams, a, b, msg, sizeof msg);
  return rc == CRAM_STEP_OK ? rc : cram_shim_fail(c, rc, "%s", msg);
}

/* get/set of parameter i's state of kind k (0 params, 1 first, 2 second moments) */
static cram_step_rc get_state(cram_ctx *c, int k, uint32_t i, float *dst) {
  cram_dptr *per[3] = { S(c)->p, S(c)->m, S(c)->v };
  return S(c)->dev->get(c, dst, per[k][i], (size_t)S(c)->meta->params[i].numel);
}
static cram_step_rc set_state(cram_ctx *c, int k, uint32_t i, const float *src) {
  cram_dptr *per[3] = { S(c)->p, S(c)->m, S(c)->v };
  return S(c)->dev->put(c, per[k][i], src, (size_t)S(c)->meta->params[i].numel);
}

cram_step_rc cram_shim_get_param(cram_ctx *c, uint32_t i, float *dst) {
  if (!c) return CRAM_STEP_E_ARG;
  cram_step_rc rc = check_index(c, i, dst, dst);
  return rc == CRAM_STEP_OK ? get_state(c, 0, i, dst) : rc;
}
cram_step_rc cram_shim_set_param(cram_ctx *c, uint32_t i, const float *src) {
  if (!c) return CRAM_STEP_E_ARG;
  cram_step_rc rc = check_index(c, i, src, src);
  return rc == CRAM_STEP_OK ? set_state(c, 0, i, src) : rc;
}
cram_step_rc cram_shim_get_moments(cram_ctx *c, uint32_t i, float *m, float *v) {
  if (!c) return CRAM_STEP_E_ARG;
  cram_step_rc rc = check_index(c, i, m, v);
  if (rc == CRAM_STEP_OK) rc = get_state(c, 1, i, m);
  return rc == CRAM_STEP_OK ? get_state(c, 2, i, v) : rc;
}
cram_step_rc cram_shim_set_moments(cram_ctx *c, uint32_t i, const float *m, const float *v) {
  if (!c) return CRAM_STEP_E_ARG;
  cram_step_rc rc = check_index(c, i, m, v);
  if (rc == CRAM_STEP_OK) rc = set_state(c, 1, i, m);
  return rc == CRAM_STEP_OK ? set_state(c, 2, i, v) : rc;
}

/* ---- running -------------------------------------------------------------------------- */

/* Runs graph g as the run after the context's last one (its dropout seed). */
static cram_step_rc run(cram_ctx *c, int g, const void *const *inputs, const cram_shim_scalars *sc, int training) {
  cram_shim *s = S(c);
  if (g != CRAM_G_UP) {
    if (!inputs) return cram_shim_fail(c, CRAM_STEP_E_ARG, "inputs is NULL");
    for (uint32_t j = 0; j < s->meta->ninputs; j++)
      if (!inputs[j]) return cram_shim_fail(c, CRAM_STEP_E_ARG, "input '%s' is NULL", s->meta->inputs[j].name);
  }
  return s->dev->run(c, g, inputs, sc, training, CRAM_STEP_RUN_SEED(s->dropout_seed, s->runs++));
}

/* n host f32 values of output (kind, index) of g's last run; NAN when it has none. */
static cram_step_rc read_out(cram_ctx *c, int g, uint32_t kind, uint32_t index, float *dst, size_t n) {
  cram_dptr o = S(c)->dev->output(c, g, kind, index);
  if (!o) {
    for (size_t k = 0; k < n; k++) dst[k] = NAN;
    return CRAM_STEP_OK;
  }
  return S(c)->dev->get(c, dst, o, n);
}

/* The state of kind per[] takes output `kind` of g's last run (nothing to do when computed in place). */
static cram_step_rc take(cram_ctx *c, int g, uint32_t kind, const cram_dptr *per) {
  cram_shim *s = S(c);
  for (uint32_t i = 0; i < s->meta->nparams; i++) {
    cram_dptr o = s->dev->output(c, g, kind, i);
    cram_step_rc rc = o && o != per[i] ? s->dev->move(c, per[i], o, state_bytes(s, i)) : CRAM_STEP_OK;
    if (rc != CRAM_STEP_OK) return rc;
  }
  return CRAM_STEP_OK;
}

static void done(cram_ctx *c, int g) {
  if (S(c)->dev->done) S(c)->dev->done(c, g);
}

cram_step_rc cram_shim_step(cram_ctx *c, const void *const *inputs, float scale, float *loss) {
  if (!c) return CRAM_STEP_E_ARG;
  if (!loss) return cram_shim_fail(c, CRAM_STEP_E_ARG, "loss is NULL");
  cram_shim_scalars sc = { .scale = scale };
  cram_step_rc rc = run(c, CRAM_G_ACC, inputs, &sc, S(c)->training);
  if (rc != CRAM_STEP_OK) return rc; /* grad_acc untouched: the batch is dropped whole */
  if ((rc = read_out(c, CRAM_G_ACC, CRAM_O_LOSS, 0, loss, 1)) == CRAM_STEP_OK) rc = take(c, CRAM_G_ACC, CRAM_O_GRAD, S(c)->g);
  done(c, CRAM_G_ACC);
  if (rc == CRAM_STEP_OK) S(c)->pending++;
  return rc;
}

cram_step_rc cram_shim_update(cram_ctx *c, const cram_update_args *args, float *grad_norm) {
  if (!c) return CRAM_STEP_E_ARG;
  cram_shim *s = S(c);
  char msg[200];
  cram_shim_scalars sc = { 0 };
  if (cram_shim_update_hyper(args, sc.hyper, msg, sizeof msg) != CRAM_STEP_OK)
    return cram_shim_fail(c, CRAM_STEP_E_ARG, "%s", msg);
  if (s->pending == 0) return cram_shim_fail(c, CRAM_STEP_E_STATE, "update() without a step() since the last update");
  sc.step = (double)args->step, sc.lr = args->lr;
  cram_step_rc rc = run(c, CRAM_G_UP, NULL, &sc, 0);
  if (rc != CRAM_STEP_OK) return rc;
  float gn;
  if ((rc = read_out(c, CRAM_G_UP, CRAM_O_GRAD_NORM, 0, &gn, 1)) == CRAM_STEP_OK && grad_norm) *grad_norm = gn;
  /* the run is over: overwriting the state it read is safe */
  if (rc == CRAM_STEP_OK) rc = take(c, CRAM_G_UP, CRAM_O_PARAM, s->p);
  if (rc == CRAM_STEP_OK) rc = take(c, CRAM_G_UP, CRAM_O_MOM_M, s->m);
  if (rc == CRAM_STEP_OK) rc = take(c, CRAM_G_UP, CRAM_O_MOM_V, s->v);
  done(c, CRAM_G_UP);
  if (rc == CRAM_STEP_OK) rc = s->dev->zero(c, s->block[3], s->block_bytes);
  if (rc == CRAM_STEP_OK) s->pending = 0;
  return rc;
}

/* The forward graph with dropout off: the loss, the outputs predict() asks
 * for, the accuracy counts eval_accuracy() asks for (hits NULL: not asked). */
static cram_step_rc forward(cram_ctx *c, const void *const *inputs, float *loss, float *const *outputs, double *hits) {
  if (!c) return CRAM_STEP_E_ARG;
  if (!loss) return cram_shim_fail(c, CRAM_STEP_E_ARG, "loss is NULL");
  cram_shim_scalars sc = { 0 };
  cram_step_rc rc = run(c, CRAM_G_FWD, inputs, &sc, 0);
  if (rc != CRAM_STEP_OK) return rc;
  rc = read_out(c, CRAM_G_FWD, CRAM_O_LOSS, 0, loss, 1);
  for (uint32_t k = 0; rc == CRAM_STEP_OK && outputs && k < S(c)->meta->noutputs; k++)
    if (outputs[k]) rc = S(c)->dev->read_output(c, k, outputs[k]);
  float h[2] = { 0, 0 };
  if (rc == CRAM_STEP_OK && hits && S(c)->dev->output(c, CRAM_G_FWD, CRAM_O_HITS, 0))
    rc = read_out(c, CRAM_G_FWD, CRAM_O_HITS, 0, h, 2);
  if (hits) hits[0] = h[0], hits[1] = h[1];
  done(c, CRAM_G_FWD);
  return rc;
}

cram_step_rc cram_shim_eval(cram_ctx *c, const void *const *inputs, float *loss) { return forward(c, inputs, loss, NULL, NULL); }

cram_step_rc cram_shim_predict(cram_ctx *c, const void *const *inputs, float *loss, float *const *outputs) {
  return forward(c, inputs, loss, outputs, NULL);
}

cram_step_rc cram_shim_eval_accuracy(cram_ctx *c, const void *const *inputs, float *loss, double *correct, double *counted) {
  if (c && (!correct || !counted)) return cram_shim_fail(c, CRAM_STEP_E_ARG, "correct or counted is NULL");
  double h[2];
  cram_step_rc rc = forward(c, inputs, loss, NULL, h);
  if (rc == CRAM_STEP_OK) *correct = h[0], *counted = h[1];
  return rc;
}

/* ---- the gradient accumulator ------------------------------------------------------------ */

cram_step_rc cram_shim_grad_norm(cram_ctx *c, float *norm) {
  if (!c) return CRAM_STEP_E_ARG;
  if (!norm) return cram_shim_fail(c, CRAM_STEP_E_ARG, "norm is NULL");
  cram_shim *s = S(c);
  double sum = 0;
  for (uint32_t i = 0; i < s->meta->nparams; i++) {
    size_t n = (size_t)s->meta->params[i].numel;
    float *h = malloc((n ? n : 1) * sizeof(float));
    if (!h) return cram_shim_fail(c, CRAM_STEP_E_NOMEM, "out of memory");
    cram_step_rc rc = s->dev->get(c, h, s->g[i], n);
    for (size_t k = 0; rc == CRAM_STEP_OK && k < n; k++) sum += (double)h[k] * h[k];
    free(h);
    if (rc != CRAM_STEP_OK) return rc;
  }
  *norm = (float)sqrt(sum);
  return CRAM_STEP_OK;
}

cram_step_rc cram_shim_zero_grad(cram_ctx *c) {
  if (!c) return CRAM_STEP_E_ARG;
  cram_step_rc rc = S(c)->dev->zero(c, S(c)->block[3], S(c)->block_bytes);
  if (rc == CRAM_STEP_OK) S(c)->pending = 0;
  return rc;
}

cram_step_rc cram_shim_grad_buffer(cram_ctx *c, cram_grad_buffer *out) {
  if (!c) return CRAM_STEP_E_ARG;
  if (!out) return cram_shim_fail(c, CRAM_STEP_E_ARG, "grad_buffer out is NULL");
  const cram_shim *s = S(c);
  *out = (cram_grad_buffer){ .data = (void *)s->block[3],
                             .dtype = s->dev->elem == 8 ? CRAM_DT_F64 : CRAM_DT_F32,
                             .count = (int64_t)(s->block_bytes / s->dev->elem),
                             .on_device = s->dev->on_device };
  return CRAM_STEP_OK;
}
