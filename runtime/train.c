/* train.c - the training loop and eval over a cram_step_api; see train.h. */
#include "train.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "loader.h"
#include "mlm.h"
#include "schedule.h"
#include "shard.h"

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- data order ------------------------------------------------------------ */

uint64_t cram_data_index(uint64_t k, uint64_t n, uint64_t seed, int shuffle) {
  if (n == 0) return 0;
  uint64_t epoch = k / n, i = k % n;
  if (!shuffle || n < 2) return i;
  unsigned bits = 2;
  while (bits < 64 && (1ull << bits) < n) bits++;
  if (bits & 1) bits++;
  unsigned half = bits / 2;
  uint64_t mask = (1ull << half) - 1;
  uint64_t key = cram_rng_key(seed, 2, epoch);
  uint64_t x = i;
  do { /* cycle-walking Feistel: a bijection of [0, 2^bits) restricted to [0, n) */
    uint64_t l = x >> half, r = x & mask;
    for (uint64_t round = 0; round < 4; round++) {
      uint64_t nl = r, nr = l ^ (cram_rng_u64(key, round * 0x100000000ull + r) & mask);
      l = nl;
      r = nr;
    }
    x = (l << half) | r;
  } while (x >= n);
  return x;
}

/* ---- model/data binding ------------------------------------------------------ */

typedef struct binding {
  int i_tok, i_tgt;
  uint64_t mbs;
  uint32_t seq;
  uint32_t vocab;
  int32_t *tok, *tgt;
  const void *in[2];
} binding;

static cram_status bind(const cram_step_api *api, const cram_dataset *d, binding *b, cram_err *err) {
  const cram_step_meta *m = api->meta;
  memset(b, 0, sizeof *b);
  b->i_tok = cram_step_input(m, "tokens");
  b->i_tgt = cram_step_input(m, "targets");
  if (b->i_tok < 0 || b->i_tgt < 0 || m->ninputs != 2)
    return cram_err_set(err, CRAM_E_ARG,
                        "model '%s' must take exactly the inputs `tokens` and `targets` (i32[batch, seq]) to be "
                        "trained with MLM",
                        m->model);
  const cram_tensor_info *t = &m->inputs[b->i_tok], *g = &m->inputs[b->i_tgt];
  if (t->rank != 2 || g->rank != 2 || t->dtype != CRAM_DT_I32 || g->dtype != CRAM_DT_I32 || t->shape[0] != g->shape[0] ||
      t->shape[1] != g->shape[1] || t->shape[0] < 1 || t->shape[1] < 1)
    return cram_err_set(err, CRAM_E_ARG, "model '%s': `tokens` and `targets` must both be i32[batch, seq]", m->model);
  b->mbs = (uint64_t)t->shape[0];
  b->seq = (uint32_t)t->shape[1];
  int64_t vocab = cram_step_dim(m, "vocab", d->vocab_size);
  if (vocab < 1 || vocab > 65536) return cram_err_set(err, CRAM_E_ARG, "model '%s': bad vocab dim", m->model);
  b->vocab = (uint32_t)vocab;
  if (d->seq_len != b->seq)
    return cram_err_set(err, CRAM_E_SEQLEN, "%s: sequences have %u tokens, model '%s' takes seq=%u", d->shards[0].path,
                        d->seq_len, m->model, b->seq);
  if (d->vocab_size > b->vocab)
    return cram_err_set(err, CRAM_E_VOCAB, "%s: vocabulary of %u tokens, model '%s' has vocab=%u", d->shards[0].path,
                        d->vocab_size, m->model, b->vocab);
  b->tok = malloc(b->mbs * b->seq * sizeof(int32_t));
  b->tgt = malloc(b->mbs * b->seq * sizeof(int32_t));
  if (!b->tok || !b->tgt) return cram_err_set(err, CRAM_E_NOMEM, "out of memory for a microbatch");
  b->in[b->i_tok] = b->tok;
  b->in[b->i_tgt] = b->tgt;
  return CRAM_OK;
}

static void unbind(binding *b) {
  free(b->tok);
  free(b->tgt);
}

/* mask_rate_set: the user asked for mask_rate, which a model with a `masked`
 * dim cannot honour (its graph gathers exactly `masked` rows per sequence). */
static cram_status mask_setup(const cram_step_meta *m, const cram_dataset *d, const binding *b, uint32_t mask_n, double mask_rate,
                              int mask_rate_set, uint64_t seed, cram_mlm *mlm, cram_err *err) {
  uint32_t mask_id = d->shards[0].h.mask_id;
  if (mask_id == CRAM_NO_TOKEN)
    return cram_err_set(err, CRAM_E_HEADER, "%s: the shards have no [MASK] token id (header mask_id)", d->shards[0].path);
  int64_t md = cram_step_dim(m, "masked", -1);
  if (md >= 0 && mask_rate_set)
    return cram_err_set(err, CRAM_E_ARG,
                        "--mask-rate %g does not apply: model '%s' has the dim masked=%" PRId64 " (%" PRId64
                        " predictions per sequence of %u); recompile with cramc -D masked=%u for that rate",
                        mask_rate, m->model, md, md, b->seq, cram_mlm_round(mask_rate * b->seq));
  uint32_t n = mask_n;
  if (n == 0) n = md >= 0 ? (uint32_t)md : cram_mlm_round(mask_rate * b->seq);
  return cram_mlm_init(mlm, b->seq, b->vocab, n, mask_id, seed, err);
}

/* Fills one microbatch from stream position *pos. */
static cram_status fill(const cram_dataset *d, const cram_mlm *mlm, binding *b, uint64_t *pos, uint64_t seed, int shuffle,
                        cram_err *err) {
  for (uint64_t r = 0; r < b->mbs; r++, (*pos)++) {
    uint64_t i = cram_data_index(*pos, d->seq_count, seed, shuffle);
    if (cram_mlm_apply(mlm, *pos, cram_dataset_seq(d, i), b->tok + r * b->seq, b->tgt + r * b->seq) != 0) {
      uint64_t k = 0;
      const char *path = cram_dataset_seq_path(d, i, &k);
      return cram_err_set(err, CRAM_E_TOKEN_RANGE, "%s: sequence %" PRIu64 " has a token id >= the model's vocab %u", path, k,
                          mlm->vocab);
    }
  }
  return CRAM_OK;
}

