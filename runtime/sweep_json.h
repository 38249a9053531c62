/* sweep_json.h - the little JSON `cram sweep` reads and writes: numbers and
 * strings of flat objects (metrics.jsonl lines, `cram eval --json`, its own
 * result.json), and one table row per variant. */
#ifndef CRAM_SWEEP_JSON_H
#define CRAM_SWEEP_JSON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "status.h"
#include "sweep.h"

/* Value of the number "key": in a flat JSON object (NAN when null or missing). */
double cram_json_num(const char *obj, const char *key);
/* String "key": copied unescaped into out (cap bytes); -1 when missing. */
int cram_json_str(const char *obj, const char *key, char *out, size_t cap);
/* A JSON string literal of s (quotes, escapes; control bytes as \u00XX). */
void cram_json_put_str(FILE *f, const char *s);

/* One row as a JSON object (no newline). */
void cram_sweep_row_json(FILE *f, const cram_sweep_row *row);
/* result.json of a variant: the row plus the key it was produced under.
 * load returns 0 when the file exists, parses and has this key. */
int cram_sweep_row_load(const char *path, uint64_t key, cram_sweep_row *row);
cram_status cram_sweep_row_save(const char *path, uint64_t key, const cram_sweep_row *row, cram_err *err);

#endif
