/* safetensors.h - reading and writing .safetensors files (the exchange format
 * for parameters, batches, checkpoints and reference comparisons).
 *
 * Format (https://github.com/huggingface/safetensors): u64 little-endian
 * header length N, N bytes of JSON
 *   {"name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]},
 *    ..., "__metadata__": {"key": "value", ...}}
 * then the raw little-endian row-major tensor data; offsets are relative to
 * the end of the header. Supported dtypes: F32, F64, BF16, I32, I64.
 *
 * The reader loads the whole file and validates everything before returning:
 * header length sane, JSON well formed, every tensor with a known dtype, a
 * shape whose element count times the dtype size equals its byte range,
 * offsets inside the data section and not overlapping. Any failure is one
 * line naming the file. The writer is atomic: temp file, fsync, rename.
 * Library code: never prints, never exits. */
#ifndef CRAM_SAFETENSORS_H
#define CRAM_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"

typedef enum cram_st_dtype { CRAM_ST_F32, CRAM_ST_F64, CRAM_ST_BF16, CRAM_ST_I32, CRAM_ST_I64 } cram_st_dtype;

#define CRAM_ST_MAX_RANK   8
#define CRAM_ST_MAX_HEADER (100u << 20) /* header bytes accepted by the reader */

typedef struct cram_st_tensor {
  char *name;
  cram_st_dtype dtype;
  int rank;
  int64_t shape[CRAM_ST_MAX_RANK];
  int64_t numel;
  size_t nbytes;
  const unsigned char *data; /* reader: points into the file buffer; writer: caller's bytes */
} cram_st_tensor;

typedef struct cram_st_meta {
  char *key, *value;
} cram_st_meta;

typedef struct cram_st_file {
  cram_st_tensor *tensors; /* in file order of their data offsets */
  size_t count;
  cram_st_meta *meta; /* "__metadata__" entries (string values only) */
  size_t nmeta;
  unsigned char *buf; /* the whole file */
  size_t size;
} cram_st_file;

const char *cram_st_dtype_name(cram_st_dtype t); /* "F32" */
size_t cram_st_dtype_size(cram_st_dtype t);

/* Reads and validates path into *f (zeroed on failure; always call cram_st_free). */
cram_status cram_st_read(const char *path, cram_st_file *f, cram_err *err);
/* Parses an in-memory image (used by the reader and by tests); `label` names it in errors.
 * Takes ownership of buf (malloc'd) on success and on failure. */
cram_status cram_st_parse(unsigned char *buf, size_t size, const char *label, cram_st_file *f, cram_err *err);
void cram_st_free(cram_st_file *f);

const cram_st_tensor *cram_st_find(const cram_st_file *f, const char *name);
const char *cram_st_meta_get(const cram_st_file *f, const char *key);

/* Element i of t converted to double (exact for F32/F64/BF16/I32; I64 beyond 2^53 rounds). */
double cram_st_get(const cram_st_tensor *t, int64_t i);

/* Writes the tensors (name, dtype, rank, shape, data; nbytes and numel are
 * recomputed from the shape) and the metadata to path atomically. Names must
 * be unique, non-empty and not "__metadata__". */
cram_status cram_st_write(const char *path, const cram_st_tensor *ts, size_t n, const cram_st_meta *meta, size_t nmeta,
                          cram_err *err);

/* Little-endian encoders for building tensors to write: x[i] as dtype into out. */
void cram_st_put(cram_st_dtype t, unsigned char *out, int64_t i, double x);

#endif
