/* cpu_shim.c - the step ABI for `cramc --target cpu` artifacts (linked as
 * libcram_cpu_step.a into each): one f32 arena of the planned size shared by
 * the three graphs (they never run at once), per parameter its value, Adam
 * moments and gradient accumulator (f32), and per graph the buffers its
 * outputs and constants own. A call binds the slot table of its graph, runs
 * the generated host function, and copies the outputs back into the state,
 * so a failing run (bad token id) leaves the state untouched.
 * Parameter init parses the embedded forward IR once and uses ir/init.c: the
 * same values as the interp target. Errors return an rc and leave one line
 * in the context; no global mutable state. */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_profile.h"
#include "cram_cpu_step.h"
#include "diag.h"
#include "init.h"
#include "ir.h"

typedef struct GBind {
  const cram_cpu_graph *g;
  void **slot;   /* per slot: bound pointer */
  void **own;    /* per slot: owned buffer (KS_OWN) or NULL */
} GBind;

struct cram_ctx {
  const cram_cpu_artifact *a;
  const cram_step_meta *meta;
  Graph *fwd_ir;
  int training;
  uint64_t dropout_seed, runs;
  char *arena;
  uint32_t np, nin;
  float **p, **m, **v, **g;
  float *gblock;   /* every gradient accumulator in one block (g[i] point into it): grad_buffer() */
  int64_t gcount;  /* its floats, each parameter padded to 64 bytes */
  GBind fwd, acc, up;
  float scale_v, step_v, lr_v, hyper_v[CRAM_SHIM_NHYPER];
  long pending;
  cram_cpu_prof *prof; /* NULL unless cram_create_opts.cpu_profile names a file */
  char err[1024];
  char kerr[900];
};

static cram_step_rc fail(cram_ctx *c, cram_step_rc rc, const char *fmt, const char *arg) {
  char msg[960];
  snprintf(msg, sizeof msg, fmt, arg);
  snprintf(c->err, sizeof c->err, "%s: %s", c->meta->model, msg);
  return rc;
}

static bool bind_init(cram_ctx *c, GBind *b, const cram_cpu_graph *g) {
  b->g = g;
  size_t n = g->nslots ? g->nslots : 1;
  if (!(b->slot = calloc(n, sizeof *b->slot)) || !(b->own = calloc(n, sizeof *b->own))) return false;
  for (uint32_t s = 0; s < g->nslots; s++)
    if (g->slots[s].kind == CRAM_S_OWN && !(b->own[s] = calloc(1, g->slots[s].bytes ? g->slots[s].bytes : 4)))
      return false;
  (void)c;
  return true;
}

static void bind_free(GBind *b) {
  for (uint32_t s = 0; b->own && b->g && s < b->g->nslots; s++) free(b->own[s]);
  free(b->own);
  free(b->slot);
}

void cram_cpu_destroy(cram_ctx *c) {
  if (!c) return;
  for (uint32_t i = 0; i < c->np; i++) {
    if (c->p) free(c->p[i]);
    if (c->m) free(c->m[i]);
    if (c->v) free(c->v[i]);
  }
  free(c->p), free(c->m), free(c->v), free(c->g), free(c->gblock);
  bind_free(&c->fwd);
  bind_free(&c->acc);
  bind_free(&c->up);
  free(c->arena);
  ir_graph_free(c->fwd_ir);
  cram_cpu_prof_close(c->prof);
  free(c);
}

