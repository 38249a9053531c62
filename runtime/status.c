/* status.c - status names and the error-message helper (see status.h). */
#include "status.h"

#include <stdarg.h>
#include <stdio.h>

const char *cram_status_name(cram_status s) {
  switch (s) {
  case CRAM_OK: return "ok";
  case CRAM_E_IO: return "io-error";
  case CRAM_E_TRUNCATED: return "truncated";
  case CRAM_E_MAGIC: return "bad-magic";
  case CRAM_E_VERSION: return "bad-version";
  case CRAM_E_HEADER: return "bad-header";
  case CRAM_E_VOCAB: return "vocab-mismatch";
  case CRAM_E_SEQLEN: return "seq-len-mismatch";
  case CRAM_E_TOKENIZER: return "tokenizer-mismatch";
  case CRAM_E_CHECKSUM: return "checksum-mismatch";
  case CRAM_E_TOKEN_RANGE: return "token-out-of-range";
  case CRAM_E_NOMEM: return "out-of-memory";
  case CRAM_E_ARG: return "bad-argument";
  case CRAM_E_STREAM: return "bad-token-stream";
  case CRAM_E_CHILD: return "tokenizer-tool-failed";
  case CRAM_E_INTERRUPTED: return "interrupted";
  case CRAM_E_DATASET: return "bad-dataset";
  }
  return "unknown";
}

cram_status cram_err_set(cram_err *err, cram_status s, const char *fmt, ...) {
  if (err) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    err->status = s;
  }
  return s;
}
