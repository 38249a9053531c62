/* cmd_finetune.c - `cram finetune STEP.so --task DIR --vocab V [--init CKPT]`:
 * finetune a compiled classifier on one GLUE-layout task (runtime/finetune.c). */
#include <stdio.h>
#include <string.h>

#include "../finetune.h"
#include "../loader.h"
#include "cli.h"

static const char k_usage[] = "usage: cram finetune STEP.so --task DIR --vocab FILE [--init CKPT] [options]\n"
                              "\n"
                              "Finetunes a compiled classifier (models/ablations/finetune_classifier.cram\n"
                              "built with -D classes/layers/hidden/vocab of the pretrained model, -D batch=16)\n"
                              "on the task in DIR (train.tsv + dev.tsv, MNLI: dev_matched.tsv +\n"
                              "dev_mismatched.tsv) with the Cramming GLUE recipe, evaluating on dev after\n"
                              "every epoch. The batch size is the step's compiled `batch`.\n"
                              "\n";

static const char *const k_on_off[] = { "off", "on", NULL };

int cram_cmd_finetune(int argc, char **argv) {
  cram_ft_config c;
  cram_ft_config_default(&c);
  c.log = stderr;
  const char *layout = NULL;
  uint64_t epochs = c.epochs, device = 0;
  int dropout = c.dropout != 0, quiet = 0;
  const cli_opt opts[] = {
    { "--task", "DIR", CLI_STR, &c.task_dir, .help = "a GLUE task directory (CoLA, SST-2, ...) [required]" },
    { "--layout", "NAME", CLI_STR, &layout,
      .help = "file layout of DIR (cola, sst2, mrpc, stsb, qqp, mnli, qnli, rte;\ndefault: DIR's own name)" },
    { "--vocab", "FILE", CLI_STR, &c.vocab,
      .help = "vocab.txt of the pretraining data, or its `cram data` directory [required]" },
    { "--init", "CKPT", CLI_STR, &c.init,
      .help = "pretrained encoder: a `cram train` checkpoint (file or run\ndirectory) or a `cram export` safetensors (default: "
              "random init)" },
    { "--head", "LIST", CLI_STR, &c.head,
      .help = "name prefixes of the new head, initialised by the .cram\n(default pooler.,classifier.)" },
    { "--out", "DIR", CLI_STR, &c.out_dir, .help = "run directory: metrics.jsonl, checkpoint.safetensors" },
    { "--resume", NULL, CLI_FLAG, &c.resume, .help = "continue the run in --out from its checkpoint (same flags)" },
    { "--lr", "X", CLI_F64, &c.lr, 0, 1e3, .open_min = 1, .help = "peak learning rate (default 4e-5)" },
    { "--warmup", "F", CLI_F64, &c.warmup, 0, 0.999, .help = "warm-up fraction of the cosine schedule (default 0.1)" },
    { "--epochs", "N", CLI_U64, &epochs, 1, 1000, .help = "(default 5)" },
    { "--dropout", "on|off", CLI_CHOICE, &dropout, .choices = k_on_off, .help = "dropout while training (default on)" },
    { "--seed", "N", CLI_U64, &c.seed, 0, 1.8e19, .help = "head init, data order and dropout (default 0)" },
    { "--max-steps", "N", CLI_U64, &c.max_steps, 0, 1.8e19, .help = "stop after N updates (with a checkpoint)" },
    { "--max-train", "N", CLI_U64, &c.max_train, 0, 1.8e19, .help = "use the first N training examples" },
    { "--ckpt-every", "N", CLI_U64, &c.ckpt_every, 0, 1.8e19, .help = "also checkpoint every N updates (default: each epoch)" },
    { "--device", "N", CLI_U64, &device, 0, 1024, .help = "CUDA device ordinal (default 0)" },
    { "--quiet", NULL, CLI_FLAG, &quiet, .help = "no progress lines" },
    { "--beta1", "X", CLI_F64, &c.beta1, 0, 0.999999,
      .section =
        "optimizer (passed to the step with every update; defaults: the GLUE\nrecipe's 0.9, 0.98, 1e-6, 0, 0 = no clipping)",
      .help = "Adam's first-moment decay" },
    { "--beta2", "X", CLI_F64, &c.beta2, 0, 0.999999, .help = "Adam's second-moment decay" },
    { "--eps", "X", CLI_F64, &c.eps, 0, 1, .open_min = 1, .help = "added to sqrt(v_hat)" },
    { "--weight-decay", "X", CLI_F64, &c.weight_decay, 0, 1e3, .help = "decoupled weight decay" },
    { "--clip", "X", CLI_F64, &c.max_norm, 0, 1e9, .help = "global-norm gradient clip (0: none)" },
  };
  const cli_command cmd = { "finetune", k_usage, opts, sizeof opts / sizeof opts[0], NULL };
  const char *pos[1] = { NULL };
  size_t npos = 1;
  int parsed = cli_parse(&cmd, argc, argv, pos, &npos);
  if (parsed) return parsed < 0 ? 0 : parsed;
  const char *path = npos ? pos[0] : NULL;
  c.epochs = (uint32_t)epochs, c.device = (int)device, c.dropout = dropout;
  if (quiet) c.log = NULL;
  if (!path || !c.task_dir || !c.vocab) {
    fprintf(stderr, "cram finetune: need STEP.so, --task DIR and --vocab FILE (see cram finetune --help)\n");
    return 2;
  }
  if (!layout) {
    layout = strrchr(c.task_dir, '/');
    layout = layout && layout[1] ? layout + 1 : c.task_dir;
  }
  if (!(c.task = cram_glue_task_find(layout))) {
    fprintf(stderr,
            "cram finetune: '%s' is not a GLUE task layout; give --layout (cola, sst2, mrpc, stsb, qqp, mnli, qnli, rte)\n",
            layout);
    return 2;
  }
  cram_err err = { 0 };
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
    printf("%s %s: %.2f after %u epochs (%llu updates; majority class %.2f)\n", c.task->name, res.dev[d].file, res.dev[d].score,
           res.epochs, (unsigned long long)res.steps, res.dev[d].majority);
  if (res.ndev == 0)
    printf("%s: stopped after %llu updates, before the first epoch ended\n", c.task->name, (unsigned long long)res.steps);
  return 0;
}
