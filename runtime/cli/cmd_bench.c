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
#include "../loader.h"
#include "cli.h"

static void bench_usage(FILE *f) {
    fprintf(f,
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
"\n"
"options:\n"
"  --data DIR          microbatches from the train shards of DIR (masked as cram train does)\n"
"  --batch-file FILE   safetensors with I32 `tokens` and `targets` of shape [B,S] or\n"
"                      [N,B,S]; iteration microbatch i uses batch i mod N\n"
"  --warmup N          untimed iterations (default 3)\n"
"  --steps N           timed iterations (default 20)\n"
"  --accum K           microbatches per update (default 1)\n"
"  --lr X              constant learning rate (default 1e-3)\n"
"  --seed N            init and masking seed (default 0)\n"
"  --mask-rate P       prediction rate when the model has no `masked` dim (default 0.25)\n"
"  --device N          CUDA device ordinal (default 0)\n"
"  --peak-tflops X     device peak for MFU (default 989: H100 SXM dense bf16)\n"
"  --json FILE         write the result as one JSON object to FILE ('-' = stdout;\n"
"                      the summary then goes to stderr)\n"
"  --save-init DIR     write the initial parameters as DIR/checkpoint.safetensors,\n"
"                      for `cram export STEP.so DIR` (same init for a reference run)\n"
"  --profile FILE      cpu target: time every kernel and write each op family's and\n"
"                      the heaviest kernels' share of an iteration (ms, MB, GB/s)\n"
"                      to FILE ('-' = stdout); the kernels then run one by one\n"
"                      under a clock (docs/benchmarks.md)\n"
"  --quiet             no summary\n"
"  -h, --help          this help\n"
"\n"
"exit status: 0 ok, 1 error (one line on stderr), 2 usage.\n");
}

static void jstr(FILE *f, const char *s) {
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        if (*p == '"' || *p == '\\') fprintf(f, "\\%c", *p);
        else if (*p < 0x20) fprintf(f, "\\u%04x", *p);
        else fputc(*p, f);
    }
    fputc('"', f);
}

static void jnum(FILE *f, double v) {
    if (isfinite(v)) fprintf(f, "%.9g", v);
    else fputs("null", f);
}

static void write_json(FILE *f, const char *path, const cram_step_meta *m, const cram_bench_config *c,
                       const cram_bench_result *r) {
    fputs("{\"impl\":\"cramc\",\"mode\":\"step.so\",\"artifact\":", f);
    jstr(f, path);
    fputs(",\"model\":", f);
    jstr(f, m->model);
    fputs(",\"target\":", f);
    jstr(f, m->target);
    fputs(",\"device\":", f);
    jstr(f, m->target && strcmp(m->target, "cuda") == 0 ? "cuda" : "cpu");
    fputs(",\"precision\":", f);
    jstr(f, m->precision);
    fputs(",\"cramc_version\":", f);
    jstr(f, m->cramc_version);
    fputs(",\"source_hash\":", f);
    jstr(f, m->source_hash);
    fputs(",\"dims\":{", f);
    for (uint32_t i = 0; i < m->ndims; i++) {
        if (i) fputc(',', f);
        jstr(f, m->dims[i].name);
        fprintf(f, ":%" PRId64, m->dims[i].value);
    }
    fputs("},\"data\":", f);
    jstr(f, r->data_kind);
    fprintf(f,
            ",\"distinct_batches\":%" PRIu64 ",\"params\":%" PRId64 ",\"microbatch\":%" PRIu64 ",\"seq\":%" PRIu64
            ",\"accum\":%" PRIu64 ",\"warmup\":%" PRIu64 ",\"steps\":%" PRIu64 ",\"tokens_per_step\":%" PRIu64,
            r->distinct_batches, m->nparam_elems, r->microbatch, r->seq, c->accum, c->warmup, c->steps,
            r->tokens_per_iter);
    const struct { const char *k; double v; } nums[] = {
        {"lr", c->lr},
        {"create_s", r->create_s},
        {"timed_s", r->total_s},
        {"ms_per_step", r->ms_mean},
        {"ms_per_step_min", r->ms_min},
        {"ms_per_step_median", r->ms_median},
        {"ms_per_step_max", r->ms_max},
        {"tokens_per_s", r->tok_s},
        {"flops_per_token", r->flops_per_token},
        {"achieved_tflops", r->achieved_tflops},
        {"peak_tflops", c->peak_flops / 1e12},
        {"mfu", r->mfu >= 0 ? r->mfu : NAN},
        {"last_grad_norm", r->last_grad_norm},
    };
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
        fprintf(f, ",\"%s\":", nums[i].k);
        jnum(f, nums[i].v);
    }
    fprintf(f, ",\"peak_memory_bytes\":%" PRIu64 ",\"memory_kind\":", r->peak_bytes);
    jstr(f, r->mem_kind);
    fprintf(f, ",\"arena_bytes\":%" PRIu64 ",\"kernel_count\":%u,\"nonfinite_losses\":%" PRIu64 ",\"final_loss\":",
            m->arena_bytes, m->kernel_count, r->nonfinite);
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
    int quiet = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        int m;
        uint64_t u;
        double x;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            bench_usage(stdout);
            return 0;
        }
