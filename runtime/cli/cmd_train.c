/* cmd_train.c - `cram train`: train a compiled step (step.so) on token
 * shards with the Cramming recipe (libcramrt train.c); prints a progress
 * line, writes metrics.jsonl and checkpoints into the run directory.
 * SIGINT/SIGTERM set a flag; the loop checkpoints at the next update
 * boundary and the command exits 130. Details: docs/training.md. */
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../loader.h"
#include "../schedule.h"
#include "../train.h"
#include "cli.h"

static volatile sig_atomic_t g_train_stop; /* the only mutable global: set by SIGINT/SIGTERM */

static void on_signal(int sig) {
    (void)sig;
    g_train_stop = 1;
}

static void train_usage(FILE *f) {
    fprintf(f,
"usage: cram train STEP.so --data DIR --out RUN_DIR (--budget T | --steps N) [options]\n"
"       cram train STEP.so --data DIR --resume RUN_DIR [run options]\n"
"\n"
"Pretrain the model compiled into STEP.so (cramc) on the train-*.shard files\n"
"of DIR with the Cramming recipe: MLM masking (the model's `masked` count per\n"
"sequence, 80/10/10), budget-triangle learning rate, batch-size ramp by\n"
"gradient accumulation, AdamW + clipping as compiled into the step.\n"
"Writes RUN_DIR/metrics.jsonl and RUN_DIR/checkpoint.safetensors.\n"
"\n"
"recipe (new runs; a resumed run keeps the checkpoint's):\n"
"  --budget T         wall-clock budget, e.g. 24h, 90m, 30s: the schedule runs on\n"
"                     elapsed/T and training stops at T\n"
"  --steps N          step-based schedule (t = step/N, reproducible), stop after N\n"
"                     updates; with --budget too, T is only a deadline\n"
"  --lr X             peak learning rate (default 1e-3)\n"
"  --batch N          target batch in sequences (default 8192; multiple of the\n"
"                     model's microbatch)\n"
"  --ramp F           fraction of the schedule to reach --batch (default 0.6;\n"
"                     0 = full batch from the start)\n"
"  --mask-rate P      prediction rate when the model has no `masked` dim (default 0.25)\n"
"  --seed N           init, masking and shuffle seed (default 0)\n"
"  --shuffle          read sequences in a seeded per-epoch permutation (default:\n"
"                     in shard order, which keeps a curriculum)\n"
"run options:\n"
"  --data DIR         token shard directory (`cram data`) [required]\n"
"  --out RUN_DIR      new run directory (refused if it holds a checkpoint)\n"
"  --resume RUN_DIR   continue the run in RUN_DIR from its checkpoint\n"
"  --stop-at N        checkpoint and stop (exit 0) after update N\n"
"  --ckpt-every T     checkpoint every T of wall clock (default 30m; 0 = off)\n"
"  --ckpt-steps N     checkpoint every N updates (default 0 = off)\n"
"  --max-bad K        stop after K non-finite updates in a row (default 10)\n"
"  --device N         CUDA device ordinal (default 0)\n"
"  --peak-tflops X    device peak for the MFU estimate (default 989, H100 bf16)\n"
"  --progress-every T print a progress line at most every T (default 10s)\n"
"  --quiet            no progress lines\n"
"  -h, --help         this help\n"
"\n"
"exit status: 0 done (or --stop-at), 1 error, 2 usage, 3 stopped on non-finite\n"
"values (checkpoint written), 130 interrupted (checkpoint written).\n");
}

typedef struct prog {
    int quiet;
    double every, last;
    uint64_t steps;
} prog;

static void fmt_time(char *b, size_t n, double s) {
    if (s < 0 || !isfinite(s)) snprintf(b, n, "?");
    else if (s < 3600) snprintf(b, n, "%dm%02ds", (int)(s / 60), (int)s % 60);
    else snprintf(b, n, "%dh%02dm", (int)(s / 3600), (int)(s / 60) % 60);
}

