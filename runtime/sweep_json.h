/* sweep_json.h - a sweep's table rows as JSON: results.json and each
 * variant's result.json (read back on a re-run). */
#ifndef CRAM_SWEEP_JSON_H
#define CRAM_SWEEP_JSON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "json.h"
#include "status.h"
#include "sweep.h"

/* One row as a JSON object (no newline). */
void cram_sweep_row_json(FILE *f, const cram_sweep_row *row);
/* result.json of a variant: the row plus the key it was produced under.
 * load returns 0 when the file exists, parses and has this key. */
int cram_sweep_row_load(const char *path, uint64_t key, cram_sweep_row *row);
cram_status cram_sweep_row_save(const char *path, uint64_t key, const cram_sweep_row *row, cram_err *err);

#endif
