/* ckpt_diff A B - the largest absolute difference between the tensors of two
 * checkpoints (parameters and Adam moments, by name), printed as one number;
 * exit 1 if they do not hold the same tensor names and shapes. For
 * test_train_mpi.sh: N ranks vs one process with accumulation N. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "safetensors.h"

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: ckpt_diff A.safetensors B.safetensors\n");
    return 2;
  }
  cram_st_file a, b;
  cram_err err = { 0 };
  if (cram_st_read(argv[1], &a, &err) != CRAM_OK) {
    fprintf(stderr, "ckpt_diff: %s\n", err.msg);
    return 1;
  }
  if (cram_st_read(argv[2], &b, &err) != CRAM_OK) {
    fprintf(stderr, "ckpt_diff: %s\n", err.msg);
    cram_st_free(&a);
    return 1;
  }
  int bad = a.count != b.count;
  double worst = 0;
  for (size_t i = 0; !bad && i < a.count; i++) {
    const cram_st_tensor *x = &a.tensors[i], *y = cram_st_find(&b, x->name);
    if (!y || y->numel != x->numel) {
      fprintf(stderr, "ckpt_diff: %s differs in name or shape\n", x->name);
      bad = 1;
      break;
    }
    for (int64_t k = 0; k < x->numel; k++) {
      double d = fabs(cram_st_get(x, k) - cram_st_get(y, k));
      if (!(d <= worst)) worst = d; /* NaN wins */
    }
  }
  if (!bad) printf("%.9g\n", worst);
  cram_st_free(&a);
  cram_st_free(&b);
  return bad;
}
