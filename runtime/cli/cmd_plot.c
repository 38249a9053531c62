/* cmd_plot.c - `cram plot RUN_DIR`: RUN_DIR/metrics.jsonl -> RUN_DIR/metrics.svg. */
#include <stdio.h>
#include <string.h>

#include "../plot.h"
#include "../train.h"
#include "cli.h"

static void plot_usage(FILE *f) {
    fprintf(f,
"usage: cram plot RUN_DIR [-o FILE.svg]\n"
"\n"
"Draw loss, learning rate and batch size against training time from\n"
"RUN_DIR/metrics.jsonl (written by `cram train`) as an SVG, by default\n"
"RUN_DIR/metrics.svg. View it in a browser, or convert it with e.g.\n"
"`rsvg-convert -o plot.png RUN_DIR/metrics.svg`.\n"
"\n"
"options:\n"
"  -o, --out FILE   output file (default RUN_DIR/metrics.svg)\n"
"  -h, --help       this help\n");
}

int cram_cmd_plot(int argc, char **argv) {
    const char *dir = NULL, *out = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        int m;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            plot_usage(stdout);
            return 0;
        }
        if ((m = cli_match_opt(argc, argv, &i, "-o", &v)) != 0 || (m = cli_match_opt(argc, argv, &i, "--out", &v)) != 0) {
            if (m < 0) {
                fprintf(stderr, "cram plot: %s needs a file name\n", a);
                return 2;
            }
            out = v;
            continue;
        }
        if (a[0] == '-' && a[1]) {
            fprintf(stderr, "cram plot: unknown option '%s' (see cram plot --help)\n", a);
            return 2;
        }
        if (dir) {
            fprintf(stderr, "cram plot: give one run directory\n");
            return 2;
        }
        dir = a;
    }
    if (!dir) {
        fprintf(stderr, "cram plot: no run directory given (see cram plot --help)\n");
        return 2;
    }
    char mpath[4096], spath[4096];
    snprintf(mpath, sizeof mpath, "%s/%s", dir, CRAM_METRICS_FILE);
    snprintf(spath, sizeof spath, "%s/metrics.svg", dir);
    if (!out) out = spath;
    cram_err err = {0};
    size_t n = 0;
    if (cram_plot_svg(mpath, out, dir, &n, &err) != CRAM_OK) {
        fprintf(stderr, "cram plot: %s\n", err.msg);
        return 1;
    }
    printf("%s: %zu updates plotted\n", out, n);
    return 0;
}
