/* status.h - return codes and error messages shared by libcramrt.
 *
 * Library code never prints and never exits: every fallible function returns a
 * cram_status and, when given a cram_err, fills it with one human-readable
 * line that names the file involved ("data/train-00000.shard: checksum
 * mismatch ..."). The CLI decides what to print and which exit code to use. */
#ifndef CRAM_STATUS_H
#define CRAM_STATUS_H

#include <stddef.h>

typedef enum cram_status {
  CRAM_OK = 0,
  CRAM_E_IO,          /* open/read/write/mmap/rename failed (errno text in msg) */
  CRAM_E_TRUNCATED,   /* file shorter than its header says */
  CRAM_E_MAGIC,       /* not a cram token shard */
  CRAM_E_VERSION,     /* shard format version this build cannot read */
  CRAM_E_HEADER,      /* header corrupt or inconsistent */
  CRAM_E_VOCAB,       /* vocab size differs from the expected one */
  CRAM_E_SEQLEN,      /* sequence length differs from the expected one */
  CRAM_E_TOKENIZER,   /* tokenizer hash differs from the expected one */
  CRAM_E_CHECKSUM,    /* payload CRC32 mismatch */
  CRAM_E_TOKEN_RANGE, /* a token id >= vocab size */
  CRAM_E_NOMEM,
  CRAM_E_ARG,         /* invalid argument / option */
  CRAM_E_STREAM,      /* malformed token stream from the tokenizer tool */
  CRAM_E_CHILD,       /* the tokenizer tool failed */
  CRAM_E_INTERRUPTED, /* stopped by a signal */
  CRAM_E_DATASET      /* shard set incomplete or inconsistent */
} cram_status;

#define CRAM_ERR_MAX 1024
typedef struct cram_err {
  cram_status status;
  char msg[CRAM_ERR_MAX];
} cram_err;

/* Stable short name of a status ("checksum-mismatch"), for logs and tests. */
const char *cram_status_name(cram_status s);

/* Fill err (if non-NULL) with a printf-style message; returns s. */
cram_status cram_err_set(cram_err *err, cram_status s, const char *fmt, ...)
#if defined(__GNUC__)
  __attribute__((format(printf, 3, 4)))
#endif
  ;

#endif
