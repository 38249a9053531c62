/* cmd_tokenize.c - `cram tokenize --vocab FILE [TEXT...]`: the token ids that
 * finetuning feeds the model for each text (runtime/wordpiece.c), one line of
 * space-separated ids per text; without TEXT, one per line of stdin. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../wordpiece.h"
#include "cli.h"

static const char k_usage[] = "usage: cram tokenize --vocab FILE [TEXT...]\n"
                              "\n"
                              "Token ids of each TEXT (or of each line of stdin) as `cram finetune` and\n"
                              "`cram glue` encode task text: the vocab.txt that `cram data` wrote, the\n"
                              "reference normaliser, WordPiece; no [CLS]/[SEP] added. One line per text;\n"
                              "a TEXT that starts with '-' goes after `--`.\n"
                              "\n";

static int print_ids(const cram_wordpiece *wp, const char *s, size_t n) {
  cram_idvec v = { 0 };
  cram_err err = { 0 };
  if (cram_wordpiece_encode(wp, s, n, &v, &err) != CRAM_OK) {
    fprintf(stderr, "cram tokenize: %s\n", err.msg);
    return 1;
  }
  for (size_t i = 0; i < v.n; i++) printf("%s%d", i ? " " : "", v.ids[i]);
  putchar('\n');
  cram_idvec_free(&v);
  return 0;
}

int cram_cmd_tokenize(int argc, char **argv) {
  const char *vocab = NULL;
  const cli_opt opts[] = {
    { "--vocab", "FILE", CLI_STR, &vocab, .help = "vocab.txt of the pretraining data [required]" },
  };
  const cli_command cmd = { "tokenize", k_usage, opts, sizeof opts / sizeof opts[0], NULL };
  const char **texts = calloc((size_t)argc + 1, sizeof *texts);
  if (!texts) return fprintf(stderr, "cram tokenize: out of memory\n"), 1;
  size_t ntext = (size_t)argc;
  int parsed = cli_parse(&cmd, argc, argv, texts, &ntext);
  if (parsed) {
    free(texts);
    return parsed < 0 ? 0 : parsed;
  }
  if (!vocab) {
    free(texts);
    fprintf(stderr, "cram tokenize: need --vocab FILE (see cram tokenize --help)\n");
    return 2;
  }
  cram_err err = { 0 };
  cram_wordpiece *wp;
  if (cram_wordpiece_load(vocab, &wp, &err) != CRAM_OK) {
    fprintf(stderr, "cram tokenize: %s\n", err.msg);
    free(texts);
    return 1;
  }
  int rc = 0;
  if (ntext) {
    for (size_t i = 0; i < ntext && !rc; i++) rc = print_ids(wp, texts[i], strlen(texts[i]));
  } else {
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while (!rc && (n = getline(&line, &cap, stdin)) >= 0) {
      if (n && line[n - 1] == '\n') n--;
      rc = print_ids(wp, line, (size_t)n);
    }
    free(line);
  }
  cram_wordpiece_free(wp);
  free(texts);
  return rc;
}
