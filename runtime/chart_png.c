/* chart_png.c - the charts of chart.h as a PNG: the SVG's layout rasterised
 * into an RGB buffer (lines, grid, a 5x7 bitmap font, upper case) and
 * written as a PNG with no link-time library: zlib's compress2 when
 * libz.so.1 can be opened at run time, else deflate "stored" blocks (so
 * `cram` itself needs only libc: the GPU bundle's binaries must load on a
 * machine with nothing else). */
#include <dlfcn.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chart.h"
#include "checksum.h"

enum { W = CRAM_CHART_W, PH = CRAM_CHART_PH, ML = CRAM_CHART_ML, MR = CRAM_CHART_MR, MT = CRAM_CHART_MT, GAP = CRAM_CHART_GAP };

static const uint32_t palette[] = { 0x1f77b4, 0xd62728, 0x2ca02c, 0xff7f0e, 0x9467bd,
                                    0x8c564b, 0xe377c2, 0x7f7f7f, 0xbcbd22, 0x17becf };

typedef struct img {
  int w, h;
  uint8_t *px; /* RGB rows */
} img;

static void put(img *m, int x, int y, uint32_t c) {
  if (x < 0 || y < 0 || x >= m->w || y >= m->h) return;
  uint8_t *p = m->px + 3 * ((size_t)y * (size_t)m->w + (size_t)x);
  p[0] = (uint8_t)(c >> 16), p[1] = (uint8_t)(c >> 8), p[2] = (uint8_t)c;
}

static void fill(img *m, int x0, int y0, int x1, int y1, uint32_t c) {
  for (int y = y0; y < y1; y++)
    for (int x = x0; x < x1; x++) put(m, x, y, c);
}

/* Bresenham, `thick` pixels wide */
static void line(img *m, double fx0, double fy0, double fx1, double fy1, uint32_t c, int thick) {
  int x0 = (int)lround(fx0), y0 = (int)lround(fy0), x1 = (int)lround(fx1), y1 = (int)lround(fy1);
  int dx = abs(x1 - x0), dy = -abs(y1 - y0), sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1, e = dx + dy;
  for (int guard = 0; guard < 100000; guard++) {
    for (int t = 0; t < thick; t++) put(m, x0 + (dx < -dy ? t : 0), y0 + (dx < -dy ? 0 : t), c);
    if (x0 == x1 && y0 == y1) break;
    int e2 = 2 * e;
    if (e2 >= dy) e += dy, x0 += sx;
    if (e2 <= dx) e += dx, y0 += sy;
  }
}

