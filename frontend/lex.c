/* lex.c: .cram text -> tokens.
 *
 * The language is line oriented and indentation structured, like Python: the
 * lexer turns leading spaces into INDENT/DEDENT tokens against a stack of open
 * indentation levels, ends every non-blank line with NEWLINE, and drops blank
 * and comment-only lines entirely. Tabs in indentation are an error (spaces
 * only), and so is any byte outside printable ASCII except inside a comment.
 *
 * Error recovery: after a lexical error the rest of the line is skipped and
 * the line ends in a NEWLINE marked `dropped`; the parser then treats the
 * statement as broken (poisoning the name it assigns) and says nothing more.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ast.h"

typedef struct Lexer {
  Arena *arena;
  Diag *diag;
  const char *file;
  const char *p, *end; /* cursor */
  const char *line_start;
  uint32_t line;
  Token *tok; /* growable token array (arena) */
  uint32_t n, cap;
  uint32_t indent[FE_MAX_DEPTH + 2]; /* open indentation levels; indent[0] = 0 */
  int nindent;
  bool line_bad; /* an error on this line: drop its tokens */
} Lexer;

static const char *kind_names[] = { "identifier",  "integer", "number", "string",     "punctuation",
                                    "end of line", "indent",  "dedent", "end of file" };

const char *fe_token_kind_name(TokenKind k) { return kind_names[k]; }

static SrcLoc here(const Lexer *L, const char *at) { return (SrcLoc){ L->file, L->line, (uint32_t)(at - L->line_start) + 1 }; }

static Token *push(Lexer *L, TokenKind kind, const char *start, size_t len, SrcLoc loc) {
  if (L->n == L->cap) {
    uint32_t cap = L->cap ? L->cap * 2 : 256;
    Token *t = ARENA_ARRAY(L->arena, Token, cap);
    if (L->n) memcpy(t, L->tok, sizeof(Token) * L->n);
    L->tok = t;
    L->cap = cap;
  }
  Token *t = &L->tok[L->n++];
  memset(t, 0, sizeof *t);
  t->kind = kind;
  t->text = start;
  t->len = (uint32_t)len;
  t->loc = loc;
  return t;
}

