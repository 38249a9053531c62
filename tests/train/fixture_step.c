/* fixture_step.c - a TEST DOUBLE of a compiled train step: a tiny bigram
 * masked-LM (predict each target token from the token before it: embedding
 * [vocab, hidden] -> linear [hidden, vocab] + bias -> softmax cross entropy,
 * mean over the target positions) implementing the step ABI (cram_step.h) in
 * plain, deterministic C. The trainer tests (tests/train) drive it through
 * `cram train` exactly as they will drive cramc's real step.so artifacts;
 * it is not part of cramc. The optimizer takes its settings from update()'s
 * arguments (betas, eps, both weight decays, clip), as cramc's steps do.
 *
 * Test hooks (environment, read by create()):
 *   CRAM_FIXTURE_NAN=A:N       step() calls A..A+N-1 (0-based, per context)
 *                              return a NaN loss and NaN gradients;
 *   CRAM_FIXTURE_NAN_GRAD=A:N  same calls give finite loss, NaN gradients;
 *   CRAM_FIXTURE_DATA_ERR=A:N  same calls fail with CRAM_STEP_E_DATA (grad_acc untouched);
 *   CRAM_FIXTURE_SLEEP_US=U    every step() first sleeps U microseconds (a slow device);
 *   CRAM_FIXTURE_DROPOUT=0     no "dropout" factor (a model without dropout: data-parallel
 *                              runs then equal one process up to summation order).
 *
 * Dropout, as far as the trainer can tell: created with training = 1, every
 * step() scales its loss and gradients by a factor in [0.99, 1.01) drawn from
 * the run's seed, CRAM_STEP_RUN_SEED(dropout_seed, run), where every step,
 * update, eval and predict call is a run (docs/abi.md) - so a trainer that
 * resumes without continuing the mask stream gets different losses. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cram_step.h"

#define V 64
#define H 8
#define B 4
#define S 16
#define M 4

enum { P_EMB, P_W, P_B, NP };
static const int64_t numel[NP] = { V * H, H *V, V };

struct cram_ctx {
  float *p[NP], *g[NP], *m[NP], *v[NP];
  float *gblock; /* g[i] point into it: grad_buffer() */
  long calls;
  long pending; /* step() calls since the last update/zero_grad: update() refuses 0, as cramc's shims do */
  int training;
  uint64_t dropout_seed, runs; /* the dropout stream: run n draws from CRAM_STEP_RUN_SEED(dropout_seed, n) */
  long nan_a, nan_n, gnan_a, gnan_n, derr_a, derr_n, sleep_us;
  char err[256];
};

static const cram_dim dims[] = { { "batch", B },  { "seq", S },       { "vocab", V },
                                 { "hidden", H }, { "mask_pct", 25 }, { "masked", M } };
static const cram_tensor_info inputs[] = {
  { "tokens", CRAM_DT_I32, 2, { B, S }, B *S, 0 },
  { "targets", CRAM_DT_I32, 2, { B, S }, B *S, 0 },
};
static const cram_tensor_info params[] = {
  { "embedding", CRAM_DT_F32, 2, { V, H }, V *H, 1 },
  { "out.weight", CRAM_DT_F32, 2, { H, V }, H *V, 1 },
  { "out.bias", CRAM_DT_F32, 1, { V }, V, 0 },
};
static const cram_step_meta meta = {
  .abi_version = CRAM_STEP_ABI_VERSION,
  .model = "fixture_bigram",
  .target = "cpu",
  .precision = "f32",
  .cramc_version = "fixture",
  .source_hash = "0000000000000000",
  .min_sm = 0,
  .ndims = 6,
  .dims = dims,
  .ninputs = 2,
  .inputs = inputs,
  .nparams = NP,
  .params = params,
  .nparam_elems = V * H + H * V + V,
  .arena_bytes = 4096,
  .kernel_count = 0,
  .flops_per_token = 6.0 * (H * V),
  .has_accuracy = 1,
};

static void range_env(const char *name, long *a, long *n) {
  const char *s = getenv(name);
  *a = -1;
  *n = 0;
  if (s && sscanf(s, "%ld:%ld", a, n) != 2) *a = -1, *n = 0;
}