cram_step_rc cram_cpu_create(const cram_cpu_artifact *a, const cram_create_opts *opts, cram_ctx **out, char *err,
                             size_t errlen) {
  cram_step_rc rc;
  cram_ctx *c = cram_shim_create_ctx(out, "cpu", a && a->shim_version == CRAM_CPU_SHIM_VERSION, a ? a->meta : NULL,
                                     sizeof *c, err, errlen, &rc);
  if (!c) return rc;
  c->a = a;
  c->meta = a->meta;
  c->training = opts && opts->training;
  c->dropout_seed = opts ? opts->dropout_seed : 0;
  c->np = a->meta->nparams;
  c->nin = a->meta->ninputs;
  rc = CRAM_STEP_E_NOMEM;
  /* the forward IR, for the init rules */
  char *dbuf = NULL;
  size_t dlen = 0;
  FILE *mem = open_memstream(&dbuf, &dlen);
  if (!mem) goto oom;
  Diag d;
  diag_init(&d, mem);
  c->fwd_ir = ir_parse(a->fwd_ir, strlen(a->fwd_ir), "forward", &d);
  fclose(mem);
  free(dbuf);
  if (!c->fwd_ir) {
    fail(c, CRAM_STEP_E_STATE, "%s", "embedded forward graph does not parse (artifact corrupt?)");
    rc = CRAM_STEP_E_STATE;
    goto bad;
  }
  uint64_t ab = a->fwd.arena_bytes;
  if (a->acc.arena_bytes > ab) ab = a->acc.arena_bytes;
  if (a->up.arena_bytes > ab) ab = a->up.arena_bytes;
  if (!(c->arena = aligned_alloc(256, (ab + 255) / 256 * 256 + 256))) goto oom;
  size_t np = c->np ? c->np : 1;
  if (!(c->p = calloc(np, sizeof *c->p)) || !(c->m = calloc(np, sizeof *c->m)) || !(c->v = calloc(np, sizeof *c->v)) ||
      !(c->g = calloc(np, sizeof *c->g)))
    goto oom;
  /* one zeroed block, so data-parallel training all-reduces a single array */
  for (uint32_t i = 0; i < c->np; i++) c->gcount += (c->meta->params[i].numel + 15) / 16 * 16;
  if (!(c->gblock = aligned_alloc(64, (size_t)(c->gcount ? c->gcount : 16) * sizeof(float)))) goto oom;
  memset(c->gblock, 0, (size_t)(c->gcount ? c->gcount : 16) * sizeof(float));
  int64_t off = 0;
  for (uint32_t i = 0; i < c->np; i++) {
    size_t n = (size_t)(c->meta->params[i].numel ? c->meta->params[i].numel : 1);
    if (!(c->p[i] = calloc(n, sizeof(float))) || !(c->m[i] = calloc(n, sizeof(float))) ||
        !(c->v[i] = calloc(n, sizeof(float))))
      goto oom;
    c->g[i] = c->gblock + off;
    off += (c->meta->params[i].numel + 15) / 16 * 16;
  }
  if (!bind_init(c, &c->fwd, &a->fwd) || !bind_init(c, &c->acc, &a->acc) || !bind_init(c, &c->up, &a->up)) goto oom;
  int pfail;
  c->prof = cram_cpu_prof_open(a, opts ? opts->cpu_profile : NULL, &pfail, c->kerr, sizeof c->kerr);
  if (pfail) {
    fail(c, CRAM_STEP_E_ARG, "%s", c->kerr);
    rc = CRAM_STEP_E_ARG;
    goto bad;
  }
  *out = c;
  return CRAM_STEP_OK;
oom:
  fail(c, CRAM_STEP_E_NOMEM, "%s", "out of memory allocating the arena, parameters and optimizer state");
bad:
  cram_shim_err(err, errlen, rc, "%s", c->err);
  cram_cpu_destroy(c);
  return rc;
}

const char *cram_cpu_last_error(const cram_ctx *c) { return c ? c->err : "cpu step: no context"; }

/* ---- parameters and optimizer state ----------------------------------------------- */

