/* fuzz_safetensors.c: libFuzzer target for the safetensors reader
 * (runtime/safetensors.c), which reads checkpoints, batch files and
 * reference tensors. Arbitrary bytes go to cram_st_parse; a file it accepts
 * must be self-consistent (every tensor's bytes inside the buffer, its byte
 * count = numel x dtype size), and every element is read back, so ASan sees
 * any offset the validation let through. The same image then goes through
 * cram_ckpt_parse_state (the checkpoint metadata checks). Build and run with
 * tests/fuzz/run.sh. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt.h"
#include "safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  unsigned char *buf = malloc(size ? size : 1); /* cram_st_parse takes ownership */
  if (!buf) return 0;
  memcpy(buf, data, size);
  cram_st_file f;
  cram_err err;
  if (cram_st_parse(buf, size, "fuzz.safetensors", &f, &err) != CRAM_OK) {
    if (!strstr(err.msg, "fuzz.safetensors")) abort(); /* every refusal names the file */
    return 0;
  }
  for (size_t i = 0; i < f.count; i++) {
    const cram_st_tensor *t = &f.tensors[i];
    if (t->data < f.buf || t->data + t->nbytes > f.buf + f.size) abort();
    if ((uint64_t)t->numel * cram_st_dtype_size(t->dtype) != t->nbytes) abort();
    volatile double sink = 0;
    for (int64_t k = 0; k < t->numel; k++) sink += cram_st_get(t, k);
    (void)sink;
    if (cram_st_find(&f, t->name) == NULL) abort();
  }
  cram_train_state st;
  (void)cram_ckpt_parse_state(&f, "fuzz.safetensors", NULL, &st, &err);
  cram_st_free(&f);
  return 0;
}
