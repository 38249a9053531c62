/* chart.h - line charts as SVG with no dependencies: several named series on
 * shared axes, one panel per chart, a legend. Used by `cram sweep` for its
 * loss-against-time and loss-against-tokens figure. */
#ifndef CRAM_CHART_H
#define CRAM_CHART_H

#include <stddef.h>
#include <stdio.h>

#include "status.h"

typedef struct cram_series {
    const char *label;
    const double *x, *y; /* n points; non-finite y values are gaps */
    size_t n;
} cram_series;

typedef struct cram_chart {
    const char *title;  /* above the panel */
    const char *xlabel; /* under the x axis */
    const char *ylabel;
    const cram_series *series;
    size_t nseries;
} cram_chart;

/* Writes an SVG document holding the charts one under the other. */
void cram_chart_svg(FILE *f, const char *heading, const cram_chart *charts, size_t ncharts);
/* The same layout as a PNG file at path (chart_png.c; text in upper case). */
cram_status cram_chart_png(const char *path, const char *heading, const cram_chart *charts, size_t ncharts,
                           cram_err *err);

#endif
