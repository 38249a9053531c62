/* cmd_bench.c - `cram bench STEP.so`: times a compiled train step through the
 * step ABI (libcramrt bench.c): warm-up, then timed step()+update()
 * iterations; reports ms per iteration, tokens/s, MFU and peak memory as a
 * summary and as one JSON object whose fields match reference/bench_torch.py's.
 * Details: docs/benchmarks.md. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../bench.h"
#include "../json.h"
#include "../loader.h"
#include "cli.h"

static void jnum(FILE *f, double v) {
  if (isfinite(v)) fprintf(f, "%.9g", v);
  else fputs("null", f);
}

static void write_json(FILE *f, const char *path, const cram_step_meta *m, const cram_bench_config *c,
                       const cram_bench_result *r) {
  fputs("{\"impl\":\"cramc\",\"mode\":\"step.so\",\"artifact\":", f);
  cram_json_put_str(f, path);
  fputs(",\"model\":", f);
  cram_json_put_str(f, m->model);
  fputs(",\"target\":", f);
  cram_json_put_str(f, m->target);
  fputs(",\"device\":", f);
  cram_json_put_str(f, m->target && strcmp(m->target, "cuda") == 0 ? "cuda" : "cpu");
  fputs(",\"precision\":", f);
  cram_json_put_str(f, m->precision);
  fputs(",\"cramc_version\":", f);
  cram_json_put_str(f, m->cramc_version);
  fputs(",\"source_hash\":", f);
  cram_json_put_str(f, m->source_hash);
  fputs(",\"dims\":{", f);
  for (uint32_t i = 0; i < m->ndims; i++) {
    if (i) fputc(',', f);
    cram_json_put_str(f, m->dims[i].name);
    fprintf(f, ":%" PRId64, m->dims[i].value);
  }
  fputs("},\"data\":", f);
  cram_json_put_str(f, r->data_kind);
  fprintf(f,
          ",\"distinct_batches\":%" PRIu64 ",\"params\":%" PRId64 ",\"microbatch\":%" PRIu64 ",\"seq\":%" PRIu64
          ",\"accum\":%" PRIu64 ",\"warmup\":%" PRIu64 ",\"steps\":%" PRIu64 ",\"tokens_per_step\":%" PRIu64,
          r->distinct_batches, m->nparam_elems, r->microbatch, r->seq, c->accum, c->warmup, c->steps, r->tokens_per_iter);
  const struct {
    const char *k;
    double v;
  } nums[] = {
    { "lr", c->lr },
    { "create_s", r->create_s },
    { "timed_s", r->total_s },
    { "ms_per_step", r->ms_mean },
    { "ms_per_step_min", r->ms_min },
    { "ms_per_step_median", r->ms_median },
    { "ms_per_step_max", r->ms_max },
    { "tokens_per_s", r->tok_s },
    { "flops_per_token", r->flops_per_token },
    { "achieved_tflops", r->achieved_tflops },
    { "peak_tflops", c->peak_flops / 1e12 },
    { "mfu", r->mfu >= 0 ? r->mfu : NAN },
    { "last_grad_norm", r->last_grad_norm },
  };
  for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
    fprintf(f, ",\"%s\":", nums[i].k);
    jnum(f, nums[i].v);
  }
  fprintf(f, ",\"peak_memory_bytes\":%" PRIu64 ",\"memory_kind\":", r->peak_bytes);
  cram_json_put_str(f, r->mem_kind);
  fprintf(f, ",\"arena_bytes\":%" PRIu64 ",\"kernel_count\":%u,\"nonfinite_losses\":%" PRIu64 ",\"final_loss\":", m->arena_bytes,
          m->kernel_count, r->nonfinite);
  jnum(f, r->nlosses ? r->losses[r->nlosses - 1] : NAN);
  fputs(",\"losses\":[", f);
  for (uint64_t i = 0; i < r->nlosses; i++) {
    if (i) fputc(',', f);
    jnum(f, r->losses[i]);
  }
  fputs("]}\n", f);
}

static const char *mem_text(const char *kind) {
  if (strcmp(kind, "host-maxrss") == 0) return "process max RSS";
  if (strcmp(kind, "device-cumemgetinfo") == 0) return "device memory allocated by the step (cuMemGetInfo)";
  return "device memory, ESTIMATE: arena + 16 B/param + inputs (no cuMemGetInfo)";
}

int cram_cmd_bench(int argc, char **argv) {
  const char *path = NULL, *json = NULL;
  cram_bench_config c;
  memset(&c, 0, sizeof c);
  c.warmup = 3;
  c.steps = 20;
  c.accum = 1;
  c.lr = 1e-3;
  c.mask_rate = 0.25;
  c.peak_flops = 989e12;
  int quiet = 0, rate_set = 0;
  double peak_tflops = 989;
  uint64_t device = 0;
  const cli_opt opts[] = {
    { "--data", "DIR", CLI_STR, &c.data_dir, .help = "microbatches from the train shards of DIR (masked as cram train does)" },
    { "--batch-file", "FILE", CLI_STR, &c.batch_file,
      .help =
        "safetensors with I32 `tokens` and `targets` of shape [B,S] or\n[N,B,S]; iteration microbatch i uses batch i mod N" },
    { "--warmup", "N", CLI_U64, &c.warmup, 0, 1e6, .help = "untimed iterations (default 3)" },
    { "--steps", "N", CLI_U64, &c.steps, 1, 1e6, .help = "timed iterations (default 20)" },
    { "--accum", "K", CLI_U64, &c.accum, 1, 65536, .help = "microbatches per update (default 1)" },
    { "--lr", "X", CLI_F64, &c.lr, 0, 10, .help = "constant learning rate (default 1e-3)" },
    { "--seed", "N", CLI_U64, &c.seed, 0, 9.2e18, .help = "init and masking seed (default 0)" },
    { "--mask-rate", "P", CLI_F64, &c.mask_rate, 0, 1, 1, .seen = &rate_set,
      .help = "prediction rate when the model has no `masked` dim (default 0.25)" },
    { "--device", "N", CLI_U64, &device, 0, 1024, .help = "CUDA device ordinal (default 0)" },
    { "--peak-tflops", "X", CLI_F64, &peak_tflops, 0, 1e6, 1, .help = "device peak for MFU (default 989: H100 SXM dense bf16)" },
    { "--json", "FILE", CLI_STR, &json,
      .help = "write the result as one JSON object to FILE ('-' = stdout;\nthe summary then goes to stderr)" },
    { "--save-init", "DIR", CLI_STR, &c.save_init,
      .help = "write the initial parameters as DIR/checkpoint.safetensors,\nfor `cram export STEP.so DIR` (same init for a "
              "reference run)" },
    { "--profile", "FILE", CLI_STR, &c.profile,
      .help = "cpu target: time every kernel and write each op family's and\nthe heaviest kernels' share of an iteration (ms, "
              "MB, GB/s)\nto FILE ('-' = stdout); the kernels then run one by one\nunder a clock (docs/benchmarks.md)" },
    { "--quiet", NULL, CLI_FLAG, &quiet, .help = "no summary" },
  };
  const cli_command cmd = { "bench",
                            "usage: cram bench STEP.so [options]\n"
                            "\n"
                            "Time the train step compiled into STEP.so (cramc): WARMUP untimed iterations,\n"
                            "then STEPS timed ones; one iteration = ACCUM microbatches (forward + backward,\n"
                            "step()) and one update() (clip + AdamW) at a constant learning rate. The\n"
                            "microbatches are prepared before timing: synthetic MLM batches (uniform random\n"
                            "tokens, the model's `masked` count per sequence, 80/10/10 with [MASK] = 4)\n"
                            "unless --data or --batch-file says otherwise. Timing is wall clock around the\n"
                            "calls, which are synchronous (each returns after its result is on the host).\n"
                            "\n"
                            "Reports ms per iteration (mean, min, median, max), tokens/s, MFU = FLOPs per\n"
                            "token (the artifact's metadata: 3 x cramc --summary's forward matmul FLOPs)\n"
                            "x tokens/s / peak, and peak memory (cpu/interp: process max RSS; cuda: device\n"
                            "memory the step allocated, via cuMemGetInfo, else an estimate - the output says\n"
                            "which).\n"
                            "\n",
                            opts, sizeof opts / sizeof opts[0], "\nexit status: 0 ok, 1 error (one line on stderr), 2 usage.\n" };
  const char *pos[1];
  size_t np = 1;
  int pr = cli_parse(&cmd, argc, argv, pos, &np);
  if (pr) return pr < 0 ? 0 : pr;
  if (np) path = pos[0];
  c.peak_flops = peak_tflops * 1e12;
  c.device = (int)device;
  if (!path) {
    fprintf(stderr, "cram bench: no step.so given (see cram bench --help)\n");
    return 2;
  }
  if (c.data_dir && c.batch_file) {
    fprintf(stderr, "cram bench: give --data DIR or --batch-file FILE, not both\n");
    return 2;
  }
  cram_err err = { 0 };
  cram_step_lib lib;
  if (cram_step_load(&lib, path, &err) != CRAM_OK) {
    fprintf(stderr, "cram bench: %s\n", err.msg);
    return 1;
  }
  const cram_step_meta *m = lib.api->meta;
  if (rate_set && cram_step_dim(m, "masked", -1) >= 0) { /* honoured or refused, never ignored */
    fprintf(stderr,
            "cram bench: --mask-rate does not apply: model '%s' has the dim masked=%" PRId64
            " (recompile with cramc -D masked=M)\n",
            m->model, cram_step_dim(m, "masked", -1));
    cram_step_unload(&lib);
    return 2;
  }
  cram_bench_result r;
  if (cram_bench_run(lib.api, &c, &r, &err) != CRAM_OK) {
    fprintf(stderr, "cram bench: %s\n", err.msg);
    cram_step_unload(&lib);
    return 1;
  }
  int rc = 0;
  if (json) {
    FILE *f = strcmp(json, "-") == 0 ? stdout : fopen(json, "w");
    if (!f) {
      fprintf(stderr, "cram bench: cannot write %s\n", json);
      rc = 1;
    } else {
      write_json(f, path, m, &c, &r);
      if ((f == stdout ? fflush(f) : fclose(f)) != 0) {
        fprintf(stderr, "cram bench: error writing %s\n", json);
        rc = 1;
      }
    }
  }
  if (!quiet && rc == 0) {
    FILE *o = json && strcmp(json, "-") == 0 ? stderr : stdout;
    fprintf(o, "%s (%s, %s, %s): microbatch %" PRIu64 " x seq %" PRIu64 ", accum %" PRIu64 ", %s batches\n", m->model, m->target,
            m->precision, path, r.microbatch, r.seq, c.accum, r.data_kind);
    fprintf(o, "  %" PRIu64 " timed iterations after %" PRIu64 " warm-up: %.3f ms/step (min %.3f, median %.3f, max %.3f)\n",
            c.steps, c.warmup, r.ms_mean, r.ms_min, r.ms_median, r.ms_max);
    fprintf(o, "  %.0f tokens/s; %.4g MFLOP/token -> %.4g TFLOP/s", r.tok_s, r.flops_per_token / 1e6, r.achieved_tflops);
    if (r.mfu >= 0) fprintf(o, " = MFU %.3g%% of %.4g TFLOP/s peak\n", 100 * r.mfu, c.peak_flops / 1e12);
    else fprintf(o, " (no FLOP count in the artifact: no MFU)\n");
    fprintf(o, "  peak memory %.1f MiB (%s)\n", (double)r.peak_bytes / 1048576.0, mem_text(r.mem_kind));
    fprintf(o, "  loss: first %.6f, last %.6f", r.losses[0], r.losses[r.nlosses - 1]);
    if (r.nonfinite) fprintf(o, " (%" PRIu64 " non-finite)", r.nonfinite);
    fputc('\n', o);
  }
  if (r.nonfinite)
    fprintf(stderr, "cram bench: warning: %" PRIu64 " of %" PRIu64 " losses were not finite\n", r.nonfinite, r.nlosses);
  cram_bench_result_free(&r);
  cram_step_unload(&lib);
  return rc;
}