static cram_status step_err(const cram_step_api *api, cram_ctx *ctx, const char *what, cram_step_rc rc, cram_err *err) {
  const char *le = api->last_error(ctx);
  return cram_err_set(err, rc == CRAM_STEP_E_DATA ? CRAM_E_TOKEN_RANGE : CRAM_E_IO, "step %s failed (%s): %s", what,
                      cram_step_rc_str(rc), le && *le ? le : "no detail");
}

/* training: dropout active in step() (never in eval()), masks from dropout_seed. */
static cram_status create_ctx(const cram_step_api *api, int device, int training, uint64_t dropout_seed, cram_ctx **ctx,
                              cram_err *err) {
  cram_create_opts o = { .device = device, .training = training, .dropout_seed = dropout_seed };
  cram_step_opts_from_env(&o);
  char e[512] = "";
  cram_step_rc rc = api->create(&o, ctx, e, sizeof e);
  if (rc != CRAM_STEP_OK) {
    *ctx = NULL;
    return cram_err_set(err, rc == CRAM_STEP_E_DEVICE ? CRAM_E_ARG : CRAM_E_NOMEM, "%s", *e ? e : cram_step_rc_str(rc));
  }
  return CRAM_OK;
}

/* ---- metrics ------------------------------------------------------------------- */

/* Keeps the lines of an existing metrics file whose "n" <= keep (the lines
 * the checkpoint covers) and opens it for appending. */
static FILE *metrics_open(const char *path, int resume, uint64_t keep, cram_err *err) {
  if (resume) {
    FILE *in = fopen(path, "r");
    if (in) {
      char tmp[2048];
      snprintf(tmp, sizeof tmp, "%s.tmp", path);
      FILE *out = fopen(tmp, "w");
      if (!out) {
        fclose(in);
        cram_err_set(err, CRAM_E_IO, "%s: %s", tmp, strerror(errno));
        return NULL;
      }
      char line[4096];
      while (fgets(line, sizeof line, in)) {
        const char *p = strstr(line, "{\"n\":");
        if (!p) continue;
        uint64_t n = strtoull(p + 5, NULL, 10);
        if (n <= keep && strchr(line, '\n')) fputs(line, out);
      }
      fclose(in);
      if (fclose(out) != 0 || rename(tmp, path) != 0) {
        cram_err_set(err, CRAM_E_IO, "%s: %s", path, strerror(errno));
        return NULL;
      }
    }
  }
  FILE *f = fopen(path, resume ? "a" : "w");
  if (!f) cram_err_set(err, CRAM_E_IO, "%s: %s", path, strerror(errno));
  return f;
}

static void jnum(FILE *f, const char *k, double v) {
  if (isfinite(v)) fprintf(f, ",\"%s\":%.9g", k, v);
  else fprintf(f, ",\"%s\":null", k);
}

/* ---- checkpoints --------------------------------------------------------------- */

/* Rank 0 writes it (every rank holds the same state); the others only learn the path. */
static cram_status checkpoint(const cram_step_api *api, cram_ctx *ctx, const cram_train_config *cfg, const cram_train_state *st,
                              cram_train_result *res, cram_err *err) {
  char path[1024];
  snprintf(path, sizeof path, "%s/%s", cfg->run_dir, CRAM_CKPT_FILE);
  cram_status r = cfg->dist && cfg->dist->rank != 0 ? CRAM_OK : cram_ckpt_save(path, api, ctx, st, err);
  if (r == CRAM_OK) snprintf(res->checkpoint, sizeof res->checkpoint, "%s", path);
  return r;
}

/* Zero the gradient accumulators without applying them (a skipped update). */
static cram_status discard_grads(const cram_step_api *api, cram_ctx *ctx, cram_err *err) {
  cram_step_rc rc = api->zero_grad(ctx);
  return rc == CRAM_STEP_OK ? CRAM_OK : step_err(api, ctx, "zero_grad", rc, err);
}

/* ---- the run, in named steps ------------------------------------------------------ */

const char *cram_train_horizon(const cram_train_state *st) {
  return st->steps ? "steps" : st->budget_tokens ? "tokens" : st->budget_flops > 0 ? "flops" : "time";
}

typedef struct trainer {
  const cram_step_api *api;
  const cram_train_config *cfg;
  cram_train_result *res;
  cram_ctx *ctx;
  cram_dataset d, held; /* train split; held-out split when cfg->eval_every */
  binding b;
  cram_mlm mlm;
  FILE *mf;
  char metrics[1024];
  cram_train_state st;
  double t0, base, last_ckpt; /* monotonic start of this process's run, st.elapsed then, at the last checkpoint */
  uint64_t held_n;            /* held-out sequences per evaluation (whole microbatches) */
  char data_abs[4096];        /* cfg->data_dir made absolute, for the checkpoint */
  int mfu_ok;
  cram_dist *dist; /* cfg->dist, or one rank */
  cram_dist solo;
  int many;     /* more than one rank: collectives at every update */
  int stop_all; /* some rank was asked to stop (agreed at the last sync) */
} trainer;

/* What one update did. */
typedef struct update_out {
  uint64_t bs; /* sequences */
  double lr, loss, tok_s, eval_loss, eval_accuracy;
  float gn;
  int bad;       /* skipped: non-finite loss or grad norm */
  int cut;       /* stopped between microbatches: partial update discarded, nothing logged */
  uint64_t done; /* microbatches run before the cut */
} update_out;

