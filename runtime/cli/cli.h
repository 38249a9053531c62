/* cli.h - subcommands of the `cram` executable and small shared CLI helpers.
 * Each subcommand is `int cram_cmd_X(int argc, char **argv)` with argv[0] the
 * subcommand name; it prints one-line errors ("cram X: ...") to stderr and
 * returns the process exit code (0 ok, 1 failure, 2 usage error). The
 * trainer's subcommands (train, info, ...) will be added to the table in
 * cram.c next to these. */
#ifndef CRAM_CLI_H
#define CRAM_CLI_H

#include <stdint.h>

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

/* Option parsing helpers: "--name value" or "--name=value". match_opt returns
 * 1 and sets *val (advancing *i past a separate value) when argv[*i] is the
 * option, 0 when it is not, -1 when its value is missing. */
int cli_match_opt(int argc, char **argv, int *i, const char *name, const char **val);
int cli_parse_u64(const char *s, uint64_t *out);
int cli_parse_double(const char *s, double *out);
double cli_now(void);

#endif