cram_step_rc cram_cpu_init_params(cram_ctx *c, uint64_t seed) {
  if (!c) return CRAM_STEP_E_ARG;
  uint32_t i = 0;
  for (ValueId v = 0; v < c->fwd_ir->n && i < c->np; v++) {
    const Node *n = &c->fwd_ir->nodes[v];
    if (n->op != OP_PARAM) continue;
    size_t cnt = (size_t)c->meta->params[i].numel;
    if (strcmp(ir_get_str(n, ATTR_NAME), c->meta->params[i].name) || (int64_t)cnt != ir_shape_numel(&n->shape))
      return fail(c, CRAM_STEP_E_STATE, "parameter '%s': embedded graph and table disagree", c->meta->params[i].name);
    double *tmp = malloc((cnt ? cnt : 1) * sizeof(double));
    if (!tmp) return fail(c, CRAM_STEP_E_NOMEM, "%s", "out of memory");
    char msg[256];
    if (!ir_init_param(n, seed, tmp, msg, sizeof msg)) {
      free(tmp);
      return fail(c, CRAM_STEP_E_STATE, "%s", msg);
    }
    for (size_t k = 0; k < cnt; k++) c->p[i][k] = (float)tmp[k];
    free(tmp);
    memset(c->m[i], 0, cnt * sizeof(float));
    memset(c->v[i], 0, cnt * sizeof(float));
    memset(c->g[i], 0, cnt * sizeof(float));
    i++;
  }
  if (i != c->np) return fail(c, CRAM_STEP_E_STATE, "%s", "embedded graph lacks parameters of the table");
  c->pending = 0;
  return CRAM_STEP_OK;
}

static cram_step_rc check_index(cram_ctx *c, uint32_t i, const void *a, const void *b) {
  char msg[64];
  cram_step_rc rc = cram_shim_check_index(i, c->np, a, b, msg, sizeof msg);
  return rc == CRAM_STEP_OK ? rc : fail(c, rc, "%s", msg);
}

static size_t psz(const cram_ctx *c, uint32_t i) { return (size_t)c->meta->params[i].numel * sizeof(float); }

cram_step_rc cram_cpu_get_param(cram_ctx *c, uint32_t i, float *dst) {
  if (!c) return CRAM_STEP_E_ARG;
  cram_step_rc rc = check_index(c, i, dst, dst);
  if (rc == CRAM_STEP_OK) memcpy(dst, c->p[i], psz(c, i));
  return rc;
}
cram_step_rc cram_cpu_set_param(cram_ctx *c, uint32_t i, const float *src) {
  if (!c) return CRAM_STEP_E_ARG;
  cram_step_rc rc = check_index(c, i, src, src);
  if (rc == CRAM_STEP_OK) memcpy(c->p[i], src, psz(c, i));
  return rc;
}
cram_step_rc cram_cpu_get_moments(cram_ctx *c, uint32_t i, float *m, float *v) {
  if (!c) return CRAM_STEP_E_ARG;
  cram_step_rc rc = check_index(c, i, m, v);
  if (rc == CRAM_STEP_OK) memcpy(m, c->m[i], psz(c, i)), memcpy(v, c->v[i], psz(c, i));
  return rc;
}
cram_step_rc cram_cpu_set_moments(cram_ctx *c, uint32_t i, const float *m, const float *v) {
  if (!c) return CRAM_STEP_E_ARG;
  cram_step_rc rc = check_index(c, i, m, v);
  if (rc == CRAM_STEP_OK) memcpy(c->m[i], m, psz(c, i)), memcpy(c->v[i], v, psz(c, i));
  return rc;
}

/* ---- running --------------------------------------------------------------------------- */

/* Binds every slot of b's graph; inputs may be NULL (update). */
static cram_step_rc bind(cram_ctx *c, GBind *b, const void *const *inputs) {
  const cram_cpu_graph *g = b->g;
  for (uint32_t s = 0; s < g->nslots; s++) {
    const cram_cpu_slot *sl = &g->slots[s];
    void *ptr = NULL;
    switch (sl->kind) {
    case CRAM_S_PARAM: ptr = c->p[sl->index]; break;
    case CRAM_S_GRAD: ptr = c->g[sl->index]; break;
    case CRAM_S_MOM_M: ptr = c->m[sl->index]; break;
    case CRAM_S_MOM_V: ptr = c->v[sl->index]; break;
    case CRAM_S_INPUT:
      if (!inputs) return fail(c, CRAM_STEP_E_ARG, "%s", "inputs is NULL");
      if (!inputs[sl->index]) return fail(c, CRAM_STEP_E_ARG, "input '%s' is NULL", c->meta->inputs[sl->index].name);
      ptr = (void *)inputs[sl->index];
      break;
    case CRAM_S_SCALE: ptr = &c->scale_v; break;
    case CRAM_S_STEP: ptr = &c->step_v; break;
    case CRAM_S_LR: ptr = &c->lr_v; break;
    case CRAM_S_HYPER: ptr = c->hyper_v; break;
    default: ptr = b->own[s]; break;
    }
    b->slot[s] = ptr;
  }
  return CRAM_STEP_OK;
}

