/* test_cuda_compare.c CUDA.SO REF.SO [STEPS] [TOL] [TIMED_STEPS] [PARAM_TOL] [DROPOUT_SEED] - run on a GPU
 * by tests/gpu/check.sh: the cuda artifact against a reference artifact
 * (--target cpu or interp, same model and dims) through the step ABI. Both
 * start from the same parameters (init_params in the reference, copied into
 * the cuda step with set_param), train STEPS (default 5) step+update on the
 * same synthetic batch (dropout off), and compare the loss and grad norm per
 * step and every parameter after the last step: relative error <= TOL
 * (default 1e-3; f32 GEMMs and reductions round differently), parameters
 * <= PARAM_TOL (default TOL; bf16 runs give the zero-initialised biases,
 * whose norm after a few steps is a few learning rates, a looser one). Then
 * TIMED_STEPS (default 20) more cuda steps, timed: ms per step+update and
 * tokens/s. Without a GPU the cuda create() fails: exit status 77 (skipped).
 * With DROPOUT_SEED both are created with training = 1 (dropout on, that
 * seed): every target's per-run seed and mask hash are the interpreter's, so
 * the losses must still agree; then two more step()s from the same
 * parameters and batch must agree with the reference's and differ from each
 * other (a fresh mask per run, also when the runs are CUDA graph replays).
 * Then bad data: a token id outside the vocabulary makes step() fail with
 * CRAM_STEP_E_DATA and leaves the gradients as they were; update() with
 * step 0 fails the same way and leaves parameters, moments and gradients.
 * Inputs: i32 ids in [0, vocab), targets ~25% set, `labels` in [0, classes),
 * f32 inputs (an additive attention mask) 0 or -10000 (1 in 8). */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "loader.h"

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}
static double rel(double a, double b) { return fabs(a - b) / (fabs(b) > 1e-12 ? fabs(b) : 1e-12); }

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: test_cuda_compare CUDA.SO REF.SO [STEPS] [TOL] [TIMED_STEPS] [PARAM_TOL]\n");
    return 2;
  }
  int steps = argc > 3 ? atoi(argv[3]) : 5, timed = argc > 5 ? atoi(argv[5]) : 20;
  double tol = argc > 4 ? atof(argv[4]) : 1e-3, ptol = argc > 6 ? atof(argv[6]) : tol;
  bool training = argc > 7;
  cram_step_lib L[2];
  cram_err err;
  for (int i = 0; i < 2; i++)
    if (cram_step_load(&L[i], argv[1 + i], &err) != CRAM_OK) {
      fprintf(stderr, "%s\n", err.msg);
      return 1;
    }
  const cram_step_api *A = L[0].api, *B = L[1].api;
  const cram_step_meta *m = A->meta;
  if (m->nparams != B->meta->nparams || m->ninputs != B->meta->ninputs) {
    fprintf(stderr, "the two artifacts are not the same model\n");
    return 1;
  }
  cram_create_opts o = { .training = training, .dropout_seed = training ? strtoull(argv[7], NULL, 10) : 1 };
  cram_step_opts_from_env(&o); /* CRAM_CUDA_GRAPHS=0: the emulator test's control run */
  cram_ctx *ca = NULL, *cb = NULL;
  char msg[1024];
  cram_step_rc rc = A->create(&o, &ca, msg, sizeof msg);
  if (rc != CRAM_STEP_OK) {
    printf("skipped: cuda create(): %s\n", msg);
    return 77;
  }
  if (B->create(&o, &cb, msg, sizeof msg) != CRAM_STEP_OK) {
    fprintf(stderr, "reference create(): %s\n", msg);
    return 1;
  }
  int fails = 0;
  B->init_params(cb, 1234);
  A->init_params(ca, 1234);
  for (uint32_t i = 0; i < m->nparams; i++) {
    float *p = malloc((size_t)m->params[i].numel * 4);
    B->get_param(cb, i, p);
    A->set_param(ca, i, p);
    free(p);
  }
  /* synthetic batch: ids uniform in [0, vocab), ~25% of positions are targets */
  int64_t vocab = cram_step_dim(m, "vocab", 1000), classes = cram_step_dim(m, "classes", 2), tokens_per_step = 0;
  void **in = calloc(m->ninputs, sizeof *in);
  uint64_t s = 42;
  for (uint32_t i = 0; i < m->ninputs; i++) {
    const cram_tensor_info *t = &m->inputs[i];
    int32_t *v = malloc((size_t)t->numel * 4);
    bool tgt = strstr(t->name, "target") != NULL;
    for (int64_t k = 0; k < t->numel; k++) {
      s = s * 6364136223846793005ull + 1442695040888963407ull;
      uint32_t r = (uint32_t)(s >> 33);
      if (t->dtype == CRAM_DT_F32) ((float *)v)[k] = (r & 7) == 0 ? -10000.f : 0.f;
      else if (!strcmp(t->name, "labels")) v[k] = (int32_t)(r % (uint64_t)classes);
      else v[k] = tgt ? ((r & 3) == 0 ? (int32_t)((r >> 2) % (uint64_t)vocab) : -100) : (int32_t)(r % (uint64_t)vocab);
    }
    if (!strcmp(t->name, "tokens")) tokens_per_step = t->numel;
    in[i] = v;
  }
  for (int st = 1; st <= steps; st++) {
    float la = 0, lb = 0, ga = 0, gb = 0;
    cram_update_args ua = CRAM_UPDATE_ARGS_RECIPE(1e-3f, st);
    if (A->step(ca, (const void *const *)in, 1.0f, &la) || A->update(ca, &ua, &ga)) {
      fprintf(stderr, "cuda step %d: %s\n", st, A->last_error(ca));
      return 1;
    }
    if (B->step(cb, (const void *const *)in, 1.0f, &lb) || B->update(cb, &ua, &gb)) {
      fprintf(stderr, "reference step %d: %s\n", st, B->last_error(cb));
      return 1;
    }
    bool ok = rel(la, lb) <= tol && rel(ga, gb) <= tol;
    fails += !ok;
    printf("step %d: loss cuda %.6f ref %.6f (rel %.1e), grad norm cuda %.6f ref %.6f (rel %.1e)%s\n", st, la, lb, rel(la, lb),
           ga, gb, rel(ga, gb), ok ? "" : "  FAIL");
  }
  if (training) { /* two more runs, same parameters and batch: only the dropout masks differ */
    float la[2], lb[2];
    for (int k = 0; k < 2; k++)
      if (A->step(ca, (const void *const *)in, 1.0f, &la[k]) || B->step(cb, (const void *const *)in, 1.0f, &lb[k])) {
        fprintf(stderr, "dropout step: %s / %s\n", A->last_error(ca), B->last_error(cb));
        return 1;
      }
    bool ok = rel(la[0], lb[0]) <= tol && rel(la[1], lb[1]) <= tol && la[0] != la[1];
    fails += !ok;
    printf("dropout: two runs of one batch: loss cuda %.6f, %.6f ref %.6f, %.6f%s\n", la[0], la[1], lb[0], lb[1],
           ok ? "" : "  FAIL");
    A->zero_grad(ca), B->zero_grad(cb);
  }
  { /* bad data leaves the state as it was: the cuda step computes gradients, moments and parameters in
     * their own buffers (no copy back), so its state writes must skip a run that reported bad data */
    float g0 = 0, g1 = -1, l = 0;
    int32_t *tok = NULL;
    for (uint32_t i = 0; i < m->ninputs; i++)
      if (!strcmp(m->inputs[i].name, "tokens")) tok = in[i];
    bool ok = tok && !A->step(ca, (const void *const *)in, 1.0f, &l) && !A->grad_norm(ca, &g0);
    if (tok) {
      int32_t keep = tok[0];
      tok[0] = (int32_t)vocab; /* outside the vocabulary */
      ok = ok && A->step(ca, (const void *const *)in, 1.0f, &l) == CRAM_STEP_E_DATA;
      tok[0] = keep;
    }
    ok = ok && !A->grad_norm(ca, &g1) && g1 == g0 && g0 > 0;
    size_t nall = 0;
    for (uint32_t i = 0; i < m->nparams; i++) nall += (size_t)m->params[i].numel;
    float *before = malloc(nall * 3 * 4), *after = malloc(nall * 3 * 4);
    for (int pass = 0; pass < 2 && ok; pass++) {
      float *dst = pass ? after : before;
      if (pass) { /* step 0: the update graph reports bad data (adam_sched) after the global norm ran */
        cram_update_args bad = CRAM_UPDATE_ARGS_RECIPE(1e-3f, 0);
        ok = A->update(ca, &bad, &g1) == CRAM_STEP_E_DATA;
      }
      for (uint32_t i = 0, off = 0; ok && i < m->nparams; off += (uint32_t)m->params[i].numel, i++)
        ok = !A->get_param(ca, i, dst + off) && !A->get_moments(ca, i, dst + nall + off, dst + 2 * nall + off);
    }
    ok = ok && !memcmp(before, after, nall * 3 * 4) && !A->grad_norm(ca, &g1) && g1 == g0;
    free(before), free(after);
    A->zero_grad(ca);
    fails += !ok;
    printf("bad data: step() and update() refused, gradients, moments and parameters unchanged%s\n", ok ? "" : "  FAIL");
  }
  double worst = 0;
  const char *wname = "";
  for (uint32_t i = 0; i < m->nparams; i++) {
    size_t n = (size_t)m->params[i].numel;
    float *pa = malloc(n * 4), *pb = malloc(n * 4);
    A->get_param(ca, i, pa);
    B->get_param(cb, i, pb);
    double d = 0, r = 0;
    for (size_t k = 0; k < n; k++) d += ((double)pa[k] - pb[k]) * ((double)pa[k] - pb[k]), r += (double)pb[k] * pb[k];
    double e = sqrt(d) / (sqrt(r) > 1e-12 ? sqrt(r) : 1e-12);
    if (e > worst) worst = e, wname = m->params[i].name;
    free(pa), free(pb);
  }
  printf("parameters after %d steps: worst ||cuda - ref|| / ||ref|| = %.2e (%s)%s\n", steps, worst, wname,
         worst <= ptol ? "" : "  FAIL");
  fails += worst > ptol;
  if (timed > 0) {
    float l, g;
    double t0 = now();
    for (int st = 0; st < timed; st++) {
      cram_update_args ua = CRAM_UPDATE_ARGS_RECIPE(1e-3f, steps + 1 + st);
      if (A->step(ca, (const void *const *)in, 1.0f, &l) || A->update(ca, &ua, &g)) {
        fprintf(stderr, "cuda timed step: %s\n", A->last_error(ca));
        return 1;
      }
    }
    double dt = (now() - t0) / timed; /* step() returns the loss: synchronous */
    printf("cuda: %.3f ms per step+update, %.0f tokens/s (%lld tokens a step)\n", dt * 1e3, (double)tokens_per_step / dt,
           (long long)tokens_per_step);
  }
  A->destroy(ca), B->destroy(cb);
  for (uint32_t i = 0; i < m->ninputs; i++) free(in[i]);
  free(in);
  cram_step_unload(&L[0]), cram_step_unload(&L[1]);
  printf("%s\n", fails ? "FAILED" : "OK");
  return fails ? 1 : 0;
}
