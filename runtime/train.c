/* train.c - the training loop and eval over a cram_step_api; see train.h. */
#include "train.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
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
    if (t->rank != 2 || g->rank != 2 || t->dtype != CRAM_DT_I32 || g->dtype != CRAM_DT_I32 ||
        t->shape[0] != g->shape[0] || t->shape[1] != g->shape[1] || t->shape[0] < 1 || t->shape[1] < 1)
        return cram_err_set(err, CRAM_E_ARG, "model '%s': `tokens` and `targets` must both be i32[batch, seq]", m->model);
    b->mbs = (uint64_t)t->shape[0];
    b->seq = (uint32_t)t->shape[1];
    int64_t vocab = cram_step_dim(m, "vocab", d->vocab_size);
    if (vocab < 1 || vocab > 65536) return cram_err_set(err, CRAM_E_ARG, "model '%s': bad vocab dim", m->model);
    b->vocab = (uint32_t)vocab;
    if (d->seq_len != b->seq)
        return cram_err_set(err, CRAM_E_SEQLEN, "%s: sequences have %u tokens, model '%s' takes seq=%u",
                            d->shards[0].path, d->seq_len, m->model, b->seq);
    if (d->vocab_size > b->vocab)
        return cram_err_set(err, CRAM_E_VOCAB, "%s: vocabulary of %u tokens, model '%s' has vocab=%u",
                            d->shards[0].path, d->vocab_size, m->model, b->vocab);
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

static cram_status mask_setup(const cram_step_meta *m, const cram_dataset *d, const binding *b, uint32_t mask_n,
                              double mask_rate, uint64_t seed, cram_mlm *mlm, cram_err *err) {
    uint32_t mask_id = d->shards[0].h.mask_id;
    if (mask_id == CRAM_NO_TOKEN)
        return cram_err_set(err, CRAM_E_HEADER, "%s: the shards have no [MASK] token id (header mask_id)",
                            d->shards[0].path);
    uint32_t n = mask_n;
    if (n == 0) {
        int64_t md = cram_step_dim(m, "masked", -1);
        n = md >= 0 ? (uint32_t)md : cram_mlm_round(mask_rate * b->seq);
    }
    return cram_mlm_init(mlm, b->seq, b->vocab, n, mask_id, seed, err);
}

/* Fills one microbatch from stream position *pos. */
static cram_status fill(const cram_dataset *d, const cram_mlm *mlm, binding *b, uint64_t *pos, uint64_t seed,
                        int shuffle, cram_err *err) {
    for (uint64_t r = 0; r < b->mbs; r++, (*pos)++) {
        uint64_t i = cram_data_index(*pos, d->seq_count, seed, shuffle);
        if (cram_mlm_apply(mlm, *pos, cram_dataset_seq(d, i), b->tok + r * b->seq, b->tgt + r * b->seq) != 0) {
            uint64_t k = 0;
            const char *path = cram_dataset_seq_path(d, i, &k);
            return cram_err_set(err, CRAM_E_TOKEN_RANGE, "%s: sequence %" PRIu64 " has a token id >= the model's vocab %u",
                                path, k, mlm->vocab);
        }
    }
    return CRAM_OK;
}

static cram_status step_err(const cram_step_api *api, cram_ctx *ctx, const char *what, cram_step_rc rc,
                            cram_err *err) {
    const char *le = api->last_error(ctx);
    return cram_err_set(err, rc == CRAM_STEP_E_DATA ? CRAM_E_TOKEN_RANGE : CRAM_E_IO, "step %s failed (%s): %s", what,
                        cram_step_rc_str(rc), le && *le ? le : "no detail");
}

