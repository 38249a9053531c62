/* cram_step_shim.h - what the three step shims share (interp_step/step_shim.c,
 * cpu_step/cpu_shim.c, cuda_step/cuda_shim.c): the list of step-ABI entries a
 * shim implements under its own prefix (cram_interp_*, cram_cpu_*,
 * cram_cuda_*), and the pieces of create() and of the argument checks that
 * are the same in all of them. Installed beside cram_step.h in LIBDIR/include
 * (the generated step.c of every target includes it through its shim header);
 * cramc's artifact.c reads the same list to write the cram_step_api table
 * (cg_put_step_api). No state: static inline helpers and macros only. */
#ifndef CRAM_STEP_SHIM_H
#define CRAM_STEP_SHIM_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "cram_step.h"

/* The persistent buffer (slot) kinds and output kinds of a generated graph
 * (slots.def, the list codegen/kernel.h numbers KSlotKind / KOutKind by). */
enum {
#define SLOT(id, what) CRAM_S_##id,
#include "slots.def"
  CRAM_S_COUNT
};
enum {
#define OUT(id, what) CRAM_O_##id,
#include "slots.def"
  CRAM_O_COUNT
};

/* The entries of cram_step_api after create(), in the table's order, as
 * X(P, return type, name, (parameters)). The shim core implements them once
 * as cram_shim_<name> (shim_core/shim_core.c, linked into every target's
 * library); adding an ABI entry is one line here plus its implementation
 * there: the declarations, the generated table and the check below follow.
 * create() is not in the list: each target's takes its own artifact type
 * first, and the generated step.c wraps it (cg_put_step_api). */
#define CRAM_STEP_SHIM_ENTRIES(X, P)                                                                                            \
  X(P, void, destroy, (cram_ctx * ctx))                                                                                         \
  X(P, const char *, last_error, (const cram_ctx *ctx))                                                                         \
  X(P, cram_step_rc, init_params, (cram_ctx * ctx, uint64_t seed))                                                              \
  X(P, cram_step_rc, get_param, (cram_ctx * ctx, uint32_t i, float *dst))                                                       \
  X(P, cram_step_rc, set_param, (cram_ctx * ctx, uint32_t i, const float *src))                                                 \
  X(P, cram_step_rc, get_moments, (cram_ctx * ctx, uint32_t i, float *m, float *v))                                             \
  X(P, cram_step_rc, set_moments, (cram_ctx * ctx, uint32_t i, const float *m, const float *v))                                 \
  X(P, cram_step_rc, step, (cram_ctx * ctx, const void *const *inputs, float scale, float *loss))                               \
  X(P, cram_step_rc, update, (cram_ctx * ctx, const cram_update_args *args, float *grad_norm))                                  \
  X(P, cram_step_rc, eval, (cram_ctx * ctx, const void *const *inputs, float *loss))                                            \
  X(P, cram_step_rc, grad_norm, (cram_ctx * ctx, float *norm))                                                                  \
  X(P, cram_step_rc, zero_grad, (cram_ctx * ctx))                                                                               \
  X(P, cram_step_rc, predict, (cram_ctx * ctx, const void *const *inputs, float *loss, float *const *outputs))                  \
  X(P, cram_step_rc, eval_accuracy, (cram_ctx * ctx, const void *const *inputs, float *loss, double *correct, double *counted)) \
  X(P, cram_step_rc, grad_buffer, (cram_ctx * ctx, cram_grad_buffer * out))

#define CRAM_STEP_SHIM_DECL_(P, ret, name, params) ret P##_##name params;

/* The core's entries, cram_shim_<entry>, for every target. */
CRAM_STEP_SHIM_ENTRIES(CRAM_STEP_SHIM_DECL_, cram_shim)

/* Declares a target's create: P_create(const ARTIFACT *a, opts, out, err, errlen). */
#define CRAM_STEP_SHIM_DECLARE(P, ARTIFACT) \
  cram_step_rc P##_create(const ARTIFACT *a, const cram_create_opts *opts, cram_ctx **out, char *err, size_t errlen);

/* The list is cram_step_api after create, entry for entry and type for type:
 * a field added to the table without a line above (or the other way round)
 * stops every shim and every generated step.c from compiling. */
