/* test_codegen_abi.c TARGET CRAMC SOURCE_DIR [-O2|-O0] [CC] [ABLATION,...] - step.so
 * artifacts of one target through the step ABI against `cramc --interpret`,
 * the reference interpreter in f32 mode:
 *   interp  the same interpreter inside the artifact: loss, grad norm and
 *           every parameter element agree to 1e-6 relative (in practice bit
 *           for bit), eval equals the step's loss exactly;
 *   interp-bf16  the same with `--precision bf16` on both sides (the autocast
 *           graphs, the cuda default's oracle): metadata precision "bf16";
 *   cpu     generated C kernels + OpenBLAS (the generated C compiled with
 *           -Wall -Werror): GEMMs and reductions round differently, so the
 *           limit is 1e-4 relative on loss and grad norm per step and on each
 *           parameter tensor's ||cpu - interp|| / ||interp||.
 * Checks:
 *   - metadata: parameter names/shapes/count as `cramc --summary`, inputs,
 *     dims, target/precision/hash;
 *   - 5 train steps (step + update) on one batch from the same parameters:
 *     loss and grad norm per step and every parameter after step 5, for tiny
 *     and two ablations (small -D dims, so it is quick under ASan);
 *   - accumulation k = 2 through the ABI == the driver's --accum 2;
 *   - eval == the step's loss; grad_norm()/zero_grad(); moments round trip;
 *   - with a list of models/ablations/ names instead (the language's
 *     variants: rotary, alibi, ...): the 5 steps of each at its own widths
 *     (batch 2, seq 16, vocab 96) and the metadata;
 *   - a token id outside the vocabulary -> CRAM_STEP_E_DATA with a message
 *     naming the .cram line; update() without step() -> CRAM_STEP_E_STATE.
 * Prints "N checks, M failed"; exit status 1 on failure. */
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cram_step.h"
#include "loader.h"
#include "safetensors.h"

static int nchecks, nfailed;
static const char *target, *cramc, *srcdir, *olevel;
static const char *precision = "f32"; /* --precision of the artifact and the driver */
static double tol;                    /* per target, see the header */
static bool exact_target;             /* interp: the artifact runs the oracle itself */
static char tmp[256];

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

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...) {
  char cmd[4096];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(cmd, sizeof cmd, fmt, ap);
  va_end(ap);
  int rc = system(cmd);
  if (rc != 0) fprintf(stderr, "command failed (%d): %s\n", rc, cmd);
  return rc;
}

static bool close_rel(double a, double b, double limit) { return fabs(a - b) <= limit * fmax(1.0, fmax(fabs(a), fabs(b))); }

