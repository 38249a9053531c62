/* init.c: parameter initialisation (see init.h). */
#include "init.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

uint64_t ir_init_name_hash(const char *name) {
  uint64_t h = UINT64_C(0xcbf29ce484222325);
  for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
    h ^= *p;
    h *= UINT64_C(0x100000001b3);
  }
  return h;
}

static uint64_t splitmix64(uint64_t x) {
  x += UINT64_C(0x9e3779b97f4a7c15);
  x = (x ^ (x >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
  x = (x ^ (x >> 27)) * UINT64_C(0x94d049bb133111eb);
  return x ^ (x >> 31);
}

/* (0, 1]: never 0, so log() is finite. */
static double unit_open0(uint64_t w) { return ((double)(w >> 11) + 1.0) * 0x1.0p-53; }

bool ir_init_param(const Node *n, uint64_t seed, double *out, char *err, size_t errlen) {
  if (n->op != OP_PARAM) {
    snprintf(err, errlen, "init: node is a %s, not a param", ir_ops[n->op].name);
    return false;
  }
  const char *name = ir_get_str(n, ATTR_NAME), *kind = ir_get_str(n, ATTR_INIT);
  double scale = ir_get_float(n, ATTR_SCALE);
  int64_t numel = ir_shape_numel(&n->shape);
  if (!strcmp(kind, "zeros") || !strcmp(kind, "ones") || !strcmp(kind, "const")) {
    double v = !strcmp(kind, "zeros") ? 0.0 : !strcmp(kind, "ones") ? 1.0 : scale;
    for (int64_t i = 0; i < numel; i++) out[i] = v;
    return true;
  }
  if (strcmp(kind, "normal") != 0) {
    snprintf(err, errlen, "init: param '%s' has unknown init kind '%s' (expected normal, ones, zeros or const)", name, kind);
    return false;
  }
  uint64_t key = splitmix64(seed ^ splitmix64(ir_init_name_hash(name)));
  const double two_pi = 6.283185307179586476925286766559;
  for (int64_t i = 0; i < numel; i += 2) {
    double u1 = unit_open0(splitmix64(key + (uint64_t)i));
    double u2 = unit_open0(splitmix64(key + (uint64_t)i + 1));
    double r = sqrt(-2.0 * log(u1));
    out[i] = scale * r * cos(two_pi * u2);
    if (i + 1 < numel) out[i + 1] = scale * r * sin(two_pi * u2);
  }
  return true;
}
