/* interpret.h: the interpreter train-step driver behind `cramc --interpret`
 * and the train-step graph behind `cramc --emit=train-ir` (docs/train-step.md). */
#ifndef CRAMC_DRIVER_INTERPRET_H
#define CRAMC_DRIVER_INTERPRET_H

#include "diag.h"
#include "ir.h"

/* The whole `cramc FILE.cram --interpret ...` command; returns the exit status
 * (0 ok, 1 error, 2 usage error). */
int cramc_interpret_main(int argc, char **argv);

/* The whole of a .cram file (cramc.c; shared by every command); prints the
 * reason and returns NULL when it cannot be read. */
char *cramc_read_source(const char *path, size_t *len);

/* autodiff + the optimizer pass with default options (k = 1). */
Graph *cramc_train_ir(const Graph *fwd, Diag *d);

#endif