static bool is_ident_start(int c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
static bool is_digit(int c) { return c >= '0' && c <= '9'; }
static bool is_ident_char(int c) { return is_ident_start(c) || is_digit(c); }

/* Report a lexical error at `at`; the rest of the line is dropped. */
static void lex_error(Lexer *L, const char *at, const char *msg) {
  if (!L->line_bad) diag_error(L->diag, here(L, at), "%s", msg);
  L->line_bad = true;
}

static void bad_byte(Lexer *L, const char *at) {
  unsigned char c = (unsigned char)*at;
  char msg[64];
  if (c >= 0x21 && c < 0x7f) snprintf(msg, sizeof msg, "unexpected character '%c'", c);
  else snprintf(msg, sizeof msg, "invalid byte 0x%02X", c);
  lex_error(L, at, msg);
}

/* number = digit+ ("." digit*)? (("e"|"E") ("+"|"-")? digit+)? */
static void lex_number(Lexer *L) {
  const char *s = L->p, *q = s;
  bool is_float = false;
  while (q < L->end && is_digit(*q)) q++;
  if (q < L->end && *q == '.') {
    is_float = true;
    q++;
    while (q < L->end && is_digit(*q)) q++;
  }
  if (q < L->end && (*q == 'e' || *q == 'E')) {
    const char *e = q + 1;
    if (e < L->end && (*e == '+' || *e == '-')) e++;
    if (e < L->end && is_digit(*e)) {
      is_float = true;
      q = e;
      while (q < L->end && is_digit(*q)) q++;
    }
  }
  L->p = q;
  if (q < L->end && (is_ident_char(*q) || *q == '.')) {
    lex_error(L, s, "malformed number");
    return;
  }
  size_t len = (size_t)(q - s);
  if (len > 400) {
    lex_error(L, s, "number literal too long");
    return;
  }
  char *buf = arena_strndup(L->arena, s, len);
  double f = 0;
  int64_t i = 0;
  if (is_float) {
    f = strtod(buf, NULL);
    if (!isfinite(f)) {
      lex_error(L, s, "number literal out of range");
      return;
    }
  } else if (!fe_parse_int(buf, &i)) {
    lex_error(L, s, "integer literal too large (limit 9223372036854775807)");
    return;
  }
  Token *t = push(L, is_float ? TK_FLOAT : TK_INT, s, len, here(L, s));
  t->fval = f;
  t->ival = i;
}

/* Tokens of one line, from L->p (after the indentation) to the newline. */
static void lex_line(Lexer *L) {
  while (L->p < L->end && !L->line_bad) {
    const char *s = L->p;
    unsigned char c = (unsigned char)*s;
    if (c == '\n') return;
    if (c == ' ' || c == '\t' || c == '\r') {
      L->p++;
      continue;
    }
    if (c == '#') { /* comment: any byte allowed up to the newline */
      while (L->p < L->end && *L->p != '\n') L->p++;
      return;
    }
    if (is_ident_start(c)) {
      while (L->p < L->end && is_ident_char(*L->p)) L->p++;
      size_t len = (size_t)(L->p - s);
      if (len > FE_MAX_IDENT) {
        char msg[96];
        snprintf(msg, sizeof msg, "identifier too long (%zu characters, limit %d)", len, FE_MAX_IDENT);
        lex_error(L, s, msg);
        return;
      }
      Token *t = push(L, TK_IDENT, s, len, here(L, s));
      t->str = arena_strndup(L->arena, s, len);
      continue;
    }
    if (is_digit(c)) {
      lex_number(L);
      continue;
    }
    if (c == '"') {
      const char *q = s + 1;
      while (q < L->end && *q != '"' && *q != '\n') {
        unsigned char b = (unsigned char)*q;
        if (b < 0x20 || b >= 0x7f) {
          bad_byte(L, q);
          return;
        }
        q++;
      }
      if (q >= L->end || *q != '"') {
        lex_error(L, s, "unterminated string");
        return;
      }
      Token *t = push(L, TK_STR, s, (size_t)(q + 1 - s), here(L, s));
      t->str = arena_strndup(L->arena, s + 1, (size_t)(q - s - 1));
      L->p = q + 1;
      continue;
    }
    if (strchr("()[],=:+-*/%", c) && c) {
      push(L, TK_PUNCT, s, 1, here(L, s));
      L->p++;
      continue;
    }
    bad_byte(L, s);
    return;
  }
}

/* Indentation of the line at L->p: returns false (line handled) when the line
 * is blank, comment-only or bad. */
static bool lex_indent(Lexer *L) {
  const char *q = L->p;
  while (q < L->end && *q == ' ') q++;
  const char *t = q;
  while (t < L->end && (*t == ' ' || *t == '\t' || *t == '\r')) t++;
  if (t >= L->end || *t == '\n' || *t == '#') { /* blank or comment line */
    L->p = t;
    while (L->p < L->end && *L->p != '\n') L->p++;
    return false;
  }
  if (t != q) { /* a tab (or CR) among the leading blanks */
    const char *tab = q;
    while (tab < t && *tab != '\t') tab++;
    lex_error(L, tab < t ? tab : q, tab < t ? "tab in indentation (indent with spaces only)" : "carriage return in indentation");
    push(L, TK_NEWLINE, q, 0, here(L, q))->dropped = true;
    return false;
  }
  uint32_t col = (uint32_t)(q - L->p);
  L->p = q;
  SrcLoc loc = here(L, q);
  if (col > L->indent[L->nindent - 1]) {
    if (L->nindent == (int)(sizeof L->indent / sizeof L->indent[0])) {
      lex_error(L, q, "indentation too deep");
      push(L, TK_NEWLINE, q, 0, loc)->dropped = true;
      return false;
    }
    L->indent[L->nindent++] = col;
    push(L, TK_INDENT, q, 0, loc);
  } else {
    uint32_t inner = col;
    while (col < L->indent[L->nindent - 1]) {
      inner = L->indent[--L->nindent];
      push(L, TK_DEDENT, q, 0, loc);
    }
    if (col != L->indent[L->nindent - 1]) {
      diag_error(L->diag, loc, "inconsistent dedent: indentation of %u spaces matches no enclosing block (expected %u or %u)",
                 col, L->indent[L->nindent - 1], inner);
      /* Recover without cascading: an inner block simply continues at this
       * indentation; at top level the column becomes a silent level whose
       * closing DEDENT the parser skips. The stack stays strictly increasing. */
      if (L->nindent > 1) L->indent[L->nindent - 1] = col;
      else L->indent[L->nindent++] = col;
    }
  }
  return true;
}

TokenList fe_lex(Arena *a, const char *file, const char *text, size_t len, Diag *d) {
  Lexer L = { .arena = a, .diag = d, .file = file, .p = text, .end = text + len, .line_start = text, .line = 1 };
  L.indent[0] = 0;
  L.nindent = 1;
  while (L.p < L.end) {
    L.line_bad = false;
    if (lex_indent(&L)) {
      lex_line(&L);
      /* After an error the line ends early, in a NEWLINE marked dropped: the
       * parser treats the statement as broken without another message. */
      push(&L, TK_NEWLINE, L.p, 0, here(&L, L.p))->dropped = L.line_bad;
    }
    while (L.p < L.end && *L.p != '\n') L.p++; /* after an error: skip the rest */
    if (L.p < L.end) {
      L.p++;
      L.line++;
      L.line_start = L.p;
    }
  }
  while (L.nindent > 1) {
    L.nindent--;
    push(&L, TK_DEDENT, L.p, 0, here(&L, L.p));
  }
  push(&L, TK_EOF, L.p, 0, here(&L, L.p));
  return (TokenList){ L.tok, L.n };
}