static cram_step_rc fx_create(const cram_create_opts *opts, cram_ctx **out, char *err, size_t errlen) {
  cram_ctx *c = calloc(1, sizeof *c);
  if (!c) {
    snprintf(err, errlen, "fixture: out of memory");
    return CRAM_STEP_E_NOMEM;
  }
  const char *dr = getenv("CRAM_FIXTURE_DROPOUT");
  c->training = opts && !(dr && strcmp(dr, "0") == 0) ? opts->training : 0;
  c->dropout_seed = opts ? opts->dropout_seed : 0;
  c->gblock = calloc(V * H + H * V + V, sizeof(float));
  for (int i = 0, off = 0; i < NP; off += (int)numel[i], i++) {
    c->p[i] = calloc((size_t)numel[i], sizeof(float));
    c->g[i] = c->gblock + off;
    c->m[i] = calloc((size_t)numel[i], sizeof(float));
    c->v[i] = calloc((size_t)numel[i], sizeof(float));
  }
  range_env("CRAM_FIXTURE_NAN", &c->nan_a, &c->nan_n);
  range_env("CRAM_FIXTURE_NAN_GRAD", &c->gnan_a, &c->gnan_n);
  range_env("CRAM_FIXTURE_DATA_ERR", &c->derr_a, &c->derr_n);
  const char *sl = getenv("CRAM_FIXTURE_SLEEP_US");
  c->sleep_us = sl ? atol(sl) : 0;
  *out = c;
  return CRAM_STEP_OK;
}

static void fx_destroy(cram_ctx *c) {
  if (!c) return;
  for (int i = 0; i < NP; i++) free(c->p[i]), free(c->m[i]), free(c->v[i]);
  free(c->gblock);
  free(c);
}

static const char *fx_last_error(const cram_ctx *c) { return c ? c->err : "fixture: no context"; }

