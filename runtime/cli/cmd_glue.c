/* cmd_glue.c - `cram glue --init CKPT --glue DIR --model FILE.cram --vocab V`:
 * the GLUE table of a pretrained encoder (runtime/glue_run.c). */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "../glue_run.h"
#include "cli.h"

static const char k_usage[] = "usage: cram glue --init CKPT --glue DIR --model FILE.cram --vocab FILE [options]\n"
                              "\n"
                              "The Cramming paper's GLUE protocol: for every task directory in DIR\n"
                              "(CoLA SST-2 MRPC STS-B QQP MNLI QNLI RTE, as distributed), compile FILE.cram\n"
                              "for the task's class count (cramc -D classes=C -D batch=B plus your -D dims,\n"
                              "which must match the pretrained model; STS-B: the regression model), finetune\n"
                              "it --seeds times from CKPT with the GLUE recipe, and report the dev metric per\n"
                              "seed, the median and the average (MNLI matched and mismatched counted apart,\n"
                              "no WNLI). Writes OUT/glue.json and OUT/glue.md; missing tasks are listed as\n"
                              "skipped.\n"
                              "\n";

static const char *const k_on_off[] = { "off", "on", NULL };

int cram_cmd_glue(int argc, char **argv) {
  cram_glue_opts o;
  memset(&o, 0, sizeof o);
  cram_ft_config_default(&o.ft);
  o.out_dir = "glue-run", o.log = stderr;
  char self[4096];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1); /* cramc is looked for beside cram */
  if (n > 0) self[n] = '\0', o.cram_path = self;
  const char *init = NULL;
  uint64_t seeds = 5, batch = 16, epochs = o.ft.epochs;
  int dropout = o.ft.dropout != 0, quiet = 0;
  const cli_opt opts[] = {
    { "--init", "CKPT", CLI_STR, &init,
      .help = "`cram train` checkpoint / run directory, `cram export` file,\nor `random` (the random-init baseline) [required]" },
    { "--glue", "DIR", CLI_STR, &o.glue_dir, .help = "the GLUE root (glue_data) [required]" },
    { "--model", "FILE", CLI_STR, &o.model,
      .help = "classifier .cram, e.g. models/ablations/finetune_classifier.cram [required]" },
    { "--vocab", "FILE", CLI_STR, &o.ft.vocab,
      .help = "vocab.txt of the pretraining data (or its cram data directory) [required]" },
    { "--regression-model", "FILE", CLI_STR, &o.regression_model,
      .help = "STS-B's .cram, one output + MSE (default:\nfinetune_regression.cram beside --model)" },
    { "-D", "NAME=VALUE", CLI_LIST, (void *)o.defines, 0, CRAM_GLUE_MAX_DEFINES, .count = &o.ndefines,
      .help = "a dim for every compile (hidden, layers, vocab, seq, ...); repeatable" },
    { "--target", "T", CLI_STR, &o.target, .help = "cramc --target (default: cramc's)" },
    { "--cramc", "PATH", CLI_STR, &o.cramc, .help = "the compiler (default: $CRAMC, beside cram, PATH)" },
    { "--out", "DIR", CLI_STR, &o.out_dir, .help = "(default glue-run)" },
    { "--seeds", "N", CLI_U64, &seeds, 1, CRAM_GLUE_MAX_SEEDS,
      .help = "finetunings per task; the median is reported (default 5)" },
    { "--tasks", "LIST", CLI_STR, &o.tasks, .help = "only these tasks (e.g. cola,sst2,rte); the rest are skipped" },
    { "--batch", "N", CLI_U64, &batch, 1, 65536, .help = "(default 16)" },
    { "--lr", "X", CLI_F64, &o.ft.lr, 0, 1e3, .open_min = 1, .help = "as cram finetune (default 4e-5)" },
    { "--epochs", "N", CLI_U64, &epochs, 1, 1000, .help = "(default 5)" },
    { "--warmup", "F", CLI_F64, &o.ft.warmup, 0, 0.999, .help = "(default 0.1)" },
    { "--dropout", "on|off", CLI_CHOICE, &dropout, .choices = k_on_off, .help = "(default on)" },
    { "--seed", "N", CLI_U64, &o.ft.seed, 0, 1.8e19, .help = "(default 0)" },
    { "--max-train", "N", CLI_U64, &o.ft.max_train, 0, 1.8e19, .help = "use the first N training examples of each task" },
    { "--max-steps", "N", CLI_U64, &o.ft.max_steps, 0, 1.8e19, .help = "stop each finetuning after N updates" },
    { "--quiet", NULL, CLI_FLAG, &quiet, .help = "no progress lines" },
  };
  const cli_command cmd = { "glue", k_usage, opts, sizeof opts / sizeof opts[0], NULL };
  size_t npos = 0;
  int parsed = cli_parse(&cmd, argc, argv, NULL, &npos);
  if (parsed) return parsed < 0 ? 0 : parsed;
  for (int i = 0; i < o.ndefines; i++)
    if (!strchr(o.defines[i], '=')) {
      fprintf(stderr, "cram glue: -D: expected NAME=VALUE, got '%s'\n", o.defines[i]);
      return 2;
    }
  o.seeds = (uint32_t)seeds, o.batch = (uint32_t)batch, o.ft.epochs = (uint32_t)epochs, o.ft.dropout = dropout;
  if (quiet) o.log = NULL;
  if (!init || !o.glue_dir || !o.model || !o.ft.vocab) {
    fprintf(stderr, "cram glue: need --init, --glue, --model and --vocab (see cram glue --help)\n");
    return 2;
  }
  o.ft.init = strcmp(init, "random") ? init : NULL;
  cram_err err = { 0 };
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
