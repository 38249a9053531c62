/* cmd_eval.c - `cram eval STEP.so --data DIR [--checkpoint FILE]`: mean MLM
 * loss of a compiled step on held-out shards (masked as in training, seeded),
 * with the parameters of a checkpoint or a fresh init. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../loader.h"
#include "../train.h"
#include "cli.h"

static void eval_usage(FILE *f) {
    fprintf(f,
"usage: cram eval STEP.so --data DIR [options]\n"
"\n"
"Mean masked-LM loss of the model over the held-out shards of DIR (masking as\n"
"in training: the model's `masked` count per sequence, 80/10/10, seeded).\n"
"\n"
"options:\n"
"  --data DIR          token shard directory [required]\n"
"  --checkpoint FILE   parameters from a checkpoint (default: fresh init with --seed)\n"
"  --split NAME        heldout (default) | train\n"
"  --max-seqs N        evaluate the first N sequences only (default all)\n"
"  --seed N            masking (and init) seed (default 0)\n"
"  --mask-rate P       prediction rate when the model has no `masked` dim (default 0.25)\n"
"  --device N          CUDA device ordinal (default 0)\n"
"  -h, --help          this help\n");
}

int cram_cmd_eval(int argc, char **argv) {
    const char *path = NULL, *data = NULL, *ckpt = NULL, *split = "heldout";
    uint64_t max_seqs = 0, seed = 0, dev = 0;
    double rate = 0.25;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        int m;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            eval_usage(stdout);
            return 0;
        }
        if ((m = cli_match_opt(argc, argv, &i, "--data", &v)) || (m = cli_match_opt(argc, argv, &i, "--checkpoint", &v)) ||
            (m = cli_match_opt(argc, argv, &i, "--split", &v)) || (m = cli_match_opt(argc, argv, &i, "--max-seqs", &v)) ||
            (m = cli_match_opt(argc, argv, &i, "--seed", &v)) || (m = cli_match_opt(argc, argv, &i, "--mask-rate", &v)) ||
            (m = cli_match_opt(argc, argv, &i, "--device", &v))) {
            int bad = m < 0;
            if (!bad && strncmp(a, "--data", 6) == 0) data = v;
            else if (!bad && strncmp(a, "--checkpoint", 12) == 0) ckpt = v;
            else if (!bad && strncmp(a, "--split", 7) == 0) {
                split = v;
                bad = strcmp(v, "heldout") && strcmp(v, "train");
            } else if (!bad && strncmp(a, "--max-seqs", 10) == 0) bad = cli_parse_u64(v, &max_seqs);
            else if (!bad && strncmp(a, "--seed", 6) == 0) bad = cli_parse_u64(v, &seed);
            else if (!bad && strncmp(a, "--device", 8) == 0) bad = cli_parse_u64(v, &dev) || dev > 1024;
            else if (!bad) bad = cli_parse_double(v, &rate) || !(rate > 0) || rate > 1;
            if (bad) {
                fprintf(stderr, "cram eval: bad or missing value for %s\n", a);
                return 2;
            }
            continue;
        }
        if (a[0] == '-' && a[1]) {
            fprintf(stderr, "cram eval: unknown option '%s' (see cram eval --help)\n", a);
            return 2;
        }
        if (path) {
            fprintf(stderr, "cram eval: give one step.so\n");
            return 2;
        }
        path = a;
    }
    if (!path || !data) {
        fprintf(stderr, "cram eval: need STEP.so and --data DIR (see cram eval --help)\n");
        return 2;
    }
    cram_err err = {0};
    cram_step_lib lib;
    if (cram_step_load(&lib, path, &err) != CRAM_OK) {
        fprintf(stderr, "cram eval: %s\n", err.msg);
        return 1;
    }
    /* --max-seqs below one microbatch: say so here, before the run would
     * blame the held-out set for being too small */
    const cram_step_meta *m = lib.api->meta;
    int ti = cram_step_input(m, "tokens");
    int64_t mbs = ti >= 0 && m->inputs[ti].rank == 2 ? m->inputs[ti].shape[0] : 0;
    if (max_seqs && mbs > 0 && max_seqs < (uint64_t)mbs) {
        fprintf(stderr, "cram eval: --max-seqs %" PRIu64 " is less than one microbatch of model '%s' (%" PRId64
                        " sequences): give at least %" PRId64 "\n",
                max_seqs, m->model, mbs, mbs);
        cram_step_unload(&lib);
        return 2;
    }
    double loss = 0;
    uint64_t n = 0;
    cram_status r = cram_eval_run(lib.api, data, split, ckpt, seed, rate, max_seqs, (int)dev, &loss, &n, &err);
    /* the result first: nothing after the run may lose it */
    int rc = 0;
    if (r != CRAM_OK) {
        fprintf(stderr, "cram eval: %s\n", err.msg);
        rc = 1;
    } else {
        printf("%s: %s loss %.6f over %" PRIu64 " sequences (perplexity %.3f)\n", data, split, loss, n, exp(loss));
        if (fflush(stdout) != 0) {
            fprintf(stderr, "cram eval: cannot write the result to stdout\n");
            rc = 1;
        }
    }
    cram_step_unload(&lib);
    return rc;
}
