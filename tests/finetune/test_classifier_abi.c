/* test_classifier_abi.c CRAMC SOURCE_DIR [CC] - the finetuning classifier
 * (models/ablations/finetune_classifier.cram) compiled for the cpu target
 * agrees with the same model in the interpreter (the interp target), dropout
 * off, as every other model does (tests/codegen/test_codegen_abi.c); and the
 * STS-B regression model (finetune_regression.cram: score, MSE) the same way:
 *   - predict(): logits [B, C] and the loss, from the same parameters, on a
 *     batch with padding (additive mask) and an ignored (-100) row;
 *   - 3 train steps (step + update): loss and grad norm per step, every
 *     parameter tensor after them, to 1e-4 relative (GEMMs and reductions
 *     round differently);
 *   - predict's loss == eval's; predict with NULL outputs; the metadata's
 *     outputs table (`logits`, f32[B, C]).
 * Prints "N checks, M failed"; exit status 1 on failure. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cram_step.h"
#include "loader.h"

static int nchecks, nfailed;
#define CHECK(c, ...)                                              \
  do {                                                             \
    nchecks++;                                                     \
    if (!(c)) {                                                    \
      nfailed++;                                                   \
      fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #c); \
      fprintf(stderr, __VA_ARGS__);                                \
      fputc('\n', stderr);                                         \
    }                                                              \
  } while (0)

enum { B = 4, S = 16, C = 3, V = 96 };
#define DIMS_REG "-D batch=4 -D seq=16 -D hidden=16 -D heads=2 -D ffn=32 -D layers=1 -D vocab=96 -D head=24"
#define DIMS     DIMS_REG " -D classes=3"

static double rel(double a, double b) { return fabs(a - b) / (fabs(b) > 1e-6 ? fabs(b) : 1e-6); }

static double tensor_rel(const float *a, const float *b, int64_t n) {
  double d = 0, s = 0;
  for (int64_t k = 0; k < n; k++) d += ((double)a[k] - b[k]) * ((double)a[k] - b[k]), s += (double)b[k] * b[k];
  return sqrt(d) / (sqrt(s) > 1e-12 ? sqrt(s) : 1e-12);
}

static const char *cramc, *srcdir, *cc;
static char tmp[256];

/* regression = 0: the classifier (logits [B, C]); 1: the regression model (score [B]). */
static int run_model(int regression) {
  char cmd[4096], so[2][320];
  const char *file = regression ? "finetune_regression" : "finetune_classifier";
  const int C_OUT = regression ? 1 : C;
  const char *targets[2] = { "interp", "cpu" };
  cram_step_lib lib[2] = { 0 };
  cram_ctx *ctx[2] = { 0 };
  for (int t = 0; t < 2; t++) {
    snprintf(so[t], sizeof so[t], "%s/%s-%s.so", tmp, file, targets[t]);
    snprintf(cmd, sizeof cmd, "%s %s/models/ablations/%s.cram %s --target %s -O1 --cc '%s' -o %s", cramc, srcdir, file,
             regression ? DIMS_REG : DIMS, targets[t], cc, so[t]);
    cram_err e = { 0 };
    if (system(cmd) != 0 || cram_step_load(&lib[t], so[t], &e) != CRAM_OK) {
      fprintf(stderr, "building/loading %s for %s failed: %s\n", file, targets[t], e.msg);
      return 1;
    }
    cram_create_opts o = { .training = 0 };
    char err[256];
    CHECK(lib[t].api->create(&o, &ctx[t], err, sizeof err) == CRAM_STEP_OK, "%s create: %s", targets[t], err);
    if (!ctx[t]) return 1;
  }
  const cram_step_api *I = lib[0].api, *P = lib[1].api;
  const cram_step_meta *m = I->meta;
  CHECK(m->noutputs == 1 && !strcmp(m->outputs[0].name, regression ? "score" : "logits") &&
          m->outputs[0].rank == (regression ? 1u : 2u) && m->outputs[0].shape[0] == B &&
          (regression || m->outputs[0].shape[1] == C) && P->meta->noutputs == 1,
        "outputs table: %u", m->noutputs);
  /* the same parameters in both */
  CHECK(I->init_params(ctx[0], 11) == CRAM_STEP_OK, "init");
  CHECK(P->init_params(ctx[1], 11) == CRAM_STEP_OK, "init");
  float *buf = malloc((size_t)m->nparam_elems * sizeof *buf), *buf2 = malloc((size_t)m->nparam_elems * sizeof *buf2);
  for (uint32_t i = 0; i < m->nparams; i++) {
    I->get_param(ctx[0], i, buf);
    CHECK(P->set_param(ctx[1], i, buf) == CRAM_STEP_OK, "set %u", i);
  }
  /* a batch: row b has 6 + 3b real tokens, then padding; row 3 is ignored */
  int32_t tok[B * S], lab[B] = { 0, 2, 1, -100 };
  float mask[B * S], score[B] = { 4.5f, 0.5f, 2.25f, 0.0f }, weight[B] = { 1.0f / 3, 1.0f / 3, 1.0f / 3, 0.0f };
  uint64_t s = 12345;
  for (int b = 0; b < B; b++)
    for (int k = 0; k < S; k++) {
      s = s * 6364136223846793005ull + 1442695040888963407ull;
      int real = k < 6 + 3 * b;
      tok[b * S + k] = real ? (int32_t)(5 + (s >> 33) % (V - 5)) : 0;
      mask[b * S + k] = real ? 0.0f : -10000.0f;
    }
  const void *in[4];
  for (uint32_t j = 0; j < m->ninputs && j < 4; j++) {
    const char *nm = m->inputs[j].name;
    in[j] = !strcmp(nm, "tokens")   ? (const void *)tok
            : !strcmp(nm, "mask")   ? (const void *)mask
            : !strcmp(nm, "weight") ? (const void *)weight
            : regression            ? (const void *)score
                                    : (const void *)lab;
  }
  float li = 0, lp = 0, le = 0, lg[2][B * C];
  float *out0[1] = { lg[0] }, *out1[1] = { lg[1] };
  CHECK(I->predict(ctx[0], in, &li, out0) == CRAM_STEP_OK, "interp predict: %s", I->last_error(ctx[0]));
  CHECK(P->predict(ctx[1], in, &lp, out1) == CRAM_STEP_OK, "cpu predict: %s", P->last_error(ctx[1]));
  CHECK(rel(lp, li) < 1e-4, "predict loss cpu %.8g interp %.8g", lp, li);
  CHECK(tensor_rel(lg[1], lg[0], B * C_OUT) < 1e-4, "outputs differ: %g", tensor_rel(lg[1], lg[0], B * C_OUT));
  CHECK(I->eval(ctx[0], in, &le) == CRAM_STEP_OK && le == li, "eval %g == predict %g", le, li);
  CHECK(P->predict(ctx[1], in, &le, NULL) == CRAM_STEP_OK && le == lp, "predict without outputs");
  /* the loss is the mean cross entropy (regression: squared error) of rows 0..2 from these outputs */
  double ce = 0;
  for (int b = 0; b < 3 && regression; b++) ce += ((double)lg[0][b] - score[b]) * ((double)lg[0][b] - score[b]);
  for (int b = 0; b < 3 && !regression; b++) {
    double mx = lg[0][b * C], z = 0;
    for (int c = 1; c < C; c++) mx = fmax(mx, lg[0][b * C + c]);
    for (int c = 0; c < C; c++) z += exp(lg[0][b * C + c] - mx);
    ce += log(z) + mx - lg[0][b * C + lab[b]];
  }
  CHECK(rel(li, ce / 3) < 1e-5, "loss %g is not the mean CE of the logits %g", li, ce / 3);
  for (int k = 1; k <= 3; k++) {
    float a = 0, b = 0, ga = 0, gb = 0;
    CHECK(I->step(ctx[0], in, 1.0f, &a) == CRAM_STEP_OK && P->step(ctx[1], in, 1.0f, &b) == CRAM_STEP_OK, "step %d", k);
    cram_update_args u = CRAM_UPDATE_ARGS_RECIPE(1e-2f, k);
    CHECK(I->update(ctx[0], &u, &ga) == CRAM_STEP_OK && P->update(ctx[1], &u, &gb) == CRAM_STEP_OK, "update %d", k);
    CHECK(rel(b, a) < 1e-4 && rel(gb, ga) < 1e-4, "step %d: loss cpu %.8g interp %.8g, grad norm %.8g / %.8g", k, b, a, gb, ga);
  }
  for (uint32_t i = 0; i < m->nparams; i++) {
    I->get_param(ctx[0], i, buf), P->get_param(ctx[1], i, buf2);
    double r = tensor_rel(buf2, buf, m->params[i].numel);
    CHECK(r < 1e-4, "%s after 3 steps: relative difference %g", m->params[i].name, r);
  }
  free(buf), free(buf2);
  for (int t = 0; t < 2; t++) lib[t].api->destroy(ctx[t]), cram_step_unload(&lib[t]);
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 3) return fprintf(stderr, "usage: test_classifier_abi CRAMC SOURCE_DIR [CC]\n"), 2;
  cramc = argv[1], srcdir = argv[2], cc = argc > 3 ? argv[3] : "cc";
  const char *tb = getenv("TMPDIR");
  snprintf(tmp, sizeof tmp, "%s/test_classifier_abi.XXXXXX", tb && *tb ? tb : "/tmp");
  if (!mkdtemp(tmp)) return perror("mkdtemp"), 1;
  int bad = run_model(0) || run_model(1);
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmp);
  printf("%d checks, %d failed\n", nchecks, nfailed);
  return nfailed || bad ? 1 : 0;
}
