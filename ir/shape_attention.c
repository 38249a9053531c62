/* shape_attention.c: the geometry and shape rules of the fused attention ops
 * (ops.def "fused attention"). One function, ir_attention_geom, checks that a
 * node's q/k/v sources, offsets and bias fit together and derives what every
 * kernel needs (strides, groups); the shape rules are thin wrappers over it,
 * so the interpreter and the renderers read the very numbers the rule
 * validated.
 */
#include <inttypes.h>
#include <math.h>

#include "shape_util.h"

#include <string.h>

static const char *const part_name[3] = { "q", "k", "v" };

bool ir_attention_geom(const Graph *g, const Node *n, IrAttnGeom *geo, char *msg, size_t msglen) {
  *geo = (IrAttnGeom){ .bias = -1 };
  bool grad = n->op == OP_ATTENTION_GRAD;
  int nmain = grad ? 6 : 3;
  if (n->nin > nmain) geo->bias = nmain;
  geo->dh = ir_get_int(n, ATTR_HEAD_DIM);
  geo->alpha = ir_get_float(n, ATTR_ALPHA);
  geo->p = ir_get_float(n, ATTR_P);
  geo->key = ir_get_int(n, ATTR_KEY);
  const Attr *offs = ir_attr(n, ATTR_OFFSETS);
  if (offs->u.ints.n != 3) return fail(msg, msglen, "offsets must hold 3 values [q, k, v], got %u", offs->u.ints.n);
  if (geo->dh < 1) return fail(msg, msglen, "head_dim=%" PRId64 " must be positive", geo->dh);
  if (!(geo->p >= 0 && geo->p < 1)) return fail(msg, msglen, "p=%g must be in [0, 1)", geo->p);
  if (!isfinite(geo->alpha)) return fail(msg, msglen, "alpha must be finite");
  const Node *x[3];
  for (int t = 0; t < 3; t++) {
    x[t] = input(g, n, t);
    if (!need_float(part_name[t], x[t], msg, msglen)) return false;
    if (x[t]->shape.rank != 4)
      return fail(msg, msglen, "%s source must be rank 4 [batch, seq, groups, width], got %s", part_name[t], ty(x[t]).s);
    if (x[t]->dtype != x[0]->dtype)
      return fail(msg, msglen, "%s source %s and q source %s differ in dtype", part_name[t], ty(x[t]).s, ty(x[0]).s);
    if (x[t]->shape.dim[0] != x[0]->shape.dim[0] || x[t]->shape.dim[1] != x[0]->shape.dim[1])
      return fail(msg, msglen, "%s source %s and q source %s differ in batch or sequence", part_name[t], ty(x[t]).s, ty(x[0]).s);
    int64_t off = offs->u.ints.v[t], W = x[t]->shape.dim[3];
    if (off < 0 || off > W - geo->dh)
      return fail(msg, msglen, "%s part [%" PRId64 ", %" PRId64 "+%" PRId64 ") is outside the source's width %" PRId64,
                  part_name[t], off, off, geo->dh, W);
    geo->off[t] = off;
    geo->width[t] = W;
    geo->stride[t][2] = W;
    geo->stride[t][1] = W * x[t]->shape.dim[2];
    geo->stride[t][0] = geo->stride[t][1] * x[t]->shape.dim[1];
  }
  geo->B = x[0]->shape.dim[0];
  geo->S = x[0]->shape.dim[1];
  geo->heads = x[0]->shape.dim[2];
  geo->kv_heads = x[1]->shape.dim[2];
  if (x[2]->shape.dim[2] != geo->kv_heads)
    return fail(msg, msglen, "k source %s and v source %s differ in heads", ty(x[1]).s, ty(x[2]).s);
  if (geo->heads % geo->kv_heads)
    return fail(msg, msglen, "k/v heads (%" PRId64 ") must divide the query heads (%" PRId64 ")", geo->kv_heads, geo->heads);
  if (geo->bias >= 0) {
    const Node *b = input(g, n, geo->bias);
    if (!need_float("bias", b, msg, msglen)) return false;
    const int64_t full[4] = { geo->B, geo->heads, geo->S, geo->S };
    if (b->shape.rank > 4) return fail(msg, msglen, "bias %s has more than 4 axes [batch, heads, seq, seq]", ty(b).s);
    int64_t stride = 1;
    for (int a = 3, k = b->shape.rank - 1; a >= 0; a--, k--) {
      int64_t d = k >= 0 ? b->shape.dim[k] : 1;
      if (d != 1 && d != full[a])
        return fail(msg, msglen, "bias %s does not broadcast to [%" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRId64 "]", ty(b).s,
                    full[0], full[1], full[2], full[3]);
      geo->bias_stride[a] = d == 1 ? 0 : stride;
      stride *= d;
    }
  }
  return true;
}

