/* parse.c: reads the IR text form that print.c writes (grammar in docs/ir.md).
 *
 * The text is line oriented, so the parser is too: each line is a blank or
 * '#' comment, the 'graph NAME' header, a node '%N = op ... : type  # loc',
 * or 'output NAME = %N'. An error reports file:line:col through the Diag and
 * abandons that line only, so one run reports every bad line. Nodes are built
 * through ir_add / ir_add_source, so the shape rules stay the single truth
 * about what is valid; the parser only adds what text brings (lexing, value
 * names, the declared type agreeing with the inferred one). %N names may come
 * in any order and are renumbered densely; a name defined by a bad line is
 * "poisoned" so its uses fail quietly instead of cascading. There is no
 * recursion and every number is range-checked, so no input can crash it.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "ir_impl.h"

enum { MAX_NUMBER = 80, MAX_INTS = 64 };

typedef struct Slot {
  uint32_t key; /* the N of %N */
  ValueId val;  /* IR_NONE: its line failed; uses stay quiet */
  bool used;
} Slot;

typedef struct Parser {
  const char *file;
  Diag *d;
  Graph *g;
  Arena *scratch;      /* strings and int lists before ir_add copies them; lookup tables */
  const char *ls, *le; /* the current line, without its newline */
  const char *p;       /* cursor in [ls, le] */
  uint32_t line;
  bool failed; /* this line reported an error: report no more on it */
  bool have_header;
  Slot *map; /* %N -> ValueId, open addressing */
  uint32_t mapn, mapcap;
  const char **outs; /* output names, open addressing, for duplicates */
  uint32_t outn, outcap;
  const char *last_file; /* trailer file last interned (consecutive nodes share it) */
} Parser;

/* ---- errors -------------------------------------------------------------- */

/* A bit of the input made safe to quote: printable ASCII, \xNN otherwise. */
typedef struct {
  char s[64];
} Quote;

static Quote quote(const char *p, size_t n) {
  Quote q;
  size_t j = 0;
  for (size_t i = 0; i < n && j + 10 < sizeof q.s; i++) {
    unsigned char c = (unsigned char)p[i];
    if (c >= 0x20 && c < 0x7f) q.s[j++] = (char)c;
    else j += (size_t)snprintf(q.s + j, sizeof q.s - j, "\\x%02x", c);
  }
  q.s[j] = '\0';
  return q;
}

