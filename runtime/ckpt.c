/* ckpt.c - checkpoints in safetensors; see ckpt.h. */
#include "ckpt.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "checksum.h"
#include "safetensors.h"
#include "shard.h"

enum { NMETA = 40 };

typedef struct kv {
  char key[32];
  char val[1024];
} kv;

static void put(kv *m, size_t *n, const char *k, const char *fmt, ...)
#if defined(__GNUC__)
  __attribute__((format(printf, 4, 5)))
#endif
  ;

static void put(kv *m, size_t *n, const char *k, const char *fmt, ...) {
  snprintf(m[*n].key, sizeof m[*n].key, "%s", k);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(m[*n].val, sizeof m[*n].val, fmt, ap);
  va_end(ap);
  (*n)++;
}

static char *dir_of(const char *path) {
  const char *s = strrchr(path, '/');
  if (!s) return strdup(".");
  if (s == path) return strdup("/");
  char *d = malloc((size_t)(s - path) + 1);
  if (d) {
    memcpy(d, path, (size_t)(s - path));
    d[s - path] = 0;
  }
  return d;
}

/* Removes "<path>.tmp.<pid>" files of writers that no longer run: what a
 * kill -9 in the middle of cram_st_write leaves (the checkpoint itself is
 * intact: the rename never happened). A live process's file is left alone. */
