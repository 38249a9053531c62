/* cpu_shim.c - the device table of `cramc --target cpu` artifacts for the
 * shim core (shim_core/shim_core.h; linked as libcram_cpu_step.a into each):
 * the state lives in host memory (f32, 64-byte aligned), one f32 arena of the
 * planned size is shared by the three graphs (they never run at once), and
 * per graph the buffers its outputs and constants own. A run binds the slot
 * table of its graph and calls the generated host function (or, profiling,
 * its kernels one by one); the core copies the outputs into the state after
 * a successful run, so a failing run (bad token id) leaves the state
 * untouched. Errors return an rc and leave one line in the context. */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_profile.h"
#include "cram_cpu_step.h"
#include "shim_core.h"

typedef struct GBind {
  const cram_cpu_graph *g;
  void **slot; /* per slot: bound pointer */
  void **own;  /* per slot: owned buffer (KS_OWN) or NULL */
} GBind;

struct cram_ctx {
  cram_shim s; /* first: the core's state */
  const cram_cpu_artifact *a;
  char *arena;
  GBind bind[3]; /* CRAM_G_FWD, CRAM_G_ACC, CRAM_G_UP */
  float scale_v, step_v, lr_v, hyper_v[CRAM_SHIM_NHYPER];
  cram_cpu_prof *prof; /* NULL unless cram_create_opts.cpu_profile names a file */
  char kerr[900];
};

/* ---- the state in host memory ------------------------------------------------------ */

static cram_step_rc h_put(cram_ctx *c, cram_dptr dst, const float *src, size_t n) {
  (void)c, memcpy((void *)dst, src, n * sizeof(float));
  return CRAM_STEP_OK;
}
static cram_step_rc h_put_f64(cram_ctx *c, cram_dptr dst, const double *src, size_t n) {
  float *d = (float *)dst;
  for (size_t k = 0; k < n; k++) d[k] = (float)src[k];
  (void)c;
  return CRAM_STEP_OK;
}
static cram_step_rc h_get(cram_ctx *c, float *dst, cram_dptr src, size_t n) {
  (void)c, memcpy(dst, (const void *)src, n * sizeof(float));
  return CRAM_STEP_OK;
}

/* ---- graphs ------------------------------------------------------------------------- */

static bool bind_init(GBind *b, const cram_cpu_graph *g) {
  b->g = g;
  size_t n = g->nslots ? g->nslots : 1;
  if (!(b->slot = calloc(n, sizeof *b->slot)) || !(b->own = calloc(n, sizeof *b->own))) return false;
  for (uint32_t s = 0; s < g->nslots; s++)
    if (g->slots[s].kind == CRAM_S_OWN && !(b->own[s] = calloc(1, g->slots[s].bytes ? g->slots[s].bytes : 4))) return false;
  return true;
}

static void bind_free(GBind *b) {
  for (uint32_t s = 0; b->own && b->g && s < b->g->nslots; s++) free(b->own[s]);
  free(b->own);
  free(b->slot);
}

/* Binds every slot of b's graph; inputs may be NULL (update). */
static void bind(cram_ctx *c, GBind *b, const void *const *inputs) {
  const cram_shim *s = &c->s;
  for (uint32_t k = 0; k < b->g->nslots; k++) {
    const cram_cpu_slot *sl = &b->g->slots[k];
    void *ptr;
    switch (sl->kind) {
    case CRAM_S_PARAM: ptr = (void *)s->p[sl->index]; break;
    case CRAM_S_GRAD: ptr = (void *)s->g[sl->index]; break;
    case CRAM_S_MOM_M: ptr = (void *)s->m[sl->index]; break;
    case CRAM_S_MOM_V: ptr = (void *)s->v[sl->index]; break;
    case CRAM_S_INPUT: ptr = inputs ? (void *)inputs[sl->index] : NULL; break;
    case CRAM_S_SCALE: ptr = &c->scale_v; break;
    case CRAM_S_STEP: ptr = &c->step_v; break;
    case CRAM_S_LR: ptr = &c->lr_v; break;
    case CRAM_S_HYPER: ptr = c->hyper_v; break;
    default: ptr = b->own[k]; break;
    }
    b->slot[k] = ptr;
  }
}