static uint64_t mix(uint64_t z) {
  z += 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/* rows x seq tokens/targets: `masked` prediction targets per row (-100 elsewhere). */
static void make_batch(int32_t *tok, int32_t *tgt, int rows, int seq, int vocab, int masked, uint64_t seed) {
  for (int b = 0; b < rows; b++) {
    for (int s = 0; s < seq; s++) {
      tok[b * seq + s] = 5 + (int32_t)(mix(seed * 7919 + (uint64_t)(b * seq + s)) % (uint64_t)(vocab - 5));
      tgt[b * seq + s] = -100;
    }
    for (int c = 0, k = 0; c < masked; k++) {
      int s = (int)(mix(seed * 31 + (uint64_t)b * 1000 + (uint64_t)k) % (uint64_t)seq);
      if (tgt[b * seq + s] != -100) continue;
      tgt[b * seq + s] = tok[b * seq + s];
      tok[b * seq + s] = 4;
      c++;
    }
  }
}

typedef struct Model {
  const char *label, *file, *defs;
} Model;

/* Checks the table against `cramc --summary` (names, shapes, counts). */
static void check_meta(const Model *md, const cram_step_meta *m) {
  char path[512], line[512];
  snprintf(path, sizeof path, "%s/%s.summary", tmp, md->label);
  if (sh("%s %s/%s %s --summary > %s", cramc, srcdir, md->file, md->defs, path)) {
    CHECK(0, "summary");
    return;
  }
  FILE *f = fopen(path, "r");
  if (!f) {
    CHECK(0, "open summary");
    return;
  }
  uint32_t k = 0;
  long long total = -1, ntens = -1;
  bool in_table = false, names_ok = true;
  while (fgets(line, sizeof line, f)) {
    char name[256], shape[128];
    if (sscanf(line, "parameter tensors: %lld", &ntens) == 1) {
      in_table = false;
    } else if (!strncmp(line, "parameter ", 10)) { /* the table's header */
      in_table = true;
      continue;
    }
    if (!strncmp(line, "total parameters: ", 18)) {
      total = 0;
      for (const char *p = line + 18; *p && *p != '\n'; p++)
        if (*p != ',') total = total * 10 + (*p - '0');
    }
    if (in_table && sscanf(line, "%255s %127s", name, shape) == 2) {
      char want[128];
      int n = snprintf(want, sizeof want, "[");
      if (k < m->nparams)
        for (uint32_t d = 0; d < m->params[k].rank; d++)
          n += snprintf(want + n, sizeof want - (size_t)n, "%s%lld", d ? "," : "", (long long)m->params[k].shape[d]);
      snprintf(want + n, sizeof want - (size_t)n, "]");
      bool decay = strstr(line, " yes") != NULL;
      if (k >= m->nparams || strcmp(name, m->params[k].name) || strcmp(shape, want) || decay != (m->params[k].decay == 1)) {
        names_ok = false;
        fprintf(stderr, "  param %u: summary '%s %s' vs table\n", k, name, shape);
      }
      k++;
    }
  }
  fclose(f);
  CHECK(names_ok && k == m->nparams, "%s: parameter table differs from --summary (%u rows, %u params)", md->label, k, m->nparams);
  CHECK(ntens == (long long)m->nparams, "%s: %lld tensors vs %u", md->label, ntens, m->nparams);
  CHECK(total == m->nparam_elems, "%s: total %lld vs %lld", md->label, total, (long long)m->nparam_elems);
  CHECK(!strcmp(m->target, target) && !strcmp(m->precision, precision) && strlen(m->source_hash) == 16,
        "%s: target/precision/hash", md->label);
  CHECK(m->ninputs == 2 && !strcmp(m->inputs[0].name, "tokens") && m->inputs[0].dtype == CRAM_DT_I32 &&
          !strcmp(m->inputs[1].name, "targets"),
        "%s: inputs", md->label);
  CHECK(cram_step_dim(m, "seq", -1) == 16 && cram_step_dim(m, "batch", -1) == 2 && cram_step_dim(m, "vocab", -1) == 96,
        "%s: dims", md->label);
  CHECK(m->arena_bytes > 0 && m->kernel_count > 0 && m->flops_per_token > 0, "%s: estimates", md->label);
}

static void write_params(const cram_step_api *api, cram_ctx *c, const char *path) {
  const cram_step_meta *m = api->meta;
  cram_st_tensor *t = calloc(m->nparams, sizeof *t);
  float **bufs = calloc(m->nparams, sizeof *bufs);
  for (uint32_t i = 0; i < m->nparams; i++) {
    bufs[i] = malloc((size_t)m->params[i].numel * sizeof(float));
    CHECK(api->get_param(c, i, bufs[i]) == CRAM_STEP_OK, "get_param");
    t[i].name = (char *)m->params[i].name;
    t[i].dtype = CRAM_ST_F32;
    t[i].rank = (int)m->params[i].rank;
    for (uint32_t d = 0; d < m->params[i].rank; d++) t[i].shape[d] = m->params[i].shape[d];
    t[i].data = (const unsigned char *)bufs[i];
  }
  cram_err err = { 0 };
  CHECK(cram_st_write(path, t, m->nparams, NULL, 0, &err) == CRAM_OK, "write params: %s", err.msg);
  for (uint32_t i = 0; i < m->nparams; i++) free(bufs[i]);
  free(bufs);
  free(t);
}

static void write_batch(const char *path, const int32_t *tok, const int32_t *tgt, int rows, int seq) {
  cram_st_tensor t[2] = {
    { .name = "tokens", .dtype = CRAM_ST_I32, .rank = 2, .shape = { rows, seq }, .data = (const unsigned char *)tok },
    { .name = "targets", .dtype = CRAM_ST_I32, .rank = 2, .shape = { rows, seq }, .data = (const unsigned char *)tgt }
  };
  cram_err err = { 0 };
  CHECK(cram_st_write(path, t, 2, NULL, 0, &err) == CRAM_OK, "write batch: %s", err.msg);
}

/* `steps` updates of `accum` microbatches through the ABI vs the driver. */
static void compare_train(const Model *md, const cram_step_api *api, int accum, int steps) {
  const cram_step_meta *m = api->meta;
  int seq = (int)cram_step_dim(m, "seq", 0), rows = (int)cram_step_dim(m, "batch", 0), vocab = (int)cram_step_dim(m, "vocab", 0);
  int masked = (int)cram_step_dim(m, "masked", 4);
  int64_t per = (int64_t)rows * seq;
  int32_t *tok = malloc((size_t)(per * accum) * 4), *tgt = malloc((size_t)(per * accum) * 4);
  make_batch(tok, tgt, rows * accum, seq, vocab, masked, 11);
  char err[512] = "", pp[512], bp[512], op[512];
  cram_ctx *c = NULL;
  cram_create_opts co = { 0 };
  if (api->create(&co, &c, err, sizeof err) != CRAM_STEP_OK) {
    CHECK(0, "create: %s", err);
    return;
  }
  CHECK(api->init_params(c, 5) == CRAM_STEP_OK, "init");
  snprintf(pp, sizeof pp, "%s/%s.k%d.params.safetensors", tmp, md->label, accum);
  snprintf(bp, sizeof bp, "%s/%s.k%d.batch.safetensors", tmp, md->label, accum);
  snprintf(op, sizeof op, "%s/%s.k%d.out.safetensors", tmp, md->label, accum);
  write_params(api, c, pp);
  write_batch(bp, tok, tgt, rows * accum, seq);
  const float lr = 2e-3f;
  double loss[8] = { 0 }, norm[8] = { 0 };
  for (int s = 1; s <= steps; s++) {
    double sum = 0;
    for (int mb = 0; mb < accum; mb++) {
      const void *in[2] = { tok + mb * per, tgt + mb * per };
      float l = 0;
      cram_step_rc rc = api->step(c, in, 1.0f / (float)accum, &l);
      CHECK(rc == CRAM_STEP_OK, "step: %s", api->last_error(c));
      if (s == 1 && mb == 0 && accum == 1) {
        float e = 0;
        CHECK(api->eval(c, in, &e) == CRAM_STEP_OK && (exact_target ? e == l : close_rel(e, l, tol)),
              "%s: eval %g vs step loss %g", md->label, e, l);
        /* the accuracy counts: eval's loss, every set target counted, hits among them */
        float ea = 0;
        double right = -1, counted = -1, set = 0;
        for (int64_t k = 0; k < per; k++) set += tgt[k] != -100;
        CHECK(m->has_accuracy && api->eval_accuracy(c, in, &ea, &right, &counted) == CRAM_STEP_OK && ea == e && counted == set &&
                right >= 0 && right <= counted && right == floor(right),
              "%s: eval_accuracy loss %g (eval %g), %g right of %g counted (%g targets set)", md->label, ea, e, right, counted,
              set);
      }
      sum += l;
    }
    float gn = 0, un = 0;
    CHECK(api->grad_norm(c, &gn) == CRAM_STEP_OK, "grad_norm");
    cram_update_args ua = CRAM_UPDATE_ARGS_RECIPE(lr, s);
    CHECK(api->update(c, &ua, &un) == CRAM_STEP_OK, "update: %s", api->last_error(c));
    CHECK(close_rel(gn, un, 1e-5), "%s: grad_norm() %g vs update %g", md->label, gn, un);
    loss[s - 1] = sum / accum;
    norm[s - 1] = un;
  }
  /* the driver, same params and batch */
  if (sh("%s %s/%s %s --interpret --precision %s --params %s --batch %s --steps %d --accum %d --lr %.9g --out %s 2>/dev/null",
         cramc, srcdir, md->file, md->defs, precision, pp, bp, steps, accum, (double)lr, op) == 0) {
    cram_st_file f = { 0 };
    cram_err e = { 0 };
    CHECK(cram_st_read(op, &f, &e) == CRAM_OK, "read %s: %s", op, e.msg);
    const cram_st_tensor *lt = cram_st_find(&f, "loss"), *nt = cram_st_find(&f, "grad_norm");
    CHECK(lt && nt, "driver output lacks loss/grad_norm");
    for (int s = 0; lt && nt && s < steps; s++) {
      CHECK(close_rel(loss[s], cram_st_get(lt, s), tol), "%s k=%d step %d: loss %.9g vs driver %.9g", md->label, accum, s + 1,
            loss[s], cram_st_get(lt, s));
      CHECK(close_rel(norm[s], cram_st_get(nt, s), tol), "%s k=%d step %d: grad_norm %.9g vs driver %.9g", md->label, accum,
            s + 1, norm[s], cram_st_get(nt, s));
    }
    double worst = 0;
    for (uint32_t i = 0; i < m->nparams; i++) {
      char name[300];
      snprintf(name, sizeof name, "param.%s", m->params[i].name);
      const cram_st_tensor *t = cram_st_find(&f, name);
      float *x = malloc((size_t)m->params[i].numel * sizeof(float));
      api->get_param(c, i, x);
      /* interp: the worst element; cpu: the tensor's relative L2 difference */
      double dd = 0, nn = 0, elem = 0;
      for (int64_t k = 0; t && k < m->params[i].numel; k++) {
        double a = x[k], b = cram_st_get(t, k);
        dd += (a - b) * (a - b);
        nn += b * b;
        elem = fmax(elem, fabs(a - b) / fmax(1e-6, fmax(fabs(a), fabs(b))));
      }
      double d = exact_target ? elem : sqrt(dd) / fmax(1e-12, sqrt(nn));
      if (d > worst) worst = d;
      CHECK(t != NULL, "driver output lacks %s", name);
      free(x);
    }
    CHECK(worst <= tol, "%s k=%d: params after %d steps differ by %.3g relative", md->label, accum, steps, worst);
    printf("%s %s %s %s accum %d: %d steps, loss %.6f -> %.6f, grad_norm %.6f -> %.6f, worst param diff %.3g\n", target,
           precision, md->label, olevel, accum, steps, loss[0], loss[steps - 1], norm[0], norm[steps - 1], worst);
    cram_st_free(&f);
  } else {
    CHECK(0, "%s: cramc --interpret failed", md->label);
  }
  api->destroy(c);
  free(tok);
  free(tgt);
}

/* State and error entries on a fresh context. */
static void check_entries(const cram_step_api *api) {
  const cram_step_meta *m = api->meta;
  char err[512] = "";
  cram_ctx *c = NULL;
  cram_create_opts co = { 0 };
  if (api->create(&co, &c, err, sizeof err) != CRAM_STEP_OK) {
    CHECK(0, "create: %s", err);
    return;
  }
  api->init_params(c, 1);
  cram_update_args ua = CRAM_UPDATE_ARGS_RECIPE(1e-3f, 1);
  float gn = -1;
  CHECK(api->update(c, &ua, &gn) == CRAM_STEP_E_STATE && strstr(api->last_error(c), "without a step"), "update before step: %s",
        api->last_error(c));
  int seq = (int)cram_step_dim(m, "seq", 0), rows = (int)cram_step_dim(m, "batch", 0), vocab = (int)cram_step_dim(m, "vocab", 0);
  int32_t *tok = malloc((size_t)(rows * seq) * 4), *tgt = malloc((size_t)(rows * seq) * 4);
  make_batch(tok, tgt, rows, seq, vocab, (int)cram_step_dim(m, "masked", 4), 3);
  const void *in[2] = { tok, tgt };
  float l;
  CHECK(api->step(c, in, 1.0f, &l) == CRAM_STEP_OK, "step");
  CHECK(api->grad_norm(c, &gn) == CRAM_STEP_OK && gn > 0, "grad_norm %g", gn);
  /* grad_buffer (v3): the flat accumulator has the same norm and is live: doubling it in place (what an
   * all-reduce over two equal ranks does) doubles grad_norm() */
  cram_grad_buffer gb = { 0 };
  CHECK(api->grad_buffer(c, &gb) == CRAM_STEP_OK && gb.data && gb.count >= m->nparam_elems && !gb.on_device &&
          (gb.dtype == CRAM_DT_F32 || gb.dtype == CRAM_DT_F64),
        "grad_buffer: count %lld dtype %d", (long long)gb.count, (int)gb.dtype);
  if (gb.data && !gb.on_device) {
    double ss = 0;
    for (int64_t k = 0; k < gb.count; k++) {
      double x = gb.dtype == CRAM_DT_F64 ? ((double *)gb.data)[k] : (double)((float *)gb.data)[k];
      ss += x * x;
      if (gb.dtype == CRAM_DT_F64) ((double *)gb.data)[k] = 2 * x;
      else ((float *)gb.data)[k] = (float)(2 * x);
    }
    float gn2 = -1;
    CHECK(close_rel(sqrt(ss), gn, 1e-5), "grad_buffer norm %g vs grad_norm %g", sqrt(ss), gn);
    CHECK(api->grad_norm(c, &gn2) == CRAM_STEP_OK && close_rel(gn2, 2 * gn, 1e-5), "doubled: %g vs %g", gn2, 2 * gn);
  }
  CHECK(api->zero_grad(c) == CRAM_STEP_OK && api->grad_norm(c, &gn) == CRAM_STEP_OK && gn == 0, "zero_grad");
  tok[3] = vocab + 7;
  CHECK(api->step(c, in, 1.0f, &l) == CRAM_STEP_E_DATA, "bad token id accepted");
  const char *e = api->last_error(c);
  CHECK(strstr(e, "outside the vocabulary") && strstr(e, ".cram:"), "message: %s", e);
  printf("bad token id: %s\n", e);
  /* moments round trip; index and NULL checks */
  int64_t n = m->params[0].numel;
  float *a = malloc((size_t)n * 4), *b = malloc((size_t)n * 4), *a2 = malloc((size_t)n * 4), *b2 = malloc((size_t)n * 4);
  for (int64_t k = 0; k < n; k++) a[k] = (float)k * 0.25f, b[k] = (float)k;
  CHECK(api->set_moments(c, 0, a, b) == CRAM_STEP_OK && api->get_moments(c, 0, a2, b2) == CRAM_STEP_OK &&
          !memcmp(a, a2, (size_t)n * 4) && !memcmp(b, b2, (size_t)n * 4),
        "moments round trip");
  CHECK(api->get_param(c, m->nparams, a) == CRAM_STEP_E_ARG, "index out of range");
  CHECK(api->set_param(c, 0, NULL) == CRAM_STEP_E_ARG, "NULL buffer");
  CHECK(api->step(c, in, 1.0f, NULL) == CRAM_STEP_E_ARG, "NULL loss");
  double right;
  CHECK(api->eval_accuracy(c, in, &l, &right, NULL) == CRAM_STEP_E_ARG, "NULL counted");
  if (!strcmp(m->target, "cpu")) { /* the per-kernel profile is a create() option: an unwritable file fails create() */
    cram_ctx *pc = NULL;
    cram_create_opts po = { .cpu_profile = "/nonexistent/dir/profile.txt" };
    CHECK(api->create(&po, &pc, err, sizeof err) != CRAM_STEP_OK && !pc && strstr(err, "cannot write the profile there"),
          "create with an unwritable profile: %s", err);
  }
  free(a), free(b), free(a2), free(b2), free(tok), free(tgt);
  api->destroy(c);
}

int main(int argc, char **argv) {
  if (argc < 4 || (strcmp(argv[1], "interp") && strcmp(argv[1], "interp-bf16") && strcmp(argv[1], "cpu"))) {
    fprintf(stderr, "usage: test_codegen_abi interp|interp-bf16|cpu CRAMC SOURCE_DIR [-O2|-O0] [CC] [ABLATION,...]\n");
    return 2;
  }
  target = argv[1];
  if (!strcmp(target, "interp-bf16")) target = "interp", precision = "bf16";
  cramc = argv[2];
  srcdir = argv[3];
  olevel = argc > 4 ? argv[4] : "-O2";
  exact_target = strcmp(target, "interp") == 0;
  tol = exact_target ? 1e-6 : 1e-4;
  const char *tbase = getenv("TMPDIR");
  snprintf(tmp, sizeof tmp, "%s/test_codegen_abi.XXXXXX", tbase && *tbase ? tbase : "/tmp");
  if (!mkdtemp(tmp)) return perror("mkdtemp"), 1;
  const char *D = "-D batch=2 -D seq=16 -D hidden=16 -D heads=2 -D ffn=32 -D layers=1 -D vocab=96";
  Model models[16] = { { "tiny", "models/tiny.cram", D },
                       { "postln_noglu", "models/ablations/postln_noglu.cram", D },
                       { "learned_positions", "models/ablations/learned_positions.cram", D } };
  size_t nmodels = 3;
  bool variants = argc > 6;
  if (variants) { /* a comma-separated list of ablations, each at its own widths */
    static char names[1024], files[16][160];
    snprintf(names, sizeof names, "%s", argv[6]);
    nmodels = 0;
    for (char *save = NULL, *t = strtok_r(names, ",", &save); t && nmodels < 16; t = strtok_r(NULL, ",", &save)) {
      snprintf(files[nmodels], sizeof files[nmodels], "models/ablations/%s.cram", t);
      models[nmodels] = (Model){ t, files[nmodels], "-D batch=2 -D seq=16 -D vocab=96" };
      nmodels++;
    }
  }
  for (size_t i = 0; i < nmodels; i++) {
    const Model *md = &models[i];
    char so[512];
    snprintf(so, sizeof so, "%s/%s.so", tmp, md->label);
    /* the compiler that built the step library (under ASan its runtime must match) */
    const char *cc = argc > 5 ? argv[5] : getenv("CC") && *getenv("CC") ? getenv("CC") : "cc";
    if (sh("%s %s/%s %s --target %s --precision %s %s --cc '%s -Wall -Wextra -Wno-unused-parameter -Werror' -o %s", cramc, srcdir,
           md->file, md->defs, target, precision, olevel, cc, so)) {
      CHECK(0, "%s: cramc --target %s %s failed", md->label, target, olevel);
      continue;
    }
    cram_step_lib lib = { 0 };
    cram_err e = { 0 };
    if (cram_step_load(&lib, so, &e) != CRAM_OK) {
      CHECK(0, "load %s: %s", so, e.msg);
      continue;
    }
    check_meta(md, lib.api->meta);
    compare_train(md, lib.api, 1, 5);
    if (i == 0 && !variants) {
      compare_train(md, lib.api, 2, 3);
      check_entries(lib.api);
    }
    cram_step_unload(&lib);
  }
  sh("rm -rf %s", tmp);
  printf("%d checks, %d failed\n", nchecks, nfailed);
  return nfailed ? 1 : 0;
}