static void remove_stale_tmp(const char *path) {
  char *dir = dir_of(path);
  const char *slash = strrchr(path, '/');
  const char *base = slash ? slash + 1 : path;
  size_t nb = strlen(base);
  DIR *dh = dir ? opendir(dir) : NULL;
  struct dirent *de;
  while (dh && (de = readdir(dh)) != NULL) {
    const char *n = de->d_name;
    if (strncmp(n, base, nb) != 0 || strncmp(n + nb, ".tmp.", 5) != 0) continue;
    const char *digits = n + nb + 5;
    char *end;
    errno = 0;
    long pid = strtol(digits, &end, 10);
    if (errno || end == digits || *end || pid <= 0 || pid == (long)getpid()) continue;
    if (kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue; /* its writer may still be running */
    size_t len = strlen(dir) + strlen(n) + 2;
    char *p = malloc(len);
    if (p) {
      snprintf(p, len, "%s/%s", dir, n);
      unlink(p);
      free(p);
    }
  }
  if (dh) closedir(dh);
  free(dir);
}

cram_status cram_ckpt_save(const char *path, const cram_step_api *api, cram_ctx *ctx, const cram_train_state *st, cram_err *err) {
  remove_stale_tmp(path);
  const cram_step_meta *me = api->meta;
  size_t nt = (size_t)me->nparams * 3;
  cram_st_tensor *ts = calloc(nt ? nt : 1, sizeof *ts);
  float *buf = malloc((size_t)(me->nparam_elems ? me->nparam_elems : 1) * 3 * sizeof(float));
  char **names = calloc(nt ? nt : 1, sizeof *names);
  cram_status r = CRAM_OK;
  if (!ts || !buf || !names) {
    r = cram_err_set(err, CRAM_E_NOMEM, "%s: out of memory for the checkpoint", path);
    goto out;
  }
  int64_t off = 0;
  for (uint32_t i = 0; i < me->nparams; i++) {
    const cram_tensor_info *p = &me->params[i];
    float *pv = buf + off, *mv = buf + me->nparam_elems + off, *vv = buf + 2 * me->nparam_elems + off;
    cram_step_rc rc = api->get_param(ctx, i, pv);
    if (rc == CRAM_STEP_OK) rc = api->get_moments(ctx, i, mv, vv);
    if (rc != CRAM_STEP_OK) {
      r = cram_err_set(err, CRAM_E_IO, "%s: reading parameter %s from the step failed: %s", path, p->name, api->last_error(ctx));
      goto out;
    }
    const char *pre[3] = { "param.", "adam_m.", "adam_v." };
    float *data[3] = { pv, mv, vv };
    for (int k = 0; k < 3; k++) {
      cram_st_tensor *t = &ts[i * 3 + (uint32_t)k];
      size_t len = strlen(pre[k]) + strlen(p->name) + 1;
      names[i * 3 + (uint32_t)k] = t->name = malloc(len);
      if (!t->name) {
        r = cram_err_set(err, CRAM_E_NOMEM, "%s: out of memory", path);
        goto out;
      }
      snprintf(t->name, len, "%s%s", pre[k], p->name);
      t->dtype = CRAM_ST_F32;
      t->rank = (int)p->rank;
      for (uint32_t d = 0; d < p->rank; d++) t->shape[d] = p->shape[d];
      t->data = (const unsigned char *)data[k];
    }
    off += p->numel;
  }
  kv m[NMETA];
  size_t nm = 0;
  put(m, &nm, "format", "%s", CRAM_CKPT_FORMAT);
  put(m, &nm, "model", "%s", me->model ? me->model : "");
  put(m, &nm, "source_hash", "%s", me->source_hash ? me->source_hash : "");
  put(m, &nm, "step", "%" PRIu64, st->step);
  put(m, &nm, "attempts", "%" PRIu64, st->attempts);
  put(m, &nm, "seq_pos", "%" PRIu64, st->seq_pos);
  put(m, &nm, "tokens", "%" PRIu64, st->tokens);
  put(m, &nm, "skipped", "%" PRIu64, st->skipped);
  put(m, &nm, "bad_run", "%" PRIu64, st->bad_run);
  put(m, &nm, "runs", "%" PRIu64, st->runs);
  put(m, &nm, "elapsed", "%.17g", st->elapsed);
  put(m, &nm, "seed", "%" PRIu64, st->seed);
  put(m, &nm, "shuffle", "%d", st->shuffle);
  put(m, &nm, "steps", "%" PRIu64, st->steps);
  put(m, &nm, "budget", "%.17g", st->budget);
  put(m, &nm, "batch", "%" PRIu64, st->batch);
  put(m, &nm, "ramp", "%.17g", st->ramp);
  put(m, &nm, "peak_lr", "%.17g", st->peak_lr);
  put(m, &nm, "mask_n", "%" PRIu32, st->mask_n);
  put(m, &nm, "budget_tokens", "%" PRIu64, st->budget_tokens);
  put(m, &nm, "budget_flops", "%.17g", st->budget_flops);
  put(m, &nm, "lr_shape", "%d", st->lr_shape);
  put(m, &nm, "warmup", "%.17g", st->warmup);
  put(m, &nm, "beta1", "%.17g", st->beta1);
  put(m, &nm, "beta2", "%.17g", st->beta2);
  put(m, &nm, "eps", "%.17g", st->eps);
  put(m, &nm, "weight_decay", "%.17g", st->weight_decay);
  put(m, &nm, "weight_decay_other", "%.17g", st->weight_decay_other);
  put(m, &nm, "max_norm", "%.17g", st->max_norm);
  if (st->data_known) {
    put(m, &nm, "data_tokenizer", "%016" PRIx64, st->data_tokenizer);
    put(m, &nm, "data_id", "%016" PRIx64, st->data_id);
    put(m, &nm, "data_seqs", "%" PRIu64, st->data_seqs);
  }
  if (st->data_dir && strlen(st->data_dir) < sizeof m[0].val) put(m, &nm, "data_dir", "%s", st->data_dir);
  cram_st_meta sm[NMETA];
  for (size_t i = 0; i < nm; i++) sm[i].key = m[i].key, sm[i].value = m[i].val;
  r = cram_st_write(path, ts, nt, sm, nm, err);
  if (r == CRAM_OK) {
    char *d = dir_of(path);
    if (d) r = cram_fsync_dir(d, err);
    free(d);
  }
out:
  for (size_t i = 0; names && i < nt; i++) free(names[i]);
  free(names);
  free(ts);
  free(buf);
  return r;
}

/* A metadata value as it may be shown in a message: printable ASCII kept,
 * every other byte as \xNN (a corrupt file must not put raw bytes or
 * invalid UTF-8 on the terminal), cut at 48 characters. */
static const char *shown(const char *v, char *buf, size_t n) {
  size_t o = 0;
  for (const unsigned char *p = (const unsigned char *)v; *p && o + 5 < n; p++) {
    if (o >= 48) {
      memcpy(buf + o, "...", 4);
      return buf;
    }
    if (*p >= 0x20 && *p < 0x7f && *p != '\\') buf[o++] = (char)*p;
    else o += (size_t)snprintf(buf + o, n - o, "\\x%02x", *p);
  }
  buf[o] = '\0';
  return buf;
}

static cram_status need(const cram_st_file *f, const char *path, const char *key, const char **v, cram_err *err) {
  *v = cram_st_meta_get(f, key);
  if (!*v) return cram_err_set(err, CRAM_E_HEADER, "%s: not a cram checkpoint (no '%s' in the metadata)", path, key);
  return CRAM_OK;
}

static cram_status parse_u64(const char *path, const char *key, const char *v, int base, uint64_t *out, cram_err *err) {
  char *end, b[64];
  errno = 0;
  unsigned long long x = strtoull(v, &end, base);
  if (errno || end == v || *end || *v == '-' || *v == '+' || *v == ' ')
    return cram_err_set(err, CRAM_E_HEADER, "%s: checkpoint metadata '%s' is not an integer: '%s'", path, key,
                        shown(v, b, sizeof b));
  *out = x;
  return CRAM_OK;
}

static cram_status get_u64(const cram_st_file *f, const char *path, const char *key, uint64_t *out, cram_err *err) {
  const char *v;
  cram_status r = need(f, path, key, &v, err);
  return r ? r : parse_u64(path, key, v, 10, out, err);
}

static cram_status get_f64(const cram_st_file *f, const char *path, const char *key, double *out, cram_err *err) {
  const char *v;
  cram_status r = need(f, path, key, &v, err);
  if (r) return r;
  char *end, b[64];
  errno = 0;
  double x = strtod(v, &end);
  if (errno || end == v || *end || !isfinite(x))
    return cram_err_set(err, CRAM_E_HEADER, "%s: checkpoint metadata '%s' is not a finite number: '%s'", path, key,
                        shown(v, b, sizeof b));
  *out = x;
  return CRAM_OK;
}

/* The recipe and progress values a run can have (cram train's own bounds),
 * and for a known step the microbatch and sequence length they must fit. */
static cram_status check_state(const char *path, const cram_step_meta *me, const cram_train_state *st, cram_err *err) {
#define BAD(...) cram_err_set(err, CRAM_E_HEADER, __VA_ARGS__)
  if (st->batch == 0) return BAD("%s: checkpoint metadata 'batch' is 0", path);
  if (!(st->ramp >= 0 && st->ramp <= 1)) return BAD("%s: checkpoint metadata 'ramp' %g is not in [0, 1]", path, st->ramp);
  if (!(st->peak_lr >= 0)) return BAD("%s: checkpoint metadata 'peak_lr' %g is negative", path, st->peak_lr);
  if (st->budget < 0) return BAD("%s: checkpoint metadata 'budget' %g is negative", path, st->budget);
  if (st->elapsed < 0) return BAD("%s: checkpoint metadata 'elapsed' %g is negative", path, st->elapsed);
  if (!st->steps && !st->budget_tokens && !(st->budget_flops > 0) && !(st->budget > 0))
    return BAD("%s: checkpoint has no horizon ('steps', 'budget_tokens', 'budget_flops' and 'budget' are 0)", path);
  if (!(st->budget_flops >= 0)) return BAD("%s: checkpoint metadata 'budget_flops' %g is negative", path, st->budget_flops);
  if (!(st->warmup >= 0 && st->warmup <= 1)) return BAD("%s: checkpoint metadata 'warmup' %g is not in [0, 1]", path, st->warmup);
  if (!(st->beta1 >= 0 && st->beta1 < 1) || !(st->beta2 >= 0 && st->beta2 < 1))
    return BAD("%s: checkpoint metadata 'beta1'/'beta2' (%g, %g) are not in [0, 1)", path, st->beta1, st->beta2);
  if (!(st->eps >= 0 && st->eps < 1) || !(st->weight_decay >= 0 && st->weight_decay < 1) ||
      !(st->weight_decay_other >= 0 && st->weight_decay_other < 1) || !(st->max_norm >= 0))
    return BAD("%s: checkpoint metadata 'eps', 'weight_decay', 'weight_decay_other' or 'max_norm' out of range "
               "(%g, %g, %g, %g)",
               path, st->eps, st->weight_decay, st->weight_decay_other, st->max_norm);
  if (st->step > st->attempts || st->skipped > st->attempts || st->bad_run > st->skipped)
    return BAD("%s: checkpoint progress is inconsistent (step %" PRIu64 ", attempts %" PRIu64 ", skipped %" PRIu64
               ", bad_run %" PRIu64 ")",
               path, st->step, st->attempts, st->skipped, st->bad_run);
  if (me) {
    int ti = -1;
    for (uint32_t i = 0; i < me->ninputs; i++)
      if (me->inputs[i].name && strcmp(me->inputs[i].name, "tokens") == 0) ti = (int)i;
    if (ti >= 0 && me->inputs[ti].rank == 2) {
      int64_t mbs = me->inputs[ti].shape[0], seq = me->inputs[ti].shape[1];
      if (mbs > 0 && st->batch % (uint64_t)mbs)
        return BAD("%s: checkpoint metadata 'batch' %" PRIu64 " is not a multiple of model '%s''s microbatch %" PRId64, path,
                   st->batch, me->model ? me->model : "", mbs);
      if (seq > 0 && st->mask_n > (uint64_t)seq)
        return BAD("%s: checkpoint metadata 'mask_n' %" PRIu32 " exceeds the model's sequence length %" PRId64, path, st->mask_n,
                   seq);
    }
  }
  return CRAM_OK;
#undef BAD
}

cram_status cram_ckpt_parse_state(const cram_st_file *f, const char *path, const cram_step_meta *me, cram_train_state *st,
                                  cram_err *err) {
  const char *v;
  char b1[64], b2[64];
  cram_status r;
  memset(st, 0, sizeof *st);
  if ((r = need(f, path, "format", &v, err))) return r;
  if (strcmp(v, CRAM_CKPT_FORMAT) != 0)
    return cram_err_set(err, CRAM_E_VERSION, "%s: checkpoint format '%s', this cram reads '%s'", path, shown(v, b1, sizeof b1),
                        CRAM_CKPT_FORMAT);
  if ((r = need(f, path, "model", &v, err))) return r;
  if (me && strcmp(v, me->model ? me->model : "") != 0)
    return cram_err_set(err, CRAM_E_HEADER, "%s: checkpoint of model '%s', the step is model '%s'", path, shown(v, b1, sizeof b1),
                        shown(me->model ? me->model : "", b2, sizeof b2));
  if ((r = need(f, path, "source_hash", &v, err))) return r;
  if (me && strcmp(v, me->source_hash ? me->source_hash : "") != 0)
    return cram_err_set(err, CRAM_E_HEADER,
                        "%s: checkpoint was written by a step compiled from another source (hash %s, step has %s)", path,
                        shown(v, b1, sizeof b1), shown(me->source_hash ? me->source_hash : "", b2, sizeof b2));
  uint64_t shuffle = 0, mask_n = 0;
  if ((r = get_u64(f, path, "step", &st->step, err)) || (r = get_u64(f, path, "attempts", &st->attempts, err)) ||
      (r = get_u64(f, path, "seq_pos", &st->seq_pos, err)) || (r = get_u64(f, path, "tokens", &st->tokens, err)) ||
      (r = get_u64(f, path, "skipped", &st->skipped, err)) || (r = get_u64(f, path, "bad_run", &st->bad_run, err)) ||
      (r = get_f64(f, path, "elapsed", &st->elapsed, err)) || (r = get_u64(f, path, "seed", &st->seed, err)) ||
      (r = get_u64(f, path, "shuffle", &shuffle, err)) || (r = get_u64(f, path, "steps", &st->steps, err)) ||
      (r = get_f64(f, path, "budget", &st->budget, err)) || (r = get_u64(f, path, "batch", &st->batch, err)) ||
      (r = get_f64(f, path, "ramp", &st->ramp, err)) || (r = get_f64(f, path, "peak_lr", &st->peak_lr, err)) ||
      (r = get_u64(f, path, "mask_n", &mask_n, err)))
    return r;
  if (shuffle > 1)
    return cram_err_set(err, CRAM_E_HEADER, "%s: checkpoint metadata 'shuffle' is %" PRIu64 ", not 0 or 1", path, shuffle);
  if (mask_n > 65536)
    return cram_err_set(err, CRAM_E_HEADER, "%s: checkpoint metadata 'mask_n' %" PRIu64 " is out of range", path, mask_n);
  st->shuffle = shuffle != 0;
  st->mask_n = (uint32_t)mask_n;
  /* keys newer than cram-checkpoint-1's first version: absent means the run
     * used what was then fixed (the recipe's optimizer, the triangle) */
  cram_update_args rec = CRAM_UPDATE_ARGS_RECIPE(0.0f, 1);
  uint64_t shape = 0;
  st->beta1 = rec.beta1, st->beta2 = rec.beta2, st->eps = rec.eps, st->weight_decay = rec.weight_decay;
  st->weight_decay_other = rec.weight_decay_other, st->max_norm = rec.max_norm;
  st->runs = 0; /* absent: a checkpoint from before the dropout stream was resumable */
  if ((cram_st_meta_get(f, "runs") && (r = get_u64(f, path, "runs", &st->runs, err))) ||
      (cram_st_meta_get(f, "budget_tokens") && (r = get_u64(f, path, "budget_tokens", &st->budget_tokens, err))) ||
      (cram_st_meta_get(f, "budget_flops") && (r = get_f64(f, path, "budget_flops", &st->budget_flops, err))) ||
      (cram_st_meta_get(f, "lr_shape") && (r = get_u64(f, path, "lr_shape", &shape, err))) ||
      (cram_st_meta_get(f, "warmup") && (r = get_f64(f, path, "warmup", &st->warmup, err))) ||
      (cram_st_meta_get(f, "beta1") && (r = get_f64(f, path, "beta1", &st->beta1, err))) ||
      (cram_st_meta_get(f, "beta2") && (r = get_f64(f, path, "beta2", &st->beta2, err))) ||
      (cram_st_meta_get(f, "eps") && (r = get_f64(f, path, "eps", &st->eps, err))) ||
      (cram_st_meta_get(f, "weight_decay") && (r = get_f64(f, path, "weight_decay", &st->weight_decay, err))) ||
      (cram_st_meta_get(f, "weight_decay_other") && (r = get_f64(f, path, "weight_decay_other", &st->weight_decay_other, err))) ||
      (cram_st_meta_get(f, "max_norm") && (r = get_f64(f, path, "max_norm", &st->max_norm, err))))
    return r;
  if (shape > 3)
    return cram_err_set(err, CRAM_E_HEADER, "%s: checkpoint metadata 'lr_shape' %" PRIu64 " is unknown", path, shape);
  st->lr_shape = (int)shape;
  /* the data identity: all three or none (a checkpoint from before it was recorded) */
  const char *dt = cram_st_meta_get(f, "data_tokenizer"), *di = cram_st_meta_get(f, "data_id"),
             *ds = cram_st_meta_get(f, "data_seqs");
  if (dt || di || ds) {
    if (!dt || !di || !ds)
      return cram_err_set(err, CRAM_E_HEADER,
                          "%s: checkpoint metadata has only part of the data identity "
                          "(data_tokenizer, data_id, data_seqs)",
                          path);
    if ((r = parse_u64(path, "data_tokenizer", dt, 16, &st->data_tokenizer, err)) ||
        (r = parse_u64(path, "data_id", di, 16, &st->data_id, err)) ||
        (r = parse_u64(path, "data_seqs", ds, 10, &st->data_seqs, err)))
      return r;
    st->data_known = 1;
  }
  return check_state(path, me, st, err);
}

uint64_t cram_ckpt_data_id(const cram_dataset *d) {
  uint64_t h = CRAM_FNV1A64_INIT;
  for (size_t i = 0; i < d->nshards; i++) {
    const cram_shard_header *s = &d->shards[i].h;
    unsigned char rec[20];
    for (int k = 0; k < 8; k++) rec[k] = (unsigned char)(s->seq_count >> (8 * k));
    for (int k = 0; k < 4; k++) {
      rec[8 + k] = (unsigned char)(s->seq_len >> (8 * k));
      rec[12 + k] = (unsigned char)(s->vocab_size >> (8 * k));
      rec[16 + k] = (unsigned char)(s->payload_crc32 >> (8 * k));
    }
    h = cram_fnv1a64(h, rec, sizeof rec);
  }
  return h;
}

void cram_ckpt_set_data(cram_train_state *st, const cram_dataset *d) {
  st->data_known = 1;
  st->data_tokenizer = d->tokenizer_hash;
  st->data_id = cram_ckpt_data_id(d);
  st->data_seqs = d->seq_count;
}

cram_status cram_ckpt_check_data(const char *ckpt_path, const cram_train_state *st, const char *data_dir, const cram_dataset *d,
                                 cram_err *err) {
  if (!st->data_known) return CRAM_OK;
  if (st->data_tokenizer != d->tokenizer_hash)
    return cram_err_set(err, CRAM_E_TOKENIZER,
                        "%s: the run was trained on shards of tokenizer %016" PRIx64 ", %s has tokenizer %016" PRIx64
                        " (vocab %" PRIu32 "): resume with the run's own --data",
                        ckpt_path, st->data_tokenizer, data_dir, d->tokenizer_hash, d->vocab_size);
  uint64_t id = cram_ckpt_data_id(d);
  if (st->data_id != id || st->data_seqs != d->seq_count)
    return cram_err_set(err, CRAM_E_DATASET,
                        "%s: the run was trained on %" PRIu64 " sequences (data id %016" PRIx64 "), %s holds %" PRIu64
                        " (data id %016" PRIx64 "): other shards of the same tokenizer; resume with the run's own --data",
                        ckpt_path, st->data_seqs, st->data_id, data_dir, d->seq_count, id);
  return CRAM_OK;
}

cram_status cram_ckpt_read_state(const char *path, const cram_step_meta *meta, cram_train_state *st, cram_err *err) {
  cram_st_file f;
  cram_status r = cram_st_read(path, &f, err);
  if (r == CRAM_OK) r = cram_ckpt_parse_state(&f, path, meta, st, err);
  cram_st_free(&f);
  return r;
}

cram_status cram_ckpt_load(const char *path, const cram_step_api *api, cram_ctx *ctx, cram_train_state *st, cram_err *err) {
  const cram_step_meta *me = api->meta;
  remove_stale_tmp(path);
  cram_st_file f;
  cram_status r = cram_st_read(path, &f, err);
  if (r == CRAM_OK) r = cram_ckpt_parse_state(&f, path, me, st, err);
  float *tmp[3] = { 0 };
  char *name = NULL;
  for (uint32_t i = 0; r == CRAM_OK && i < me->nparams; i++) {
    const cram_tensor_info *p = &me->params[i];
    const char *pre[3] = { "param.", "adam_m.", "adam_v." };
    /* exact length: a fixed buffer cut long names and every checkpoint of such a model was "missing" them */
    free(name);
    size_t len = strlen(p->name) + sizeof "adam_m.";
    if (!(name = malloc(len))) {
      r = cram_err_set(err, CRAM_E_NOMEM, "%s: out of memory", path);
      break;
    }
    for (int k = 0; k < 3 && r == CRAM_OK; k++) {
      snprintf(name, len, "%s%s", pre[k], p->name);
      const cram_st_tensor *t = cram_st_find(&f, name);
      if (!t) {
        r = cram_err_set(err, CRAM_E_HEADER, "%s: checkpoint has no tensor '%s'", path, name);
        break;
      }
      int same = t->dtype == CRAM_ST_F32 && t->rank == (int)p->rank;
      for (uint32_t d = 0; same && d < p->rank; d++) same = t->shape[d] == p->shape[d];
      if (!same) {
        r = cram_err_set(err, CRAM_E_HEADER, "%s: tensor '%s' is not F32 of the parameter's shape", path, name);
        break;
      }
      free(tmp[k]);
      tmp[k] = malloc(t->nbytes ? t->nbytes : 1);
      if (!tmp[k]) {
        r = cram_err_set(err, CRAM_E_NOMEM, "%s: out of memory", path);
        break;
      }
      memcpy(tmp[k], t->data, t->nbytes); /* data may be unaligned in the file buffer */
    }
    if (r != CRAM_OK) break;
    cram_step_rc rc = api->set_param(ctx, i, tmp[0]);
    if (rc == CRAM_STEP_OK) rc = api->set_moments(ctx, i, tmp[1], tmp[2]);
    if (rc != CRAM_STEP_OK)
      r = cram_err_set(err, CRAM_E_IO, "%s: loading parameter %s into the step failed: %s", path, p->name, api->last_error(ctx));
  }
  for (int k = 0; k < 3; k++) free(tmp[k]);
  free(name);
  cram_st_free(&f);
  return r;
}
