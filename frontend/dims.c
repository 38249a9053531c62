/* dims.c: integer arithmetic for dims, shapes and counts.
 *
 * Dims are int64 and every operation is checked: overflow, division by zero
 * and INT64_MIN / -1 are errors, never wrap-around or a trap. '/' is floor
 * division and '%' the matching modulo (sign of the divisor), so
 * (seq*pct+50)/100 rounds the way a reader expects for positive values and
 * a == (a/b)*b + a%b always holds.
 */
#include <stdlib.h>
#include <string.h>

#include "ast.h"

bool fe_int_binop(char op, int64_t a, int64_t b, int64_t *out, const char **why) {
  int64_t r = 0;
  switch (op) {
  case '+':
    if (__builtin_add_overflow(a, b, &r)) goto overflow;
    break;
  case '-':
    if (__builtin_sub_overflow(a, b, &r)) goto overflow;
    break;
  case '*':
    if (__builtin_mul_overflow(a, b, &r)) goto overflow;
    break;
  case '/':
  case '%':
    if (b == 0) {
      *why = "division by zero";
      return false;
    }
    if (a == INT64_MIN && b == -1) goto overflow;
    {
      int64_t q = a / b, m = a % b;
      if (m != 0 && ((m < 0) != (b < 0))) { /* C truncates toward zero; floor instead */
        q -= 1;
        m += b;
      }
      r = op == '/' ? q : m;
    }
    break;
  default: *why = "unknown operator"; return false;
  }
  *out = r;
  return true;
overflow:
  *why = "integer overflow (dims are 64-bit)";
  return false;
}

bool fe_parse_int(const char *s, int64_t *out) {
  const char *p = s;
  bool neg = false;
  if (*p == '-' || *p == '+') neg = *p++ == '-';
  if (*p < '0' || *p > '9') return false;
  int64_t v = 0;
  for (; *p >= '0' && *p <= '9'; p++) {
    int digit = *p - '0';
    /* accumulate negatively so INT64_MIN parses */
    if (__builtin_mul_overflow(v, 10, &v) || __builtin_sub_overflow(v, digit, &v)) return false;
  }
  if (*p) return false;
  if (!neg) {
    if (v == INT64_MIN) return false;
    v = -v;
  }
  *out = v;
  return true;
}

/* Levenshtein distance with one rolling row; gives up (returns limit+1) for
 * long strings, which are never a typo of a builtin name anyway. */
int fe_edit_distance(const char *a, const char *b, int limit) {
  size_t na = strlen(a), nb = strlen(b);
  if (na > 64 || nb > 64) return limit + 1;
  if ((na > nb ? na - nb : nb - na) > (size_t)limit) return limit + 1;
  int row[65];
  for (size_t j = 0; j <= nb; j++) row[j] = (int)j;
  for (size_t i = 1; i <= na; i++) {
    int diag = row[0];
    row[0] = (int)i;
    for (size_t j = 1; j <= nb; j++) {
      int up = row[j];
      int cost = a[i - 1] == b[j - 1] ? 0 : 1;
      int best = diag + cost;
      if (row[j] + 1 < best) best = row[j] + 1;
      if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
      row[j] = best;
      diag = up;
    }
  }
  return row[nb];
}
