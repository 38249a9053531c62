/* chart.c - multi-series SVG line charts; see chart.h. */
#include "chart.h"

#include <math.h>
#include <string.h>

enum { W = CRAM_CHART_W, PH = CRAM_CHART_PH, ML = CRAM_CHART_ML, MR = CRAM_CHART_MR, MT = CRAM_CHART_MT, GAP = CRAM_CHART_GAP };

/* A categorical palette that stays distinguishable for ~10 series. */
static const char *const palette[] = { "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                                       "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf" };

static void xml_text(FILE *f, const char *s) {
  for (; s && *s; s++) {
    if (*s == '<') fputs("&lt;", f);
    else if (*s == '>') fputs("&gt;", f);
    else if (*s == '&') fputs("&amp;", f);
    else if (*s == '\'') fputs("&apos;", f);
    else fputc(*s, f);
  }
}

static double nice_step(double range, int ticks) {
  double raw = range / ticks, mag = pow(10, floor(log10(raw))), fr = raw / mag;
  return (fr < 1.5 ? 1 : fr < 3 ? 2 : fr < 7 ? 5 : 10) * mag;
}

void cram_chart_tick_label(char *b, size_t n, double v) {
  double a = fabs(v);
  if (a == 0) snprintf(b, n, "0");
  else if (a >= 1e5 || a < 1e-2) snprintf(b, n, "%.3g", v);
  else snprintf(b, n, "%.5g", v);
}

/* Range of the x (ys = 0) or y values over the points finite in both. */
static void data_range(const cram_chart *c, int ys, double *lo, double *hi) {
  *lo = INFINITY, *hi = -INFINITY;
  for (size_t s = 0; s < c->nseries; s++)
    for (size_t i = 0; i < c->series[s].n; i++) {
      double v = ys ? c->series[s].y[i] : c->series[s].x[i], o = ys ? c->series[s].x[i] : c->series[s].y[i];
      if (isfinite(v) && isfinite(o)) *lo = fmin(*lo, v), *hi = fmax(*hi, v);
    }
  if (!isfinite(*lo)) *lo = 0, *hi = 1;
  if (!ys) *lo = fmin(*lo, 0);
  if (*hi - *lo < 1e-12 * fmax(1, fabs(*hi))) *hi = *lo + (*lo ? fabs(*lo) * 0.1 : 1);
}

void cram_chart_axes_of(const cram_chart *c, cram_chart_axes *a) {
  data_range(c, 0, &a->xlo, &a->xhi);
  data_range(c, 1, &a->ylo, &a->yhi);
  a->ystep = nice_step(a->yhi - a->ylo, 5), a->xstep = nice_step(a->xhi - a->xlo, 6);
  a->ylo = floor(a->ylo / a->ystep) * a->ystep, a->yhi = ceil(a->yhi / a->ystep) * a->ystep;
  a->xhi = ceil(a->xhi / a->xstep) * a->xstep;
}

static void panel(FILE *f, const cram_chart *c, int y0) {
  int pw = W - ML - MR;
  cram_chart_axes ax;
  cram_chart_axes_of(c, &ax);
  const double ys = ax.ystep, xs = ax.xstep;
  fprintf(f, "<rect x='%d' y='%d' width='%d' height='%d' fill='#fafafa' stroke='#888'/>\n", ML, y0, pw, PH);
  fprintf(f, "<text x='%d' y='%d' font-size='14' font-weight='bold'>", ML, y0 - 10);
  xml_text(f, c->title);
  fprintf(f, "</text>\n");
  char b[32];
  for (double v = ax.ylo; v <= ax.yhi + ys * 1e-6; v += ys) {
    double y = y0 + PH - (v - ax.ylo) / (ax.yhi - ax.ylo) * PH;
    cram_chart_tick_label(b, sizeof b, fabs(v) < ys * 1e-9 ? 0 : v);
    fprintf(f, "<line x1='%d' y1='%.1f' x2='%d' y2='%.1f' stroke='#ddd'/>\n", ML, y, ML + pw, y);
    fprintf(f, "<text x='%d' y='%.1f' font-size='12' text-anchor='end'>%s</text>\n", ML - 6, y + 4, b);
  }
  for (double v = ax.xlo; v <= ax.xhi + xs * 1e-6; v += xs) {
    double x = ML + (v - ax.xlo) / (ax.xhi - ax.xlo) * pw;
    cram_chart_tick_label(b, sizeof b, v);
    fprintf(f, "<line x1='%.1f' y1='%d' x2='%.1f' y2='%d' stroke='#ddd'/>\n", x, y0, x, y0 + PH);
    fprintf(f, "<text x='%.1f' y='%d' font-size='12' text-anchor='middle'>%s</text>\n", x, y0 + PH + 16, b);
  }
  fprintf(f, "<text x='%d' y='%d' font-size='13' text-anchor='middle'>", ML + pw / 2, y0 + PH + 36);
  xml_text(f, c->xlabel);
  fprintf(f, "</text>\n<text x='%d' y='%d' font-size='13' text-anchor='middle' transform='rotate(-90 %d %d)'>", 18, y0 + PH / 2,
          18, y0 + PH / 2);
  xml_text(f, c->ylabel);
  fprintf(f, "</text>\n");
  for (size_t s = 0; s < c->nseries; s++) {
    const cram_series *se = &c->series[s];
    const char *col = palette[s % (sizeof palette / sizeof palette[0])];
    const char *dash = s >= sizeof palette / sizeof palette[0] ? " stroke-dasharray='6 3'" : "";
    int open = 0;
    for (size_t i = 0; i < se->n; i++) {
      if (!isfinite(se->x[i]) || !isfinite(se->y[i])) { /* a gap ends the polyline */
        if (open) fprintf(f, "'/>\n"), open = 0;
        continue;
      }
      if (!open) fprintf(f, "<polyline fill='none' stroke='%s' stroke-width='1.6'%s points='", col, dash), open = 1;
      fprintf(f, "%.1f,%.1f ", ML + (se->x[i] - ax.xlo) / (ax.xhi - ax.xlo) * pw,
              y0 + PH - (se->y[i] - ax.ylo) / (ax.yhi - ax.ylo) * PH);
    }
    if (open) fprintf(f, "'/>\n");
    if (se->n == 1 && isfinite(se->x[0]) && isfinite(se->y[0])) /* a single point shows as a dot */
      fprintf(f, "<circle cx='%.1f' cy='%.1f' r='3' fill='%s'/>\n", ML + (se->x[0] - ax.xlo) / (ax.xhi - ax.xlo) * pw,
              y0 + PH - (se->y[0] - ax.ylo) / (ax.yhi - ax.ylo) * PH, col);
    int ly = y0 + 14 + 18 * (int)s;
    fprintf(f, "<line x1='%d' y1='%d' x2='%d' y2='%d' stroke='%s' stroke-width='3'%s/>\n", ML + pw + 12, ly - 4, ML + pw + 36,
            ly - 4, col, dash);
    fprintf(f, "<text x='%d' y='%d' font-size='12'>", ML + pw + 42, ly);
    xml_text(f, se->label);
    fprintf(f, "</text>\n");
  }
}

void cram_chart_svg(FILE *f, const char *heading, const cram_chart *charts, size_t ncharts) {
  int h = MT + (int)ncharts * (PH + GAP) + 10;
  fprintf(f,
          "<?xml version='1.0' encoding='UTF-8'?>\n<svg xmlns='http://www.w3.org/2000/svg' width='%d' height='%d' "
          "font-family='sans-serif'>\n<rect width='100%%' height='100%%' fill='white'/>\n",
          W, h);
  fprintf(f, "<text x='%d' y='26' font-size='17' text-anchor='middle'>", W / 2);
  xml_text(f, heading);
  fprintf(f, "</text>\n");
  for (size_t c = 0; c < ncharts; c++) panel(f, &charts[c], MT + (int)c * (PH + GAP));
  fprintf(f, "</svg>\n");
}
