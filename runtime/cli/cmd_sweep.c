/* cmd_sweep.c - `cram sweep SPEC --out DIR`: an ablation study as one
 * command (runtime/sweep.c). SIGINT/SIGTERM/SIGHUP stop the running variant
 * at its checkpoint; running the same command again resumes. */
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../sweep.h"
#include "../sweep_spec.h"
#include "cli.h"

static volatile sig_atomic_t g_sweep_stop; /* the only mutable global: set by signals */

static void on_signal(int sig) {
  (void)sig;
  g_sweep_stop = 1;
}

static void log_line(const char *line, void *user) {
  (void)user;
  fprintf(stderr, "cram sweep: %s\n", line);
}

static void list_variants(const cram_sweep_spec *s) {
  printf("%s: %d variants, target %s\n", s->path, s->nvariants, s->target);
  for (int i = 0; i < s->nvariants; i++) {
    const cram_sweep_variant *v = &s->variants[i];
    printf("  %-24s %s", v->name, v->model ? v->model : "?");
    for (int k = 0; k < v->ndefines; k++) printf(" -D %s", v->defines[k]);
    if (v->classifier) printf(" (classifier %s)", v->classifier);
    printf("\n");
  }
  const cram_sweep_downstream *ds = &s->downstream;
  if (!ds->task) return;
  printf("downstream %s: classifier %s", ds->task, ds->model);
  for (int k = 0; k < ds->ndefines; k++) printf(" -D %s", ds->defines[k]);
  if (ds->nargs) printf("; cram finetune");
  for (int k = 0; k < ds->nargs; k++) printf(" %s", ds->args[k]);
  printf("\n");
}

int cram_cmd_sweep(int argc, char **argv) {
  const char *spec_path = NULL, *out = NULL, *cramc = NULL;
  int check = 0, quiet = 0, rerun = 0;
  const cli_opt opts[] = {
    { "--out", "DIR", CLI_STR, &out, .help = "output directory (created; one sweep at a time: locked)" },
    { "--cramc", "PATH", CLI_STR, &cramc, .help = "compiler to use (default: $CRAMC, else beside cram, else PATH)" },
    { "--rerun-failed", NULL, CLI_FLAG, &rerun, .help = "train again the variants that failed or diverged" },
    { "--check", NULL, CLI_FLAG, &check, .help = "parse SPEC, list the variants and exit" },
    { "--quiet", NULL, CLI_FLAG, &quiet, .help = "no progress lines" },
  };
  const cli_command cmd = { "sweep",
                            "usage: cram sweep SPEC --out DIR [options]\n"
                            "\n"
                            "Run the ablation study described by SPEC (docs/sweep.md): compile every\n"
                            "variant with cramc (cached by source hash), train each with the same seed,\n"
                            "data order, recipe and budget, evaluate it on the held-out shards, and write\n"
                            "DIR/results.md, results.csv, results.json and the loss plot DIR/loss.svg\n"
                            "(and loss.png).\n"
                            "Interrupted (Ctrl-C, SIGTERM), it stops at the running variant's checkpoint;\n"
                            "the same command resumes, keeping finished variants.\n"
                            "\n",
                            opts, sizeof opts / sizeof opts[0],
                            "\nexit status: 0 done (failed variants are rows of the table), 1 error,\n"
                            "2 usage, 130 interrupted (resumable).\n" };
  const char *pos[1];
  size_t np = 1;
  int pr = cli_parse(&cmd, argc, argv, pos, &np);
  if (pr) return pr < 0 ? 0 : pr;
  if (np) spec_path = pos[0];
  if (!spec_path || (!out && !check)) {
    fprintf(stderr, "cram sweep: need SPEC and --out DIR (see cram sweep --help)\n");
    return 2;
  }
  cram_sweep_spec spec;
  cram_err err = { 0 };
  if (cram_sweep_spec_load(spec_path, &spec, &err)) {
    fprintf(stderr, "cram sweep: %s\n", err.msg);
    return 1;
  }
  if (check) {
    list_variants(&spec);
    cram_sweep_spec_free(&spec);
    return 0;
  }
  char self[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) snprintf(self, sizeof self, "%s", "cram");
  else self[n] = 0;
  cram_sweep_row *rows = calloc((size_t)spec.nvariants, sizeof *rows);
  if (!rows) {
    fprintf(stderr, "cram sweep: out of memory\n");
    cram_sweep_spec_free(&spec);
    return 1;
  }
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGHUP, &sa, NULL);
  cram_sweep_opts o = {
    .out_dir = out, .cramc = cramc, .cram = self, .rerun_failed = rerun, .stop = &g_sweep_stop, .log = quiet ? NULL : log_line
  };
  cram_status st = cram_sweep_run(&spec, &o, rows, &err);
  int rc = 0;
  if (st == CRAM_E_INTERRUPTED) {
    fprintf(stderr, "cram sweep: %s; run the same command again to resume\n", err.msg);
    rc = 130;
  } else if (st) {
    fprintf(stderr, "cram sweep: %s\n", err.msg);
    rc = 1;
  } else {
    int done = 0;
    for (int i = 0; i < spec.nvariants; i++) done += rows[i].outcome == CRAM_ROW_DONE;
    printf("%s/results.md: %d of %d variants trained and evaluated\n", out, done, spec.nvariants);
  }
  free(rows);
  cram_sweep_spec_free(&spec);
  return rc;
}
