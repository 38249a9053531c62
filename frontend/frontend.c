/* frontend.c: the entry points of frontend.h; glue around the phases.
 *
 * The AST lives in a scratch arena dropped before returning; the graph owns
 * everything it keeps (names, file name for SrcLocs).
 */
#include "ast.h"

static bool check_size(const char *path, size_t len, Diag *d) {
  if (len <= FE_MAX_SOURCE) return true;
  diag_error(d, (SrcLoc){ path, 0, 0 }, "source too large (%zu bytes, limit %u MiB)", len, FE_MAX_SOURCE >> 20);
  return false;
}

Graph *fe_compile(const char *path, const char *text, size_t len, const FeDefine *defs, int ndefs, Diag *d) {
  if (!check_size(path, len, d)) return NULL;
  diag_add_source(d, path, text, len);
  int before = d->nerrors;
  Arena *a = arena_new();
  Program *p = fe_parse(a, path, text, len, d);
  Graph *g = NULL;
  if (d->nerrors == before || !d->max_errors || d->nerrors <= d->max_errors) g = fe_lower(p, defs, ndefs, d);
  arena_free(a);
  if (g && d->nerrors > before) { /* syntax errors: the graph is incomplete */
    ir_graph_free(g);
    g = NULL;
  }
  return g;
}

bool fe_print_ast(const char *path, const char *text, size_t len, FILE *out, Diag *d) {
  if (!check_size(path, len, d)) return false;
  diag_add_source(d, path, text, len);
  int before = d->nerrors;
  Arena *a = arena_new();
  Program *p = fe_parse(a, path, text, len, d);
  bool ok = d->nerrors == before;
  if (ok) fe_ast_print(p, out);
  arena_free(a);
  return ok;
}
