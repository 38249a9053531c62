/* cram.c - entry point of the `cram` runtime CLI: dispatches subcommands
 * (cmd_*.c, one per command, each with its option table: opts.c). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

#ifndef CRAMC_VERSION
#define CRAMC_VERSION "0"
#endif

typedef struct command {
  const char *name;
  int (*fn)(int, char **);
  const char *summary;
} command;

static const command commands[] = {
  { "data", cram_cmd_data, "prepare a corpus: tokenizer, filtering, packing, ordering -> token shards" },
  { "shards", cram_cmd_shards, "inspect and verify token shards (header, size, checksum, token range)" },
  { "train", cram_cmd_train, "train a compiled step.so on token shards (Cramming recipe, checkpoints, resume)" },
  { "info", cram_cmd_info, "show what a compiled step.so contains (model, dims, parameters); no GPU needed" },
  { "bench", cram_cmd_bench, "time a step.so: warm-up, timed step+update, tokens/s, MFU, peak memory (JSON)" },
  { "eval", cram_cmd_eval, "masked-LM loss of a step.so (+ checkpoint) on held-out shards" },
  { "export", cram_cmd_export, "a checkpoint's parameters as safetensors with the reference's tensor names" },
  { "finetune", cram_cmd_finetune, "finetune a compiled classifier on a GLUE-layout task (GLUE recipe, dev metrics per epoch)" },
  { "glue", cram_cmd_glue, "the GLUE table of a pretrained encoder: compile, finetune per task and seed, median, average" },
  { "tokenize", cram_cmd_tokenize, "token ids of text as finetuning encodes it (a cram data vocab.txt, WordPiece)" },
  { "sweep", cram_cmd_sweep, "an ablation study in one command: compile, train, evaluate K variants; one table and plot" },
  { "plot", cram_cmd_plot, "loss, learning rate and batch size of one or more runs as one SVG or PNG" },
};

static void usage(FILE *f) {
  fprintf(f, "usage: cram <command> [options]\n"
             "\n"
             "The cramc runtime: prepares data for, trains, evaluates, compares and\n"
             "exports compiled crammed-BERT train steps (cramc's step.so).\n"
             "\n"
             "commands:\n");
  for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
    fprintf(f, "  %-8s %s\n", commands[i].name, commands[i].summary);
  fprintf(f, "\n"
             "`cram <command> --help` describes a command. `cram --version` prints the version.\n"
             "Docs: docs/data.md (data pipeline and shard format), docs/training.md (trainer).\n");
}

int main(int argc, char **argv) {
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  const char *cmd = argv[1];
  if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
    if (strcmp(cmd, "help") == 0 && argc > 2) {
      char *sub[] = { argv[2], "--help", NULL };
      for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(commands[i].name, argv[2]) == 0) return commands[i].fn(2, sub);
      fprintf(stderr, "cram: unknown command '%s' (see cram --help)\n", argv[2]);
      return 2;
    }
    usage(stdout);
    return 0;
  }
  if (strcmp(cmd, "--version") == 0) {
    printf("cram %s\n", CRAMC_VERSION);
    return 0;
  }
  for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
    if (strcmp(commands[i].name, cmd) == 0) return commands[i].fn(argc - 1, argv + 1);
  fprintf(stderr, "cram: unknown command '%s' (see cram --help)\n", cmd);
  return 2;
}

/* ---- helpers shared by subcommands ------------------------------------------ */

int cli_parse_u64(const char *s, uint64_t *out) {
  if (!s || !*s || *s == '-') return -1;
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno || *end) return -1;
  *out = (uint64_t)v;
  return 0;
}

int cli_parse_double(const char *s, double *out) {
  if (!s || !*s) return -1;
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (errno || *end || v != v) return -1;
  *out = v;
  return 0;
}

double cli_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
