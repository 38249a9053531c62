/* cmd_glue.c - `cram glue --init CKPT --glue DIR --model FILE.cram --vocab V`:
 * the GLUE table of a pretrained encoder (runtime/glue_run.c). */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "../glue_run.h"
#include "cli.h"

static void glue_usage(FILE *f) {
    fprintf(f,
"usage: cram glue --init CKPT --glue DIR --model FILE.cram --vocab FILE [options]\n"
"\n"
"The Cramming paper's GLUE protocol: for every task directory in DIR\n"
"(CoLA SST-2 MRPC STS-B QQP MNLI QNLI RTE, as distributed), compile FILE.cram\n"
"for the task's class count (cramc -D classes=C -D batch=B plus your -D dims,\n"
"which must match the pretrained model; STS-B: the regression model), finetune\n"
"it --seeds times from CKPT with the GLUE recipe, and report the dev metric per\n"
"seed, the median and the average (MNLI matched and mismatched counted apart,\n"
"no WNLI). Writes\n"
"OUT/glue.json and OUT/glue.md; missing tasks are listed as skipped.\n"
"\n"
"options:\n"
"  --init CKPT         `cram train` checkpoint / run directory, `cram export` file,\n"
"                      or `random` (the random-init baseline) [required]\n"
"  --glue DIR          the GLUE root (glue_data) [required]\n"
"  --model FILE        classifier .cram, e.g. models/ablations/finetune_classifier.cram [required]\n"
"  --vocab FILE        vocab.txt of the pretraining data (or its cram data directory) [required]\n"
"  --regression-model FILE  STS-B's .cram, one output + MSE (default:\n"
"                      finetune_regression.cram beside --model)\n"
"  -D NAME=VALUE       a dim for every compile (hidden, layers, vocab, seq, ...)\n"
"  --target T          cramc --target (default: cramc's)\n"
"  --cramc PATH        the compiler (default: $CRAMC, beside cram, PATH)\n"
"  --out DIR           (default glue-run)\n"
"  --seeds N           finetunings per task; the median is reported (default 5)\n"
"  --tasks LIST        only these tasks (e.g. cola,sst2,rte); the rest are skipped\n"
"  --batch N           (default 16)\n"
"  --lr X, --epochs N, --warmup F, --dropout on|off, --seed N, --max-train N,\n"
"  --max-steps N       as cram finetune (defaults: 4e-5, 5, 0.1, on, 0)\n"
"  --quiet             no progress lines\n"
"  -h, --help          this help\n");
}

int cram_cmd_glue(int argc, char **argv) {
    cram_glue_opts o;
    memset(&o, 0, sizeof o);
    cram_ft_config_default(&o.ft);
    o.out_dir = "glue-run", o.seeds = 5, o.batch = 16, o.log = stderr;
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1); /* cramc is looked for beside cram */
    if (n > 0) self[n] = '\0', o.cram_path = self;
    const char *init = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        int m = 0, bad = 0;
        uint64_t u = 0;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) return glue_usage(stdout), 0;
        if (!strcmp(a, "--quiet")) { o.log = NULL; continue; }
#define OPT(name) (m = cli_match_opt(argc, argv, &i, name, &v)) != 0 && (bad = m < 0, 1)
        if (OPT("--init")) init = v;
        else if (OPT("--glue")) o.glue_dir = v;
        else if (OPT("--model")) o.model = v;
        else if (OPT("--regression-model")) o.regression_model = v;
        else if (OPT("--vocab")) o.ft.vocab = v;
        else if (OPT("-D")) {
            bad = bad || !strchr(v, '=') || o.ndefines == CRAM_GLUE_MAX_DEFINES;
            if (!bad) o.defines[o.ndefines++] = v;
        } else if (OPT("--target")) o.target = v;
        else if (OPT("--cramc")) o.cramc = v;
        else if (OPT("--out")) o.out_dir = v;
        else if (OPT("--tasks")) o.tasks = v;
        else if (OPT("--seeds")) bad = bad || cli_parse_u64(v, &u) || u < 1 || u > CRAM_GLUE_MAX_SEEDS, o.seeds = (uint32_t)u;
        else if (OPT("--batch")) bad = bad || cli_parse_u64(v, &u) || u < 1 || u > 65536, o.batch = (uint32_t)u;
        else if (OPT("--lr")) bad = bad || cli_parse_double(v, &o.ft.lr) || !(o.ft.lr > 0);
        else if (OPT("--warmup")) bad = bad || cli_parse_double(v, &o.ft.warmup) || !(o.ft.warmup >= 0 && o.ft.warmup < 1);
        else if (OPT("--epochs")) bad = bad || cli_parse_u64(v, &u) || u < 1 || u > 1000, o.ft.epochs = (uint32_t)u;
        else if (OPT("--dropout")) bad = bad || (strcmp(v, "on") && strcmp(v, "off")), o.ft.dropout = !bad && !strcmp(v, "on");
        else if (OPT("--seed")) bad = bad || cli_parse_u64(v, &o.ft.seed);
        else if (OPT("--max-train")) bad = bad || cli_parse_u64(v, &o.ft.max_train);
        else if (OPT("--max-steps")) bad = bad || cli_parse_u64(v, &o.ft.max_steps);
        else {
            fprintf(stderr, "cram glue: unknown argument '%s' (see cram glue --help)\n", a);
            return 2;
        }
#undef OPT
        if (bad) {
            fprintf(stderr, "cram glue: bad or missing value for %s\n", a);
            return 2;
        }
    }
    if (!init || !o.glue_dir || !o.model || !o.ft.vocab) {
        fprintf(stderr, "cram glue: need --init, --glue, --model and --vocab (see cram glue --help)\n");
        return 2;
    }
    o.ft.init = strcmp(init, "random") ? init : NULL;
    cram_err err = {0};
    cram_glue_table t;
    cram_status r = cram_glue_run(&o, &t, &err);
    if (r != CRAM_OK) {
        fprintf(stderr, "cram glue: %s\n", err.msg);
        return 1;
    }
    cram_glue_print(stdout, &t, o.seeds);
    char path[4096];
    snprintf(path, sizeof path, "%s/glue.json", o.out_dir);
    if ((r = cram_glue_write_json(path, &o, &t, &err)) == CRAM_OK) {
        snprintf(path, sizeof path, "%s/glue.md", o.out_dir);
        r = cram_glue_write_md(path, &o, &t, &err);
    }
    if (r != CRAM_OK) {
        fprintf(stderr, "cram glue: %s\n", err.msg);
        return 1;
    }
    if (o.log) fprintf(o.log, "glue: wrote %s/glue.json and %s/glue.md\n", o.out_dir, o.out_dir);
    return 0;
}
