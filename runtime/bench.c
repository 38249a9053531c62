/* bench.c - timing a compiled train step; see bench.h. */
#include "bench.h"

#include <dlfcn.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ckpt.h"
#include "loader.h"
#include "mlm.h"
#include "safetensors.h"
#include "shard.h"

/* rng stream of the synthetic tokens (mlm.c uses 1 for masking, train.c 2 for shuffling) */
#define SYNTH_STREAM 7
/* [MASK] of synthetic batches: the id `cram data` gives it (docs/data.md) */
#define SYNTH_MASK_ID 4
/* distinct microbatches prepared at most (cycled through) */
#define MAX_POOL 64

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- microbatches ------------------------------------------------------------- */

typedef struct pool {
  uint64_t n, mbs, seq; /* n microbatches of mbs x seq */
  int32_t *tok, *tgt;   /* n * mbs * seq each */
} pool;

static cram_status pool_alloc(pool *p, uint64_t n, cram_err *err) {
  size_t cnt = (size_t)(n * p->mbs * p->seq);
  p->n = n;
  p->tok = malloc(cnt * sizeof(int32_t));
  p->tgt = malloc(cnt * sizeof(int32_t));
  if (!p->tok || !p->tgt) return cram_err_set(err, CRAM_E_NOMEM, "out of memory for %" PRIu64 " microbatches", n);
  return CRAM_OK;
}

static uint32_t mask_count(const cram_step_meta *m, uint64_t seq, double rate) {
  int64_t md = cram_step_dim(m, "masked", -1);
  return md >= 0 ? (uint32_t)md : cram_mlm_round(rate * (double)seq);
}

/* Uniform random tokens, masked as in training (80/10/10 of `masked` per sequence). */
static cram_status pool_synthetic(pool *p, const cram_step_meta *m, uint32_t vocab, const cram_bench_config *cfg, cram_err *err) {
  cram_mlm mlm;
  uint32_t mask_id = vocab > SYNTH_MASK_ID ? SYNTH_MASK_ID : vocab - 1;
  cram_status r = cram_mlm_init(&mlm, (uint32_t)p->seq, vocab, mask_count(m, p->seq, cfg->mask_rate), mask_id, cfg->seed, err);
  if (r != CRAM_OK) return r;
  uint16_t *raw = malloc(p->seq * sizeof *raw);
  if (!raw) return cram_err_set(err, CRAM_E_NOMEM, "out of memory");
  for (uint64_t k = 0; k < p->n * p->mbs; k++) {
    uint64_t key = cram_rng_key(cfg->seed, SYNTH_STREAM, k);
    for (uint64_t i = 0; i < p->seq; i++) raw[i] = (uint16_t)(cram_rng_u64(key, i) % vocab);
    cram_mlm_apply(&mlm, k, raw, p->tok + k * p->seq, p->tgt + k * p->seq);
  }
  free(raw);
  return CRAM_OK;
}

/* The first sequences of the train shards, masked as `cram train` masks them. */
static cram_status pool_shards(pool *p, const cram_step_meta *m, uint32_t vocab, const cram_bench_config *cfg, cram_err *err) {
  cram_dataset d;
  cram_status r = cram_dataset_open(&d, cfg->data_dir, "train", NULL, 0, err);
  if (r != CRAM_OK) return r;
  cram_mlm mlm;
  if (d.seq_len != p->seq)
    r = cram_err_set(err, CRAM_E_SEQLEN, "%s: sequences have %u tokens, model '%s' takes seq=%" PRIu64, d.shards[0].path,
                     d.seq_len, m->model, p->seq);
  else if (d.vocab_size > vocab)
    r = cram_err_set(err, CRAM_E_VOCAB, "%s: vocabulary of %u tokens, model '%s' has vocab=%u", d.shards[0].path, d.vocab_size,
                     m->model, vocab);
  else if (d.shards[0].h.mask_id == CRAM_NO_TOKEN)
    r = cram_err_set(err, CRAM_E_HEADER, "%s: the shards have no [MASK] token id (header mask_id)", d.shards[0].path);
  else
    r =
      cram_mlm_init(&mlm, (uint32_t)p->seq, vocab, mask_count(m, p->seq, cfg->mask_rate), d.shards[0].h.mask_id, cfg->seed, err);
  for (uint64_t k = 0; r == CRAM_OK && k < p->n * p->mbs; k++) {
    uint64_t i = k % d.seq_count;
    if (cram_mlm_apply(&mlm, k, cram_dataset_seq(&d, i), p->tok + k * p->seq, p->tgt + k * p->seq) != 0) {
      uint64_t at = 0;
      const char *path = cram_dataset_seq_path(&d, i, &at);
      r =
        cram_err_set(err, CRAM_E_TOKEN_RANGE, "%s: sequence %" PRIu64 " has a token id >= the model's vocab %u", path, at, vocab);
    }
  }
  cram_dataset_close(&d);
  return r;
}

