/* fuzz_frontend.c: libFuzzer target for the .cram frontend.
 *
 * Feeds arbitrary bytes to fe_compile (lexer, parser, lowering, builtins, IR
 * builders) with diagnostics going to /dev/null, and prints every graph that
 * compiles (so ir_print is exercised too). The frontend must never crash,
 * leak, hang or trip a sanitizer on any input. The first input line may
 * carry a -D override: a line "#D name=value" is applied as one, so the
 * fuzzer also explores overrides. Build and run with tests/fuzz/run.sh.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frontend.h"
#include "ir.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static FILE *devnull;
  if (!devnull) devnull = fopen("/dev/null", "w");
  if (!devnull) abort();
  /* A private copy, so the frontend never reads past `size` by accident
   * (no NUL terminator is added on purpose). */
  char *text = malloc(size ? size : 1);
  if (!text) return 0;
  memcpy(text, data, size);

  FeDefine def;
  int ndefs = 0;
  char name[64], value[32];
  if (size > 3 && !memcmp(text, "#D ", 3)) {
    const char *eq = memchr(text, '=', size < 64 ? size : 64);
    const char *nl = memchr(text, '\n', size < 96 ? size : 96);
    if (eq && nl && eq < nl && (size_t)(eq - text - 3) < sizeof name && (size_t)(nl - eq - 1) < sizeof value) {
      memcpy(name, text + 3, (size_t)(eq - text - 3));
      name[eq - text - 3] = '\0';
      memcpy(value, eq + 1, (size_t)(nl - eq - 1));
      value[nl - eq - 1] = '\0';
      def = (FeDefine){ name, value };
      ndefs = 1;
    }
  }

  Diag d;
  diag_init(&d, devnull);
  Graph *g = fe_compile("fuzz.cram", text, size, &def, ndefs, &d);
  if (g) {
    if (d.nerrors) abort();         /* a graph is returned only without errors */
    if (!ir_verify(g, &d)) abort(); /* and it is well formed */
    ir_print(g, devnull);
  }
  ir_graph_free(g);

  Diag d2; /* the parse-only path too */
  diag_init(&d2, devnull);
  fe_print_ast("fuzz.cram", text, size, devnull, &d2);
  free(text);
  return 0;
}
