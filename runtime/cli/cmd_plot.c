/* cmd_plot.c - `cram plot RUN_DIR...`: the runs' metrics.jsonl as one figure
 * (SVG or PNG), by default RUN_DIR/metrics.svg for one run. */
#include <stdio.h>
#include <string.h>

#include "../plot.h"
#include "../train.h"
#include "cli.h"

static const char *const xaxes[] = { "time", "tokens", "steps", NULL };

int cram_cmd_plot(int argc, char **argv) {
  const char *out = NULL;
  int x = CRAM_PLOT_TIME;
  double smooth = 0;
  const cli_opt opts[] = {
    { "--out", "FILE", CLI_STR, &out, .section = "options",
      .help = "output file; .png writes a PNG, anything else an SVG (default:\nRUN_DIR/metrics.svg for one run, plot.svg for "
              "several)" },
    { "-o", "FILE", CLI_STR, &out, .help = "the same as --out" },
    { "--x", "AXIS", CLI_CHOICE, &x, .choices = xaxes,
      .help = "x axis: time (default, seconds), tokens or steps (updates); tokens\nor steps compare runs on machines of "
              "different speed" },
    { "--smooth", "F", CLI_F64, &smooth, 0, 0.999,
      .help = "exponential moving average of the training loss with weight F on\nthe past (e.g. 0.9; default 0 = raw)" },
  };
  const cli_command cmd = { "plot",
                            "usage: cram plot RUN_DIR... [options]\n"
                            "\n"
                            "Draw training loss (and held-out loss, from --eval-every), learning rate\n"
                            "and batch size of one or more runs (written by `cram train`) on shared\n"
                            "axes, one line per run.\n"
                            "\n",
                            opts, sizeof opts / sizeof opts[0], NULL };
  const char *runs[64];
  size_t n = 64;
  int pr = cli_parse(&cmd, argc, argv, runs, &n);
  if (pr) return pr < 0 ? 0 : pr;
  if (!n) {
    fprintf(stderr, "cram plot: no run directory given (see cram plot --help)\n");
    return 2;
  }
  char spath[4096];
  if (!out) {
    if (n == 1) snprintf(spath, sizeof spath, "%s/metrics.svg", runs[0]);
    else snprintf(spath, sizeof spath, "plot.svg");
    out = spath;
  }
  size_t len = strlen(out);
  cram_plot_opts o = { .x = (cram_plot_x)x, .smooth = smooth, .png = len > 4 && strcmp(out + len - 4, ".png") == 0 };
  cram_err err = { 0 };
  size_t pts = 0;
  if (cram_plot(runs, n, out, &o, &pts, &err) != CRAM_OK) {
    fprintf(stderr, "cram plot: %s\n", err.msg);
    return 1;
  }
  printf("%s: %zu updates of %zu run%s plotted\n", out, pts, n, n == 1 ? "" : "s");
  return 0;
}
