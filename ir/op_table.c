/* op_table.c: the expansions of ops.def and attrs.def into the tables that
 * ir.h declares (ir_ops, ir_attrs), plus name lookups for ops and dtypes.
 *
 * Lookups are linear scans: there are ~20 ops and 3 dtypes, and the callers
 * (the IR parser, the frontend) are nowhere near a hot loop.
 */
#include <string.h>

#include "ir_impl.h"

#define A(x)          (1u << ATTR_##x)
#define P(x)          (1u << OPP_##x)
#define GEMM(form, a) IR_GEMM_##form, a
#define NOGEMM        IR_GEMM_NO, 0
const OpInfo ir_ops[OP_COUNT] = {
#define OP(id, name, min_in, max_in, cls, attrs, shape, interp, grad, props, gemm) \
  [OP_##id] = { name, min_in, max_in, cls, attrs, shape, props, gemm },
#define NONE NULL
#include "ops.def"
#undef NONE
#undef OP
};
#undef NOGEMM
#undef GEMM
#undef P
#undef A

/* The property columns are consistent: what a pass relies on holds for every row. */
#define OP(id, name, min_in, max_in, cls, attrs, shape, interp, grad, props, gemm)              \
  _Static_assert(!((props) & (1u << OPP_POINTWISE)) || ((props) & (1u << OPP_INPLACE)),         \
                 "ops.def " #id ": a POINTWISE op reads element i only, so it is INPLACE too"); \
  _Static_assert(((cls) == OC_GEMM) == (IR_OPINFO_GEMM_##gemm != IR_GEMM_NO),                   \
                 "ops.def " #id ": GEMM-class ops, and only they, have a gemm form");
#define IR_OPINFO_GEMM_NOGEMM        IR_GEMM_NO
#define IR_OPINFO_GEMM_GEMM(form, a) IR_GEMM_##form
#define A(x)                         (1u << ATTR_##x)
#define P(x)                         (1u << OPP_##x)
#define NONE                         NULL
#include "ops.def"
#undef NONE
#undef P
#undef A
#undef OP

const AttrInfo ir_attrs[ATTR_COUNT] = {
#define ATTR(id, name, kind) [ATTR_##id] = { name, AK_##kind },
#include "attrs.def"
#undef ATTR
};

const char *const ir_act_names[ACT_COUNT] = {
#define ACT(id, name) [ACT_##id] = name,
#include "acts.def"
#undef ACT
};

int ir_act_parse(const char *s) {
  for (int a = 0; a < ACT_COUNT; a++)
    if (!strcmp(s, ir_act_names[a])) return a;
  return -1;
}

/* Masks are uint32_t and a node holds at most IR_MAX_ATTRS attributes. */
_Static_assert(ATTR_COUNT <= 32, "attribute masks are 32 bits wide");
_Static_assert(OP_COUNT < 256, "op ids are printed and parsed as small integers");

/* Exact match of the n bytes at s against a NUL-terminated name. */
static bool name_eq(const char *s, size_t n, const char *name) { return strlen(name) == n && memcmp(s, name, n) == 0; }

bool ir_op_parse(const char *s, size_t n, OpKind *out) {
  for (int k = 0; k < OP_COUNT; k++)
    if (name_eq(s, n, ir_ops[k].name)) {
      *out = (OpKind)k;
      return true;
    }
  return false;
}

static const struct {
  const char *name;
  size_t size;
} dtypes[DT_COUNT] = {
  [DT_F32] = { "f32", 4 },
  [DT_BF16] = { "bf16", 2 },
  [DT_I32] = { "i32", 4 },
};

const char *ir_dtype_name(DType t) { return (unsigned)t < DT_COUNT ? dtypes[t].name : "?"; }

bool ir_dtype_parse(const char *s, size_t n, DType *out) {
  for (int t = 0; t < DT_COUNT; t++)
    if (name_eq(s, n, dtypes[t].name)) {
      *out = (DType)t;
      return true;
    }
  return false;
}

size_t ir_dtype_size(DType t) { return (unsigned)t < DT_COUNT ? dtypes[t].size : 0; }
