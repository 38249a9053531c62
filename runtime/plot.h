/* plot.h - `cram plot`: an SVG (no dependencies) of loss, learning rate and
 * batch size against training time, from a run's metrics.jsonl. */
#ifndef CRAM_PLOT_H
#define CRAM_PLOT_H

#include <stddef.h>

#include "status.h"

/* Reads metrics_path (train.h schema) and writes svg_path; *npoints = lines plotted. */
cram_status cram_plot_svg(const char *metrics_path, const char *svg_path, const char *title, size_t *npoints,
                          cram_err *err);

#endif
