/* cmd_train.c - `cram train`: train a compiled step (step.so) on token
 * shards with the Cramming recipe (libcramrt train.c); prints a progress
 * line, writes metrics.jsonl and checkpoints into the run directory.
 * SIGINT/SIGTERM/SIGHUP set a flag (acknowledged at once); the loop stops
 * between microbatches, discards the partial update, checkpoints and the
 * command exits 130. A second signal exits at once (the last checkpoint is
 * intact: writes are atomic). Details: docs/training.md. */
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

static volatile sig_atomic_t g_train_stop; /* set by SIGINT/SIGTERM/SIGHUP */
/* what the handler says: 2 one process, 1 rank 0 of several, 0 the other ranks (the
 * launcher signals every rank; one line is enough). Set once before the handler is installed. */
static volatile sig_atomic_t g_signal_say = 2;

static void on_signal(int sig) {
  (void)sig;
  static const char first[] = "\ncram train: stopping after the current microbatch (the partial update is "
                              "discarded), then checkpointing; signal again to quit at once\n";
  static const char first_many[] = "\ncram train: all ranks stop after the current update, then checkpoint; "
                                   "signal again to quit at once\n";
  static const char again[] = "\ncram train: quitting without a checkpoint (the last one is intact)\n";
  if (g_train_stop) {
    if (g_signal_say && write(2, again, sizeof again - 1) < 0) _exit(130);
    _exit(130);
  }
  g_train_stop = 1;
  if (g_signal_say == 2 && write(2, first, sizeof first - 1) < 0) return;
  if (g_signal_say == 1 && write(2, first_many, sizeof first_many - 1) < 0) return;
}

typedef struct prog {
  int quiet;
  double every, last;
} prog;

static void fmt_time(char *b, size_t n, double s) {
  if (s < 0 || !isfinite(s)) snprintf(b, n, "?");
  else if (s < 3600) snprintf(b, n, "%dm%02ds", (int)(s / 60), (int)s % 60);
  else snprintf(b, n, "%dh%02dm", (int)(s / 3600), (int)(s / 60) % 60);
}

static void on_progress(const cram_train_progress *p, void *user) {
  prog *g = user;
  if (g->quiet) return;
  double t = cli_now();
  if (p->attempts > 1 && t - g->last < g->every) return;
  g->last = t;
  char el[32], eta[32], mfu[32] = "";
  fmt_time(el, sizeof el, p->elapsed);
  fmt_time(eta, sizeof eta, p->eta);
  if (p->mfu >= 0) snprintf(mfu, sizeof mfu, "  mfu %.1f%%", 100 * p->mfu);
  fprintf(stderr, "step %" PRIu64 "  tokens %.4gM  loss %.4f  lr %.3g  batch %" PRIu64 "  %.0f tok/s%s  %s  eta %s%s\n", p->step,
          (double)p->tokens / 1e6, p->loss, p->lr, p->batch, p->tok_s, mfu, el, eta,
          p->skipped ? "  (skipped updates so far: see metrics)" : "");
}

static void on_notice(int important, const char *line, void *user) {
  const prog *g = user;
  if (!g->quiet || important) fprintf(stderr, "cram train: %s\n", line);
}

static const char *const lr_shapes[] = { "triangle", "one-cycle", "cosine", "constant", NULL };
static const char *const wd_skips[] = { "norms-biases", "none", NULL };

typedef struct train_args {
  const char *data, *out, *resume;
  cram_train_config cfg;
  prog pg;
  double tokens, flops, ckpt_every, progress_every, peak_tflops, beta1, beta2, eps, wd, clip, warmup;
  uint64_t max_bad, device;
  int lr_shape, wd_skip, force, recipe_set, warmup_set, batch_set, device_set;
} train_args;

static int usage_err(const char *msg) {
  fprintf(stderr, "cram train: %s (see cram train --help)\n", msg);
  return 2;
}

