/* json.h - the little JSON the runtime reads and writes: numbers and strings
 * of flat objects (metrics.jsonl lines, `cram eval --json`, result files) and
 * string literals for every JSON writer (eval, bench, export, glue, sweep). */
#ifndef CRAM_JSON_H
#define CRAM_JSON_H

#include <stddef.h>
#include <stdio.h>

/* Value of the number "key": in a flat JSON object (NAN when null or missing). */
double cram_json_num(const char *obj, const char *key);
/* String "key": copied unescaped into out (cap bytes); -1 when missing. */
int cram_json_str(const char *obj, const char *key, char *out, size_t cap);
/* s as a JSON string literal (quotes, backslashes, control bytes as \u00XX; NULL as ""). */
void cram_json_put_str(FILE *f, const char *s);

#endif
