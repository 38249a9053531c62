/* schedule.c - learning-rate and batch-size schedules; see schedule.h. */
#include "schedule.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>

double cram_lr_mult(double t) {
    if (!(t > 0)) t = 0;
    if (t > 1) t = 1;
    double up = 0.25 + t, down = 4.0 * (1.0 - t);
    return up < down ? up : down;
}

uint64_t cram_batch_size(double t, uint64_t mbs, uint64_t target, double ramp) {
    if (mbs == 0) return 0;
    uint64_t cap = (target + mbs - 1) / mbs * mbs; /* whole microbatches */
    if (target <= mbs) return mbs;
    if (!(ramp > 0)) return cap;
    if (!(t > 0)) t = 0;
    double x = t * (double)target / ramp;
    if (x >= (double)target) return cap;
    uint64_t bs = ((uint64_t)floor(x) / mbs + 1) * mbs;
    return bs < cap ? bs : cap;
}

cram_status cram_parse_duration(const char *s, double *seconds, cram_err *err) {
    if (!s || !*s) return cram_err_set(err, CRAM_E_ARG, "empty duration");
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    double mul = 1;
    if (end != s && *end && !end[1]) {
        switch (*end) {
        case 's': mul = 1; end++; break;
        case 'm': mul = 60; end++; break;
        case 'h': mul = 3600; end++; break;
        case 'd': mul = 86400; end++; break;
        default: break;
        }
    }
    if (errno || end == s || *end || !(v > 0) || !isfinite(v))
        return cram_err_set(err, CRAM_E_ARG, "bad duration '%s' (expected e.g. 24h, 90m, 30s)", s);
    *seconds = v * mul;
    return CRAM_OK;
}