static cram_step_rc h_run(cram_ctx *c, int g, const void *const *inputs, const cram_shim_scalars *sc, int training,
                          uint64_t seed) {
  GBind *b = &c->bind[g];
  c->scale_v = (float)sc->scale, c->step_v = (float)sc->step, c->lr_v = (float)sc->lr;
  for (int i = 0; i < CRAM_SHIM_NHYPER; i++) c->hyper_v[i] = (float)sc->hyper[i];
  bind(c, b, inputs);
  cram_cpu_run R = { c->arena, b->slot, seed, training, c->kerr, sizeof c->kerr };
  c->kerr[0] = '\0';
  if (c->prof ? cram_cpu_prof_run(c->prof, g, &R) : b->g->run(&R)) {
    bool oom = strstr(c->kerr, "out of memory") != NULL;
    return cram_shim_fail(c, oom ? CRAM_STEP_E_NOMEM : CRAM_STEP_E_DATA, "%s", c->kerr);
  }
  return CRAM_STEP_OK;
}

static cram_dptr h_output(cram_ctx *c, int g, uint32_t kind, uint32_t index) {
  const GBind *b = &c->bind[g];
  for (uint32_t i = 0; i < b->g->nouts; i++)
    if (b->g->outs[i].kind == kind && b->g->outs[i].index == index) return (cram_dptr)b->slot[b->g->outs[i].slot];
  return 0;
}

static cram_step_rc h_read_output(cram_ctx *c, uint32_t k, float *dst) {
  cram_dptr o = h_output(c, CRAM_G_FWD, CRAM_O_OTHER, k);
  if (!o)
    return cram_shim_fail(c, CRAM_STEP_E_STATE, "output '%s' is not in the compiled forward graph", c->s.meta->outputs[k].name);
  return h_get(c, dst, o, (size_t)c->s.meta->outputs[k].numel);
}

static void h_destroy(cram_ctx *c) {
  for (int g = 0; g < 3; g++) bind_free(&c->bind[g]);
  free(c->arena);
  cram_cpu_prof_close(c->prof);
}

static const cram_shim_dev cpu_dev = {
  .elem = sizeof(float),
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
  .done = NULL,
  .destroy = h_destroy,
};

cram_step_rc cram_cpu_create(const cram_cpu_artifact *a, const cram_create_opts *opts, cram_ctx **out, char *err, size_t errlen) {
  cram_step_rc rc;
  cram_ctx *c = cram_shim_new(out, "cpu", a && a->shim_version == CRAM_CPU_SHIM_VERSION, a ? a->meta : NULL, sizeof *c, &cpu_dev,
                              opts, err, errlen, &rc);
  if (!c) return rc;
  c->a = a;
  if ((rc = cram_shim_setup(c, a->fwd_ir)) != CRAM_STEP_OK) return cram_shim_create_failed(c, rc, err, errlen);
  uint64_t ab = a->fwd.arena_bytes;
  if (a->acc.arena_bytes > ab) ab = a->acc.arena_bytes;
  if (a->up.arena_bytes > ab) ab = a->up.arena_bytes;
  const cram_cpu_graph *gs[3] = { &a->fwd, &a->acc, &a->up };
  bool ok = (c->arena = aligned_alloc(256, (ab + 255) / 256 * 256 + 256)) != NULL;
  for (int g = 0; ok && g < 3; g++) ok = bind_init(&c->bind[g], gs[g]);
  if (!ok) {
    cram_shim_fail(c, CRAM_STEP_E_NOMEM, "out of memory allocating the arena and the graphs' buffers");
    return cram_shim_create_failed(c, CRAM_STEP_E_NOMEM, err, errlen);
  }
  int pfail;
  c->prof = cram_cpu_prof_open(a, opts ? opts->cpu_profile : NULL, &pfail, c->kerr, sizeof c->kerr);
  if (pfail) {
    cram_shim_fail(c, CRAM_STEP_E_ARG, "%s", c->kerr);
    return cram_shim_create_failed(c, CRAM_STEP_E_ARG, err, errlen);
  }
  *out = c;
  return CRAM_STEP_OK;
}
