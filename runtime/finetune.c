/* finetune.c - the finetuning loop of `cram finetune` (finetune.h). */
#include "finetune.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ckpt.h"
#include "export.h"
#include "loader.h"
#include "metrics.h"
#include "safetensors.h"
#include "wordpiece.h"

#define FT_IGNORE (-100) /* cross_entropy's ignore label: padding rows of a partial batch */
#define PHI       0x9e3779b97f4a7c15ull

void cram_ft_config_default(cram_ft_config *c) {
  memset(c, 0, sizeof *c);
  c->head = "pooler.,classifier.";
  c->lr = 4e-5, c->warmup = 0.1;
  c->beta1 = 0.9, c->beta2 = 0.98, c->eps = 1e-6, c->weight_decay = 0.0, c->max_norm = 0.0;
  c->epochs = 5;
  c->dropout = 1;
}

double cram_ft_lr(double peak, double warmup, uint64_t total, uint64_t k) {
  uint64_t w = (uint64_t)(warmup * (double)total), s = k ? k - 1 : 0;
  if (s < w) return peak * (double)s / (double)(w ? w : 1);
  double progress = (double)(s - w) / (double)(total > w ? total - w : 1);
  double f = 0.5 * (1.0 + cos(3.14159265358979323846 * progress));
  return peak * (f > 0 ? f : 0);
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static uint64_t splitmix(uint64_t *s) {
  uint64_t z = (*s += PHI);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/* The order of epoch e: a Fisher-Yates shuffle seeded by (seed, e), so a
 * resumed run recomputes it. */
static void epoch_order(uint32_t *ord, size_t n, uint64_t seed, uint32_t e) {
  uint64_t s = seed * 0xd1b54a32d192ed03ull + e + 1;
  for (size_t i = 0; i < n; i++) ord[i] = (uint32_t)i;
  for (size_t i = n; i > 1; i--) {
    size_t j = (size_t)(splitmix(&s) % i);
    uint32_t t = ord[i - 1];
    ord[i - 1] = ord[j], ord[j] = t;
  }
}

/* ---- loading the pretrained encoder --------------------------------------------------- */

static int has_prefix_in(const char *name, const char *list) {
  for (const char *p = list; p && *p;) {
    size_t n = strcspn(p, ",");
    if (n && strncmp(name, p, n) == 0) return 1;
    p += n + (p[n] == ',');
  }
  return 0;
}

static void shape_str(char *b, size_t n, int rank, const int64_t *shape) {
  size_t k = (size_t)snprintf(b, n, "[");
  for (int d = 0; d < rank && k < n; d++) k += (size_t)snprintf(b + k, n - k, "%s%" PRId64, d ? "," : "", shape[d]);
  if (k < n) snprintf(b + k, n - k, "]");
}

cram_status cram_ft_load_init(const cram_step_api *api, cram_ctx *ctx, const char *path, const char *head, FILE *log,
                              cram_err *err) {
  char file[4096];
  struct stat sb;
  if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) snprintf(file, sizeof file, "%s/%s", path, CRAM_CKPT_FILE);
  else snprintf(file, sizeof file, "%s", path);
  cram_st_file f;
  cram_status r = cram_st_read(file, &f, err);
  if (r != CRAM_OK) return r;
  const cram_step_meta *m = api->meta;
  uint32_t copied = 0, fresh = 0;
  int64_t values = 0;
  float *buf = NULL;
  for (uint32_t i = 0; i < m->nparams && r == CRAM_OK; i++) {
    const cram_tensor_info *p = &m->params[i];
    char key[512], ref[512];
    snprintf(key, sizeof key, "param.%s", p->name);
    const cram_st_tensor *t = cram_st_find(&f, key);
    if (!t) t = cram_st_find(&f, p->name);
    if (!t && cram_export_name(p->name, ref, sizeof ref)) t = cram_st_find(&f, ref);
    char want[128], have[128];
    shape_str(want, sizeof want, (int)p->rank, p->shape);
    if (!t) {
      if (has_prefix_in(p->name, head)) {
        fresh++;
        continue;
      }
      r = cram_err_set(err, CRAM_E_DATASET, "%s: no tensor '%s' %s (an encoder tensor of the classifier; only '%s' may be new)",
                       file, p->name, want, head);
      break;
    }
    int same = t->rank == (int)p->rank && t->numel == p->numel;
    for (int d = 0; same && d < t->rank; d++) same = t->shape[d] == p->shape[d];
    if (!same) {
      shape_str(have, sizeof have, t->rank, t->shape);
      r = cram_err_set(err, CRAM_E_DATASET, "%s: tensor '%s' is %s there, the classifier's '%s' is %s", file, t->name, have,
                       p->name, want);
      break;
    }
    float *nb = realloc(buf, (size_t)(p->numel ? p->numel : 1) * sizeof *nb);
    if (!nb) {
      r = cram_err_set(err, CRAM_E_NOMEM, "%s: out of memory", file);
      break;
    }
    buf = nb;
    for (int64_t k = 0; k < p->numel; k++) buf[k] = (float)cram_st_get(t, k);
    if (api->set_param(ctx, i, buf) != CRAM_STEP_OK) {
      r = cram_err_set(err, CRAM_E_IO, "%s: setting '%s' failed: %s", file, p->name, api->last_error(ctx));
      break;
    }
    copied++, values += p->numel;
  }
  if (r == CRAM_OK && copied == 0)
    r = cram_err_set(err, CRAM_E_DATASET, "%s: not one of the classifier's tensors is in it", file);
  if (r == CRAM_OK && log)
    fprintf(log,
            "init: %u tensors (%" PRId64
            " values) from %s, %u new head tensors (their .cram init), %zu tensors of the file unused\n",
            copied, values, file, fresh, f.count - copied);
  free(buf);
  cram_st_free(&f);
  return r;
}

/* ---- the run ---------------------------------------------------------------------------- */

typedef struct ft_run {
  const cram_step_api *api;
  cram_ctx *ctx;
  const cram_ft_config *cfg;
  uint32_t B, S, C;                  /* batch, sequence, classes (1: regression) */
  int regression;                    /* labels f32 + weight input, output `score` */
  int in_tok, in_mask, in_lab, in_w; /* indices in meta->inputs */
  int out_logits;                    /* index in meta->outputs: `logits` or `score` */
  int32_t *tok, *lab;                /* one microbatch */
  float *mask, *logits, *labf, *w;
  const void **inputs;
  cram_glue_encoded train, dev[2];
  uint32_t ndev;
  uint32_t majority; /* most frequent training class */
} ft_run;

static int find_input(const cram_step_meta *m, const char *name, cram_step_dtype dt, int rank) {
  for (uint32_t i = 0; i < m->ninputs; i++)
    if (!strcmp(m->inputs[i].name, name)) return m->inputs[i].dtype == dt && (int)m->inputs[i].rank == rank ? (int)i : -2;
  return -1;
}

/* Fills the microbatch with examples ids[0..n) of e (the rest: padding rows, label ignored). */
static void fill(ft_run *R, const cram_glue_encoded *e, const uint32_t *ids, size_t n) {
  for (uint32_t b = 0; b < R->B; b++) {
    int32_t *t = R->tok + (size_t)b * R->S;
    float *mk = R->mask + (size_t)b * R->S;
    if (b < n) {
      memcpy(t, e->tokens + (size_t)ids[b] * e->seq, R->S * sizeof *t);
      cram_glue_mask(e, ids[b], mk);
      R->lab[b] = (int32_t)e->label[ids[b]];
      R->labf[b] = e->label[ids[b]], R->w[b] = 1.0f / (float)n;
    } else {
      memset(t, 0, R->S * sizeof *t);
      memset(mk, 0, R->S * sizeof *mk);
      R->lab[b] = FT_IGNORE;
      R->labf[b] = 0, R->w[b] = 0;
    }
  }
}

static double pct(double x) { return 100.0 * x; }

static double task_score(const cram_glue_task *t, const cram_ft_eval *e) {
  switch (t->metric) {
  case CRAM_GLUE_MCC: return pct(e->mcc);
  case CRAM_GLUE_F1_ACC: return pct(e->f1);
  case CRAM_GLUE_CORR: return pct(e->spearman);
  default: return pct(e->accuracy);
  }
}

/* Dev evaluation of one file: predict() per batch, argmax, the metrics. */
static cram_status evaluate(ft_run *R, uint32_t d, const char *file, cram_ft_eval *ev, uint64_t *runs, cram_err *err) {
  const cram_glue_encoded *e = &R->dev[d];
  int32_t *pred = malloc((e->n ? e->n : 1) * sizeof *pred), *gold = malloc((e->n ? e->n : 1) * sizeof *gold);
  int32_t *maj = malloc((e->n ? e->n : 1) * sizeof *maj);
  double *sc = malloc((e->n ? e->n : 1) * sizeof *sc), *gs = malloc((e->n ? e->n : 1) * sizeof *gs);
  uint32_t *ids = malloc(R->B * sizeof *ids);
  float **outs = calloc(R->api->meta->noutputs, sizeof *outs);
  cram_status r = CRAM_OK;
  if (!pred || !gold || !maj || !sc || !gs || !ids || !outs) {
    r = cram_err_set(err, CRAM_E_NOMEM, "evaluating: out of memory");
    goto out;
  }
  outs[R->out_logits] = R->logits;
  double loss = 0;
  for (size_t s = 0; s < e->n; s += R->B) {
    size_t n = e->n - s < R->B ? e->n - s : R->B;
    for (size_t b = 0; b < n; b++) ids[b] = (uint32_t)(s + b);
    fill(R, e, ids, n);
    float l;
    ++*runs;
    if (R->api->predict(R->ctx, R->inputs, &l, (float *const *)outs) != CRAM_STEP_OK) {
      r = cram_err_set(err, CRAM_E_IO, "%s: dev evaluation failed: %s", file, R->api->last_error(R->ctx));
      goto out;
    }
    loss += (double)l * (double)n;
    for (size_t b = 0; b < n && R->regression; b++) sc[s + b] = R->logits[b], gs[s + b] = e->label[s + b];
    for (size_t b = 0; b < n && !R->regression; b++) {
      const float *lg = R->logits + b * R->C;
      uint32_t best = 0;
      for (uint32_t c = 1; c < R->C; c++) best = lg[c] > lg[best] ? c : best;
      pred[s + b] = (int32_t)best, gold[s + b] = (int32_t)e->label[s + b], maj[s + b] = (int32_t)R->majority;
    }
  }
  memset(ev, 0, sizeof *ev);
  snprintf(ev->file, sizeof ev->file, "%s", file);
  ev->n = e->n;
  ev->loss = e->n ? loss / (double)e->n : 0;
  ev->accuracy = cram_metric_accuracy(pred, gold, e->n);
  ev->f1 = cram_metric_f1(pred, gold, e->n);
  ev->mcc = cram_metric_mcc(pred, gold, e->n);
  if (R->regression) {
    ev->accuracy = ev->f1 = ev->mcc = 0;
    ev->pearson = cram_metric_pearson(sc, gs, e->n);
    ev->spearman = cram_metric_spearman(sc, gs, e->n);
  }
  ev->score = task_score(R->cfg->task, ev);
  cram_ft_eval mj = *ev;
  mj.pearson = mj.spearman = 0; /* the baseline predicts one value (the training mean): no correlation */
  mj.accuracy = cram_metric_accuracy(maj, gold, e->n);
  mj.f1 = cram_metric_f1(maj, gold, e->n);
  mj.mcc = cram_metric_mcc(maj, gold, e->n);
  ev->majority = task_score(R->cfg->task, &mj);
out:
  free(pred), free(gold), free(maj), free(sc), free(gs), free(ids), free(outs);
  return r;
}

static cram_status load_data(ft_run *R, cram_err *err) {
  const cram_ft_config *c = R->cfg;
  cram_wordpiece *wp = NULL;
  char path[4096];
  struct stat sb;
  if (stat(c->vocab, &sb) == 0 && S_ISDIR(sb.st_mode)) snprintf(path, sizeof path, "%s/vocab.txt", c->vocab);
  else snprintf(path, sizeof path, "%s", c->vocab);
  cram_status r = cram_wordpiece_load(path, &wp, err);
  if (r != CRAM_OK) return r;
  int64_t vocab = 0;
  for (uint32_t i = 0; i < R->api->meta->ndims; i++)
    if (!strcmp(R->api->meta->dims[i].name, "vocab")) vocab = R->api->meta->dims[i].value;
  if (vocab && cram_wordpiece_size(wp) > (uint64_t)vocab) {
    r = cram_err_set(err, CRAM_E_VOCAB, "%s: %u tokens, the model's vocab is %" PRId64 " (pretrained on other data?)", path,
                     cram_wordpiece_size(wp), vocab);
    goto out;
  }
  cram_glue_split s;
  snprintf(path, sizeof path, "%s/train.tsv", c->task_dir);
  if ((r = cram_glue_read(c->task, path, &s, err)) != CRAM_OK) goto out;
  if (c->max_train && s.n > c->max_train) s.n = c->max_train;
  uint32_t cnt[3] = { 0 };
  for (size_t i = 0; i < s.n && c->task->nclasses; i++) cnt[(int)s.ex[i].label]++;
  for (uint32_t k = 1; k < 3; k++) R->majority = cnt[k] > cnt[R->majority] ? k : R->majority;
  r = cram_glue_encode(wp, &s, R->S, &R->train, err);
  cram_glue_split_free(&s);
  for (uint32_t d = 0; d < 2 && c->task->dev[d] && r == CRAM_OK; d++) {
    snprintf(path, sizeof path, "%s/%s", c->task_dir, c->task->dev[d]);
    if ((r = cram_glue_read(c->task, path, &s, err)) != CRAM_OK) break;
    r = cram_glue_encode(wp, &s, R->S, &R->dev[d], err);
    cram_glue_split_free(&s);
    R->ndev = d + 1;
  }
out:
  cram_wordpiece_free(wp);
  return r;
}

static cram_status check_step(ft_run *R, cram_err *err) {
  const cram_step_meta *m = R->api->meta;
  R->regression = R->cfg->task->nclasses == 0;
  const char *out = R->regression ? "score" : "logits";
  R->in_tok = find_input(m, "tokens", CRAM_DT_I32, 2);
  R->in_mask = find_input(m, "mask", CRAM_DT_F32, 2);
  R->in_lab = find_input(m, "labels", R->regression ? CRAM_DT_F32 : CRAM_DT_I32, 1);
  R->in_w = R->regression ? find_input(m, "weight", CRAM_DT_F32, 1) : -1;
  R->out_logits = -1;
  for (uint32_t k = 0; k < m->noutputs; k++)
    if (!strcmp(m->outputs[k].name, out) && m->outputs[k].rank == (R->regression ? 1u : 2u)) R->out_logits = (int)k;
  if (R->in_tok < 0 || R->in_mask < 0 || R->in_lab < 0 || R->out_logits < 0 || m->ninputs != 3u + (unsigned)R->regression ||
      (R->regression && R->in_w < 0))
    return cram_err_set(err, CRAM_E_ARG,
                        R->regression
                          ? "%s: not a regression step for %s (needs inputs tokens i32[B,S], mask f32[B,S], labels f32[B], "
                            "weight f32[B] and `output score` f32[B], as models/ablations/finetune_regression.cram)"
                          : "%s: not a classifier step for %s (needs inputs tokens i32[B,S], mask f32[B,S], labels i32[B] "
                            "and `output logits` f32[B,C], as models/ablations/finetune_classifier.cram)",
                        m->model, R->cfg->task->name);
  R->B = (uint32_t)m->inputs[R->in_tok].shape[0];
  R->S = (uint32_t)m->inputs[R->in_tok].shape[1];
  R->C = R->regression ? 1 : (uint32_t)m->outputs[R->out_logits].shape[1];
  if (m->inputs[R->in_mask].shape[0] != R->B || m->inputs[R->in_mask].shape[1] != R->S || m->inputs[R->in_lab].shape[0] != R->B ||
      m->outputs[R->out_logits].shape[0] != R->B || (R->regression && m->inputs[R->in_w].shape[0] != R->B))
    return cram_err_set(err, CRAM_E_ARG, "%s: the inputs and the output disagree on the batch or sequence size", m->model);
  int want = R->cfg->task->nclasses;
  if (!R->regression && (int)R->C != want)
    return cram_err_set(err, CRAM_E_ARG, "%s: the classifier has %u classes, %s has %d (compile it with -D classes=%d)", m->model,
                        R->C, R->cfg->task->name, want, want);
  return CRAM_OK;
}

/* Keeps the lines of metrics.jsonl up to update `step` (a resumed run
 * rewrites what came after its checkpoint), and sums the losses of the
 * updates after `epoch_start` (the resumed epoch's mean includes them). */
static cram_status trim_metrics(const char *path, uint64_t step, uint64_t epoch_start, double *sum, uint64_t *n, cram_err *err) {
  FILE *f = fopen(path, "rb");
  if (!f) return CRAM_OK;
  char *keep = NULL;
  size_t klen = 0;
  FILE *mem = open_memstream(&keep, &klen);
  char *line = NULL;
  size_t cap = 0;
  while (mem && getline(&line, &cap, f) > 0) {
    const char *s = strstr(line, "\"step\":");
    uint64_t k = s ? strtoull(s + 7, NULL, 10) : 0;
    if (k > step) break;
    const char *l = strstr(line, "\"loss\":");
    if (k > epoch_start && l && !strstr(line, "\"dev\"")) *sum += strtod(l + 7, NULL), ++*n;
    fputs(line, mem);
  }
  free(line);
  fclose(f);
  if (!mem) return cram_err_set(err, CRAM_E_NOMEM, "%s: out of memory", path);
  fclose(mem);
  f = fopen(path, "wb");
  cram_status r = CRAM_OK;
  if (!f || fwrite(keep, 1, klen, f) != klen) r = cram_err_set(err, CRAM_E_IO, "%s: %s", path, strerror(errno));
  if (f && fclose(f) && r == CRAM_OK) r = cram_err_set(err, CRAM_E_IO, "%s: %s", path, strerror(errno));
  free(keep);
  return r;
}

/* The GLUE recipe's AdamW and clip (cram_ft_config), passed per update
 * (step ABI v2); norm weights and biases skip weight decay as in pretraining. */
static cram_update_args update_args(const cram_ft_config *c, double lr, uint64_t step) {
  return (cram_update_args){ .lr = (float)lr,
                             .step = (int64_t)step,
                             .beta1 = c->beta1,
                             .beta2 = c->beta2,
                             .eps = c->eps,
                             .weight_decay = c->weight_decay,
                             .weight_decay_other = 0.0,
                             .max_norm = c->max_norm };
}

cram_status cram_finetune(const cram_step_api *api, const cram_ft_config *cfg, cram_ft_result *res, cram_err *err) {
  ft_run R = { .api = api, .cfg = cfg };
  memset(res, 0, sizeof *res);
  uint32_t *ord = NULL;
  FILE *jl = NULL;
  cram_status r = check_step(&R, err);
  if (r != CRAM_OK) return r;
  if ((r = load_data(&R, err)) != CRAM_OK) goto out;
  const cram_step_meta *m = api->meta;
  R.tok = calloc((size_t)R.B * R.S, sizeof *R.tok);
  R.mask = calloc((size_t)R.B * R.S, sizeof *R.mask);
  R.lab = calloc(R.B, sizeof *R.lab);
  R.labf = calloc(R.B, sizeof *R.labf);
  R.w = calloc(R.B, sizeof *R.w);
  R.logits = calloc((size_t)m->outputs[R.out_logits].numel, sizeof *R.logits);
  R.inputs = calloc(m->ninputs, sizeof *R.inputs);
  ord = malloc((R.train.n ? R.train.n : 1) * sizeof *ord);
  if (!R.tok || !R.mask || !R.lab || !R.labf || !R.w || !R.logits || !R.inputs || !ord) {
    r = cram_err_set(err, CRAM_E_NOMEM, "out of memory");
    goto out;
  }
  R.inputs[R.in_tok] = R.tok, R.inputs[R.in_mask] = R.mask;
  R.inputs[R.in_lab] = R.regression ? (const void *)R.labf : (const void *)R.lab;
  if (R.regression) R.inputs[R.in_w] = R.w;

  uint64_t spe = (R.train.n + R.B - 1) / R.B, total = spe * cfg->epochs, dev_runs = 0;
  for (uint32_t d = 0; d < R.ndev; d++) dev_runs += (R.dev[d].n + R.B - 1) / R.B;
  cram_train_state st = { .seed = cfg->seed,
                          .shuffle = 1,
                          .steps = total,
                          .batch = R.B,
                          .peak_lr = cfg->lr,
                          .beta1 = cfg->beta1,
                          .beta2 = cfg->beta2,
                          .eps = cfg->eps,
                          .weight_decay = cfg->weight_decay,
                          .max_norm = cfg->max_norm };
  char ckpt[4096] = "", metrics[4096] = "";
  if (cfg->out_dir) {
    if (mkdir(cfg->out_dir, 0777) != 0 && errno != EEXIST) {
      r = cram_err_set(err, CRAM_E_IO, "%s: %s", cfg->out_dir, strerror(errno));
      goto out;
    }
    snprintf(ckpt, sizeof ckpt, "%s/%s", cfg->out_dir, CRAM_CKPT_FILE);
    snprintf(metrics, sizeof metrics, "%s/metrics.jsonl", cfg->out_dir);
  }
  int resuming = cfg->resume && *ckpt && access(ckpt, R_OK) == 0;
  if (cfg->resume && !resuming) {
    r = cram_err_set(err, CRAM_E_IO, "--resume: no %s to resume from", *ckpt ? ckpt : "run directory (--out)");
    goto out;
  }
  if (!cfg->resume && *ckpt && access(ckpt, F_OK) == 0) {
    r = cram_err_set(err, CRAM_E_ARG, "%s holds a checkpoint: --resume it or choose another --out", cfg->out_dir);
    goto out;
  }
  /* Every graph run draws its dropout masks from dropout_seed + runs * PHI
     * (docs/abi.md); a resumed context starts its count where the run stopped. */
  uint64_t runs = 0, epoch_n = 0;
  double epoch_loss = 0;
  if (resuming) {
    cram_train_state saved;
    if ((r = cram_ckpt_read_state(ckpt, m, &saved, err)) != CRAM_OK) goto out;
    if (saved.seed != st.seed || saved.steps != st.steps || saved.batch != st.batch || saved.peak_lr != st.peak_lr) {
      r = cram_err_set(err, CRAM_E_ARG,
                       "%s: written with another recipe (seed/updates/batch/lr differ); resume with the same flags", ckpt);
      goto out;
    }
    runs = saved.attempts + saved.step + (saved.attempts / spe) * dev_runs;
  }
  cram_create_opts co = { .device = cfg->device,
                          .training = cfg->dropout,
                          .dropout_seed = CRAM_STEP_RUN_SEED(cfg->seed * PHI + 1, runs) };
  cram_step_opts_from_env(&co);
  char cerr[512] = "";
  if (api->create(&co, &R.ctx, cerr, sizeof cerr) != CRAM_STEP_OK) {
    r = cram_err_set(err, CRAM_E_IO, "%s", cerr);
    goto out;
  }
  if (api->init_params(R.ctx, cfg->seed) != CRAM_STEP_OK) {
    r = cram_err_set(err, CRAM_E_IO, "init: %s", api->last_error(R.ctx));
    goto out;
  }
  if (resuming) {
    if ((r = cram_ckpt_load(ckpt, api, R.ctx, &st, err)) != CRAM_OK) goto out;
    if ((r = trim_metrics(metrics, st.attempts, st.attempts / spe * spe, &epoch_loss, &epoch_n, err)) != CRAM_OK) goto out;
    if (cfg->log) fprintf(cfg->log, "resuming %s at update %" PRIu64 "\n", ckpt, st.step);
  } else if (cfg->init && (r = cram_ft_load_init(api, R.ctx, cfg->init, cfg->head, cfg->log, err)) != CRAM_OK) {
    goto out;
  }
  if (*metrics && !(jl = fopen(metrics, resuming ? "ab" : "wb"))) {
    r = cram_err_set(err, CRAM_E_IO, "%s: %s", metrics, strerror(errno));
    goto out;
  }
  if (cfg->log)
    fprintf(cfg->log,
            "%s: %zu train / %zu dev examples (%" PRIu64 " truncated to %u tokens), %" PRIu64 " updates of %u (%u epochs)\n",
            cfg->task->name, R.train.n, R.dev[0].n + R.dev[1].n, R.train.truncated, R.S, total, R.B, cfg->epochs);

  double t0 = now(), last_print = 0;
  int ordered = 0;
  while (st.attempts < total && !(cfg->max_steps && st.attempts >= cfg->max_steps)) {
    uint32_t e = (uint32_t)(st.attempts / spe);
    uint64_t b = st.attempts % spe;
    if (b == 0 || !ordered) epoch_order(ord, R.train.n, cfg->seed, e), ordered = 1;
    size_t first = (size_t)b * R.B, n = R.train.n - first < R.B ? R.train.n - first : R.B;
    fill(&R, &R.train, ord + first, n);
    float loss = NAN, gn = NAN;
    runs++;
    cram_step_rc rc = api->step(R.ctx, R.inputs, 1.0f, &loss);
    if (rc != CRAM_STEP_OK) {
      r = cram_err_set(err, CRAM_E_IO, "update %" PRIu64 ": %s", st.attempts + 1, api->last_error(R.ctx));
      goto out;
    }
    st.attempts++;
    double lr = cram_ft_lr(cfg->lr, cfg->warmup, total, st.attempts);
    if (api->grad_norm(R.ctx, &gn) == CRAM_STEP_OK && isfinite(gn) && isfinite(loss)) {
      cram_update_args ua = update_args(cfg, lr, st.step + 1);
      runs++;
      if (api->update(R.ctx, &ua, &gn) != CRAM_STEP_OK) {
        r = cram_err_set(err, CRAM_E_IO, "update %" PRIu64 ": %s", st.attempts, api->last_error(R.ctx));
        goto out;
      }
      st.step++;
    } else {
      api->zero_grad(R.ctx);
      st.skipped++;
    }
    st.seq_pos += n;
    epoch_loss += loss, epoch_n++;
    st.elapsed += now() - t0, t0 = now();
    if (jl)
      fprintf(jl, "{\"step\":%" PRIu64 ",\"epoch\":%u,\"loss\":%.9g,\"lr\":%.9g,\"grad_norm\":%.9g}\n", st.attempts, e + 1, loss,
              lr, gn);
    int epoch_end = st.attempts % spe == 0;
    if (cfg->log && (epoch_end || st.elapsed - last_print >= 10)) {
      last_print = st.elapsed;
      fprintf(cfg->log, "epoch %u/%u  update %" PRIu64 "/%" PRIu64 "  loss %.4f  lr %.3g  %.1f ex/s\n", e + 1, cfg->epochs,
              st.attempts, total, loss, lr, (double)st.seq_pos / (st.elapsed > 0 ? st.elapsed : 1));
    }
    if (epoch_end) {
      res->train_loss = epoch_loss / (double)epoch_n;
      epoch_loss = 0, epoch_n = 0;
      for (uint32_t d = 0; d < R.ndev; d++)
        if ((r = evaluate(&R, d, cfg->task->dev[d], &res->dev[d], &runs, err)) != CRAM_OK) goto out;
      res->ndev = R.ndev;
      res->epochs = e + 1;
      for (uint32_t d = 0; cfg->log && d < R.ndev; d++) {
        if (R.regression)
          fprintf(cfg->log, "epoch %u  dev %s: loss %.4f  Pearson %.2f  Spearman %.2f  -> %.2f\n", e + 1, res->dev[d].file,
                  res->dev[d].loss, pct(res->dev[d].pearson), pct(res->dev[d].spearman), res->dev[d].score);
        else
          fprintf(cfg->log, "epoch %u  dev %s: loss %.4f  accuracy %.2f  F1 %.2f  MCC %.2f  -> %.2f (majority %.2f)\n", e + 1,
                  res->dev[d].file, res->dev[d].loss, pct(res->dev[d].accuracy), pct(res->dev[d].f1), pct(res->dev[d].mcc),
                  res->dev[d].score, res->dev[d].majority);
      }
      if (jl) {
        fprintf(jl, "{\"step\":%" PRIu64 ",\"epoch\":%u,\"train_loss\":%.6g,\"dev\":[", st.attempts, e + 1, res->train_loss);
        for (uint32_t d = 0; d < R.ndev; d++)
          fprintf(jl,
                  "%s{\"file\":\"%s\",\"n\":%" PRIu64 ",\"loss\":%.6g,\"accuracy\":%.6g,\"f1\":%.6g,\"mcc\":%.6g,"
                  "\"pearson\":%.6g,\"spearman\":%.6g,\"score\":%.6g,\"majority\":%.6g}",
                  d ? "," : "", res->dev[d].file, res->dev[d].n, res->dev[d].loss, res->dev[d].accuracy, res->dev[d].f1,
                  res->dev[d].mcc, res->dev[d].pearson, res->dev[d].spearman, res->dev[d].score, res->dev[d].majority);
        fputs("]}\n", jl);
      }
    }
    int stop = st.attempts == total || (cfg->max_steps && st.attempts >= cfg->max_steps);
    if (*ckpt && (epoch_end || stop || (cfg->ckpt_every && st.attempts % cfg->ckpt_every == 0))) {
      if (jl) fflush(jl);
      if ((r = cram_ckpt_save(ckpt, api, R.ctx, &st, err)) != CRAM_OK) goto out;
    }
  }
  res->steps = st.step;
out:
  if (jl && fclose(jl) && r == CRAM_OK) r = cram_err_set(err, CRAM_E_IO, "%s: %s", metrics, strerror(errno));
  if (R.ctx) api->destroy(R.ctx);
  cram_glue_encoded_free(&R.train);
  for (uint32_t d = 0; d < 2; d++) cram_glue_encoded_free(&R.dev[d]);
  free(R.tok), free(R.mask), free(R.lab), free(R.labf), free(R.w), free(R.logits), free(R.inputs), free(ord);
  return r;
}
