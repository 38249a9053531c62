/* chart.c - multi-series SVG line charts; see chart.h. */
#include "chart.h"

#include <math.h>
#include <string.h>

enum { W = 960, PH = 300, ML = 80, MR = 220, MT = 56, GAP = 76 };

/* A categorical palette that stays distinguishable for ~10 series. */
static const char *const palette[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                                      "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};

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

static void fmt_num(char *b, size_t n, double v) {
    double a = fabs(v);
    if (a == 0) snprintf(b, n, "0");
    else if (a >= 1e5 || a < 1e-2) snprintf(b, n, "%.3g", v);
    else snprintf(b, n, "%.5g", v);
}

typedef struct range {
    double lo, hi;
} range;

static range data_range(const cram_chart *c, int ys) {
    range r = {INFINITY, -INFINITY};
    for (size_t s = 0; s < c->nseries; s++)
        for (size_t i = 0; i < c->series[s].n; i++) {
            double v = ys ? c->series[s].y[i] : c->series[s].x[i];
            if (isfinite(v) && isfinite(ys ? c->series[s].x[i] : c->series[s].y[i])) r.lo = fmin(r.lo, v), r.hi = fmax(r.hi, v);
        }
    if (!isfinite(r.lo)) r.lo = 0, r.hi = 1;
    if (!ys) r.lo = fmin(r.lo, 0);
    if (r.hi - r.lo < 1e-12 * fmax(1, fabs(r.hi))) r.hi = r.lo + (r.lo ? fabs(r.lo) * 0.1 : 1);
    return r;
}

static void panel(FILE *f, const cram_chart *c, int y0) {
    int pw = W - ML - MR;
    range xr = data_range(c, 0), yr = data_range(c, 1);
    double ys = nice_step(yr.hi - yr.lo, 5), xs = nice_step(xr.hi - xr.lo, 6);
    yr.lo = floor(yr.lo / ys) * ys, yr.hi = ceil(yr.hi / ys) * ys;
    xr.hi = ceil(xr.hi / xs) * xs;
    fprintf(f, "<rect x='%d' y='%d' width='%d' height='%d' fill='#fafafa' stroke='#888'/>\n", ML, y0, pw, PH);
    fprintf(f, "<text x='%d' y='%d' font-size='14' font-weight='bold'>", ML, y0 - 10);
    xml_text(f, c->title);
    fprintf(f, "</text>\n");
    char b[32];
    for (double v = yr.lo; v <= yr.hi + ys * 1e-6; v += ys) {
        double y = y0 + PH - (v - yr.lo) / (yr.hi - yr.lo) * PH;
        fmt_num(b, sizeof b, fabs(v) < ys * 1e-9 ? 0 : v);
        fprintf(f, "<line x1='%d' y1='%.1f' x2='%d' y2='%.1f' stroke='#ddd'/>\n", ML, y, ML + pw, y);
        fprintf(f, "<text x='%d' y='%.1f' font-size='12' text-anchor='end'>%s</text>\n", ML - 6, y + 4, b);
    }
    for (double v = xr.lo; v <= xr.hi + xs * 1e-6; v += xs) {
        double x = ML + (v - xr.lo) / (xr.hi - xr.lo) * pw;
        fmt_num(b, sizeof b, v);
        fprintf(f, "<line x1='%.1f' y1='%d' x2='%.1f' y2='%d' stroke='#ddd'/>\n", x, y0, x, y0 + PH);
        fprintf(f, "<text x='%.1f' y='%d' font-size='12' text-anchor='middle'>%s</text>\n", x, y0 + PH + 16, b);
    }
    fprintf(f, "<text x='%d' y='%d' font-size='13' text-anchor='middle'>", ML + pw / 2, y0 + PH + 36);
    xml_text(f, c->xlabel);
    fprintf(f, "</text>\n<text x='%d' y='%d' font-size='13' text-anchor='middle' transform='rotate(-90 %d %d)'>", 18,
            y0 + PH / 2, 18, y0 + PH / 2);
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
            fprintf(f, "%.1f,%.1f ", ML + (se->x[i] - xr.lo) / (xr.hi - xr.lo) * pw,
                    y0 + PH - (se->y[i] - yr.lo) / (yr.hi - yr.lo) * PH);
        }
        if (open) fprintf(f, "'/>\n");
        if (se->n == 1 && isfinite(se->x[0]) && isfinite(se->y[0])) /* a single point shows as a dot */
            fprintf(f, "<circle cx='%.1f' cy='%.1f' r='3' fill='%s'/>\n",
                    ML + (se->x[0] - xr.lo) / (xr.hi - xr.lo) * pw, y0 + PH - (se->y[0] - yr.lo) / (yr.hi - yr.lo) * PH,
                    col);
        int ly = y0 + 14 + 18 * (int)s;
        fprintf(f, "<line x1='%d' y1='%d' x2='%d' y2='%d' stroke='%s' stroke-width='3'%s/>\n", ML + pw + 12, ly - 4,
                ML + pw + 36, ly - 4, col, dash);
        fprintf(f, "<text x='%d' y='%d' font-size='12'>", ML + pw + 42, ly);
        xml_text(f, se->label);
        fprintf(f, "</text>\n");
    }
}

void cram_chart_svg(FILE *f, const char *heading, const cram_chart *charts, size_t ncharts) {
    int h = MT + (int)ncharts * (PH + GAP) + 10;
    fprintf(f, "<?xml version='1.0' encoding='UTF-8'?>\n<svg xmlns='http://www.w3.org/2000/svg' width='%d' height='%d' "
               "font-family='sans-serif'>\n<rect width='100%%' height='100%%' fill='white'/>\n", W, h);
    fprintf(f, "<text x='%d' y='26' font-size='17' text-anchor='middle'>", W / 2);
    xml_text(f, heading);
    fprintf(f, "</text>\n");
    for (size_t c = 0; c < ncharts; c++) panel(f, &charts[c], MT + (int)c * (PH + GAP));
    fprintf(f, "</svg>\n");
}
