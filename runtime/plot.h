/* plot.h - `cram plot`: loss (and held-out loss), learning rate and batch
 * size of one or more runs on shared axes, against training time, tokens or
 * updates, as SVG or PNG (no dependencies: chart.h, chart_png.c). */
#ifndef CRAM_PLOT_H
#define CRAM_PLOT_H

#include <stddef.h>

#include "status.h"

typedef enum cram_plot_x { CRAM_PLOT_TIME, CRAM_PLOT_TOKENS, CRAM_PLOT_STEPS } cram_plot_x;

typedef struct cram_plot_opts {
  cram_plot_x x;
  double smooth; /* exponential moving average of the training loss, weight of the past in [0, 1); 0 = raw */
  int png;       /* 1: PNG, else SVG */
} cram_plot_opts;

/* Reads each runs[i]/metrics.jsonl (train.h schema) and writes out_path;
 * *npoints = metrics lines plotted over all runs. */
cram_status cram_plot(const char *const *runs, size_t nruns, const char *out_path, const cram_plot_opts *o, size_t *npoints,
                      cram_err *err);

#endif