/* 5x7 glyphs, one byte per row (bit 4 = leftmost column) */
static const char glyph_chars[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ.-+()/_:,%?";
static const uint8_t glyphs[][7] = {
  { 0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E }, { 0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E },
  { 0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F }, { 0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E },
  { 0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02 }, { 0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E },
  { 0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E }, { 0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08 },
  { 0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E }, { 0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C },
  { 0x0E, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11 }, { 0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E },
  { 0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E }, { 0x1C, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1C },
  { 0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F }, { 0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10 },
  { 0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F }, { 0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11 },
  { 0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E }, { 0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C },
  { 0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11 }, { 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F },
  { 0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11 }, { 0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11 },
  { 0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E }, { 0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10 },
  { 0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D }, { 0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11 },
  { 0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E }, { 0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04 },
  { 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E }, { 0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04 },
  { 0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A }, { 0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11 },
  { 0x11, 0x11, 0x11, 0x0A, 0x04, 0x04, 0x04 }, { 0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F },
  { 0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x0C }, { 0x00, 0x00, 0x00, 0x1F, 0x00, 0x00, 0x00 },
  { 0x00, 0x04, 0x04, 0x1F, 0x04, 0x04, 0x00 }, { 0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02 },
  { 0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08 }, { 0x00, 0x01, 0x02, 0x04, 0x08, 0x10, 0x00 },
  { 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1F }, { 0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x0C, 0x00 },
  { 0x00, 0x00, 0x00, 0x00, 0x0C, 0x04, 0x08 }, { 0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03 },
  { 0x0E, 0x11, 0x01, 0x02, 0x04, 0x00, 0x04 },
};

/* Text at (x, y) = its top left; scale s; align: 0 left, 1 centre, 2 right. Returns the width. */
static int text(img *m, int x, int y, const char *str, int s, int align, uint32_t c) {
  int n = (int)strlen(str), w = n * 6 * s;
  x -= align == 1 ? w / 2 : align == 2 ? w : 0;
  for (int i = 0; i < n; i++) {
    char ch = str[i] >= 'a' && str[i] <= 'z' ? (char)(str[i] - 32) : str[i];
    if (ch == ' ') continue;
    const char *g = strchr(glyph_chars, ch);
    const uint8_t *rows = glyphs[g && ch ? g - glyph_chars : (int)sizeof glyph_chars - 2];
    for (int r = 0; r < 7; r++)
      for (int col = 0; col < 5; col++)
        if (rows[r] >> (4 - col) & 1) fill(m, x + (i * 6 + col) * s, y + r * s, x + (i * 6 + col + 1) * s, y + (r + 1) * s, c);
  }
  return w;
}

static void panel(img *m, const cram_chart *c, int y0) {
  int pw = W - ML - MR;
  cram_chart_axes ax;
  cram_chart_axes_of(c, &ax);
  const double xlo = ax.xlo, xhi = ax.xhi, xs = ax.xstep, ylo = ax.ylo, yhi = ax.yhi, ys = ax.ystep;
  fill(m, ML, y0, ML + pw, y0 + PH, 0xfafafa);
  text(m, ML, y0 - 22, c->title, 2, 0, 0x000000);
  char b[32];
  for (double v = ylo; v <= yhi + ys * 1e-6; v += ys) {
    double y = y0 + PH - (v - ylo) / (yhi - ylo) * PH;
    line(m, ML, y, ML + pw, y, 0xdddddd, 1);
    cram_chart_tick_label(b, sizeof b, fabs(v) < ys * 1e-9 ? 0 : v);
    text(m, ML - 6, (int)y - 3, b, 1, 2, 0x000000);
  }
  for (double v = xlo; v <= xhi + xs * 1e-6; v += xs) {
    double x = ML + (v - xlo) / (xhi - xlo) * pw;
    line(m, x, y0, x, y0 + PH, 0xdddddd, 1);
    cram_chart_tick_label(b, sizeof b, v);
    text(m, (int)x, y0 + PH + 8, b, 1, 1, 0x000000);
  }
  text(m, ML + pw / 2, y0 + PH + 24, c->xlabel, 2, 1, 0x000000);
  line(m, ML, y0, ML + pw, y0, 0x888888, 1), line(m, ML, y0 + PH, ML + pw, y0 + PH, 0x888888, 1);
  line(m, ML, y0, ML, y0 + PH, 0x888888, 1), line(m, ML + pw, y0, ML + pw, y0 + PH, 0x888888, 1);
  for (size_t s = 0; s < c->nseries; s++) {
    const cram_series *se = &c->series[s];
    uint32_t col = palette[s % (sizeof palette / sizeof palette[0])];
    double px = NAN, py = NAN;
    for (size_t i = 0; i < se->n; i++) {
      if (!isfinite(se->x[i]) || !isfinite(se->y[i])) {
        px = NAN;
        continue;
      }
      double x = ML + (se->x[i] - xlo) / (xhi - xlo) * pw, y = y0 + PH - (se->y[i] - ylo) / (yhi - ylo) * PH;
      if (isfinite(px)) line(m, px, py, x, y, col, 2);
      else fill(m, (int)x - 1, (int)y - 1, (int)x + 2, (int)y + 2, col);
      px = x, py = y;
    }
    int ly = y0 + 8 + 16 * (int)s;
    fill(m, ML + pw + 12, ly + 2, ML + pw + 36, ly + 5, col);
    char lab[32];
    snprintf(lab, sizeof lab, "%.28s", se->label ? se->label : "");
    text(m, ML + pw + 42, ly, lab, 1, 0, 0x000000);
  }
}

static void be32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

static int chunk(FILE *f, const char *type, const uint8_t *data, size_t n) {
  uint8_t h[8];
  be32(h, (uint32_t)n);
  memcpy(h + 4, type, 4);
  uint32_t crc = cram_crc32(cram_crc32(0, type, 4), data, n);
  uint8_t t[4];
  be32(t, crc);
  return fwrite(h, 1, 8, f) != 8 || (n && fwrite(data, 1, n, f) != n) || fwrite(t, 1, 4, f) != 4;
}

/* zlib's compress2 through libz.so.1 when it loads (level 6); NULL otherwise.
 * zlib's uLong is unsigned long on every platform it runs on here. */
static uint8_t *zlib_compress(const uint8_t *raw, size_t n, size_t *out_n) {
  void *lib = dlopen("libz.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!lib) return NULL;
  int (*compress2_fn)(uint8_t *, unsigned long *, const uint8_t *, unsigned long, int);
  unsigned long (*bound_fn)(unsigned long);
  *(void **)&compress2_fn = dlsym(lib, "compress2");
  *(void **)&bound_fn = dlsym(lib, "compressBound");
  uint8_t *z = NULL;
  if (compress2_fn && bound_fn) {
    unsigned long cap = bound_fn((unsigned long)n);
    z = malloc(cap);
    if (z && compress2_fn(z, &cap, raw, (unsigned long)n, 6) == 0) *out_n = cap;
    else free(z), z = NULL;
  }
  dlclose(lib);
  return z;
}

/* The zlib stream of raw (n bytes): compressed when zlib is there, else stored blocks. */
static uint8_t *zstream(const uint8_t *raw, size_t n, size_t *out_n) {
  uint8_t *c = zlib_compress(raw, n, out_n);
  if (c) return c;
  size_t nblk = n / 65535 + 1, cap = 2 + nblk * 5 + n + 4, o = 0;
  uint8_t *z = malloc(cap);
  if (!z) return NULL;
  z[o++] = 0x78, z[o++] = 0x01;
  uint32_t a = 1, b = 0; /* adler32 */
  for (size_t i = 0; i < n; i++) a = (a + raw[i]) % 65521, b = (b + a) % 65521;
  for (size_t off = 0; off < n || off == 0; off += 65535) {
    size_t len = n - off < 65535 ? n - off : 65535;
    z[o++] = off + len >= n;
    z[o++] = (uint8_t)len, z[o++] = (uint8_t)(len >> 8), z[o++] = (uint8_t)~len, z[o++] = (uint8_t)(~len >> 8);
    memcpy(z + o, raw + off, len);
    o += len;
    if (n == 0) break;
  }
  be32(z + o, b << 16 | a);
  *out_n = o + 4;
  return z;
}

cram_status cram_chart_png(const char *path, const char *heading, const cram_chart *charts, size_t ncharts, cram_err *err) {
  img m = { W, MT + (int)ncharts * (PH + GAP) + 10, NULL };
  size_t stride = 1 + 3 * (size_t)m.w, rawn = stride * (size_t)m.h;
  m.px = malloc(3 * (size_t)m.w * (size_t)m.h);
  uint8_t *raw = malloc(rawn), *z = NULL;
  cram_status r = CRAM_OK;
  FILE *f = NULL;
  if (!m.px || !raw) {
    r = cram_err_set(err, CRAM_E_NOMEM, "%s: out of memory for the image", path);
    goto out;
  }
  memset(m.px, 0xff, 3 * (size_t)m.w * (size_t)m.h);
  text(&m, W / 2, 14, heading ? heading : "", 2, 1, 0x000000);
  for (size_t c = 0; c < ncharts; c++) panel(&m, &charts[c], MT + (int)c * (PH + GAP));
  for (int y = 0; y < m.h; y++) {
    raw[(size_t)y * stride] = 0; /* filter: none */
    memcpy(raw + (size_t)y * stride + 1, m.px + 3 * (size_t)y * (size_t)m.w, 3 * (size_t)m.w);
  }
  size_t zn = 0;
  if (!(z = zstream(raw, rawn, &zn))) {
    r = cram_err_set(err, CRAM_E_NOMEM, "%s: out of memory compressing the image", path);
    goto out;
  }
  if (!(f = fopen(path, "wb"))) {
    r = cram_err_set(err, CRAM_E_IO, "%s: %s", path, strerror(errno));
    goto out;
  }
  uint8_t ihdr[13];
  be32(ihdr, (uint32_t)m.w), be32(ihdr + 4, (uint32_t)m.h);
  ihdr[8] = 8, ihdr[9] = 2, ihdr[10] = ihdr[11] = ihdr[12] = 0; /* 8-bit RGB, deflate, no interlace */
  static const uint8_t sig[8] = { 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n' };
  int bad = fwrite(sig, 1, 8, f) != 8 || chunk(f, "IHDR", ihdr, 13) || chunk(f, "IDAT", z, zn) || chunk(f, "IEND", NULL, 0);
  if (fclose(f) != 0 || bad) r = cram_err_set(err, CRAM_E_IO, "%s: %s", path, strerror(errno ? errno : EIO));
  f = NULL;
out:
  free(m.px), free(raw), free(z);
  return r;
}