/* important: a warning or an outcome, shown even to --quiet runs */
static void notice(const trainer *tr, int important, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void notice(const trainer *tr, int important, const char *fmt, ...) {
  if (!tr->cfg->notice || tr->dist->rank != 0) return;
  char line[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  tr->cfg->notice(important, line, tr->cfg->user);
}

static double progress_t(const trainer *tr) {
  const cram_train_state *st = &tr->st;
  if (st->steps) return (double)st->step / (double)st->steps;
  if (st->budget_tokens) return (double)st->tokens / (double)st->budget_tokens;
  if (st->budget_flops > 0) return (double)st->tokens * tr->api->meta->flops_per_token / st->budget_flops;
  return st->elapsed / st->budget;
}

static double elapsed_now(const trainer *tr) { return tr->base + (now_s() - tr->t0); }

/* A new run: the directory holds no checkpoint and (unless cfg->force) no
 * metrics of an earlier run; parameters from the init rules. */
static cram_status start_fresh(trainer *tr, cram_err *err) {
  const cram_train_config *cfg = tr->cfg;
  char path[1024];
  snprintf(path, sizeof path, "%s/%s", cfg->run_dir, CRAM_CKPT_FILE);
  if (access(path, F_OK) == 0)
    return cram_err_set(err, CRAM_E_ARG,
                        "%s already holds a checkpoint: continue it with --resume %s, or train "
                        "into a new directory",
                        cfg->run_dir, cfg->run_dir);
  if (tr->dist->rank == 0 && access(tr->metrics, F_OK) == 0 && !cfg->force) /* rank 0 creates it meanwhile */
    return cram_err_set(err, CRAM_E_ARG,
                        "%s exists (an earlier run without a checkpoint): pass --force to "
                        "replace it, or train into a new directory",
                        tr->metrics);
  cram_train_state *st = &tr->st;
  st->step = st->attempts = st->seq_pos = st->tokens = st->skipped = st->bad_run = 0;
  st->elapsed = 0;
  cram_step_rc rc = tr->api->init_params(tr->ctx, st->seed);
  return rc == CRAM_STEP_OK ? CRAM_OK : step_err(tr->api, tr->ctx, "init_params", rc, err);
}

/* The run directory (parents too), created when missing. */
static cram_status make_run_dir(const char *dir, cram_err *err) {
  char p[1024];
  size_t n = strlen(dir);
  if (n == 0 || n >= sizeof p) return cram_err_set(err, CRAM_E_ARG, "bad run directory '%s'", dir);
  memcpy(p, dir, n + 1);
  for (char *s = p + 1;; s++) {
    if (*s != '/' && *s) continue;
    char c = *s;
    *s = 0;
    if (mkdir(p, 0777) != 0 && errno != EEXIST)
      return cram_err_set(err, CRAM_E_IO, "%s: cannot create the run directory: %s", p, strerror(errno));
    *s = c;
    if (!c) break;
  }
  struct stat sb;
  if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) return cram_err_set(err, CRAM_E_IO, "%s: not a directory", dir);
  return CRAM_OK;
}

/* path made absolute against the working directory (NULL if it does not fit). */
static const char *absolute(const char *path, char *buf, size_t len) {
  char cwd[4096];
  if (path[0] == '/') return strlen(path) < len ? strcpy(buf, path) : NULL;
  if (!getcwd(cwd, sizeof cwd)) return NULL;
  int n = snprintf(buf, len, "%s/%s", cwd, path);
  return n > 0 && (size_t)n < len ? buf : NULL;
}

/* The step context (training mode), the data, the run directory, and the
 * state: from the checkpoint on resume, else fresh. */
static cram_status open_run(trainer *tr, cram_err *err) {
  const cram_train_config *cfg = tr->cfg;
  const cram_step_api *api = tr->api;
  char ckpt[1024];
  snprintf(ckpt, sizeof ckpt, "%s/%s", cfg->run_dir, CRAM_CKPT_FILE);
  snprintf(tr->metrics, sizeof tr->metrics, "%s/%s", cfg->run_dir, CRAM_METRICS_FILE);
  cram_status r;
  if (cfg->resume && (r = cram_ckpt_read_state(ckpt, api->meta, &tr->st, err))) return r;
  /* The device first: without one (no GPU for a cuda artifact) nothing else
     * matters, and the user hears so before any data is read. Dropout masks
     * continue the run's stream: the context starts at the checkpoint's run
     * count (CRAM_STEP_RUN_SEED, docs/abi.md), so a resumed run draws the masks
     * the uninterrupted one would have. With several ranks each draws from its
     * own stream (key rank), from the run count of the whole job: a rank's
     * context never runs more graphs than that, so no mask repeats. */
  if ((r = create_ctx(api, cfg->device, 1,
                      CRAM_STEP_RUN_SEED(cram_rng_key(tr->st.seed, 3, (uint64_t)tr->dist->rank), tr->st.runs), &tr->ctx, err)))
    return r;
  if ((r = cram_dataset_open(&tr->d, cfg->data_dir, "train", NULL, 0, err))) return r;
  if ((r = bind(api, &tr->d, &tr->b, err))) return r;
  if ((r = make_run_dir(cfg->run_dir, err))) return r;
  if (cfg->resume) {
    if ((r = cram_ckpt_load(ckpt, api, tr->ctx, &tr->st, err)) ||
        (r = cram_ckpt_check_data(ckpt, &tr->st, cfg->data_dir, &tr->d, err)))
      return r;
  } else if ((r = start_fresh(tr, err))) {
    return r;
  }
  cram_ckpt_set_data(&tr->st, &tr->d);
  tr->st.data_dir = absolute(cfg->data_dir, tr->data_abs, sizeof tr->data_abs);
  return CRAM_OK;
}

/* Batch 0: a batch this machine can run (cpu and interp targets: 4
 * microbatches, about a second an update for tiny; cuda: the recipe's 8192), said once. */
static void pick_batch(trainer *tr) {
  cram_train_state *st = &tr->st;
  if (st->batch) return;
  const char *tg = tr->api->meta->target ? tr->api->meta->target : "";
  int gpu = strcmp(tg, "cuda") == 0;
  st->batch = gpu ? (8192 + tr->b.mbs - 1) / tr->b.mbs * tr->b.mbs : 4 * tr->b.mbs;
  uint64_t fit = tr->d.seq_count / tr->b.mbs * tr->b.mbs;
  if (!gpu && fit >= tr->b.mbs && st->batch > fit) st->batch = fit;
  notice(tr, 0, "%s target: --batch not given, training with batch %" PRIu64 " (%" PRIu64 " microbatches of %" PRIu64 ")%s", tg,
         st->batch, st->batch / tr->b.mbs, tr->b.mbs,
         gpu ? " (the recipe's)" : "; the recipe's 8192 is a GPU batch: pass --batch to change it");
}

/* Everything a run needs that the flags may have got wrong, before the first update. */
static cram_status check_run(trainer *tr, cram_err *err) {
  cram_train_state *st = &tr->st;
  const cram_step_meta *m = tr->api->meta;
  if (st->batch % tr->b.mbs)
    return cram_err_set(err, CRAM_E_ARG, "batch size %" PRIu64 " is not a multiple of the model's microbatch %" PRIu64, st->batch,
                        tr->b.mbs);
  if (!st->steps && !st->budget_tokens && !(st->budget_flops > 0) && !(st->budget > 0))
    return cram_err_set(err, CRAM_E_ARG, "no schedule: give --steps, --tokens, --flops or --budget");
  if (st->budget_flops > 0 && !(m->flops_per_token > 0))
    return cram_err_set(err, CRAM_E_ARG,
                        "model '%s' reports no FLOPs per token: use --tokens or --steps instead "
                        "of --flops",
                        m->model);
  if (st->batch > tr->d.seq_count)
    notice(tr, 1,
           "warning: batch %" PRIu64 " is larger than the %" PRIu64 " training sequences of %s: every update "
           "reads the data more than once",
           st->batch, tr->d.seq_count, tr->cfg->data_dir);
  return CRAM_OK;
}

static cram_status open_heldout(trainer *tr, cram_err *err) {
  const cram_train_config *cfg = tr->cfg;
  if (!cfg->eval_every) return CRAM_OK;
  cram_status r = cram_dataset_open(&tr->held, cfg->data_dir, "heldout", NULL, 0, err);
  if (r) return r;
  if (tr->held.seq_len != tr->b.seq || tr->held.vocab_size > tr->b.vocab)
    return cram_err_set(err, CRAM_E_DATASET, "%s: the heldout shards do not match the train shards", cfg->data_dir);
  uint64_t n = tr->held.seq_count;
  if (cfg->eval_seqs && cfg->eval_seqs < n) n = cfg->eval_seqs;
  tr->held_n = n / tr->b.mbs * tr->b.mbs;
  if (!tr->held_n)
    return cram_err_set(err, CRAM_E_DATASET,
                        "%s: --eval-every needs at least one microbatch (%" PRIu64 ") of heldout sequences, there are %" PRIu64,
                        cfg->data_dir, tr->b.mbs, n);
  if (tr->held_n < n)
    notice(tr, 0, "held-out evaluation: %" PRIu64 " sequences (whole microbatches of %" PRIu64 "; %" PRIu64 " left out)",
           tr->held_n, tr->b.mbs, n - tr->held_n);
  return CRAM_OK;
}

/* Sums over microbatches rank, rank + size, ... of the first n sequences of
 * d (masking keyed by seed, data in order): v[0] the losses, v[1] the rows
 * predicted right, v[2] the rows counted (the masked-token accuracy);
 * *runs (if given) counts the context's graph runs. */
static cram_status eval_loss(const cram_step_api *api, cram_ctx *ctx, const cram_dataset *d, const cram_mlm *mlm, binding *b,
                             uint64_t n, uint64_t seed, int rank, int size, double v[3], uint64_t *runs, cram_err *err) {
  v[0] = v[1] = v[2] = 0;
  cram_status r;
  for (uint64_t pos = (uint64_t)rank * b->mbs; pos < n; pos += (uint64_t)(size - 1) * b->mbs) {
    if ((r = fill(d, mlm, b, &pos, seed, 0, err))) return r;
    float l;
    double c, k;
    cram_step_rc rc = api->eval_accuracy(ctx, b->in, &l, &c, &k);
    if (rc != CRAM_STEP_OK) return step_err(api, ctx, "eval", rc, err);
    if (runs) ++*runs;
    v[0] += l, v[1] += c, v[2] += k;
  }
  return CRAM_OK;
}

/* Accuracy from eval_loss's sums: NaN when the model has none or no row was counted. */
static double accuracy_of(const cram_step_api *api, const double v[3]) {
  return api->meta->has_accuracy && v[2] > 0 ? v[1] / v[2] : NAN;
}

/* The held-out loss and accuracy of the training context: every rank
 * evaluates its share of the microbatches, the sums are agreed (with rank
 * 0's clock). */
static cram_status eval_train(trainer *tr, double *loss, double *accuracy, cram_err *err) {
  cram_train_state *st = &tr->st;
  double v[4] = { 0, 0, 0, 0 };
  cram_status r = eval_loss(tr->api, tr->ctx, &tr->held, &tr->mlm, &tr->b, tr->held_n, st->seed, tr->dist->rank, tr->dist->size,
                            v, tr->many ? NULL : &st->runs, err);
  v[3] = tr->dist->rank == 0 ? elapsed_now(tr) : 0;
  if ((r = cram_dist_agree(tr->dist, r, v, 4, err))) return r;
  *loss = v[0] / (double)(tr->held_n / tr->b.mbs);
  *accuracy = accuracy_of(tr->api, v);
  if (tr->many) st->runs += tr->held_n / tr->b.mbs;
  st->elapsed = tr->many ? v[3] : elapsed_now(tr);
  return CRAM_OK;
}

/* Should the update stop between microbatches? A stop request, or the
 * wall-clock budget spent. */
static int cut_now(const trainer *tr) {
  if (tr->many) return 0; /* ranks cut together or not at all: they stop at update boundaries */
  if (tr->cfg->stop && *tr->cfg->stop) return 1;
  return tr->st.budget > 0 && elapsed_now(tr) >= tr->st.budget;
}

/* One update: k microbatches, then update() (or a skip). A stop between
 * microbatches, or a data error, discards the partial update and rewinds the
 * data position to the update's start (u->cut), so a resume redoes it. */
static cram_status run_update(trainer *tr, update_out *u, cram_err *err) {
  const cram_step_api *api = tr->api;
  cram_train_state *st = &tr->st;
  double t = progress_t(tr), u0 = now_s();
  memset(u, 0, sizeof *u);
  u->eval_loss = u->eval_accuracy = NAN;
  u->bs = cram_batch_size(t, tr->b.mbs, st->batch, st->ramp);
  uint64_t k = u->bs / tr->b.mbs, pos0 = st->seq_pos;
  u->lr = st->peak_lr * cram_lr_shape_mult(st->lr_shape, st->warmup, t);
  float scale = 1.0f / (float)k;
  cram_status r = CRAM_OK;
  /* microbatch j (sequences pos0 + j * mbs ...) is rank j % size's: the
     * ranks together read exactly what one process would */
  for (uint64_t j = (uint64_t)tr->dist->rank; j < k; j += (uint64_t)tr->dist->size) {
    if (j > 0 && cut_now(tr)) {
      u->cut = 1;
      break;
    }
    float l = 0;
    cram_step_rc rc = CRAM_STEP_OK;
    st->seq_pos = pos0 + j * tr->b.mbs;
    if ((r = fill(&tr->d, &tr->mlm, &tr->b, &st->seq_pos, st->seed, st->shuffle, err)) ||
        (rc = api->step(tr->ctx, tr->b.in, scale, &l)) != CRAM_STEP_OK) {
      if (rc != CRAM_STEP_OK) r = step_err(api, tr->ctx, "step", rc, err);
      u->cut = 1;
      break;
    }
    u->done = j + 1;
    if (!tr->many) st->runs++;
    if (!isfinite(l)) u->bad = 1;
    u->loss += (double)l * scale;
  }
  if (tr->many && r == CRAM_OK && (uint64_t)tr->dist->rank >= k) {
    /* fewer microbatches than ranks (early in the ramp): this rank has none, but update() wants a
         * step() first. It runs microbatch 0 with scale 0 (a zero gradient) while it would wait anyway. */
    float l = 0;
    st->seq_pos = pos0;
    cram_step_rc rc = CRAM_STEP_OK;
    if ((r = fill(&tr->d, &tr->mlm, &tr->b, &st->seq_pos, st->seed, st->shuffle, err)) == CRAM_OK &&
        (rc = api->step(tr->ctx, tr->b.in, 0.0f, &l)) != CRAM_STEP_OK)
      r = step_err(api, tr->ctx, "step", rc, err);
  }
  if (tr->many) {
    /* one small all-reduce: failures, the loss, the guard, stop requests, rank 0's clock */
    double v[4] = { u->loss, u->bad, tr->cfg->stop && *tr->cfg->stop, tr->dist->rank == 0 ? elapsed_now(tr) : 0 };
    if ((r = cram_dist_agree(tr->dist, r, v, 4, err))) {
      u->cut = 1, u->done = 0;
    } else {
      u->loss = v[0], u->bad = v[1] > 0, tr->stop_all = v[2] > 0, st->elapsed = v[3];
      st->runs += k; /* the job's run count: what one process would have run */
      st->seq_pos = pos0 + k * tr->b.mbs;
    }
  }
  if (u->cut) {
    st->seq_pos = pos0;
    st->runs -= u->done; /* a resume redoes them, with the same masks */
    tr->res->discarded = u->done;
    cram_status z = discard_grads(api, tr->ctx, NULL);
    return r ? r : z ? step_err(api, tr->ctx, "zero_grad", CRAM_STEP_E_STATE, err) : CRAM_OK;
  }
  st->tokens += u->bs * tr->b.seq;
  u->gn = NAN;
  if (tr->many && !u->bad) { /* sum of the ranks' scaled gradients = the mean over the k microbatches */
    cram_grad_buffer gb;
    cram_step_rc rc = api->grad_buffer(tr->ctx, &gb);
    r = rc == CRAM_STEP_OK ? CRAM_OK : step_err(api, tr->ctx, "grad_buffer", rc, err);
    if ((r = cram_dist_agree(tr->dist, r, NULL, 0, err)) || (r = cram_dist_sum_grads(tr->dist, &gb, err))) return r;
  }
  if (!u->bad) {
    cram_step_rc rc = api->grad_norm(tr->ctx, &u->gn);
    if (rc != CRAM_STEP_OK) return step_err(api, tr->ctx, "grad_norm", rc, err);
    if (!isfinite(u->gn)) u->bad = 1;
  }
  st->attempts++;
  if (u->bad) {
    st->skipped++;
    st->bad_run++;
    return discard_grads(api, tr->ctx, err);
  }
  cram_update_args a = { .lr = (float)u->lr,
                         .step = (int64_t)st->step + 1,
                         .beta1 = st->beta1,
                         .beta2 = st->beta2,
                         .eps = st->eps,
                         .weight_decay = st->weight_decay,
                         .weight_decay_other = st->weight_decay_other,
                         .max_norm = st->max_norm };
  cram_step_rc rc = api->update(tr->ctx, &a, &u->gn);
  if (rc != CRAM_STEP_OK) return step_err(api, tr->ctx, "update", rc, err);
  st->runs++;
  if (!isfinite(u->gn)) /* only without grad_norm(): the update already applied it */
    return cram_err_set(err, CRAM_E_ARG,
                        "non-finite gradient norm at step %" PRIu64 " was applied (this step.so has no grad_norm "
                        "entry to check first); parameters are unusable, the last checkpoint in %s is not affected",
                        st->step + 1, tr->cfg->run_dir);
  st->step++;
  st->bad_run = 0;
  double u1 = now_s();
  u->tok_s = (double)(u->bs * tr->b.seq) / (u1 - u0 > 1e-9 ? u1 - u0 : 1e-9);
  return CRAM_OK;
}

/* Estimated seconds to finish the horizon at sps seconds per sequence (< 0: a time horizon). */
static double estimate_rest(const trainer *tr, double sps) {
  const cram_train_state *st = &tr->st;
  if (st->steps) {
    uint64_t rest = st->steps > st->step ? st->steps - st->step : 0, n = rest < 100000 ? rest : 100000;
    double seqs = 0;
    for (uint64_t i = 0; i < n; i++) {
      double s = (double)st->step + (double)i * (double)rest / (double)n;
      seqs += (double)cram_batch_size(s / (double)st->steps, tr->b.mbs, st->batch, st->ramp);
    }
    return n ? seqs * (double)rest / (double)n * sps : 0;
  }
  double tok_left = -1;
  if (st->budget_tokens) tok_left = (double)st->budget_tokens - (double)st->tokens;
  else if (st->budget_flops > 0) tok_left = st->budget_flops / tr->api->meta->flops_per_token - (double)st->tokens;
  return tok_left < 0 ? -1 : tok_left / tr->b.seq * sps;
}

/* After the first update of this process: is the budget reachable at the measured speed? */
static void warn_speed(const trainer *tr, const update_out *u, double seconds) {
  const cram_train_state *st = &tr->st;
  double sps = seconds / (double)u->bs, full = sps * (double)st->batch;
  if (!(st->budget > 0)) return;
  if (!st->steps && !st->budget_tokens && !(st->budget_flops > 0)) {
    if (full > 0.05 * st->budget)
      notice(tr, 1,
             "warning: at the measured %.3g s per sequence one update at batch %" PRIu64 " takes ~%.0f s, "
             "%.0f%% of the %.0f s budget: the ramp cannot reach that batch usefully; pass a smaller --batch",
             sps, st->batch, full, 100 * full / st->budget, st->budget);
    return;
  }
  double rest = estimate_rest(tr, sps);
  if (rest >= 0 && st->elapsed + rest > st->budget)
    notice(tr, 1,
           "warning: at the measured %.3g s per sequence the %s schedule needs ~%.0f s more, past the --budget "
           "deadline of %.0f s: the run will stop early",
           sps, cram_train_horizon(st), rest, st->budget);
}

static cram_status log_update(trainer *tr, const update_out *u, cram_err *err) {
  const cram_train_state *st = &tr->st;
  if (tr->dist->rank != 0) return CRAM_OK; /* rank 0 speaks for the job */
  const cram_step_meta *m = tr->api->meta;
  double mfu = tr->mfu_ok ? u->tok_s * m->flops_per_token / tr->cfg->peak_flops : -1;
  double eta = -1;
  if (st->steps && st->step > 0) eta = (st->elapsed / (double)st->attempts) * (double)(st->steps - st->step);
  else if (!st->steps && !st->budget_tokens && !(st->budget_flops > 0)) eta = st->budget - st->elapsed;
  else if (st->tokens > 0) eta = st->elapsed * (1.0 - progress_t(tr)) / progress_t(tr);
  FILE *mf = tr->mf;
  fprintf(mf, "{\"n\":%" PRIu64 ",\"step\":%" PRIu64 ",\"time\":%.6f,\"tokens\":%" PRIu64, st->attempts, st->step, st->elapsed,
          st->tokens);
  jnum(mf, "loss", u->loss);
  jnum(mf, "lr", u->bad ? 0 : u->lr);
  fprintf(mf, ",\"batch\":%" PRIu64, u->bs);
  jnum(mf, "grad_norm", u->gn);
  jnum(mf, "tok_s", u->tok_s);
  if (mfu >= 0) jnum(mf, "mfu", mfu);
  if (!isnan(u->eval_loss)) jnum(mf, "eval_loss", u->eval_loss);
  if (!isnan(u->eval_accuracy)) jnum(mf, "eval_accuracy", u->eval_accuracy);
  fprintf(mf, ",\"skipped\":%d}\n", u->bad);
  if (fflush(mf) != 0) return cram_err_set(err, CRAM_E_IO, "%s: %s", tr->metrics, strerror(errno));
  cram_train_progress p = { .step = st->step,
                            .attempts = st->attempts,
                            .tokens = st->tokens,
                            .skipped = st->skipped,
                            .loss = u->loss,
                            .lr = u->bad ? 0 : u->lr,
                            .grad_norm = u->gn,
                            .batch = u->bs,
                            .tok_s = u->tok_s,
                            .mfu = mfu,
                            .elapsed = st->elapsed,
                            .eta = eta,
                            .event = NULL };
  if (tr->cfg->progress) tr->cfg->progress(&p, tr->cfg->user);
  return CRAM_OK;
}

static cram_status maybe_checkpoint(trainer *tr, const update_out *u, cram_err *err) {
  const cram_train_config *cfg = tr->cfg;
  const cram_train_state *st = &tr->st;
  int due = (cfg->ckpt_every_steps && !u->bad && st->step % cfg->ckpt_every_steps == 0) ||
            (cfg->ckpt_every_s > 0 && st->elapsed - tr->last_ckpt >= cfg->ckpt_every_s);
  if (!due) return CRAM_OK;
  cram_status r = checkpoint(tr->api, tr->ctx, cfg, st, tr->res, err);
  if (r) return r;
  tr->last_ckpt = st->elapsed;
  notice(tr, 0, "checkpoint written to %s", tr->res->checkpoint);
  return CRAM_OK;
}

/* Why the loop should end before the next update, or -1 to go on. */
static int end_reason(const trainer *tr) {
  const cram_train_state *st = &tr->st;
  if (progress_t(tr) >= 1 || (st->budget > 0 && st->elapsed >= st->budget)) return CRAM_END_DONE;
  if (tr->many ? tr->stop_all : tr->cfg->stop && *tr->cfg->stop) return CRAM_END_INTERRUPTED;
  return -1;
}

static cram_status train_loop(trainer *tr, cram_err *err) {
  const cram_train_config *cfg = tr->cfg;
  cram_train_state *st = &tr->st;
  cram_status r;
  uint64_t first = st->attempts;
  int why;
  while ((why = end_reason(tr)) < 0) {
    double u0 = now_s();
    update_out u;
    r = run_update(tr, &u, err);
    if (tr->many && !u.cut) r = cram_dist_agree(tr->dist, r, NULL, 0, err); /* grad_norm()/update() failures */
    if (!tr->many) st->elapsed = elapsed_now(tr);                           /* else rank 0's, agreed in run_update */
    if (u.cut) {
      tr->res->end = cfg->stop && *cfg->stop ? CRAM_END_INTERRUPTED : CRAM_END_DONE;
      if (r == CRAM_OK && tr->res->end == CRAM_END_DONE)
        notice(tr, 1, "budget of %.3g s reached mid-update: its %" PRIu64 " microbatch(es) were discarded", st->budget, u.done);
      return r;
    }
    if (r) return r;
    if (st->attempts == first + 1) warn_speed(tr, &u, now_s() - u0);
    tr->res->last_loss = u.loss;
    if (cfg->eval_every && !u.bad && st->step % cfg->eval_every == 0) {
      if ((r = eval_train(tr, &u.eval_loss, &u.eval_accuracy, err))) return r;
      tr->res->last_eval = u.eval_loss;
      tr->res->last_eval_accuracy = u.eval_accuracy;
    }
    r = log_update(tr, &u, err);
    int end = -1;
    if (cfg->max_bad && st->bad_run >= cfg->max_bad) end = CRAM_END_NONFINITE;
    else if (cfg->stop_at && st->step >= cfg->stop_at && !u.bad) end = CRAM_END_STOP_AT;
    if (r == CRAM_OK && end < 0) r = maybe_checkpoint(tr, &u, err);
    /* rank 0's metrics or checkpoint failing stops everyone */
    if ((r = cram_dist_agree(tr->dist, r, NULL, 0, err))) return r;
    if (end >= 0) {
      tr->res->end = (cram_train_end)end;
      return CRAM_OK;
    }
  }
  tr->res->end = (cram_train_end)why;
  return CRAM_OK;
}

static uint64_t fnv(uint64_t h, const void *p, size_t n) {
  const unsigned char *c = p;
  for (size_t i = 0; i < n; i++) h = (h ^ c[i]) * 0x100000001b3ull;
  return h;
}
static uint64_t fnv_str(uint64_t h, const char *s) { return fnv(h, s ? s : "", s ? strlen(s) + 1 : 1); }

/* Ranks that loaded different artifacts, read different shards or were given
 * different recipes would average gradients of different things: refused. */
static cram_status same_job(const trainer *tr, cram_err *err) {
  if (!tr->many) return CRAM_OK;
  const cram_step_meta *m = tr->api->meta;
  const cram_train_state *st = &tr->st;
  const cram_train_config *c = tr->cfg;
  uint64_t v[3] = { 0xcbf29ce484222325ull, 0xcbf29ce484222325ull, 0xcbf29ce484222325ull };
  v[0] = fnv_str(fnv_str(fnv_str(fnv_str(fnv_str(v[0], m->source_hash), m->model), m->target), m->precision), m->cramc_version);
  v[0] = fnv(v[0], &m->nparam_elems, sizeof m->nparam_elems);
  uint64_t d[3] = { tr->d.tokenizer_hash, cram_ckpt_data_id(&tr->d), tr->d.seq_count };
  v[1] = fnv(v[1], d, sizeof d);
  double x[14] = { (double)st->step,  (double)st->seq_pos, (double)st->runs,   (double)st->seed,  st->shuffle,
                   (double)st->steps, st->budget_flops,    st->budget,         (double)st->batch, st->ramp,
                   st->peak_lr,       st->warmup,          (double)st->mask_n, st->max_norm };
  double y[13] = { (double)st->budget_tokens,
                   st->lr_shape,
                   st->beta1,
                   st->beta2,
                   st->eps,
                   st->weight_decay,
                   st->weight_decay_other,
                   (double)c->stop_at,
                   (double)c->eval_every,
                   (double)c->ckpt_every_steps,
                   c->ckpt_every_s,
                   c->max_bad,
                   (double)c->eval_seqs };
  v[2] = fnv(fnv(v[2], x, sizeof x), y, sizeof y);
  static const char *what[] = { "the step artifact (model, source hash, cramc version)", "the training data (shards of --data)",
                                "the run's settings or checkpoint" };
  int i = cram_dist_differs(tr->dist, v, 3);
  if (i < 0) return CRAM_OK;
  return cram_err_set(err, CRAM_E_ARG,
                      "the %d ranks disagree on %s: every rank must be started with the same "
                      "files and options",
                      tr->dist->size, what[i]);
}

cram_status cram_train_run(const cram_step_api *api, const cram_train_config *cfg, cram_train_result *res, cram_err *err) {
  memset(res, 0, sizeof *res);
  res->last_eval = res->last_eval_accuracy = NAN;
  trainer tr;
  memset(&tr, 0, sizeof tr);
  tr.api = api, tr.cfg = cfg, tr.res = res, tr.st = cfg->recipe;
  tr.solo.size = 1;
  tr.dist = cfg->dist ? cfg->dist : &tr.solo;
  tr.many = tr.dist->size > 1;
  cram_status r;
  if ((r = open_run(&tr, err)) == CRAM_OK) {
    pick_batch(&tr);
    if ((r = check_run(&tr, err)) == CRAM_OK &&
        (r = mask_setup(api->meta, &tr.d, &tr.b, tr.st.mask_n, cfg->mask_rate, cfg->mask_rate_set && !cfg->resume, tr.st.seed,
                        &tr.mlm, err)) == CRAM_OK &&
        (r = open_heldout(&tr, err)) == CRAM_OK) {
      tr.st.mask_n = tr.mlm.n;
      if (tr.dist->rank == 0 && !(tr.mf = metrics_open(tr.metrics, cfg->resume, tr.st.attempts, err)))
        r = err ? err->status : CRAM_E_IO;
    }
  }
  /* every rank set up, with the same artifact, data and run, or none goes on */
  if ((r = cram_dist_agree(tr.dist, r, NULL, 0, err)) || (r = same_job(&tr, err))) goto out;
  tr.mfu_ok =
    api->meta->target && strcmp(api->meta->target, "cuda") == 0 && api->meta->flops_per_token > 0 && cfg->peak_flops > 0;
  tr.t0 = now_s(), tr.base = tr.last_ckpt = tr.st.elapsed;
  r = train_loop(&tr, err);
  if (r == CRAM_OK || r == CRAM_E_TOKEN_RANGE) {
    /* a data error keeps the work done so far: the checkpoint covers every whole update */
    cram_err ce = { 0 };
    cram_status c = checkpoint(api, tr.ctx, cfg, &tr.st, res, r ? &ce : err);
    c = cram_dist_agree(tr.dist, c, NULL, 0, r ? &ce : err);
    if (r && c == CRAM_OK && err) {
      char msg[CRAM_ERR_MAX];
      snprintf(msg, sizeof msg, "%s", err->msg);
      cram_err_set(err, r, "%.900s (checkpoint of step %" PRIu64 " written: %s)", msg, tr.st.step, res->checkpoint);
    }
    if (!r) r = c;
  }
  if (r == CRAM_OK && res->end == CRAM_END_INTERRUPTED)
    cram_err_set(err, CRAM_E_INTERRUPTED, "interrupted at step %" PRIu64 "%s; checkpoint %s (continue with --resume %s)",
                 tr.st.step, res->discarded ? " (the partial update after it was discarded)" : "", res->checkpoint, cfg->run_dir);
  else if (r == CRAM_OK && res->end == CRAM_END_NONFINITE)
    cram_err_set(err, CRAM_E_ARG,
                 "%u non-finite losses/gradient norms in a row (%" PRIu64 " skipped in all); stopped at step %" PRIu64
                 " with checkpoint %s (lower the learning rate or check the data)",
                 cfg->max_bad, tr.st.skipped, tr.st.step, res->checkpoint);
out:
  res->state = tr.st;
  if (tr.mf) fclose(tr.mf);
  if (tr.ctx) api->destroy(tr.ctx);
  unbind(&tr.b);
  cram_dataset_close(&tr.d);
  cram_dataset_close(&tr.held);
  return r;
}

/* ---- eval --------------------------------------------------------------------- */

cram_status cram_eval_run(const cram_step_api *api, const char *data_dir, const char *split, const char *ckpt_path, uint64_t seed,
                          double mask_rate, int mask_rate_set, uint64_t max_seqs, int device, cram_eval_result *res,
                          cram_err *err) {
  memset(res, 0, sizeof *res);
  cram_dataset d;
  cram_status r = cram_dataset_open(&d, data_dir, split, NULL, 0, err);
  if (r != CRAM_OK) return r;
  binding b;
  cram_ctx *ctx = NULL;
  cram_mlm mlm;
  cram_train_state st;
  memset(&st, 0, sizeof st);
  memset(&b, 0, sizeof b);
  char path[1024];
  struct stat sb;
  if ((r = bind(api, &d, &b, err))) goto out;
  if ((r = create_ctx(api, device, 0, 0, &ctx, err))) goto out;
  if (ckpt_path) {
    /* a run directory stands for its checkpoint, as `cram export` takes it */
    if (stat(ckpt_path, &sb) == 0 && S_ISDIR(sb.st_mode)) snprintf(path, sizeof path, "%s/%s", ckpt_path, CRAM_CKPT_FILE);
    else snprintf(path, sizeof path, "%s", ckpt_path);
    if ((r = cram_ckpt_load(path, api, ctx, &st, err))) goto out;
  } else {
    cram_step_rc rc = api->init_params(ctx, seed);
    if (rc != CRAM_STEP_OK) {
      r = step_err(api, ctx, "init_params", rc, err);
      goto out;
    }
  }
  if ((r = mask_setup(api->meta, &d, &b, st.mask_n, mask_rate, mask_rate_set && !ckpt_path, seed, &mlm, err))) goto out;
  uint64_t want = d.seq_count;
  if (max_seqs && max_seqs < want) want = max_seqs;
  uint64_t n = want / b.mbs * b.mbs;
  if (n == 0) {
    r =
      max_seqs && max_seqs < d.seq_count
        ? cram_err_set(err, CRAM_E_ARG, "--max-seqs %" PRIu64 " is less than one microbatch of the model (%" PRIu64 " sequences)",
                       max_seqs, b.mbs)
        : cram_err_set(err, CRAM_E_DATASET, "%s: fewer %s sequences (%" PRIu64 ") than one microbatch (%" PRIu64 ")", data_dir,
                       split, d.seq_count, b.mbs);
    goto out;
  }
  double v[3];
  if ((r = eval_loss(api, ctx, &d, &mlm, &b, n, seed, 0, 1, v, NULL, err))) goto out;
  res->loss = v[0] / (double)(n / b.mbs);
  res->accuracy = accuracy_of(api, v);
  res->nseqs = n;
  res->left_out = want - n;
  res->mbs = b.mbs;
out:
  if (ctx) api->destroy(ctx);
  unbind(&b);
  cram_dataset_close(&d);
  return r;
}