/* attention (q, k, v, [bias]) -> q's dtype [B,S,heads,dh]; attention_lse -> f32[B,heads,S] */
bool shape_attention(const Graph *g, const Node *n, DType *dtype, Shape *shape, char *msg, size_t msglen) {
  IrAttnGeom geo;
  if (!ir_attention_geom(g, n, &geo, msg, msglen)) return false;
  if (n->op == OP_ATTENTION_LSE) {
    Shape s = { .rank = 3, .dim = { geo.B, geo.heads, geo.S } };
    return result(DT_F32, &s, dtype, shape, msg, msglen);
  }
  Shape s = { .rank = 4, .dim = { geo.B, geo.S, geo.heads, geo.dh } };
  return result(input(g, n, 0)->dtype, &s, dtype, shape, msg, msglen);
}

/* attention_grad (q, k, v, o, lse, do, [bias]) -> the gradient of the one
 * source every part in wrt reads, in that source's type */
bool shape_attention_grad(const Graph *g, const Node *n, DType *dtype, Shape *shape, char *msg, size_t msglen) {
  IrAttnGeom geo;
  if (!ir_attention_geom(g, n, &geo, msg, msglen)) return false;
  const Shape os = { .rank = 4, .dim = { geo.B, geo.S, geo.heads, geo.dh } };
  const Shape ls = { .rank = 3, .dim = { geo.B, geo.heads, geo.S } };
  const Node *o = input(g, n, 3), *lse = input(g, n, 4), *dout = input(g, n, 5);
  if (!need_float("o", o, msg, msglen) || !need_float("do", dout, msg, msglen)) return false;
  if (!ir_shape_eq(&o->shape, &os) || !ir_shape_eq(&dout->shape, &os))
    return fail(msg, msglen, "o %s and do %s must both be [%" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRId64 "]", ty(o).s, ty(dout).s,
                os.dim[0], os.dim[1], os.dim[2], os.dim[3]);
  if (lse->dtype != DT_F32 || !ir_shape_eq(&lse->shape, &ls))
    return fail(msg, msglen, "lse must be %s, got %s", ty_of(DT_F32, &ls).s, ty(lse).s);
  int64_t wrt = ir_get_int(n, ATTR_WRT);
  if (wrt < 1 || wrt > 7) return fail(msg, msglen, "wrt=%" PRId64 " must be a non-empty mask of 1 (q), 2 (k), 4 (v)", wrt);
  int first = wrt & 1 ? 0 : wrt & 2 ? 1 : 2;
  for (int t = 0; t < 3; t++)
    if ((wrt >> t & 1) && n->in[t] != n->in[first])
      return fail(msg, msglen, "wrt=%" PRId64 " selects %s and %s, which read different sources (%%%u, %%%u)", wrt,
                  part_name[first], part_name[t], n->in[first], n->in[t]);
  for (int t = 0; t < 3; t++)
    for (int u = t + 1; u < 3; u++)
      if ((wrt >> t & 1) && (wrt >> u & 1) && geo.off[t] < geo.off[u] + geo.dh && geo.off[u] < geo.off[t] + geo.dh)
        return fail(msg, msglen, "parts %s and %s overlap in their source", part_name[t], part_name[u]);
  const Node *src = input(g, n, first);
  return result(src->dtype, &src->shape, dtype, shape, msg, msglen);
}