/* The flags into a config, with the combinations the table cannot check. */
static int parse_train_args(train_args *A, int argc, char **argv, const char **step_path) {
  cram_train_config *cfg = &A->cfg;
  cram_train_state *rc = &cfg->recipe;
  cram_update_args rec = CRAM_UPDATE_ARGS_RECIPE(0.0f, 1);
  rc->peak_lr = 1e-3, rc->ramp = 0.6, rc->batch = 0;
  A->beta1 = rec.beta1, A->beta2 = rec.beta2, A->eps = rec.eps, A->wd = rec.weight_decay, A->clip = rec.max_norm;
  cfg->mask_rate = 0.25, A->ckpt_every = 1800, A->max_bad = 10, A->peak_tflops = 989, A->progress_every = 10;
  cfg->eval_seqs = 256;
  int *R = &A->recipe_set;
  const cli_opt opts[] = {
    { "--data", "DIR", CLI_STR, &A->data, .section = "run options", .help = "token shard directory (`cram data`) [required]" },
    { "--out", "RUN_DIR", CLI_STR, &A->out,
      .help =
        "new run directory, created with its parents (refused if it holds a\ncheckpoint, or metrics.jsonl without --force)" },
    { "--resume", "RUN_DIR", CLI_STR, &A->resume, .help = "continue the run in RUN_DIR from its checkpoint" },
    { "--force", NULL, CLI_FLAG, &A->force,
      .help = "with --out: replace the metrics.jsonl of an earlier run that has no checkpoint" },
    { "--stop-at", "N", CLI_U64, &cfg->stop_at, 1, 1e15, .help = "checkpoint and stop (exit 0) after update N" },
    { "--ckpt-every", "T", CLI_DURATION, &A->ckpt_every, 0, 1e8,
      .help = "checkpoint every T of wall clock (default 30m; 0 = off)" },
    { "--ckpt-steps", "N", CLI_U64, &cfg->ckpt_every_steps, 0, 1e15, .help = "checkpoint every N updates (default 0 = off)" },
    { "--eval-every", "N", CLI_U64, &cfg->eval_every, 0, 1e15,
      .help = "held-out loss every N updates (metrics `eval_loss`; default 0 = off)" },
    { "--eval-seqs", "N", CLI_U64, &cfg->eval_seqs, 0, 1e12, .help = "held-out sequences per evaluation (default 256; 0 = all)" },
    { "--max-bad", "K", CLI_U64, &A->max_bad, 1, 1e9, .help = "stop after K non-finite updates in a row (default 10)" },
    { "--device", "N", CLI_U64, &A->device, 0, 1024, .seen = &A->device_set,
      .help = "CUDA device ordinal (default 0; under MPI the rank's local rank)" },
    { "--peak-tflops", "X", CLI_F64, &A->peak_tflops, 0, 1e6, 1,
      .help = "device peak for the MFU estimate (default 989, H100 bf16)" },
    { "--progress-every", "T", CLI_DURATION, &A->progress_every, 0, 1e8,
      .help = "print a progress line at most every T (default 10s)" },
    { "--quiet", NULL, CLI_FLAG, &A->pg.quiet, .help = "no progress lines (warnings still print)" },
    { "--steps", "N", CLI_U64, &rc->steps, 1, 1e12, .seen = R,
      .section = "budget (one horizon; the lr schedule and the batch ramp follow it)",
      .help = "step horizon: t = step/N, stop after N updates (reproducible)" },
    { "--tokens", "N", CLI_COUNT, &A->tokens, 1, 1e18, .seen = R,
      .help = "token horizon, e.g. 20M: t = tokens/N (reproducible)" },
    { "--flops", "X", CLI_COUNT, &A->flops, 1, 1e30, .seen = R,
      .help = "model-FLOP horizon, e.g. 3e15: t = tokens x FLOPs/token / X (reproducible)" },
    { "--budget", "T", CLI_DURATION, &rc->budget, 1e-3, 1e8, .seen = R,
      .help = "wall clock, e.g. 24h, 90m, 30s: the horizon when none of the\nabove is given (t = elapsed/T), else a deadline; "
              "stops within a\nmicrobatch of T (the partial update is discarded)" },
    { "--lr", "X", CLI_F64, &rc->peak_lr, 0, 10, 1, .seen = R,
      .section = "recipe (new runs; a resumed run keeps the checkpoint's)", .help = "peak learning rate (default 1e-3)" },
    { "--lr-shape", "S", CLI_CHOICE, &A->lr_shape, .choices = lr_shapes, .seen = R,
      .help = "triangle (default: the recipe's budget-triangle, 0.25 -> 1 at\nt=0.75 -> 0), one-cycle, cosine or constant" },
    { "--warmup", "F", CLI_F64, &A->warmup, 0, 1, .seen = &A->warmup_set,
      .help = "fraction of the horizon the lr warms up over, for one-cycle\n(default 0.3), cosine (0.1), constant (0)" },
    { "--batch", "N", CLI_U64, &rc->batch, 1, 1 << 24, .seen = &A->batch_set,
      .help = "target batch in sequences, a multiple of the model's microbatch\n(default: 8192 on cuda; 4 microbatches on "
              "cpu/interp)" },
    { "--ramp", "F", CLI_F64, &rc->ramp, 0, 1, .seen = R,
      .help = "fraction of the horizon to reach --batch (default 0.6; 0 = full\nbatch from the start)" },
    { "--beta1", "B", CLI_F64, &A->beta1, 0, 0.999999, .seen = R, .help = "AdamW first-moment decay (default 0.9)" },
    { "--beta2", "B", CLI_F64, &A->beta2, 0, 0.999999, .seen = R, .help = "AdamW second-moment decay (default 0.98)" },
    { "--eps", "E", CLI_F64, &A->eps, 0, 0.1, .seen = R, .help = "AdamW epsilon (default 1e-12)" },
    { "--weight-decay", "W", CLI_F64, &A->wd, 0, 0.99, .seen = R, .help = "decoupled weight decay (default 0.01)" },
    { "--wd-skip", "S", CLI_CHOICE, &A->wd_skip, .choices = wd_skips, .seen = R,
      .help = "parameters without weight decay: norms-biases (default: those\nthe model marks decay=0) or none (decay every "
              "parameter)" },
    { "--clip", "X", CLI_F64, &A->clip, 0, 1e6, .seen = R, .help = "global gradient-norm clip (default 0.5; 0 = off)" },
    { "--mask-rate", "P", CLI_F64, &cfg->mask_rate, 0, 1, 1, .seen = &cfg->mask_rate_set,
      .help =
        "prediction rate for models without a `masked` dim (default 0.25;\nan error with one: recompile with -D masked=M)" },
    { "--seed", "N", CLI_U64, &rc->seed, 0, 9.2e18, .seen = R, .help = "init, masking, dropout and shuffle seed (default 0)" },
    { "--shuffle", NULL, CLI_FLAG, &rc->shuffle, .seen = R,
      .help = "read sequences in a seeded per-epoch permutation (default: in\nshard order, which keeps a curriculum)" },
  };
  const cli_command cmd = {
    "train",
    "usage: cram train STEP.so --data DIR --out RUN_DIR (--steps N | --tokens N | --flops X | --budget T) [options]\n"
    "       cram train STEP.so --data DIR --resume RUN_DIR [run options]\n"
    "\n"
    "Pretrain the model compiled into STEP.so (cramc) on the train-*.shard files\n"
    "of DIR with the Cramming recipe: MLM masking (the model's `masked` count per\n"
    "sequence, 80/10/10), budget-triangle learning rate, batch-size ramp by\n"
    "gradient accumulation, AdamW + clipping with the settings below (passed to\n"
    "the step at run time), dropout active where the model has it.\n"
    "Writes RUN_DIR/metrics.jsonl and RUN_DIR/checkpoint.safetensors.\n"
    "\n",
    opts, sizeof opts / sizeof opts[0],
    cram_dist_built_with_mpi() ? "\ndata parallel: mpirun -np N cram train ... runs N ranks, each a share of every\n"
                                 "batch (this build has MPI; NCCL for cuda steps; docs/distributed.md).\n"
                                 "\nexit status: 0 done (or --stop-at), 1 error, 2 usage, 3 stopped on non-finite\n"
                                 "values (checkpoint written), 130 interrupted (checkpoint written).\n"
                               : "\ndata parallel: not available, this build has no MPI (docs/distributed.md).\n"
                                 "\nexit status: 0 done (or --stop-at), 1 error, 2 usage, 3 stopped on non-finite\n"
                                 "values (checkpoint written), 130 interrupted (checkpoint written).\n"
  };
  const char *pos[1];
  size_t np = 1;
  int r = cli_parse(&cmd, argc, argv, pos, &np);
  if (r) return r < 0 ? -1 : r;
  if (np == 0) return usage_err("no step.so given");
  *step_path = pos[0];
  if (!A->data) return usage_err("--data DIR is required");
  if (!!A->out == !!A->resume) return usage_err("give exactly one of --out RUN_DIR (new run) or --resume RUN_DIR");
  if (A->resume && (A->recipe_set || A->batch_set || A->warmup_set || cfg->mask_rate_set))
    return usage_err("recipe options cannot change on --resume (the checkpoint holds them)");
  if (A->resume && A->force) return usage_err("--force applies to --out only");
  int horizons = (rc->steps > 0) + (A->tokens > 0) + (A->flops > 0);
  if (horizons > 1) return usage_err("give one of --steps, --tokens, --flops (with --budget as a deadline if wanted)");
  if (!A->resume && !horizons && !(rc->budget > 0)) return usage_err("give --steps N, --tokens N, --flops X or --budget T");
  if (A->warmup_set && A->lr_shape == CRAM_LR_TRIANGLE)
    return usage_err("--warmup applies to --lr-shape one-cycle, cosine or constant; the triangle's shape is fixed");
  rc->budget_tokens = (uint64_t)A->tokens;
  rc->budget_flops = A->flops;
  rc->lr_shape = A->lr_shape;
  rc->warmup = A->warmup_set ? A->warmup : A->lr_shape == CRAM_LR_ONE_CYCLE ? 0.3 : A->lr_shape == CRAM_LR_COSINE ? 0.1 : 0;
  rc->beta1 = A->beta1, rc->beta2 = A->beta2, rc->eps = A->eps, rc->weight_decay = A->wd, rc->max_norm = A->clip;
  rc->weight_decay_other = A->wd_skip == 1 ? A->wd : 0;
  cfg->ckpt_every_s = A->ckpt_every;
  cfg->max_bad = (uint32_t)A->max_bad;
  cfg->device = (int)A->device;
  cfg->peak_flops = A->peak_tflops * 1e12;
  cfg->force = A->force;
  A->pg.every = A->progress_every;
  return 0;
}