/* `tokens` and `targets`, i32 [B,S] (one microbatch) or [N,B,S] (N of them). */
static cram_status pool_file(pool *p, const cram_step_meta *m, const cram_bench_config *cfg, cram_err *err) {
  cram_st_file f;
  const char *path = cfg->batch_file;
  cram_status r = cram_st_read(path, &f, err);
  const cram_st_tensor *t[2] = { NULL, NULL };
  const char *names[2] = { "tokens", "targets" };
  for (int j = 0; r == CRAM_OK && j < 2; j++) {
    t[j] = cram_st_find(&f, names[j]);
    if (!t[j] || t[j]->dtype != CRAM_ST_I32 || (t[j]->rank != 2 && t[j]->rank != 3))
      r = cram_err_set(err, CRAM_E_ARG, "%s: needs an I32 tensor '%s' of shape [B,S] or [N,B,S]", path, names[j]);
    else {
      const int64_t *s = t[j]->shape + (t[j]->rank - 2);
      if (s[0] != (int64_t)p->mbs || s[1] != (int64_t)p->seq)
        r = cram_err_set(err, CRAM_E_ARG,
                         "%s: '%s' has microbatches of [%" PRId64 ", %" PRId64 "], model '%s' takes [%" PRIu64 ", %" PRIu64
                         "] (compile it with -D batch=%" PRId64 ")",
                         path, names[j], s[0], s[1], m->model, p->mbs, p->seq, s[0]);
    }
  }
  if (r == CRAM_OK && t[0]->numel != t[1]->numel)
    r = cram_err_set(err, CRAM_E_ARG, "%s: 'tokens' and 'targets' differ in shape", path);
  if (r == CRAM_OK && t[0]->numel == 0) r = cram_err_set(err, CRAM_E_ARG, "%s: no microbatches in the file", path);
  if (r == CRAM_OK) r = pool_alloc(p, (uint64_t)t[0]->numel / (p->mbs * p->seq), err);
  if (r == CRAM_OK) {
    memcpy(p->tok, t[0]->data, t[0]->nbytes); /* I32 little-endian, as the host */
    memcpy(p->tgt, t[1]->data, t[1]->nbytes);
  }
  cram_st_free(&f);
  return r;
}

static void pool_free(pool *p) {
  free(p->tok);
  free(p->tgt);
  memset(p, 0, sizeof *p);
}

/* ---- device memory through libcuda (opened by name, as the cuda step does) -------- */

typedef struct cumem {
  void *h;
  int (*Init)(unsigned);
  int (*DeviceGet)(int *, int);
  int (*Retain)(void **, int);
  int (*Release)(int);
  int (*SetCurrent)(void *);
  int (*MemGetInfo)(size_t *, size_t *);
  int dev, held;
  size_t free0;
} cumem;

static int sym(void *h, const char *name, void *fp, size_t size) {
  void *s = dlsym(h, name);
  if (!s) return 0;
  memcpy(fp, &s, size); /* object -> function pointer, as POSIX allows */
  return 1;
}

/* Free device memory before create(), on the primary context the step will use. 0 = unavailable. */
static int cumem_begin(cumem *c, int device) {
  memset(c, 0, sizeof *c);
  c->h = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!c->h) return 0;
  void *ctx = NULL;
  size_t total = 0;
  int ok = sym(c->h, "cuInit", &c->Init, sizeof c->Init) && sym(c->h, "cuDeviceGet", &c->DeviceGet, sizeof c->DeviceGet) &&
           sym(c->h, "cuDevicePrimaryCtxRetain", &c->Retain, sizeof c->Retain) &&
           (sym(c->h, "cuDevicePrimaryCtxRelease_v2", &c->Release, sizeof c->Release) ||
            sym(c->h, "cuDevicePrimaryCtxRelease", &c->Release, sizeof c->Release)) &&
           sym(c->h, "cuCtxSetCurrent", &c->SetCurrent, sizeof c->SetCurrent) &&
           sym(c->h, "cuMemGetInfo_v2", &c->MemGetInfo, sizeof c->MemGetInfo);
  ok = ok && c->Init(0) == 0 && c->DeviceGet(&c->dev, device) == 0 && c->Retain(&ctx, c->dev) == 0;
  c->held = ok;
  ok = ok && c->SetCurrent(ctx) == 0 && c->MemGetInfo(&c->free0, &total) == 0;
  return ok;
}

