/* cmd_finetune.c - `cram finetune STEP.so --task DIR --vocab V [--init CKPT]`:
 * finetune a compiled classifier on one GLUE-layout task (runtime/finetune.c). */
#include <stdio.h>
#include <string.h>

#include "../finetune.h"
#include "../loader.h"
#include "cli.h"

static void finetune_usage(FILE *f) {
    fprintf(f,
"usage: cram finetune STEP.so --task DIR --vocab FILE [--init CKPT] [options]\n"
"\n"
"Finetunes a compiled classifier (models/ablations/finetune_classifier.cram\n"
"built with -D classes/layers/hidden/vocab of the pretrained model, -D batch=16)\n"
"on the task in DIR (train.tsv + dev.tsv, MNLI: dev_matched.tsv +\n"
"dev_mismatched.tsv) with the Cramming GLUE recipe, evaluating on dev after\n"
"every epoch. The batch size is the step's compiled `batch`.\n"
"\n"
"options:\n"
"  --task DIR          a GLUE task directory (CoLA, SST-2, ...) [required]\n"
"  --layout NAME       file layout of DIR (cola, sst2, mrpc, qqp, mnli, qnli, rte;\n"
"                      default: DIR's own name)\n"
"  --vocab FILE        vocab.txt of the pretraining data, or its `cram data` directory [required]\n"
"  --init CKPT         pretrained encoder: a `cram train` checkpoint (file or run\n"
"                      directory) or a `cram export` safetensors (default: random init)\n"
"  --head LIST         name prefixes of the new head, initialised by the .cram\n"
"                      (default pooler.,classifier.)\n"
"  --out DIR           run directory: metrics.jsonl, checkpoint.safetensors\n"
"  --resume            continue the run in --out from its checkpoint (same flags)\n"
"  --lr X              peak learning rate (default 4e-5)\n"
"  --warmup F          warm-up fraction of the cosine schedule (default 0.1)\n"
"  --epochs N          (default 5)\n"
"  --dropout on|off    dropout while training (default on)\n"
"  --seed N            head init, data order and dropout (default 0)\n"
"  --max-steps N       stop after N updates (with a checkpoint)\n"
"  --max-train N       use the first N training examples\n"
"  --ckpt-every N      also checkpoint every N updates (default: each epoch)\n"
"  --device N          CUDA device ordinal (default 0)\n"
"  --quiet             no progress lines\n"
"  -h, --help          this help\n"
"\n"
"  --beta1 X, --beta2 X, --eps X, --weight-decay X, --clip X\n"
"                      AdamW and the global-norm clip, passed to the step with\n"
"                      every update (defaults: the GLUE recipe's 0.9, 0.98, 1e-6,\n"
"                      0, 0 = no clipping)\n");
}

int cram_cmd_finetune(int argc, char **argv) {
    cram_ft_config c;
    cram_ft_config_default(&c);
    c.log = stderr;
    const char *path = NULL, *layout = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        int m = 0, bad = 0;
        uint64_t u = 0;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) return finetune_usage(stdout), 0;
        if (!strcmp(a, "--resume")) { c.resume = 1; continue; }
        if (!strcmp(a, "--quiet")) { c.log = NULL; continue; }
#define OPT(name) (m = cli_match_opt(argc, argv, &i, name, &v)) != 0 && (bad = m < 0, 1)
        if (OPT("--task")) c.task_dir = v;
        else if (OPT("--layout")) layout = v;
        else if (OPT("--vocab")) c.vocab = v;
        else if (OPT("--init")) c.init = v;
        else if (OPT("--head")) c.head = v;
        else if (OPT("--out")) c.out_dir = v;
        else if (OPT("--lr")) bad = bad || cli_parse_double(v, &c.lr) || !(c.lr > 0);
        else if (OPT("--beta1")) bad = bad || cli_parse_double(v, &c.beta1) || !(c.beta1 >= 0 && c.beta1 < 1);
        else if (OPT("--beta2")) bad = bad || cli_parse_double(v, &c.beta2) || !(c.beta2 >= 0 && c.beta2 < 1);
        else if (OPT("--eps")) bad = bad || cli_parse_double(v, &c.eps) || !(c.eps > 0);
        else if (OPT("--weight-decay")) bad = bad || cli_parse_double(v, &c.weight_decay) || !(c.weight_decay >= 0);
        else if (OPT("--clip")) bad = bad || cli_parse_double(v, &c.max_norm) || !(c.max_norm >= 0);
        else if (OPT("--warmup")) bad = bad || cli_parse_double(v, &c.warmup) || !(c.warmup >= 0 && c.warmup < 1);
        else if (OPT("--epochs")) bad = bad || cli_parse_u64(v, &u) || u < 1 || u > 1000, c.epochs = (uint32_t)u;
        else if (OPT("--dropout")) bad = bad || (strcmp(v, "on") && strcmp(v, "off")), c.dropout = !bad && !strcmp(v, "on");
        else if (OPT("--seed")) bad = bad || cli_parse_u64(v, &c.seed);
        else if (OPT("--max-steps")) bad = bad || cli_parse_u64(v, &c.max_steps);
        else if (OPT("--max-train")) bad = bad || cli_parse_u64(v, &c.max_train);
        else if (OPT("--ckpt-every")) bad = bad || cli_parse_u64(v, &c.ckpt_every);
        else if (OPT("--device")) bad = bad || cli_parse_u64(v, &u) || u > 1024, c.device = (int)u;
        else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "cram finetune: unknown option '%s' (see cram finetune --help)\n", a);
            return 2;
        } else if (path) {
            fprintf(stderr, "cram finetune: give one step.so\n");
            return 2;
        } else {
            path = a;
        }
#undef OPT
        if (bad) {
            fprintf(stderr, "cram finetune: bad or missing value for %s\n", a);
            return 2;
        }
    }
    if (!path || !c.task_dir || !c.vocab) {
        fprintf(stderr, "cram finetune: need STEP.so, --task DIR and --vocab FILE (see cram finetune --help)\n");
        return 2;
    }
    if (!layout) {
        layout = strrchr(c.task_dir, '/');
        layout = layout && layout[1] ? layout + 1 : c.task_dir;
    }
    if (!(c.task = cram_glue_task_find(layout))) {
        fprintf(stderr, "cram finetune: '%s' is not a GLUE task layout; give --layout (cola, sst2, mrpc, stsb, qqp, mnli, qnli, rte)\n",
                layout);
        return 2;
    }
    cram_err err = {0};
    cram_step_lib lib;
    if (cram_step_load(&lib, path, &err) != CRAM_OK) {
        fprintf(stderr, "cram finetune: %s\n", err.msg);
        return 1;
    }
    cram_ft_result res;
    cram_status r = cram_finetune(lib.api, &c, &res, &err);
    cram_step_unload(&lib);
    if (r != CRAM_OK) {
        fprintf(stderr, "cram finetune: %s\n", err.msg);
        return 1;
    }
    for (uint32_t d = 0; d < res.ndev; d++)
        printf("%s %s: %.2f after %u epochs (%llu updates; majority class %.2f)\n", c.task->name, res.dev[d].file,
               res.dev[d].score, res.epochs, (unsigned long long)res.steps, res.dev[d].majority);
    if (res.ndev == 0) printf("%s: stopped after %llu updates, before the first epoch ended\n", c.task->name, (unsigned long long)res.steps);
    return 0;
}