static void on_progress(const cram_train_progress *p, void *user) {
    prog *g = user;
    if (g->quiet) return;
    if (p->event) {
        fprintf(stderr, "cram train: %s\n", p->event);
        return;
    }
    double t = cli_now();
    if (p->attempts > 1 && t - g->last < g->every) return;
    g->last = t;
    char el[32], eta[32], mfu[32] = "";
    fmt_time(el, sizeof el, p->elapsed);
    fmt_time(eta, sizeof eta, p->eta);
    if (p->mfu >= 0) snprintf(mfu, sizeof mfu, "  mfu %.1f%%", 100 * p->mfu);
    fprintf(stderr,
            "step %" PRIu64 "  tokens %.4gM  loss %.4f  lr %.3g  batch %" PRIu64 "  %.0f tok/s%s  %s  eta %s%s\n",
            p->step, (double)p->tokens / 1e6, p->loss, p->lr, p->batch, p->tok_s, mfu, el, eta,
            p->skipped ? "  (skipped updates so far: see metrics)" : "");
}

int cram_cmd_train(int argc, char **argv) {
    const char *step_path = NULL, *data = NULL, *out = NULL, *resume = NULL;
    cram_train_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.recipe.peak_lr = 1e-3;
    cfg.recipe.batch = 8192;
    cfg.recipe.ramp = 0.6;
    cfg.mask_rate = 0.25;
    cfg.ckpt_every_s = 1800;
    cfg.max_bad = 10;
    cfg.peak_flops = 989e12;
    prog pg = {.every = 10};
    int recipe_flag = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        int m;
        uint64_t u;
        double x;
        cram_err e = {0};
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            train_usage(stdout);
            return 0;
        }
#define OPT(name) ((m = cli_match_opt(argc, argv, &i, name, &v)) != 0)
#define NEEDV                                                               \
    if (m < 0) {                                                            \
        fprintf(stderr, "cram train: %s needs a value\n", a);               \
        return 2;                                                           \
    }
#define BAD(what)                                                           \
    do {                                                                    \
        fprintf(stderr, "cram train: %s: %s, got '%s'\n", a, what, v);      \
        return 2;                                                           \
    } while (0)
        if (OPT("--data")) { NEEDV data = v; continue; }
        if (OPT("--out")) { NEEDV out = v; continue; }
        if (OPT("--resume")) { NEEDV resume = v; continue; }
        if (OPT("--budget")) {
            NEEDV if (cram_parse_duration(v, &cfg.recipe.budget, &e)) BAD("expected a duration like 24h, 90m, 30s");
            recipe_flag = 1;
            continue;
        }
        if (OPT("--steps")) {
            NEEDV if (cli_parse_u64(v, &u) || !u) BAD("expected a positive integer");
            cfg.recipe.steps = u;
            recipe_flag = 1;
            continue;
        }
        if (OPT("--lr")) {
            NEEDV if (cli_parse_double(v, &x) || !(x > 0)) BAD("expected a positive number");
            cfg.recipe.peak_lr = x;
            recipe_flag = 1;
            continue;
        }
        if (OPT("--batch")) {
            NEEDV if (cli_parse_u64(v, &u) || !u) BAD("expected a positive integer");
            cfg.recipe.batch = u;
            recipe_flag = 1;
            continue;
        }
        if (OPT("--ramp")) {
            NEEDV if (cli_parse_double(v, &x) || x < 0 || x > 1) BAD("expected a fraction in [0, 1]");
            cfg.recipe.ramp = x;
            recipe_flag = 1;
            continue;
        }
        if (OPT("--mask-rate")) {
            NEEDV if (cli_parse_double(v, &x) || !(x > 0) || x > 1) BAD("expected a rate in (0, 1]");
            cfg.mask_rate = x;
            recipe_flag = 1;
            continue;
        }
        if (OPT("--seed")) {
            NEEDV if (cli_parse_u64(v, &u)) BAD("expected a non-negative integer");
            cfg.recipe.seed = u;
            recipe_flag = 1;
            continue;
        }
        if (strcmp(a, "--shuffle") == 0) {
            cfg.recipe.shuffle = 1;
            recipe_flag = 1;
            continue;
        }
        if (OPT("--stop-at")) {
            NEEDV if (cli_parse_u64(v, &u) || !u) BAD("expected a positive integer");
            cfg.stop_at = u;
            continue;
        }
        if (OPT("--ckpt-every")) {
            NEEDV if (strcmp(v, "0") == 0) cfg.ckpt_every_s = 0;
            else if (cram_parse_duration(v, &cfg.ckpt_every_s, &e)) BAD("expected a duration like 30m, or 0");
            continue;
        }
        if (OPT("--ckpt-steps")) {
            NEEDV if (cli_parse_u64(v, &u)) BAD("expected a non-negative integer");
            cfg.ckpt_every_steps = u;
            continue;
        }
        if (OPT("--max-bad")) {
            NEEDV if (cli_parse_u64(v, &u) || !u || u > UINT32_MAX) BAD("expected a positive integer");
            cfg.max_bad = (uint32_t)u;
            continue;
        }
        if (OPT("--device")) {
            NEEDV if (cli_parse_u64(v, &u) || u > 1024) BAD("expected a device ordinal");
            cfg.device = (int)u;
            continue;
        }
        if (OPT("--peak-tflops")) {
            NEEDV if (cli_parse_double(v, &x) || !(x > 0)) BAD("expected a positive number");
            cfg.peak_flops = x * 1e12;
            continue;
        }
        if (OPT("--progress-every")) {
            NEEDV if (strcmp(v, "0") == 0) pg.every = 0;
            else if (cram_parse_duration(v, &pg.every, &e)) BAD("expected a duration like 10s");
            continue;
        }