/* Device memory taken since cumem_begin, or 0 when it cannot be read. */
static uint64_t cumem_used(cumem *c) {
  size_t fr = 0, total = 0;
  if (!c->MemGetInfo || c->MemGetInfo(&fr, &total) != 0 || fr > c->free0) return 0;
  return (uint64_t)(c->free0 - fr);
}

static void cumem_end(cumem *c) {
  if (c->held) c->Release(c->dev);
  if (c->h) dlclose(c->h);
  memset(c, 0, sizeof *c);
}

static uint64_t host_maxrss(void) {
  struct rusage ru;
  if (getrusage(RUSAGE_SELF, &ru) != 0) return 0;
  return (uint64_t)ru.ru_maxrss * 1024u; /* kilobytes on Linux */
}

/* ---- the per-kernel profile (cpu target) -------------------------------------------- */

/* The cpu step's raw profile (codegen/cpu_step/cpu_profile.c: one line per kernel,
 * graph kernel family runs total_ns bytes ops) as two tables per iteration: by op
 * family, then the heaviest kernels. An iteration runs the step graph (acc) accum
 * times and the update graph (up) once; the first run of each is not counted. */
#define PROF_MAX 8192
#define PROF_TOP 15
typedef struct prof_row {
  char graph[8], family[16], ops[100];
  unsigned kernel;
  double ms, cpu, mb; /* per iteration: wall, the calling thread's CPU, bytes */
} prof_row;

static int prof_cmp(const void *a, const void *b) {
  double x = ((const prof_row *)a)->ms, y = ((const prof_row *)b)->ms;
  return x < y ? 1 : x > y ? -1 : 0;
}

static void prof_line(FILE *o, const prof_row *r, double total, unsigned n) {
  fprintf(o, "  %-14s %9.3f %6.1f%% %9.3f %10.2f %8.2f %7u\n", r->family, r->ms, total > 0 ? 100 * r->ms / total : 0, r->cpu,
          r->mb, r->ms > 0 ? r->mb / r->ms : 0, n); /* MB/ms = GB/s */
}