static void install_signals(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGHUP, &sa, NULL);
}

/* The outcome as a message and an exit status (printed before the step is unloaded). */
static int report(const cram_train_result *res, cram_status r, const cram_err *err, const prog *pg) {
  if (r != CRAM_OK) {
    fprintf(stderr, "cram train: %s\n", err->msg);
    return 1;
  }
  switch (res->end) {
  case CRAM_END_INTERRUPTED: fprintf(stderr, "cram train: %s\n", err->msg); return 130;
  case CRAM_END_NONFINITE: fprintf(stderr, "cram train: %s\n", err->msg); return 3;
  default: break;
  }
  if (!pg->quiet) {
    char ev[96] = "";
    if (!isnan(res->last_eval) && !isnan(res->last_eval_accuracy))
      snprintf(ev, sizeof ev, ", held-out loss %.4f, accuracy %.4f", res->last_eval, res->last_eval_accuracy);
    else if (!isnan(res->last_eval)) snprintf(ev, sizeof ev, ", held-out loss %.4f", res->last_eval);
    fprintf(stderr, "cram train: %s at step %" PRIu64 " (loss %.4f%s, %" PRIu64 " skipped); checkpoint %s\n",
            res->end == CRAM_END_STOP_AT ? "stopped" : "done", res->state.step, res->last_loss, ev, res->state.skipped,
            res->checkpoint);
  }
  return 0;
}

