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

/* The layout both renderers (SVG here, PNG in chart_png.c) draw: page width,
 * panel height, margins, top, gap between panels, in pixels. */
enum {
  CRAM_CHART_W = 960,
  CRAM_CHART_PH = 300,
  CRAM_CHART_ML = 80,
  CRAM_CHART_MR = 220,
  CRAM_CHART_MT = 56,
  CRAM_CHART_GAP = 76
};

/* A panel's axes: the data's range on each axis (x from 0), rounded out to
 * whole tick steps on y and up to one on x. */
typedef struct cram_chart_axes {
  double xlo, xhi, xstep, ylo, yhi, ystep;
} cram_chart_axes;
void cram_chart_axes_of(const cram_chart *c, cram_chart_axes *a);
/* A tick label ("0", "0.25", "1.5e+06"). */
void cram_chart_tick_label(char *b, size_t n, double v);

/* Writes an SVG document holding the charts one under the other. */
void cram_chart_svg(FILE *f, const char *heading, const cram_chart *charts, size_t ncharts);
/* The same layout as a PNG file at path (chart_png.c; text in upper case). */
cram_status cram_chart_png(const char *path, const char *heading, const cram_chart *charts, size_t ncharts, cram_err *err);

#endif