static bool ident_start(char c) { return c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'); }
static bool ident_char(char c) { return ident_start(c) || (c >= '0' && c <= '9') || c == '.' || c == '-'; }

/* Lua's "near": the token at `at` quoted, or "end of line". */
static Quote near(const Parser *ps, const char *at) {
  if (at >= ps->le) return quote("end of line", 11);
  const char *e = at + 1;
  if (ident_char(*at) || *at == '%')
    while (e < ps->le && ident_char(*e) && e - at < 24) e++;
  Quote q = quote(at, (size_t)(e - at)), r;
  snprintf(r.s, sizeof r.s, "'%.60s'", q.s); /* quote() stops well short of 60 */
  return r;
}

static uint32_t col_of(const Parser *ps, const char *at) {
  size_t c = (size_t)(at - ps->ls) + 1;
  return c > UINT32_MAX ? UINT32_MAX : (uint32_t)c;
}

/* Reports at `at` (the first error of a line only) and returns false. */
__attribute__((format(printf, 3, 4))) static bool err(Parser *ps, const char *at, const char *fmt, ...) {
  if (ps->failed) return false;
  ps->failed = true;
  char msg[IR_MSG_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  diag_error(ps->d, (SrcLoc){ ps->file, ps->line, col_of(ps, at) }, "%s", msg);
  return false;
}

/* ---- lexing -------------------------------------------------------------- */

static void skip_ws(Parser *ps) {
  while (ps->p < ps->le && (*ps->p == ' ' || *ps->p == '\t')) ps->p++;
}

static bool peek(Parser *ps, char c) {
  skip_ws(ps);
  return ps->p < ps->le && *ps->p == c;
}

static bool accept(Parser *ps, char c) {
  if (!peek(ps, c)) return false;
  ps->p++;
  return true;
}

static bool expect(Parser *ps, char c, const char *what) {
  if (accept(ps, c)) return true;
  return err(ps, ps->p, "expected %s near %s", what, near(ps, ps->p).s);
}

static bool ident(Parser *ps, const char **s, size_t *n) {
  skip_ws(ps);
  if (ps->p >= ps->le || !ident_start(*ps->p)) return false;
  *s = ps->p;
  while (ps->p < ps->le && ident_char(*ps->p)) ps->p++;
  *n = (size_t)(ps->p - *s);
  return true;
}

static bool word_is(const char *s, size_t n, const char *w) { return strlen(w) == n && !memcmp(s, w, n); }

/* Decimal digits [s, e) into *out; false if empty, not all digits, or > max. */
static bool parse_uint(const char *s, const char *e, uint64_t max, uint64_t *out) {
  uint64_t v = 0;
  if (s == e) return false;
  for (; s < e; s++) {
    if (*s < '0' || *s > '9') return false;
    v = v * 10 + (uint64_t)(*s - '0');
    if (v > max) return false; /* checked every digit, so v*10 never overflows */
  }
  *out = v;
  return true;
}

typedef enum { NUM_NONE, NUM_BAD, NUM_INT, NUM_FLOAT } NumKind;

/* Is [s, e) a decimal float: digits ["." digits] [e [+-] digits], or inf/nan? */
static bool float_syntax(const char *s, const char *e, bool *is_int) {
  if (word_is(s, (size_t)(e - s), "inf") || word_is(s, (size_t)(e - s), "nan")) {
    *is_int = false;
    return true;
  }
  size_t digits = 0;
  *is_int = true;
  while (s < e && *s >= '0' && *s <= '9') s++, digits++;
  if (s < e && *s == '.') {
    *is_int = false;
    for (s++; s < e && *s >= '0' && *s <= '9'; s++) digits++;
  }
  if (!digits) return false;
  if (s < e && (*s == 'e' || *s == 'E')) {
    *is_int = false;
    s++;
    if (s < e && (*s == '+' || *s == '-')) s++;
    if (s == e || *s < '0' || *s > '9') return false;
    while (s < e && *s >= '0' && *s <= '9') s++;
  }
  return s == e;
}

/* A number at the cursor. NUM_NONE (nothing reported) if the cursor does
 * not start one; NUM_BAD after reporting a malformed or out-of-range one. */
static NumKind number(Parser *ps, int64_t *iv, double *fv) {
  skip_ws(ps);
  const char *s = ps->p, *e = s;
  if (e < ps->le && (*e == '+' || *e == '-')) e++;
  const char *body = e;
  if (e >= ps->le) return NUM_NONE;
  bool numeric_start = (*e >= '0' && *e <= '9') || *e == '.';
  if (!numeric_start && !(ps->le - e >= 3 && (!memcmp(e, "inf", 3) || !memcmp(e, "nan", 3)))) return NUM_NONE;
  while (e < ps->le && (ident_char(*e) || ((*e == '+' || *e == '-') && (e[-1] == 'e' || e[-1] == 'E')))) e++;
  ps->p = e;
  bool is_int;
  if (!float_syntax(body, e, &is_int)) return err(ps, s, "malformed number '%s'", quote(s, (size_t)(e - s)).s), NUM_BAD;
  if (e - s > MAX_NUMBER) return err(ps, s, "number is too long (%d characters at most)", MAX_NUMBER), NUM_BAD;
  char buf[MAX_NUMBER + 1];
  memcpy(buf, s, (size_t)(e - s));
  buf[e - s] = '\0';
  errno = 0;
  if (is_int) {
    long long v = strtoll(buf, NULL, 10);
    if (errno == ERANGE) return err(ps, s, "integer %s is out of range", buf), NUM_BAD;
    *iv = v;
    *fv = (double)v;
    return NUM_INT;
  }
  double v = strtod(buf, NULL);
  /* Underflow to a subnormal or zero is fine (printed subnormals come back
   * exactly); overflow of a finite literal is not. */
  if (isinf(v) && !strstr(buf, "inf")) return err(ps, s, "float %s is out of range", buf), NUM_BAD;
  *fv = v;
  return NUM_FLOAT;
}

/* A double-quoted string with escapes \" \\ \n \t \r \xNN, decoded into the
 * scratch arena. NUL cannot be represented (attributes are C strings). */
static bool string(Parser *ps, const char **out) {
  skip_ws(ps);
  const char *open = ps->p;
  if (open >= ps->le || *open != '"') return err(ps, open, "expected a string near %s", near(ps, open).s);
  char *buf = arena_alloc(ps->scratch, (size_t)(ps->le - open) + 1), *w = buf;
  for (const char *p = open + 1;;) {
    if (p >= ps->le) return err(ps, open, "unterminated string");
    unsigned char c = (unsigned char)*p;
    if (c == '"') {
      *w = '\0';
      ps->p = p + 1;
      *out = buf;
      return true;
    }
    if (c < 0x20 && c != '\t') return err(ps, p, "control character \\x%02x in string; write it as an escape", c);
    if (c != '\\') {
      *w++ = (char)c;
      p++;
      continue;
    }
    const char *esc = p++;
    char e = p < ps->le ? *p++ : '\0';
    switch (e) {
    case '"': *w++ = '"'; break;
    case '\\': *w++ = '\\'; break;
    case 'n': *w++ = '\n'; break;
    case 't': *w++ = '\t'; break;
    case 'r': *w++ = '\r'; break;
    case 'x': {
      int v = 0;
      for (int i = 0; i < 2; i++, p++) {
        char h = p < ps->le ? *p : '\0';
        int dv = h >= '0' && h <= '9' ? h - '0' : h >= 'a' && h <= 'f' ? h - 'a' + 10 : h >= 'A' && h <= 'F' ? h - 'A' + 10 : -1;
        if (dv < 0) return err(ps, esc, "\\x needs two hex digits");
        v = v * 16 + dv;
      }
      if (v == 0) return err(ps, esc, "string contains a NUL byte (\\x00)");
      *w++ = (char)v;
      break;
    }
    default: return err(ps, esc, "unknown escape '%s' in string", quote(esc, p - esc > 2 ? 2 : (size_t)(p - esc)).s);
    }
  }
}

/* A name: a bare identifier or a string (graph and output names). */
static bool name(Parser *ps, const char **out) {
  const char *s;
  size_t n;
  if (peek(ps, '"')) return string(ps, out);
  if (!ident(ps, &s, &n)) return err(ps, ps->p, "expected a name near %s", near(ps, ps->p).s);
  *out = arena_strndup(ps->scratch, s, n);
  return true;
}

/* '%' digits: a value name. */
static bool value_ref(Parser *ps, uint32_t *key) {
  skip_ws(ps);
  const char *at = ps->p;
  if (at >= ps->le || *at != '%') return err(ps, at, "expected a value like %%3 near %s", near(ps, at).s);
  const char *s = at + 1, *e = s;
  while (e < ps->le && ident_char(*e)) e++;
  uint64_t v;
  if (!parse_uint(s, e, UINT32_MAX - 1, &v)) {
    bool digits = e > s;
    for (const char *q = s; q < e; q++) digits &= *q >= '0' && *q <= '9';
    return err(ps, at, digits ? "value number %s is too large" : "malformed value name %s", near(ps, at).s);
  }
  ps->p = e;
  *key = (uint32_t)v;
  return true;
}

/* ---- tables -------------------------------------------------------------- */

static uint32_t hash_u32(uint32_t k) { return k * 2654435761u; }

static Slot *map_find(Parser *ps, uint32_t key) {
  if (!ps->mapcap) return NULL;
  for (uint32_t i = hash_u32(key) & (ps->mapcap - 1);; i = (i + 1) & (ps->mapcap - 1)) {
    if (!ps->map[i].used) return NULL;
    if (ps->map[i].key == key) return &ps->map[i];
  }
}

static void map_put(Parser *ps, uint32_t key, ValueId val) {
  if ((ps->mapn + 1) * 2 > ps->mapcap) { /* keep the load <= 1/2; the old table is left in the arena */
    Slot *old = ps->map;
    uint32_t oldcap = ps->mapcap;
    IR_ASSERT(oldcap < UINT32_MAX / 4);
    ps->mapcap = oldcap ? oldcap * 2 : 64;
    ps->map = ARENA_ARRAY(ps->scratch, Slot, ps->mapcap);
    ps->mapn = 0;
    for (uint32_t i = 0; i < oldcap; i++)
      if (old[i].used) map_put(ps, old[i].key, old[i].val);
  }
  uint32_t i = hash_u32(key) & (ps->mapcap - 1);
  while (ps->map[i].used) i = (i + 1) & (ps->mapcap - 1);
  ps->map[i] = (Slot){ key, val, true };
  ps->mapn++;
}

static uint32_t hash_str(const char *s) {
  uint32_t h = 2166136261u; /* FNV-1a */
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 16777619u;
  return h;
}

/* Adds an output name; false if it is already there. */
static bool outs_add(Parser *ps, const char *s) {
  if ((ps->outn + 1) * 2 > ps->outcap) {
    const char **old = ps->outs;
    uint32_t oldcap = ps->outcap;
    IR_ASSERT(oldcap < UINT32_MAX / 4);
    ps->outcap = oldcap ? oldcap * 2 : 16;
    ps->outs = ARENA_ARRAY(ps->scratch, const char *, ps->outcap);
    ps->outn = 0;
    for (uint32_t i = 0; i < oldcap; i++)
      if (old[i]) outs_add(ps, old[i]);
  }
  uint32_t i = hash_str(s) & (ps->outcap - 1);
  for (; ps->outs[i]; i = (i + 1) & (ps->outcap - 1))
    if (!strcmp(ps->outs[i], s)) return false;
  ps->outs[i] = s;
  ps->outn++;
  return true;
}

/* ---- pieces of a node line ----------------------------------------------- */

/* type = dtype "[" [dim {"," dim}] "]" */
static bool type(Parser *ps, DType *dt, Shape *shape) {
  skip_ws(ps);
  const char *at = ps->p, *s;
  size_t n;
  if (!ident(ps, &s, &n)) return err(ps, at, "expected a type like f32[8,128] near %s", near(ps, at).s);
  if (!ir_dtype_parse(s, n, dt)) return err(ps, at, "unknown dtype %s (expected f32, bf16 or i32)", near(ps, at).s);
  if (!expect(ps, '[', "'[' after the dtype")) return false;
  *shape = (Shape){ 0 };
  if (!accept(ps, ']')) {
    do {
      skip_ws(ps);
      const char *at_dim = ps->p;
      int64_t v;
      double f;
      NumKind k = number(ps, &v, &f);
      if (k == NUM_BAD) return false;
      if (k != NUM_INT) return err(ps, at_dim, "expected a dimension near %s", near(ps, at_dim).s);
      if (shape->rank == IR_MAX_RANK) return err(ps, at_dim, "rank exceeds the maximum %d", IR_MAX_RANK);
      if (v < 1) return err(ps, at_dim, "dimension %" PRId64 " must be >= 1", v);
      shape->dim[shape->rank++] = v;
    } while (accept(ps, ','));
    if (!expect(ps, ']', "',' or ']'")) return false;
  }
  char msg[IR_MSG_MAX];
  if (!ir_check_type(*dt, shape, msg, sizeof msg)) return err(ps, at, "%s", msg);
  return true;
}

/* attr = name "=" value, with the value's form given by the attribute's kind. */
static bool attr(Parser *ps, OpKind op, Attr *attrs, int *nattr) {
  skip_ws(ps);
  const char *at = ps->p, *s;
  size_t n;
  if (!ident(ps, &s, &n)) return err(ps, at, "expected an attribute name near %s", near(ps, at).s);
  int id = 0;
  while (id < ATTR_COUNT && !word_is(s, n, ir_attrs[id].name)) id++;
  if (id == ATTR_COUNT) return err(ps, at, "unknown attribute %s", near(ps, at).s);
  const char *aname = ir_attrs[id].name;
  if (!(ir_ops[op].attrs & (1u << id))) return err(ps, at, "attribute '%s' does not apply to '%s'", aname, ir_ops[op].name);
  for (int i = 0; i < *nattr; i++)
    if (attrs[i].id == (AttrId)id) return err(ps, at, "attribute '%s' is given twice", aname);
  if (!expect(ps, '=', "'=' after the attribute name")) return false;
  skip_ws(ps);
  const char *at_v = ps->p;
  Attr a = { .id = (AttrId)id };
  int64_t iv;
  double fv;
  NumKind k;
  switch (ir_attrs[id].kind) {
  case AK_STR:
    if (!peek(ps, '"')) return err(ps, at_v, "attribute '%s' expects a string near %s", aname, near(ps, at_v).s);
    if (!string(ps, &a.u.s)) return false;
    break;
  case AK_INT:
    if ((k = number(ps, &iv, &fv)) == NUM_BAD) return false;
    if (k != NUM_INT) return err(ps, at_v, "attribute '%s' expects an integer near %s", aname, near(ps, at_v).s);
    a.u.i = iv;
    break;
  case AK_FLOAT: /* an integer literal is accepted for hand-written IR */
    if ((k = number(ps, &iv, &fv)) == NUM_BAD) return false;
    if (k == NUM_NONE) return err(ps, at_v, "attribute '%s' expects a number near %s", aname, near(ps, at_v).s);
    a.u.f = fv;
    break;
  case AK_INTS: {
    if (!accept(ps, '[')) return err(ps, at_v, "attribute '%s' expects a list like [2,3] near %s", aname, near(ps, at_v).s);
    int64_t *v = ARENA_ARRAY(ps->scratch, int64_t, MAX_INTS);
    uint32_t cnt = 0;
    if (!accept(ps, ']')) {
      do {
        skip_ws(ps);
        const char *at_i = ps->p;
        if ((k = number(ps, &iv, &fv)) == NUM_BAD) return false;
        if (k != NUM_INT) return err(ps, at_i, "expected an integer near %s", near(ps, at_i).s);
        if (cnt == MAX_INTS) return err(ps, at_i, "list is too long (%d elements at most)", MAX_INTS);
        v[cnt++] = iv;
      } while (accept(ps, ','));
      if (!expect(ps, ']', "',' or ']'")) return false;
    }
    a.u.ints.v = v;
    a.u.ints.n = cnt;
    break;
  }
  }
  attrs[(*nattr)++] = a;
  return true;
}

/* loc = "#" (file | string) ":" line ":" col. The file may contain ':', so
 * the last two fields are the numbers. */
static bool trailer(Parser *ps, SrcLoc *loc) {
  ps->p++; /* '#' */
  skip_ws(ps);
  const char *at = ps->p, *file, *e = ps->le;
  size_t flen;
  while (e > ps->p && (e[-1] == ' ' || e[-1] == '\t')) e--;
  const char *c2 = e, *c1;
  if (peek(ps, '"')) {
    if (!string(ps, &file)) return false;
    flen = strlen(file);
    c1 = ps->p;
    if (c1 >= e || *c1 != ':') return err(ps, c1, "expected ':' after the file name near %s", near(ps, c1).s);
    c2 = memchr(c1 + 1, ':', (size_t)(e - c1 - 1));
  } else {
    while (c2 > at && c2[-1] != ':') c2--;
    c2 = c2 > at ? c2 - 1 : NULL;
    c1 = c2;
    if (c1) {
      while (c1 > at && c1[-1] != ':') c1--;
      c1 = c1 > at ? c1 - 1 : NULL;
    }
    file = at;
    flen = c1 ? (size_t)(c1 - at) : 0;
    for (const char *q = at; c1 && q < c1; q++)
      if ((unsigned char)*q < 0x20) return err(ps, q, "control character in the file name; quote it");
  }
  uint64_t line, col;
  if (!c1 || !c2) return err(ps, at, "expected a source location 'file:line:col' after '#'");
  if (!parse_uint(c1 + 1, c2, UINT32_MAX, &line) || line == 0)
    return err(ps, c1 + 1, "bad line number in the source location (expected 1..%u)", UINT32_MAX);
  if (!parse_uint(c2 + 1, e, UINT32_MAX, &col))
    return err(ps, c2 + 1, "bad column number in the source location (expected 0..%u)", UINT32_MAX);
  ps->p = ps->le;
  /* Files are interned in the graph's arena; consecutive nodes usually share one. */
  if (!flen) loc->file = NULL;
  else if (ps->last_file && strlen(ps->last_file) == flen && !memcmp(ps->last_file, file, flen)) loc->file = ps->last_file;
  else loc->file = ps->last_file = arena_strndup(ps->g->arena, file, flen);
  loc->line = (uint32_t)line;
  loc->col = (uint32_t)col;
  return true;
}

/* ---- lines --------------------------------------------------------------- */

/* node = "%"N "=" op [value {"," value}] ["{" [attr {"," attr}] "}"] ":" type [loc]
 * Returns the new node's id, or IR_NONE after an error (or a quiet failure
 * when an operand's own line failed). */
static ValueId node_body(Parser *ps) {
  if (!expect(ps, '=', "'='")) return IR_NONE;
  skip_ws(ps);
  const char *at_op = ps->p, *s;
  size_t n;
  OpKind op;
  if (!ident(ps, &s, &n)) return err(ps, at_op, "expected an op name near %s", near(ps, at_op).s), IR_NONE;
  if (!ir_op_parse(s, n, &op)) return err(ps, at_op, "unknown op %s", near(ps, at_op).s), IR_NONE;
  const OpInfo *info = &ir_ops[op];

  ValueId in[IR_MAX_IN];
  int nin = 0;
  bool poisoned = false;
  if (peek(ps, '%')) {
    do {
      skip_ws(ps);
      const char *at_in = ps->p;
      uint32_t key;
      if (!value_ref(ps, &key)) return IR_NONE;
      if (!info->max_in) return err(ps, at_in, "'%s' takes no operands", info->name), IR_NONE;
      if (nin == info->max_in)
        return err(ps, at_in, "too many operands: '%s' takes at most %d", info->name, info->max_in), IR_NONE;
      const Slot *sl = map_find(ps, key);
      if (!sl) return err(ps, at_in, "use of undefined value %%%u", key), IR_NONE;
      poisoned |= sl->val == IR_NONE;
      in[nin++] = sl->val;
    } while (accept(ps, ','));
  }

  Attr attrs[ATTR_COUNT];
  int nattr = 0;
  if (accept(ps, '{') && !accept(ps, '}')) {
    do
      if (!attr(ps, op, attrs, &nattr)) return IR_NONE;
    while (accept(ps, ','));
    if (!expect(ps, '}', "',' or '}'")) return IR_NONE;
  }

  if (!expect(ps, ':', "':' and the result type")) return IR_NONE;
  skip_ws(ps);
  const char *at_ty = ps->p;
  DType dt;
  Shape shape;
  if (!type(ps, &dt, &shape)) return IR_NONE;
  SrcLoc src = { 0 };
  skip_ws(ps);
  if (ps->p < ps->le && *ps->p == '#') {
    if (!trailer(ps, &src)) return IR_NONE;
  } else if (ps->p < ps->le) {
    return err(ps, ps->p, "unexpected %s after the type", near(ps, ps->p).s), IR_NONE;
  }
  if (poisoned) return IR_NONE;

  char msg[IR_MSG_MAX];
  if (info->cls == OC_SOURCE) {
    if (!ir_check_source(op, dt, &shape, attrs, nattr, msg, sizeof msg))
      return err(ps, at_op, "%s: %s", info->name, msg), IR_NONE;
    return ir_add_source(ps->g, op, dt, &shape, attrs, nattr, src);
  }
  /* Build at the IR text's position so a rule's complaint points here, then
   * give the node its .cram position. */
  ValueId v = ir_add(ps->g, op, in, nin, attrs, nattr, (SrcLoc){ ps->file, ps->line, col_of(ps, at_op) }, ps->d);
  if (v == IR_NONE) {
    ps->failed = true;
    return IR_NONE;
  }
  Node *nd = &ps->g->nodes[v];
  nd->loc = src;
  if (nd->dtype != dt || !ir_shape_eq(&nd->shape, &shape)) {
    char have[IR_TYPE_STR_MAX], want[IR_TYPE_STR_MAX];
    /* Reported, but the value keeps its inferred type so later lines check normally. */
    err(ps, at_ty, "type %s does not match the inferred type %s", ir_type_str(dt, &shape, have, sizeof have),
        ir_type_str(nd->dtype, &nd->shape, want, sizeof want));
  }
  return v;
}

static void node_line(Parser *ps) {
  const char *at = ps->p;
  uint32_t key;
  if (!value_ref(ps, &key)) return;
  if (map_find(ps, key)) {
    err(ps, at, "redefinition of %%%u", key);
    return;
  }
  map_put(ps, key, node_body(ps));
}

/* output = "output" name "=" "%"N */
static void output_line(Parser *ps) {
  skip_ws(ps);
  const char *at = ps->p, *oname;
  if (!name(ps, &oname)) return;
  if (!oname[0]) {
    err(ps, at, "output name must not be empty");
    return;
  }
  if (!expect(ps, '=', "'='")) return;
  skip_ws(ps);
  const char *at_v = ps->p;
  uint32_t key;
  if (!value_ref(ps, &key)) return;
  skip_ws(ps);
  if (ps->p < ps->le) {
    err(ps, ps->p, "unexpected %s after the output", near(ps, ps->p).s);
    return;
  }
  const Slot *sl = map_find(ps, key);
  if (!sl) {
    err(ps, at_v, "use of undefined value %%%u", key);
    return;
  }
  if (sl->val == IR_NONE) return;
  char *kept = arena_strdup(ps->scratch, oname);
  if (!outs_add(ps, kept)) {
    err(ps, at, "duplicate output name %s", near(ps, at).s);
    return;
  }
  ir_add_output(ps->g, kept, sl->val);
}

/* header = "graph" name */
static void header_line(Parser *ps, const char *at) {
  const char *gname;
  if (ps->have_header) {
    err(ps, at, "duplicate 'graph' line");
    return;
  }
  ps->have_header = true;
  if (!name(ps, &gname)) return;
  skip_ws(ps);
  if (ps->p < ps->le) {
    err(ps, ps->p, "unexpected %s after the graph name", near(ps, ps->p).s);
    return;
  }
  ps->g->name = arena_strdup(ps->g->arena, gname);
}

static void parse_line(Parser *ps) {
  ps->p = ps->ls;
  ps->failed = false;
  skip_ws(ps);
  const char *at = ps->p, *w = NULL;
  size_t n = 0;
  if (at >= ps->le || *at == '#') return; /* blank or comment */
  bool is_header = ident(ps, &w, &n) && word_is(w, n, "graph");
  if (!ps->have_header && !is_header) {
    err(ps, at, "expected 'graph NAME' before the first node");
    ps->have_header = true; /* say it once, then read the rest normally */
    ps->failed = false;
  }
  if (is_header) header_line(ps, at);
  else if (ps->p > at && word_is(w, n, "output")) output_line(ps);
  else if ((ps->p = at), *at == '%') node_line(ps);
  else err(ps, at, "expected '%%N = op ...', 'output NAME = %%N' or 'graph NAME' near %s", near(ps, at).s);
}

Graph *ir_parse(const char *text, size_t len, const char *file, Diag *d) {
  IR_ASSERT(d && (text || !len));
  Parser ps = { .file = file ? file : "<ir>", .d = d, .g = ir_graph_new(""), .scratch = arena_new() };
  int before = d->nerrors;
  for (const char *p = text, *end = text + len; p < end;) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    ps.ls = p;
    ps.le = nl ? nl : end;
    if (ps.le > ps.ls && ps.le[-1] == '\r') ps.le--; /* CRLF */
    ps.line++;
    parse_line(&ps);
    p = nl ? nl + 1 : end;
  }
  if (!ps.have_header) diag_error(d, (SrcLoc){ ps.file, 1, 1 }, "expected 'graph NAME': the IR text has no content");
  arena_free(ps.scratch);
  /* Everything was built through the checked builders, so this only guards
   * the parser's own bookkeeping. */
  if (d->nerrors == before) ir_verify(ps.g, d);
  if (d->nerrors != before) {
    ir_graph_free(ps.g);
    return NULL;
  }
  return ps.g;
}