#define CRAM_STEP_SHIM_CHECK_(P, ret, name, params)                                                 \
  _Static_assert(_Generic(((cram_step_api *)0)->name, ret(*) params : 1, default : 0),              \
                 "cram_step_api." #name " does not have the type CRAM_STEP_SHIM_ENTRIES gives it"); \
  _Static_assert(offsetof(cram_step_api, name) == offsetof(cram_step_shim_check_, name),            \
                 "cram_step_api." #name " is not where CRAM_STEP_SHIM_ENTRIES puts it");
#define CRAM_STEP_SHIM_FIELD_(P, ret, name, params) ret(*name) params;
typedef struct cram_step_shim_check_ {
  uint32_t abi_version, struct_size;
  const cram_step_meta *meta;
  cram_step_rc (*create)(const cram_create_opts *opts, cram_ctx **out, char *err, size_t errlen);
  CRAM_STEP_SHIM_ENTRIES(CRAM_STEP_SHIM_FIELD_, _)
} cram_step_shim_check_;
CRAM_STEP_SHIM_ENTRIES(CRAM_STEP_SHIM_CHECK_, _)
_Static_assert(sizeof(cram_step_api) == sizeof(cram_step_shim_check_), "cram_step_api has entries CRAM_STEP_SHIM_ENTRIES lacks");

/* Writes the one-line message to create()'s err (where it has room); returns rc. */
static inline cram_step_rc cram_shim_err(char *err, size_t errlen, cram_step_rc rc, const char *fmt, ...)
  __attribute__((format(printf, 4, 5)));
static inline cram_step_rc cram_shim_err(char *err, size_t errlen, cram_step_rc rc, const char *fmt, ...) {
  if (err && errlen) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
  }
  return rc;
}

/* The prologue of every shim's create(a, opts, out, err, errlen), up to a
 * zeroed context of ctx_size bytes: out must not be NULL (*out = NULL after),
 * the artifact must be there and carry the shim version the library was built
 * with (version_ok: `a && a->shim_version == CRAM_<T>_SHIM_VERSION`), and the
 * allocation must succeed. Returns the context, or NULL with *rc set and one
 * line in err:
 *   "<target> artifact built for another shim version; rebuild it with this cramc"
 *   "<model>: out of memory" */
static inline void *cram_shim_create_ctx(cram_ctx **out, const char *target, bool version_ok, const cram_step_meta *meta,
                                         size_t ctx_size, char *err, size_t errlen, cram_step_rc *rc) {
  *rc = CRAM_STEP_E_ARG;
  if (!out) return NULL;
  *out = NULL;
  if (!version_ok) {
    *rc = cram_shim_err(err, errlen, CRAM_STEP_E_STATE, "%s artifact built for another shim version; rebuild it with this cramc",
                        target);
    return NULL;
  }
  void *c = calloc(1, ctx_size);
  *rc = c ? CRAM_STEP_OK : cram_shim_err(err, errlen, CRAM_STEP_E_NOMEM, "%s: out of memory", meta->model);
  return c;
}

/* The argument check of get/set_param and get/set_moments: parameter i of
 * np, buffers a and b. CRAM_STEP_OK, or CRAM_STEP_E_ARG with the message
 * (without the "<model>: " every shim puts before it) in msg. */
static inline cram_step_rc cram_shim_check_index(uint32_t i, uint32_t np, const void *a, const void *b, char *msg,
                                                 size_t msglen) {
  if (i >= np) return cram_shim_err(msg, msglen, CRAM_STEP_E_ARG, "parameter index %u out of range", i);
  if (!a || !b) return cram_shim_err(msg, msglen, CRAM_STEP_E_ARG, "NULL buffer for parameter %u", i);
  return CRAM_STEP_OK;
}

/* update()'s arguments: checked (CRAM_STEP_E_ARG with the message in msg, as
 * above) and, on success, the update graph's "hyper" input in h, in the order
 * of ir.h's IR_HYP_* (beta1, beta2, eps, weight decay, weight decay of the
 * decay = 0 params, clip norm). */
#define CRAM_SHIM_NHYPER 6
static inline cram_step_rc cram_shim_update_hyper(const cram_update_args *a, double h[CRAM_SHIM_NHYPER], char *msg,
                                                  size_t msglen) {
  if (!a) return cram_shim_err(msg, msglen, CRAM_STEP_E_ARG, "update args are NULL");
  if (!(a->beta1 >= 0 && a->beta1 < 1) || !(a->beta2 >= 0 && a->beta2 < 1))
    return cram_shim_err(msg, msglen, CRAM_STEP_E_ARG, "betas must lie in [0, 1), got (%g, %g)", a->beta1, a->beta2);
  if (!(a->eps >= 0 && a->eps < 1) || !(a->weight_decay >= 0 && a->weight_decay < 1) ||
      !(a->weight_decay_other >= 0 && a->weight_decay_other < 1) || a->max_norm != a->max_norm)
    return cram_shim_err(msg, msglen, CRAM_STEP_E_ARG,
                         "eps and weight decays must lie in [0, 1) and max_norm be a number, got %g, %g, %g, %g", a->eps,
                         a->weight_decay, a->weight_decay_other, a->max_norm);
  h[0] = a->beta1, h[1] = a->beta2, h[2] = a->eps, h[3] = a->weight_decay, h[4] = a->weight_decay_other;
  h[5] = a->max_norm;
  return CRAM_STEP_OK;
}

#endif