#define OPT(name) ((m = cli_match_opt(argc, argv, &i, name, &v)) != 0)
#define NEEDV                                                           \
    if (m < 0) {                                                        \
        fprintf(stderr, "cram bench: %s needs a value\n", a);           \
        return 2;                                                       \
    }
#define BAD(what)                                                       \
    do {                                                                \
        fprintf(stderr, "cram bench: %s: %s, got '%s'\n", a, what, v);  \
        return 2;                                                       \
    } while (0)
        if (OPT("--data")) { NEEDV c.data_dir = v; continue; }
        if (OPT("--batch-file")) { NEEDV c.batch_file = v; continue; }
        if (OPT("--json")) { NEEDV json = v; continue; }
        if (OPT("--save-init")) { NEEDV c.save_init = v; continue; }
        if (OPT("--profile")) { NEEDV c.profile = v; continue; }
        if (OPT("--warmup")) {
            NEEDV if (cli_parse_u64(v, &u) || u > 1000000) BAD("expected a non-negative integer");
            c.warmup = u;
            continue;
        }
        if (OPT("--steps")) {
            NEEDV if (cli_parse_u64(v, &u) || !u || u > 1000000) BAD("expected a positive integer");
            c.steps = u;
            continue;
        }
        if (OPT("--accum")) {
            NEEDV if (cli_parse_u64(v, &u) || !u || u > 65536) BAD("expected a positive integer");
            c.accum = u;
            continue;
        }
        if (OPT("--lr")) {
            NEEDV if (cli_parse_double(v, &x) || !(x >= 0) || !isfinite(x)) BAD("expected a non-negative number");
            c.lr = x;
            continue;
        }
        if (OPT("--seed")) {
            NEEDV if (cli_parse_u64(v, &u)) BAD("expected a non-negative integer");
            c.seed = u;
            continue;
        }
        if (OPT("--mask-rate")) {
            NEEDV if (cli_parse_double(v, &x) || !(x > 0) || x > 1) BAD("expected a rate in (0, 1]");
            c.mask_rate = x;
            continue;
        }
        if (OPT("--device")) {
            NEEDV if (cli_parse_u64(v, &u) || u > 1024) BAD("expected a device ordinal");
            c.device = (int)u;
            continue;
        }
        if (OPT("--peak-tflops")) {
            NEEDV if (cli_parse_double(v, &x) || !(x > 0) || !isfinite(x)) BAD("expected a positive number");
            c.peak_flops = x * 1e12;
            continue;
        }
#undef OPT
#undef NEEDV
#undef BAD
        if (strcmp(a, "--quiet") == 0) {
            quiet = 1;
            continue;
        }
        if (a[0] == '-' && a[1]) {
            fprintf(stderr, "cram bench: unknown option '%s' (see cram bench --help)\n", a);
            return 2;
        }
        if (path) {
            fprintf(stderr, "cram bench: more than one step.so given ('%s', '%s')\n", path, a);
            return 2;
        }
        path = a;
    }
    if (!path) {
        fprintf(stderr, "cram bench: no step.so given (see cram bench --help)\n");
        return 2;
    }
    if (c.data_dir && c.batch_file) {
        fprintf(stderr, "cram bench: give --data DIR or --batch-file FILE, not both\n");
        return 2;
    }
    cram_err err = {0};
    cram_step_lib lib;
    if (cram_step_load(&lib, path, &err) != CRAM_OK) {
        fprintf(stderr, "cram bench: %s\n", err.msg);
        return 1;
    }
    const cram_step_meta *m = lib.api->meta;
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
        fprintf(o, "%s (%s, %s, %s): microbatch %" PRIu64 " x seq %" PRIu64 ", accum %" PRIu64 ", %s batches\n",
                m->model, m->target, m->precision, path, r.microbatch, r.seq, c.accum, r.data_kind);
        fprintf(o, "  %" PRIu64 " timed iterations after %" PRIu64 " warm-up: %.3f ms/step (min %.3f, median %.3f, max %.3f)\n",
                c.steps, c.warmup, r.ms_mean, r.ms_min, r.ms_median, r.ms_max);
        fprintf(o, "  %.0f tokens/s; %.4g MFLOP/token -> %.4g TFLOP/s", r.tok_s, r.flops_per_token / 1e6,
                r.achieved_tflops);
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