static cram_status profile_report(const char *raw, const cram_bench_config *cfg, cram_err *err) {
  FILE *in = fopen(raw, "r");
  if (!in) return cram_err_set(err, CRAM_E_IO, "the step wrote no profile (%s)", raw);
  prof_row *row = calloc(PROF_MAX, sizeof *row);
  if (!row) {
    fclose(in);
    return cram_err_set(err, CRAM_E_NOMEM, "out of memory");
  }
  char line[512];
  size_t n = 0;
  prof_row tot = { .family = "total" };
  while (n < PROF_MAX && fgets(line, sizeof line, in)) {
    prof_row *r = &row[n];
    unsigned long long runs, ns, cpu, bytes;
    if (line[0] == '#' || sscanf(line, "%7s %u %15s %llu %llu %llu %llu %99[^\n]", r->graph, &r->kernel, r->family, &runs, &ns,
                                 &cpu, &bytes, r->ops) != 8)
      continue;
    double per_iter = strcmp(r->graph, "acc") == 0 ? (double)cfg->accum : strcmp(r->graph, "up") == 0 ? 1.0 : 0.0;
    if (!per_iter || !runs) continue;
    r->ms = per_iter * (double)ns / (double)runs / 1e6;
    r->cpu = per_iter * (double)cpu / (double)runs / 1e6;
    r->mb = per_iter * (double)bytes / 1e6;
    tot.ms += r->ms, tot.cpu += r->cpu, tot.mb += r->mb;
    n++;
  }
  fclose(in);
  if (!n) {
    free(row);
    return cram_err_set(err, CRAM_E_IO, "the step's profile has no kernel line this cram reads (an artifact of another cramc?)");
  }
  FILE *o = strcmp(cfg->profile, "-") == 0 ? stdout : fopen(cfg->profile, "w");
  if (!o) {
    free(row);
    return cram_err_set(err, CRAM_E_IO, "%s: cannot write the profile: %s", cfg->profile, strerror(errno));
  }
  fprintf(o, "per-kernel profile, per iteration (kernels timed one by one: wall ms, share of the wall total, the\n"
             "calling thread's cpu ms; MB moved as cramc --stats counts bytes_moved, GB/s = MB / wall ms):\n");
  fprintf(o, "  %-14s %9s %7s %9s %10s %8s %7s\n", "family", "ms", "share", "cpu ms", "MB", "GB/s", "kernels");
  static const char *const fams[] = { "gemm",      "loss",   "norm",   "softmax",    "optimizer",
                                      "reduction", "gather", "layout", "elementwise" };
  prof_row fam[sizeof fams / sizeof fams[0]];
  unsigned cnt[sizeof fams / sizeof fams[0]] = { 0 };
  memset(fam, 0, sizeof fam);
  for (size_t f = 0; f < sizeof fams / sizeof fams[0]; f++) snprintf(fam[f].family, sizeof fam[f].family, "%s", fams[f]);
  for (size_t i = 0; i < n; i++)
    for (size_t f = 0; f < sizeof fams / sizeof fams[0]; f++)
      if (strcmp(row[i].family, fams[f]) == 0) fam[f].ms += row[i].ms, fam[f].cpu += row[i].cpu, fam[f].mb += row[i].mb, cnt[f]++;
  for (size_t f = 0; f < sizeof fams / sizeof fams[0]; f++) fam[f].kernel = cnt[f];
  qsort(fam, sizeof fams / sizeof fams[0], sizeof fam[0], prof_cmp);
  for (size_t f = 0; f < sizeof fams / sizeof fams[0]; f++)
    if (fam[f].kernel) prof_line(o, &fam[f], tot.ms, fam[f].kernel);
  prof_line(o, &tot, tot.ms, (unsigned)n);
  qsort(row, n, sizeof *row, prof_cmp);
  fprintf(o, "heaviest kernels:\n  %-10s %9s %7s %9s %10s %8s  %-11s %s\n", "kernel", "ms", "share", "cpu ms", "MB", "GB/s",
          "family", "nodes");
  for (size_t i = 0; i < n && i < PROF_TOP; i++) {
    char k[24];
    snprintf(k, sizeof k, "%s_k%u", row[i].graph, row[i].kernel);
    fprintf(o, "  %-10s %9.3f %6.1f%% %9.3f %10.2f %8.2f  %-11s %s\n", k, row[i].ms, tot.ms > 0 ? 100 * row[i].ms / tot.ms : 0,
            row[i].cpu, row[i].mb, row[i].ms > 0 ? row[i].mb / row[i].ms : 0, row[i].family, row[i].ops);
  }
  free(row);
  if (o != stdout ? fclose(o) != 0 : fflush(o) != 0)
    return cram_err_set(err, CRAM_E_IO, "%s: error writing the profile", cfg->profile);
  return CRAM_OK;
}

/* ---- the run ---------------------------------------------------------------------- */