static cram_step_rc run(cram_ctx *c, GBind *b, int training) {
  cram_cpu_run R = {c->arena, b->slot, CRAM_STEP_RUN_SEED(c->dropout_seed, c->runs++), training, c->kerr,
                    sizeof c->kerr};
  c->kerr[0] = '\0';
  if (c->prof ? cram_cpu_prof_run(c->prof, b == &c->fwd ? 0 : b == &c->acc ? 1 : 2, &R) : b->g->run(&R)) {
    bool oom = strstr(c->kerr, "out of memory") != NULL;
    return fail(c, oom ? CRAM_STEP_E_NOMEM : CRAM_STEP_E_DATA, "%s", c->kerr);
  }
  return CRAM_STEP_OK;
}

static const float *outp(const GBind *b, uint32_t kind, uint32_t index) {
  for (uint32_t i = 0; i < b->g->nouts; i++)
    if (b->g->outs[i].kind == kind && b->g->outs[i].index == index) return b->slot[b->g->outs[i].slot];
  return NULL;
}

cram_step_rc cram_cpu_step(cram_ctx *c, const void *const *inputs, float scale, float *loss) {
  if (!c) return CRAM_STEP_E_ARG;
  if (!loss) return fail(c, CRAM_STEP_E_ARG, "%s", "loss is NULL");
  GBind *b = &c->acc;
  c->scale_v = scale;
  cram_step_rc rc = bind(c, b, inputs);
  if (rc != CRAM_STEP_OK || (rc = run(c, b, c->training)) != CRAM_STEP_OK) return rc; /* grad_acc untouched */
  const float *l = outp(b, CRAM_O_LOSS, 0);
  *loss = l ? l[0] : NAN;
  for (uint32_t i = 0; i < c->np; i++) {
    const float *ga = outp(b, CRAM_O_GRAD, i);
    if (ga) memmove(c->g[i], ga, psz(c, i));
  }
  c->pending++;
  return CRAM_STEP_OK;
}

cram_step_rc cram_cpu_update(cram_ctx *c, const cram_update_args *args, float *grad_norm) {
  if (!c) return CRAM_STEP_E_ARG;
  char msg[200];
  double h[CRAM_SHIM_NHYPER];
  if (cram_shim_update_hyper(args, h, msg, sizeof msg) != CRAM_STEP_OK) return fail(c, CRAM_STEP_E_ARG, "%s", msg);
  if (c->pending == 0) return fail(c, CRAM_STEP_E_STATE, "%s", "update() without a step() since the last update");
  GBind *b = &c->up;
  c->step_v = (float)args->step;
  c->lr_v = args->lr;
  for (int i = 0; i < CRAM_SHIM_NHYPER; i++) c->hyper_v[i] = (float)h[i];
  cram_step_rc rc = bind(c, b, NULL);
  if (rc != CRAM_STEP_OK || (rc = run(c, b, 0)) != CRAM_STEP_OK) return rc;
  const float *gn = outp(b, CRAM_O_GRAD_NORM, 0);
  if (grad_norm) *grad_norm = gn ? gn[0] : NAN;
  for (uint32_t i = 0; i < c->np; i++) {
    const float *np_ = outp(b, CRAM_O_PARAM, i), *nm = outp(b, CRAM_O_MOM_M, i), *nv = outp(b, CRAM_O_MOM_V, i);
    if (np_) memmove(c->p[i], np_, psz(c, i));
    if (nm) memmove(c->m[i], nm, psz(c, i));
    if (nv) memmove(c->v[i], nv, psz(c, i));
    memset(c->g[i], 0, psz(c, i));
  }
  c->pending = 0;
  return CRAM_STEP_OK;
}