#undef OPT
#undef NEEDV
#undef BAD
        if (strcmp(a, "--quiet") == 0) {
            pg.quiet = 1;
            continue;
        }
        if (a[0] == '-' && a[1]) {
            fprintf(stderr, "cram train: unknown option '%s' (see cram train --help)\n", a);
            return 2;
        }
        if (step_path) {
            fprintf(stderr, "cram train: more than one step.so given ('%s', '%s')\n", step_path, a);
            return 2;
        }
        step_path = a;
    }
    if (!step_path) {
        fprintf(stderr, "cram train: no step.so given (see cram train --help)\n");
        return 2;
    }
    if (!data) {
        fprintf(stderr, "cram train: --data DIR is required\n");
        return 2;
    }
    if (!!out == !!resume) {
        fprintf(stderr, "cram train: give exactly one of --out RUN_DIR (new run) or --resume RUN_DIR\n");
        return 2;
    }
    if (resume && recipe_flag) {
        fprintf(stderr, "cram train: recipe options cannot change on --resume (the checkpoint holds them)\n");
        return 2;
    }
    if (!resume && !cfg.recipe.steps && !(cfg.recipe.budget > 0)) {
        fprintf(stderr, "cram train: give --budget T (e.g. 24h) or --steps N\n");
        return 2;
    }
    cram_err err = {0};
    cram_step_lib lib;
    if (cram_step_load(&lib, step_path, &err) != CRAM_OK) {
        fprintf(stderr, "cram train: %s\n", err.msg);
        return 1;
    }
    cfg.data_dir = data;
    cfg.run_dir = resume ? resume : out;
    cfg.resume = resume != NULL;
    cfg.stop = &g_train_stop;
    cfg.progress = on_progress;
    cfg.user = &pg;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    cram_train_result res;
    cram_status r = cram_train_run(lib.api, &cfg, &res, &err);
    cram_step_unload(&lib);
    if (r != CRAM_OK) {
        fprintf(stderr, "cram train: %s\n", err.msg);
        return 1;
    }
    switch (res.end) {
    case CRAM_END_INTERRUPTED: fprintf(stderr, "cram train: %s\n", err.msg); return 130;
    case CRAM_END_NONFINITE: fprintf(stderr, "cram train: %s\n", err.msg); return 3;
    default: break;
    }
    if (!pg.quiet)
        fprintf(stderr, "cram train: %s at step %" PRIu64 " (loss %.4f, %" PRIu64 " skipped); checkpoint %s\n",
                res.end == CRAM_END_STOP_AT ? "stopped" : "done", res.state.step, res.last_loss, res.state.skipped,
                res.checkpoint);
    return 0;
}