static uint64_t mix(uint64_t z) {
  z += 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static cram_step_rc fx_init(cram_ctx *c, uint64_t seed) {
  for (int i = 0; i < NP; i++)
    for (int64_t j = 0; j < numel[i]; j++) {
      double u = (double)(mix(seed * 1000003u + (uint64_t)i * 7919u + (uint64_t)j) >> 11) / 9007199254740992.0;
      c->p[i][j] = i == P_B ? 0.0f : (float)((u - 0.5) * 0.2);
      c->g[i][j] = c->m[i][j] = c->v[i][j] = 0;
    }
  c->calls = 0;
  return CRAM_STEP_OK;
}

static cram_step_rc fx_get(cram_ctx *c, uint32_t i, float *dst) {
  if (i >= NP || !dst) return CRAM_STEP_E_ARG;
  memcpy(dst, c->p[i], (size_t)numel[i] * 4);
  return CRAM_STEP_OK;
}
static cram_step_rc fx_set(cram_ctx *c, uint32_t i, const float *src) {
  if (i >= NP || !src) return CRAM_STEP_E_ARG;
  memcpy(c->p[i], src, (size_t)numel[i] * 4);
  return CRAM_STEP_OK;
}
static cram_step_rc fx_getm(cram_ctx *c, uint32_t i, float *m, float *v) {
  if (i >= NP || !m || !v) return CRAM_STEP_E_ARG;
  memcpy(m, c->m[i], (size_t)numel[i] * 4);
  memcpy(v, c->v[i], (size_t)numel[i] * 4);
  return CRAM_STEP_OK;
}
static cram_step_rc fx_setm(cram_ctx *c, uint32_t i, const float *m, const float *v) {
  if (i >= NP || !m || !v) return CRAM_STEP_E_ARG;
  memcpy(c->m[i], m, (size_t)numel[i] * 4);
  memcpy(c->v[i], v, (size_t)numel[i] * 4);
  return CRAM_STEP_OK;
}

/* Forward (and backward when scale != 0 or grads wanted). */
/* hits (or NULL): the accuracy counts, correct and counted rows */
static cram_step_rc run(cram_ctx *c, const void *const *in, float scale, int backward, float *loss, double *hits) {
  const int32_t *tok = in[0], *tgt = in[1];
  double total = 0;
  int count = 0, correct = 0;
  for (int i = 0; i < B * S; i++) {
    if (tok[i] < 0 || tok[i] >= V || tgt[i] < -100 || tgt[i] >= V || (tgt[i] < 0 && tgt[i] != -100)) {
      snprintf(c->err, sizeof c->err, "fixture: token id out of range at %d", i);
      return CRAM_STEP_E_DATA;
    }
    if (tgt[i] != -100) count++;
  }
  if (hits) hits[0] = hits[1] = 0;
  if (!count) {
    *loss = 0;
    return CRAM_STEP_OK;
  }
  float logits[V], dl[V];
  for (int b = 0; b < B; b++)
    for (int s = 0; s < S; s++) {
      int y = tgt[b * S + s];
      if (y == -100) continue;
      int x = s ? tok[b * S + s - 1] : 0;
      const float *h = c->p[P_EMB] + x * H;
      float mx = -INFINITY;
      int best = 0;
      for (int v = 0; v < V; v++) {
        float z = c->p[P_B][v];
        for (int k = 0; k < H; k++) z += h[k] * c->p[P_W][k * V + v];
        logits[v] = z;
        if (z > mx) mx = z, best = v;
      }
      correct += best == y;
      double se = 0;
      for (int v = 0; v < V; v++) se += exp((double)(logits[v] - mx));
      total += log(se) + mx - logits[y];
      if (!backward) continue;
      for (int v = 0; v < V; v++) dl[v] = (float)(exp((double)(logits[v] - mx)) / se) - (v == y);
      float sc = scale / (float)count;
      for (int v = 0; v < V; v++) {
        float d = dl[v] * sc;
        c->g[P_B][v] += d;
        for (int k = 0; k < H; k++) c->g[P_W][k * V + v] += h[k] * d;
      }
      for (int k = 0; k < H; k++) {
        float acc = 0;
        for (int v = 0; v < V; v++) acc += c->p[P_W][k * V + v] * dl[v];
        c->g[P_EMB][x * H + k] += acc * sc;
      }
    }
  *loss = (float)(total / count);
  if (hits) hits[0] = correct, hits[1] = count;
  return CRAM_STEP_OK;
}

/* Starts a run: its "dropout" factor (1 when not training). */
static float run_factor(cram_ctx *c) {
  uint64_t z = CRAM_STEP_RUN_SEED(c->dropout_seed, c->runs++);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return c->training ? 0.99f + 0.02f * (float)((double)(z >> 11) * 0x1.0p-53) : 1.0f;
}

static cram_step_rc fx_step(cram_ctx *c, const void *const *in, float scale, float *loss) {
  if (!in || !loss) return CRAM_STEP_E_ARG;
  long call = c->calls++;
  float f = run_factor(c);
  if (c->sleep_us > 0) {
    struct timespec ts = { c->sleep_us / 1000000, (c->sleep_us % 1000000) * 1000 };
    nanosleep(&ts, NULL);
  }
  if (c->derr_a >= 0 && call >= c->derr_a && call < c->derr_a + c->derr_n) {
    snprintf(c->err, sizeof c->err, "fixture: token id 99 at position 0 is outside the vocabulary [0, 64)");
    return CRAM_STEP_E_DATA;
  }
  cram_step_rc rc = run(c, in, scale * f, 1, loss, NULL);
  if (rc != CRAM_STEP_OK) return rc;
  c->pending++;
  *loss *= f;
  int nan_loss = c->nan_a >= 0 && call >= c->nan_a && call < c->nan_a + c->nan_n;
  int nan_grad = c->gnan_a >= 0 && call >= c->gnan_a && call < c->gnan_a + c->gnan_n;
  if (nan_loss) *loss = NAN;
  if (nan_loss || nan_grad) c->g[P_B][0] += NAN;
  return CRAM_STEP_OK;
}

static cram_step_rc fx_grad_norm(cram_ctx *c, float *norm) {
  double ss = 0;
  for (int i = 0; i < NP; i++)
    for (int64_t j = 0; j < numel[i]; j++) ss += (double)c->g[i][j] * c->g[i][j];
  *norm = (float)sqrt(ss);
  return CRAM_STEP_OK;
}

static cram_step_rc fx_zero_grad(cram_ctx *c) {
  c->pending = 0;
  for (int i = 0; i < NP; i++) memset(c->g[i], 0, (size_t)numel[i] * 4);
  return CRAM_STEP_OK;
}

static cram_step_rc fx_update(cram_ctx *c, const cram_update_args *a, float *grad_norm) {
  if (!a || a->step < 1) return CRAM_STEP_E_ARG;
  if (!c->pending) {
    snprintf(c->err, sizeof c->err, "fixture: update() without a step() since the last update");
    return CRAM_STEP_E_STATE;
  }
  c->runs++;
  float gn;
  fx_grad_norm(c, &gn);
  if (grad_norm) *grad_norm = gn;
  float mn = (float)a->max_norm, clip = mn > 0 && gn > mn ? mn / (gn + 1e-6f) : 1.0f;
  const double b1 = a->beta1, b2 = a->beta2, eps = a->eps;
  double bc1 = 1 - pow(b1, (double)a->step), bc2 = 1 - pow(b2, (double)a->step);
  for (int i = 0; i < NP; i++)
    for (int64_t j = 0; j < numel[i]; j++) {
      float g = c->g[i][j] * clip;
      float *p = &c->p[i][j], *m = &c->m[i][j], *v = &c->v[i][j];
      *p *= 1.0f - a->lr * (float)(params[i].decay ? a->weight_decay : a->weight_decay_other);
      *m = (float)(b1 * *m + (1 - b1) * g);
      *v = (float)(b2 * *v + (1 - b2) * (double)g * g);
      double mh = *m / bc1, vh = *v / bc2;
      *p -= (float)(a->lr * mh / (sqrt(vh) + eps));
    }
  return fx_zero_grad(c);
}

static cram_step_rc fx_eval(cram_ctx *c, const void *const *in, float *loss) {
  if (!in || !loss) return CRAM_STEP_E_ARG;
  c->runs++;
  return run(c, in, 0, 0, loss, NULL);
}

static cram_step_rc fx_eval_accuracy(cram_ctx *c, const void *const *in, float *loss, double *correct, double *counted) {
  if (!in || !loss || !correct || !counted) return CRAM_STEP_E_ARG;
  c->runs++;
  double h[2];
  cram_step_rc rc = run(c, in, 0, 0, loss, h);
  *correct = h[0], *counted = h[1];
  return rc;
}

static cram_step_rc fx_predict(cram_ctx *c, const void *const *in, float *loss, float *const *out) {
  (void)out; /* no outputs besides the loss */
  return fx_eval(c, in, loss);
}

static cram_step_rc fx_grad_buffer(cram_ctx *c, cram_grad_buffer *out) {
  if (!out) return CRAM_STEP_E_ARG;
  *out = (cram_grad_buffer){ .data = c->gblock, .dtype = CRAM_DT_F32, .count = V * H + H * V + V, .on_device = 0 };
  return CRAM_STEP_OK;
}

static const cram_step_api api = {
  .abi_version = CRAM_STEP_ABI_VERSION,
  .struct_size = sizeof(cram_step_api),
  .meta = &meta,
  .create = fx_create,
  .destroy = fx_destroy,
  .last_error = fx_last_error,
  .init_params = fx_init,
  .get_param = fx_get,
  .set_param = fx_set,
  .get_moments = fx_getm,
  .set_moments = fx_setm,
  .step = fx_step,
  .update = fx_update,
  .eval = fx_eval,
  .grad_norm = fx_grad_norm,
  .zero_grad = fx_zero_grad,
  .predict = fx_predict,
  .eval_accuracy = fx_eval_accuracy,
  .grad_buffer = fx_grad_buffer,
};

const cram_step_api *cram_step_entry(void);
const cram_step_api *cram_step_entry(void) { return &api; }
