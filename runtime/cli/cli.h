/* cli.h - subcommands of the `cram` executable and small shared CLI helpers.
 * Each subcommand is `int cram_cmd_X(int argc, char **argv)` with argv[0] the
 * subcommand name; it prints one-line errors ("cram X: ...") to stderr and
 * returns the process exit code (0 ok, 1 failure, 2 usage error). A
 * subcommand declares its options once, as a cli_command table (opts.c):
 * its --help text and its parser both come from it. */
#ifndef CRAM_CLI_H
#define CRAM_CLI_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

int cram_cmd_data(int argc, char **argv);
int cram_cmd_shards(int argc, char **argv);
int cram_cmd_train(int argc, char **argv);
int cram_cmd_info(int argc, char **argv);
int cram_cmd_eval(int argc, char **argv);
int cram_cmd_plot(int argc, char **argv);
int cram_cmd_export(int argc, char **argv);
int cram_cmd_bench(int argc, char **argv);
int cram_cmd_tokenize(int argc, char **argv);
int cram_cmd_finetune(int argc, char **argv);
int cram_cmd_glue(int argc, char **argv);
int cram_cmd_sweep(int argc, char **argv);

/* Number parsing of the option tables: 0 on success. */
int cli_parse_u64(const char *s, uint64_t *out);
int cli_parse_double(const char *s, double *out);
double cli_now(void);

/* ---- option tables (opts.c) -------------------------------------------------- */

typedef enum cli_kind {
  CLI_FLAG,     /* no value: *(int *)dst = 1 */
  CLI_STR,      /* *(const char **)dst, non-empty */
  CLI_U64,      /* *(uint64_t *)dst in [min, max] */
  CLI_F64,      /* *(double *)dst, finite, in [min, max] ((min, max] with open_min) */
  CLI_DURATION, /* *(double *)dst seconds ("30s", "90m", "24h"), <= max; "0" allowed when min <= 0 */
  CLI_COUNT,    /* *(double *)dst, a count with SI suffix ("20M", "3e17"), in [min, max] */
  CLI_CHOICE,   /* *(int *)dst = index of the value in choices (NULL-terminated) */
  CLI_LIST,     /* repeatable: ((const char **)dst)[(*count)++] = value, at most max values */
} cli_kind;

typedef struct cli_opt {
  const char *name; /* "--batch" */
  const char *arg;  /* "N" in the help; NULL for flags */
  cli_kind kind;
  void *dst;
  double min, max;
  int open_min; /* CLI_F64: min itself excluded */
  const char *const *choices;
  int *seen;           /* optional: set to 1 when the option is given */
  const char *section; /* optional: a heading printed before this option in --help */
  const char *help;    /* '\n' separates help lines */
  int *count;          /* CLI_LIST: values stored so far */
} cli_opt;

typedef struct cli_command {
  const char *name;     /* "train" */
  const char *synopsis; /* usage lines and description, printed before the options */
  const cli_opt *opts;
  size_t nopts;
  const char *epilog; /* printed after the options (exit status, ...); may be NULL */
} cli_command;

/* Parses argv[1..] against c: options into their dst, other arguments into
 * pos (at most *npos; *npos = how many). Returns 0, 2 after printing a usage
 * error (unknown option with a did-you-mean, missing or out-of-range value,
 * too many arguments), or -1 after printing --help to stdout. */
int cli_parse(const cli_command *c, int argc, char **argv, const char **pos, size_t *npos);
void cli_usage(const cli_command *c, FILE *f);
/* The option of opts closest to arg (two edits or a unique prefix), or NULL. */
const char *cli_suggest(const cli_opt *opts, size_t n, const char *arg);

#endif
