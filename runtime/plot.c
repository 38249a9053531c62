/* plot.c - SVG line charts of a run's metrics; see plot.h. */
#include "plot.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct pt {
    double time, loss, lr, batch;
} pt;

/* Value of "key": in a JSON line (NAN for null or missing). */
static double field(const char *line, const char *key) {
    char pat[40];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(line, pat);
    if (!p) return NAN;
    p += strlen(pat);
    if (strncmp(p, "null", 4) == 0) return NAN;
    char *end;
    double v = strtod(p, &end);
    return end == p ? NAN : v;
}

static double nice_step(double range, int ticks) {
    double raw = range / ticks, mag = pow(10, floor(log10(raw))), f = raw / mag;
    return (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * mag;
}

static void fmt_num(char *b, size_t n, double v) {
    double a = fabs(v);
    if (a == 0) snprintf(b, n, "0");
    else if (a >= 1e4 || a < 1e-2) snprintf(b, n, "%.3g", v);
    else snprintf(b, n, "%.4g", v);
}

enum { W = 900, PH = 220, ML = 80, MR = 30, MT = 50, GAP = 40 };

static void panel(FILE *f, const pt *p, size_t n, int which, const char *label, const char *color, int y0,
                  double tmax, double tscale, const char *tunit, int last) {
    double lo = INFINITY, hi = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        double v = which == 0 ? p[i].loss : which == 1 ? p[i].lr : p[i].batch;
        if (isfinite(v)) lo = fmin(lo, v), hi = fmax(hi, v);
    }
    if (!isfinite(lo)) lo = 0, hi = 1;
    if (which != 0) lo = fmin(lo, 0);
    if (hi - lo < 1e-12 * fmax(1, fabs(hi))) hi = lo + (lo ? fabs(lo) * 0.1 : 1);
    double st = nice_step(hi - lo, 4);
    lo = floor(lo / st) * st;
    hi = ceil(hi / st) * st;
    int pw = W - ML - MR;
    fprintf(f, "<rect x='%d' y='%d' width='%d' height='%d' fill='#fafafa' stroke='#888'/>\n", ML, y0, pw, PH);
    fprintf(f, "<text x='%d' y='%d' font-size='14' font-weight='bold' fill='%s'>%s</text>\n", ML, y0 - 8, color, label);
    char b[32];
    for (double v = lo; v <= hi + st * 1e-6; v += st) {
        double y = y0 + PH - (v - lo) / (hi - lo) * PH;
        fmt_num(b, sizeof b, fabs(v) < st * 1e-9 ? 0 : v);
        fprintf(f, "<line x1='%d' y1='%.1f' x2='%d' y2='%.1f' stroke='#ddd'/>\n", ML, y, ML + pw, y);
        fprintf(f, "<text x='%d' y='%.1f' font-size='12' text-anchor='end'>%s</text>\n", ML - 6, y + 4, b);
    }
    double xs = nice_step(tmax / tscale, 6);
    for (double v = 0; v <= tmax / tscale + xs * 1e-6; v += xs) {
        double x = ML + v * tscale / tmax * pw;
        fprintf(f, "<line x1='%.1f' y1='%d' x2='%.1f' y2='%d' stroke='#ddd'/>\n", x, y0, x, y0 + PH);
        fmt_num(b, sizeof b, v);
        fprintf(f, "<text x='%.1f' y='%d' font-size='12' text-anchor='middle'>%s</text>\n", x, y0 + PH + 15, b);
    }
    if (last)
        fprintf(f, "<text x='%d' y='%d' font-size='13' text-anchor='middle'>training time (%s)</text>\n", ML + pw / 2,
                y0 + PH + 34, tunit);
    fprintf(f, "<polyline fill='none' stroke='%s' stroke-width='1.5' points='", color);
    for (size_t i = 0; i < n; i++) {
        double v = which == 0 ? p[i].loss : which == 1 ? p[i].lr : p[i].batch;
        if (!isfinite(v)) continue;
        fprintf(f, "%.1f,%.1f ", ML + p[i].time / tmax * pw, y0 + PH - (v - lo) / (hi - lo) * PH);
    }
    fprintf(f, "'/>\n");
}

cram_status cram_plot_svg(const char *metrics_path, const char *svg_path, const char *title, size_t *npoints,
                          cram_err *err) {
    FILE *in = fopen(metrics_path, "r");
    if (!in) return cram_err_set(err, CRAM_E_IO, "%s: %s", metrics_path, strerror(errno));
    pt *p = NULL;
    size_t n = 0, cap = 0;
    char line[4096];
    while (fgets(line, sizeof line, in)) {
        if (line[0] != '{') continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 1024;
            pt *q = realloc(p, cap * sizeof *p);
            if (!q) {
                free(p);
                fclose(in);
                return cram_err_set(err, CRAM_E_NOMEM, "%s: out of memory", metrics_path);
            }
            p = q;
        }
        pt x = {field(line, "time"), field(line, "loss"), field(line, "lr"), field(line, "batch")};
        if (!isfinite(x.time)) continue;
        if (field(line, "skipped") == 1) x.lr = NAN; /* a skipped update has no learning rate */
        p[n++] = x;
    }
    fclose(in);
    if (n == 0) {
        free(p);
        return cram_err_set(err, CRAM_E_ARG, "%s: no metrics lines to plot", metrics_path);
    }
    double tmax = 0;
    for (size_t i = 0; i < n; i++) tmax = fmax(tmax, p[i].time);
    if (!(tmax > 0)) tmax = 1;
    double tscale = tmax >= 7200 ? 3600 : tmax >= 120 ? 60 : 1;
    const char *tunit = tscale == 3600 ? "hours" : tscale == 60 ? "minutes" : "seconds";
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", svg_path);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        free(p);
        return cram_err_set(err, CRAM_E_IO, "%s: %s", tmp, strerror(errno));
    }
    int H = MT + 3 * (PH + GAP) + 20;
    fprintf(f, "<?xml version='1.0' encoding='UTF-8'?>\n<svg xmlns='http://www.w3.org/2000/svg' width='%d' height='%d' "
               "font-family='sans-serif'>\n<rect width='100%%' height='100%%' fill='white'/>\n", W, H);
    fprintf(f, "<text x='%d' y='24' font-size='16' text-anchor='middle'>", W / 2);
    for (const char *c = title ? title : ""; *c; c++) { /* escape XML */
        if (*c == '<') fputs("&lt;", f);
        else if (*c == '>') fputs("&gt;", f);
        else if (*c == '&') fputs("&amp;", f);
        else if (*c == '\'') fputs("&apos;", f);
        else fputc(*c, f);
    }
    fprintf(f, " (%zu updates)</text>\n", n);
    panel(f, p, n, 0, "MLM loss", "#c0392b", MT, tmax, tscale, tunit, 0);
    panel(f, p, n, 1, "learning rate", "#2471a3", MT + PH + GAP, tmax, tscale, tunit, 0);
    panel(f, p, n, 2, "batch size (sequences)", "#1e8449", MT + 2 * (PH + GAP), tmax, tscale, tunit, 1);
    fprintf(f, "</svg>\n");
    free(p);
    if (fclose(f) != 0 || rename(tmp, svg_path) != 0) {
        int e = errno;
        remove(tmp);
        return cram_err_set(err, CRAM_E_IO, "%s: %s", svg_path, strerror(e));
    }
    if (npoints) *npoints = n;
    return CRAM_OK;
}