int cram_cmd_train(int argc, char **argv) {
  train_args A;
  memset(&A, 0, sizeof A);
  const char *step_path = NULL;
  int pr = parse_train_args(&A, argc, argv, &step_path);
  if (pr) return pr < 0 ? 0 : pr;
  cram_err err = { 0 };
  cram_dist dist;
  if (cram_dist_init(&dist, &err) != CRAM_OK) {
    fprintf(stderr, "cram train: %s\n", err.msg);
    return 1;
  }
  cram_step_lib lib;
  memset(&lib, 0, sizeof lib);
  cram_status lr = cram_step_load(&lib, step_path, &err);
  if ((lr = cram_dist_agree(&dist, lr, NULL, 0, &err)) != CRAM_OK) {
    if (dist.rank == 0) fprintf(stderr, "cram train: %s\n", err.msg);
    if (lib.api) cram_step_unload(&lib);
    cram_dist_finalize(&dist);
    return 1;
  }
  if (dist.size > 1 && !A.device_set) A.cfg.device = dist.local_rank; /* one GPU per rank of a node */
  A.cfg.dist = &dist;
  g_signal_say = dist.size < 2 ? 2 : dist.rank == 0 ? 1 : 0;
  A.cfg.data_dir = A.data;
  A.cfg.run_dir = A.resume ? A.resume : A.out;
  A.cfg.resume = A.resume != NULL;
  A.cfg.stop = &g_train_stop;
  A.cfg.progress = on_progress;
  A.cfg.notice = on_notice;
  A.cfg.user = &A.pg;
  install_signals();
  cram_train_result res;
  cram_status r = cram_train_run(lib.api, &A.cfg, &res, &err);
  /* every rank ends the same way; rank 0 says how */
  int code = dist.rank == 0                    ? report(&res, r, &err, &A.pg)
             : r != CRAM_OK                    ? 1
             : res.end == CRAM_END_INTERRUPTED ? 130
             : res.end == CRAM_END_NONFINITE   ? 3
                                               : 0;
  fflush(stderr);
  cram_step_unload(&lib);
  cram_dist_finalize(&dist);
  return code;
}