static cram_status create_ctx(const cram_step_api *api, int device, cram_ctx **ctx, cram_err *err) {
    cram_create_opts o = {.device = device, .training = 0, .dropout_seed = 0};
    char e[512] = "";
    cram_step_rc rc = api->create(&o, ctx, e, sizeof e);
    if (rc != CRAM_STEP_OK) {
        *ctx = NULL;
        return cram_err_set(err, rc == CRAM_STEP_E_DEVICE ? CRAM_E_ARG : CRAM_E_NOMEM, "%s",
                            *e ? e : cram_step_rc_str(rc));
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

static cram_status checkpoint(const cram_step_api *api, cram_ctx *ctx, const cram_train_config *cfg,
                              const cram_train_state *st, cram_train_result *res, cram_err *err) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", cfg->run_dir, CRAM_CKPT_FILE);
    cram_status r = cram_ckpt_save(path, api, ctx, st, err);
    if (r == CRAM_OK) snprintf(res->checkpoint, sizeof res->checkpoint, "%s", path);
    return r;
}

/* Zero the gradient accumulators without applying them (a skipped update). */
static cram_status discard_grads(const cram_step_api *api, cram_ctx *ctx, cram_err *err) {
    cram_step_rc rc = api->zero_grad(ctx);
    return rc == CRAM_STEP_OK ? CRAM_OK : step_err(api, ctx, "zero_grad", rc, err);
}

/* ---- the loop ------------------------------------------------------------------ */

cram_status cram_train_run(const cram_step_api *api, const cram_train_config *cfg, cram_train_result *res,
                           cram_err *err) {
    memset(res, 0, sizeof *res);
    const cram_step_meta *m = api->meta;
    /* The device first: without one (no GPU for a cuda artifact) nothing else
     * matters, and the user hears so before any data is read. */
    cram_ctx *ctx = NULL;
    cram_status r = create_ctx(api, cfg->device, &ctx, err);
    if (r != CRAM_OK) return r;
    cram_dataset d;
    if ((r = cram_dataset_open(&d, cfg->data_dir, "train", NULL, 0, err)) != CRAM_OK) {
        api->destroy(ctx);
        return r;
    }
    binding b;
    FILE *mf = NULL;
    cram_mlm mlm;
    cram_train_state st = cfg->recipe;
    char path[1024];
    if ((r = bind(api, &d, &b, err))) goto out;
    if (mkdir(cfg->run_dir, 0777) != 0 && errno != EEXIST) {
        r = cram_err_set(err, CRAM_E_IO, "%s: cannot create the run directory: %s", cfg->run_dir, strerror(errno));
        goto out;
    }
    snprintf(path, sizeof path, "%s/%s", cfg->run_dir, CRAM_CKPT_FILE);
    if (cfg->resume) {
        if ((r = cram_ckpt_load(path, api, ctx, &st, err))) goto out;
        if ((r = cram_ckpt_check_data(path, &st, cfg->data_dir, &d, err))) goto out;
    } else {
        if (access(path, F_OK) == 0) {
            r = cram_err_set(err, CRAM_E_ARG, "%s already holds a checkpoint: continue it with --resume %s, or train "
                             "into a new directory", cfg->run_dir, cfg->run_dir);
            goto out;
        }
        st.step = st.attempts = st.seq_pos = st.tokens = st.skipped = st.bad_run = 0;
        st.elapsed = 0;
        cram_step_rc rc = api->init_params(ctx, st.seed);
        if (rc != CRAM_STEP_OK) {
            r = step_err(api, ctx, "init_params", rc, err);
            goto out;
        }
    }
    cram_ckpt_set_data(&st, &d);
    if ((r = mask_setup(m, &d, &b, st.mask_n, cfg->mask_rate, st.seed, &mlm, err))) goto out;
    st.mask_n = mlm.n;
    if (st.batch % b.mbs) {
        r = cram_err_set(err, CRAM_E_ARG, "batch size %" PRIu64 " is not a multiple of the model's microbatch %" PRIu64,
                         st.batch, b.mbs);
        goto out;
    }
    if (!st.steps && !(st.budget > 0)) {
        r = cram_err_set(err, CRAM_E_ARG, "no schedule: give a time budget or a step count");
        goto out;
    }
    snprintf(path, sizeof path, "%s/%s", cfg->run_dir, CRAM_METRICS_FILE);
    if (!(mf = metrics_open(path, cfg->resume, st.attempts, err))) {
        r = err ? err->status : CRAM_E_IO;
        goto out;
    }

    int mfu_ok = m->target && strcmp(m->target, "cuda") == 0 && m->flops_per_token > 0 && cfg->peak_flops > 0;
    double t0 = now_s(), base = st.elapsed, last_ckpt = st.elapsed;
    for (;;) {
        double t = st.steps ? (double)st.step / (double)st.steps : st.elapsed / st.budget;
        if ((st.steps && st.step >= st.steps) || (st.budget > 0 && st.elapsed >= st.budget)) {
            res->end = CRAM_END_DONE;
            break;
        }
        if (cfg->stop && *cfg->stop) {
            res->end = CRAM_END_INTERRUPTED;
            break;
        }
        double u0 = now_s();
        uint64_t bs = cram_batch_size(t, b.mbs, st.batch, st.ramp);
        uint64_t k = bs / b.mbs;
        double lr = st.peak_lr * cram_lr_mult(t);
        float scale = 1.0f / (float)k;
        double loss = 0;
        int bad = 0;
        for (uint64_t j = 0; j < k; j++) {
            if ((r = fill(&d, &mlm, &b, &st.seq_pos, st.seed, st.shuffle, err))) goto out;
            float l = 0;
            cram_step_rc rc = api->step(ctx, b.in, scale, &l);
            if (rc != CRAM_STEP_OK) {
                r = step_err(api, ctx, "step", rc, err);
                goto out;
            }
            if (!isfinite(l)) bad = 1;
            loss += (double)l * scale;
        }
        st.tokens += bs * b.seq;
        float gn = NAN;
        if (!bad) {
            cram_step_rc rc = api->grad_norm(ctx, &gn);
            if (rc != CRAM_STEP_OK) {
                r = step_err(api, ctx, "grad_norm", rc, err);
                goto out;
            }
            if (!isfinite(gn)) bad = 1;
        }
        st.attempts++;
        if (bad) {
            if ((r = discard_grads(api, ctx, err))) goto out;
            st.skipped++;
            st.bad_run++;
        } else {
            cram_update_args a = {.lr = (float)lr, .step = (int64_t)st.step + 1};
            cram_step_rc rc = api->update(ctx, &a, &gn);
            if (rc != CRAM_STEP_OK) {
                r = step_err(api, ctx, "update", rc, err);
                goto out;
            }
            if (!isfinite(gn)) { /* only without grad_norm(): the update already applied it */
                r = cram_err_set(err, CRAM_E_ARG,
                                 "non-finite gradient norm at step %" PRIu64 " was applied (this step.so has no "
                                 "grad_norm entry to check first); parameters are unusable, the last checkpoint in "
                                 "%s is not affected",
                                 st.step + 1, cfg->run_dir);
                goto out;
            }
            st.step++;
            st.bad_run = 0;
        }
        double u1 = now_s();
        st.elapsed = base + (u1 - t0);
        double tok_s = (double)(bs * b.seq) / (u1 - u0 > 1e-9 ? u1 - u0 : 1e-9);
        double mfu = mfu_ok ? tok_s * m->flops_per_token / cfg->peak_flops : -1;
        double eta = -1;
        if (st.steps && st.step > 0) eta = (st.elapsed / (double)st.attempts) * (double)(st.steps - st.step);
        else if (!st.steps) eta = st.budget - st.elapsed;
        res->last_loss = loss;

        fprintf(mf, "{\"n\":%" PRIu64 ",\"step\":%" PRIu64 ",\"time\":%.6f,\"tokens\":%" PRIu64, st.attempts, st.step,
                st.elapsed, st.tokens);
        jnum(mf, "loss", loss);
        jnum(mf, "lr", bad ? 0 : lr);
        fprintf(mf, ",\"batch\":%" PRIu64, bs);
        jnum(mf, "grad_norm", gn);
        jnum(mf, "tok_s", tok_s);
        if (mfu >= 0) jnum(mf, "mfu", mfu);
        fprintf(mf, ",\"skipped\":%d}\n", bad);
        if (fflush(mf) != 0) {
            r = cram_err_set(err, CRAM_E_IO, "%s: %s", path, strerror(errno));
            goto out;
        }

        cram_train_progress p = {.step = st.step, .attempts = st.attempts, .tokens = st.tokens, .skipped = st.skipped,
                                 .loss = loss, .lr = bad ? 0 : lr, .grad_norm = gn, .batch = bs, .tok_s = tok_s,
                                 .mfu = mfu, .elapsed = st.elapsed, .eta = eta, .event = NULL};
        if (cfg->progress) cfg->progress(&p, cfg->user);

        if (cfg->max_bad && st.bad_run >= cfg->max_bad) {
            res->end = CRAM_END_NONFINITE;
            break;
        }
        if (cfg->stop_at && st.step >= cfg->stop_at && !bad) {
            res->end = CRAM_END_STOP_AT;
            break;
        }
        int due = (cfg->ckpt_every_steps && !bad && st.step % cfg->ckpt_every_steps == 0) ||
                  (cfg->ckpt_every_s > 0 && st.elapsed - last_ckpt >= cfg->ckpt_every_s);
        if (due) {
            if ((r = checkpoint(api, ctx, cfg, &st, res, err))) goto out;
            last_ckpt = st.elapsed;
            if (cfg->progress) {
                char ev[1100];
                snprintf(ev, sizeof ev, "checkpoint written to %s", res->checkpoint);
                p.event = ev;
                cfg->progress(&p, cfg->user);
            }
        }
    }
    if ((r = checkpoint(api, ctx, cfg, &st, res, err))) goto out;
    if (res->end == CRAM_END_INTERRUPTED)
        cram_err_set(err, CRAM_E_INTERRUPTED, "interrupted at step %" PRIu64 "; checkpoint %s (continue with --resume %s)",
                     st.step, res->checkpoint, cfg->run_dir);
    else if (res->end == CRAM_END_NONFINITE)
        cram_err_set(err, CRAM_E_ARG,
                     "%u non-finite losses/gradient norms in a row (%" PRIu64 " skipped in all); stopped at step %" PRIu64
                     " with checkpoint %s (lower the learning rate or check the data)",
                     cfg->max_bad, st.skipped, st.step, res->checkpoint);
out:
    res->state = st;
    if (mf) fclose(mf);
    if (ctx) api->destroy(ctx);
    unbind(&b);
    cram_dataset_close(&d);
    return r;
}

/* ---- eval --------------------------------------------------------------------- */

cram_status cram_eval_run(const cram_step_api *api, const char *data_dir, const char *split, const char *ckpt_path,
                          uint64_t seed, double mask_rate, uint64_t max_seqs, int device, double *loss,
                          uint64_t *nseqs, cram_err *err) {
    cram_dataset d;
    cram_status r = cram_dataset_open(&d, data_dir, split, NULL, 0, err);
    if (r != CRAM_OK) return r;
    binding b;
    cram_ctx *ctx = NULL;
    cram_mlm mlm;
    cram_train_state st;
    memset(&st, 0, sizeof st);
    if ((r = bind(api, &d, &b, err))) goto out;
    if ((r = create_ctx(api, device, &ctx, err))) goto out;
    if (ckpt_path) {
        if ((r = cram_ckpt_load(ckpt_path, api, ctx, &st, err))) goto out;
    } else {
        cram_step_rc rc = api->init_params(ctx, seed);
        if (rc != CRAM_STEP_OK) {
            r = step_err(api, ctx, "init_params", rc, err);
            goto out;
        }
    }
    if ((r = mask_setup(api->meta, &d, &b, st.mask_n, mask_rate, seed, &mlm, err))) goto out;
    uint64_t n = d.seq_count;
    if (max_seqs && max_seqs < n) n = max_seqs;
    n = n / b.mbs * b.mbs;
    if (n == 0) {
        r = cram_err_set(err, CRAM_E_DATASET, "%s: fewer %s sequences than one microbatch (%" PRIu64 ")", data_dir,
                         split, b.mbs);
        goto out;
    }
    double sum = 0;
    uint64_t pos = 0;
    while (pos < n) {
        if ((r = fill(&d, &mlm, &b, &pos, seed, 0, err))) goto out;
        float l;
        cram_step_rc rc = api->eval(ctx, b.in, &l);
        if (rc != CRAM_STEP_OK) {
            r = step_err(api, ctx, "eval", rc, err);
            goto out;
        }
        sum += l;
    }
    *loss = sum / (double)(n / b.mbs);
    *nseqs = n;
out:
    if (ctx) api->destroy(ctx);
    unbind(&b);
    cram_dataset_close(&d);
    return r;
}