static cram_status step_fail(const cram_step_api *api, cram_ctx *ctx, const char *what, cram_step_rc rc, cram_err *err) {
  const char *le = api->last_error(ctx);
  return cram_err_set(err, rc == CRAM_STEP_E_DATA ? CRAM_E_TOKEN_RANGE : CRAM_E_IO, "step %s failed (%s): %s", what,
                      cram_step_rc_str(rc), le && *le ? le : "no detail");
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static cram_status save_init(const cram_step_api *api, cram_ctx *ctx, const cram_bench_config *cfg, uint64_t mbs, uint32_t mask_n,
                             cram_err *err) {
  if (mkdir(cfg->save_init, 0777) != 0 && errno != EEXIST)
    return cram_err_set(err, CRAM_E_IO, "%s: cannot create the directory: %s", cfg->save_init, strerror(errno));
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", cfg->save_init, CRAM_CKPT_FILE);
  cram_train_state st;
  memset(&st, 0, sizeof st);
  st.seed = cfg->seed;
  st.steps = cfg->warmup + cfg->steps;
  st.batch = mbs * cfg->accum;
  st.peak_lr = cfg->lr;
  st.mask_n = mask_n;
  return cram_ckpt_save(path, api, ctx, &st, err);
}

cram_status cram_bench_run(const cram_step_api *api, const cram_bench_config *cfg, cram_bench_result *res, cram_err *err) {
  memset(res, 0, sizeof *res);
  const cram_step_meta *m = api->meta;
  if (cfg->steps < 1 || cfg->accum < 1) return cram_err_set(err, CRAM_E_ARG, "need at least one timed step and accum >= 1");
  if (cfg->data_dir && cfg->batch_file) return cram_err_set(err, CRAM_E_ARG, "give --data or --batch-file, not both");
  int i_tok = cram_step_input(m, "tokens"), i_tgt = cram_step_input(m, "targets");
  if (i_tok < 0 || i_tgt < 0 || m->ninputs != 2)
    return cram_err_set(err, CRAM_E_ARG, "model '%s' must take exactly the inputs `tokens` and `targets` (i32[batch, seq])",
                        m->model);
  const cram_tensor_info *ti = &m->inputs[i_tok], *gi = &m->inputs[i_tgt];
  if (ti->rank != 2 || gi->rank != 2 || ti->dtype != CRAM_DT_I32 || gi->dtype != CRAM_DT_I32 || ti->shape[0] != gi->shape[0] ||
      ti->shape[1] != gi->shape[1] || ti->shape[0] < 1 || ti->shape[1] < 1)
    return cram_err_set(err, CRAM_E_ARG, "model '%s': `tokens` and `targets` must both be i32[batch, seq]", m->model);
  int64_t vocab = cram_step_dim(m, "vocab", -1);
  if (vocab < 2 || vocab > 65536)
    return cram_err_set(err, CRAM_E_ARG, "model '%s': needs a `vocab` dim in [2, 65536] for MLM batches", m->model);

  pool p = { .mbs = (uint64_t)ti->shape[0], .seq = (uint64_t)ti->shape[1] };
  uint64_t iters = cfg->warmup + cfg->steps, need = iters * cfg->accum;
  uint64_t npool = need < MAX_POOL ? need : MAX_POOL;
  cram_status r;
  if (cfg->batch_file) {
    res->data_kind = "file";
    r = pool_file(&p, m, cfg, err);
  } else {
    res->data_kind = cfg->data_dir ? "shards" : "synthetic";
    r = pool_alloc(&p, npool, err);
    if (r == CRAM_OK)
      r = cfg->data_dir ? pool_shards(&p, m, (uint32_t)vocab, cfg, err) : pool_synthetic(&p, m, (uint32_t)vocab, cfg, err);
  }
  if (r != CRAM_OK) {
    pool_free(&p);
    return r;
  }
  res->distinct_batches = p.n;
  res->microbatch = p.mbs;
  res->seq = p.seq;
  res->tokens_per_iter = cfg->accum * p.mbs * p.seq;
  res->flops_per_token = m->flops_per_token;
  if (!(res->losses = calloc(need, sizeof(float)))) {
    pool_free(&p);
    return cram_err_set(err, CRAM_E_NOMEM, "out of memory");
  }
  double *it = calloc(cfg->steps, sizeof(double));
  if (!it) {
    pool_free(&p);
    cram_bench_result_free(res);
    return cram_err_set(err, CRAM_E_NOMEM, "out of memory");
  }

  int is_cuda = m->target && strcmp(m->target, "cuda") == 0;
  char prof_raw[64] = "";
  if (cfg->profile) { /* the cpu shim profiles when cram_create_opts.cpu_profile names a file */
    int fd = -1;
    FILE *out = NULL; /* the report's file, tried before the run rather than after it */
    if (!m->target || strcmp(m->target, "cpu") != 0)
      r = cram_err_set(err, CRAM_E_ARG, "--profile needs a cpu-target artifact (this one is %s)", m->target);
    else if (strcmp(cfg->profile, "-") != 0 && !(out = fopen(cfg->profile, "a")))
      r = cram_err_set(err, CRAM_E_IO, "%s: cannot write the profile: %s", cfg->profile, strerror(errno));
    else if (snprintf(prof_raw, sizeof prof_raw, "/tmp/cram-profile-XXXXXX"), (fd = mkstemp(prof_raw)) < 0)
      r = cram_err_set(err, CRAM_E_IO, "cannot create a temporary file for the profile: %s", strerror(errno));
    if (fd >= 0) close(fd);
    if (out) fclose(out);
    if (r != CRAM_OK) {
      free(it);
      pool_free(&p);
      cram_bench_result_free(res);
      return r;
    }
  }
  cumem cm;
  int have_cm = is_cuda && cumem_begin(&cm, cfg->device);
  double t_create = now_s();
  cram_ctx *ctx = NULL;
  cram_create_opts o = { .device = cfg->device, .training = 0, .dropout_seed = 0, .cpu_profile = *prof_raw ? prof_raw : NULL };
  cram_step_opts_from_env(&o);
  char e[512] = "";
  cram_step_rc rc = api->create(&o, &ctx, e, sizeof e);

  if (rc != CRAM_STEP_OK) {
    ctx = NULL;
    r = cram_err_set(err, rc == CRAM_STEP_E_DEVICE ? CRAM_E_ARG : CRAM_E_NOMEM, "%s", *e ? e : cram_step_rc_str(rc));
    goto out;
  }
  if ((rc = api->init_params(ctx, cfg->seed)) != CRAM_STEP_OK) {
    r = step_fail(api, ctx, "init_params", rc, err);
    goto out;
  }
  res->create_s = now_s() - t_create;
  if (cfg->save_init && (r = save_init(api, ctx, cfg, p.mbs, mask_count(m, p.seq, cfg->mask_rate), err))) goto out;

  const void *in[2];
  float scale = 1.0f / (float)cfg->accum;
  uint64_t mb = 0;
  double t_prev = 0, t_start = 0;
  for (uint64_t s = 0; s < iters; s++) {
    if (s == cfg->warmup) t_start = t_prev = now_s();
    for (uint64_t j = 0; j < cfg->accum; j++, mb++) {
      uint64_t b = mb % p.n;
      in[i_tok] = p.tok + b * p.mbs * p.seq;
      in[i_tgt] = p.tgt + b * p.mbs * p.seq;
      float loss = NAN;
      if ((rc = api->step(ctx, in, scale, &loss)) != CRAM_STEP_OK) {
        r = step_fail(api, ctx, "step", rc, err);
        goto out;
      }
      res->losses[mb] = loss;
      if (!isfinite(loss)) res->nonfinite++;
    }
    cram_update_args ua = CRAM_UPDATE_ARGS_RECIPE((float)cfg->lr, (int64_t)s + 1);
    float gn = NAN;
    if ((rc = api->update(ctx, &ua, &gn)) != CRAM_STEP_OK) {
      r = step_fail(api, ctx, "update", rc, err);
      goto out;
    }
    res->last_grad_norm = gn;
    if (s >= cfg->warmup) {
      double t = now_s();
      it[s - cfg->warmup] = t - t_prev;
      t_prev = t;
    }
  }
  res->nlosses = need;
  res->total_s = t_prev - t_start;
  res->ms_mean = 1e3 * res->total_s / (double)cfg->steps;
  qsort(it, cfg->steps, sizeof *it, cmp_double);
  res->ms_min = 1e3 * it[0];
  res->ms_max = 1e3 * it[cfg->steps - 1];
  res->ms_median = 1e3 * (cfg->steps % 2 ? it[cfg->steps / 2] : 0.5 * (it[cfg->steps / 2 - 1] + it[cfg->steps / 2]));
  res->tok_s = res->total_s > 0 ? (double)(res->tokens_per_iter * cfg->steps) / res->total_s : 0;
  res->achieved_tflops = res->flops_per_token * res->tok_s / 1e12;
  res->mfu = res->flops_per_token > 0 && cfg->peak_flops > 0 ? res->achieved_tflops * 1e12 / cfg->peak_flops : -1;
  if (!is_cuda) {
    res->mem_kind = "host-maxrss";
    res->peak_bytes = host_maxrss();
  } else if (have_cm && (res->peak_bytes = cumem_used(&cm)) > 0) {
    res->mem_kind = "device-cumemgetinfo";
  } else {
    res->mem_kind = "device-estimate";
    uint64_t in_bytes = 0;
    for (uint32_t j = 0; j < m->ninputs; j++) in_bytes += (uint64_t)m->inputs[j].numel * 4u;
    res->peak_bytes = m->arena_bytes + 16u * (uint64_t)m->nparam_elems + in_bytes;
  }
  r = CRAM_OK;
out:
  if (ctx) api->destroy(ctx); /* writes the raw profile */
  if (r == CRAM_OK && cfg->profile) r = profile_report(prof_raw, cfg, err);
  if (*prof_raw) unlink(prof_raw);
  if (is_cuda) cumem_end(&cm); /* cumem_begin zeroed it even when it failed */
  free(it);
  pool_free(&p);
  if (r != CRAM_OK) cram_bench_result_free(res);
  return r;
}

void cram_bench_result_free(cram_bench_result *res) {
  free(res->losses);
  res->losses = NULL;
  res->nlosses = 0;
}