cram_step_rc cram_cpu_eval(cram_ctx *c, const void *const *inputs, float *loss) {
  return cram_cpu_predict(c, inputs, loss, NULL);
}

/* The forward graph with dropout off: the loss, the outputs predict() asks
 * for, the accuracy counts eval_accuracy() asks for (hits NULL: not asked). */
static cram_step_rc forward(cram_ctx *c, const void *const *inputs, float *loss, float *const *outputs, double *hits) {
  if (!c) return CRAM_STEP_E_ARG;
  if (!loss) return fail(c, CRAM_STEP_E_ARG, "%s", "loss is NULL");
  GBind *b = &c->fwd;
  cram_step_rc rc = bind(c, b, inputs);
  if (rc != CRAM_STEP_OK || (rc = run(c, b, 0)) != CRAM_STEP_OK) return rc;
  const float *l = outp(b, CRAM_O_LOSS, 0);
  *loss = l ? l[0] : NAN;
  for (uint32_t k = 0; outputs && k < c->meta->noutputs; k++) {
    const float *o = outp(b, CRAM_O_OTHER, k);
    if (!o) return fail(c, CRAM_STEP_E_STATE, "output '%s' is not in the compiled forward graph", c->meta->outputs[k].name);
    if (outputs[k]) memcpy(outputs[k], o, (size_t)c->meta->outputs[k].numel * sizeof(float));
  }
  const float *h = outp(b, CRAM_O_HITS, 0);
  if (hits) hits[0] = h ? h[0] : 0, hits[1] = h ? h[1] : 0;
  return CRAM_STEP_OK;
}

cram_step_rc cram_cpu_predict(cram_ctx *c, const void *const *inputs, float *loss, float *const *outputs) {
  return forward(c, inputs, loss, outputs, NULL);
}

cram_step_rc cram_cpu_eval_accuracy(cram_ctx *c, const void *const *inputs, float *loss, double *correct,
                                    double *counted) {
  double h[2];
  if (c && (!correct || !counted)) return fail(c, CRAM_STEP_E_ARG, "%s", "correct or counted is NULL");
  cram_step_rc rc = forward(c, inputs, loss, NULL, h);
  if (rc == CRAM_STEP_OK) *correct = h[0], *counted = h[1];
  return rc;
}

cram_step_rc cram_cpu_grad_norm(cram_ctx *c, float *norm) {
  if (!c) return CRAM_STEP_E_ARG;
  if (!norm) return fail(c, CRAM_STEP_E_ARG, "%s", "norm is NULL");
  double s = 0;
  for (uint32_t i = 0; i < c->np; i++)
    for (int64_t k = 0; k < c->meta->params[i].numel; k++) s += (double)c->g[i][k] * c->g[i][k];
  *norm = (float)sqrt(s);
  return CRAM_STEP_OK;
}

cram_step_rc cram_cpu_zero_grad(cram_ctx *c) {
  if (!c) return CRAM_STEP_E_ARG;
  for (uint32_t i = 0; i < c->np; i++) memset(c->g[i], 0, psz(c, i));
  c->pending = 0;
  return CRAM_STEP_OK;
}

cram_step_rc cram_cpu_grad_buffer(cram_ctx *c, cram_grad_buffer *out) {
  if (!c) return CRAM_STEP_E_ARG;
  if (!out) return fail(c, CRAM_STEP_E_ARG, "%s", "grad_buffer out is NULL");
  *out = (cram_grad_buffer){.data = c->gblock, .dtype = CRAM_DT_F32, .count = c->gcount, .on_device = 0};
  return CRAM_STEP_OK;
}
