/* wordpiece.c - WordPiece encoding with a `cram data` vocabulary (wordpiece.h). */
#include "wordpiece.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wordpiece_fold.h"

#define WP_MAX_WORD 100 /* tokenizers' max_input_chars_per_word */

struct cram_wordpiece {
  char *blob; /* the file's bytes; tokens are [off[i], off[i] + len[i]) */
  uint32_t *off, *len;
  uint32_t n;
  uint32_t *slot; /* open addressing: id + 1, 0 = empty */
  size_t cap;
  cram_wp_specials sp;
  uint64_t hash;
};

static uint64_t fnv1a(const char *s, size_t n) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 0x100000001b3ull;
  return h;
}

int64_t cram_wordpiece_id(const cram_wordpiece *wp, const char *tok, size_t len) {
  size_t i = (size_t)fnv1a(tok, len) & (wp->cap - 1);
  for (; wp->slot[i]; i = (i + 1) & (wp->cap - 1)) {
    uint32_t id = wp->slot[i] - 1;
    if (wp->len[id] == len && memcmp(wp->blob + wp->off[id], tok, len) == 0) return id;
  }
  return -1;
}

static uint32_t special(const cram_wordpiece *wp, const char *a, const char *b) {
  int64_t id = cram_wordpiece_id(wp, a, strlen(a));
  if (id < 0) id = cram_wordpiece_id(wp, b, strlen(b));
  return id < 0 ? UINT32_MAX : (uint32_t)id;
}

void cram_wordpiece_free(cram_wordpiece *wp) {
  if (!wp) return;
  free(wp->blob), free(wp->off), free(wp->len), free(wp->slot);
  free(wp);
}

cram_status cram_wordpiece_load(const char *path, cram_wordpiece **out, cram_err *err) {
  *out = NULL;
  FILE *f = fopen(path, "rb");
  if (!f) return cram_err_set(err, CRAM_E_IO, "%s: %s", path, strerror(errno));
  cram_wordpiece *wp = calloc(1, sizeof *wp);
  size_t cap = 1 << 16, n = 0;
  char *blob = malloc(cap);
  if (!wp || !blob) goto oom;
  for (size_t r; (r = fread(blob + n, 1, cap - n, f)) > 0;) {
    n += r;
    if (n == cap) {
      char *nb = realloc(blob, cap *= 2);
      if (!nb) goto oom;
      blob = nb;
    }
  }
  if (ferror(f)) {
    fclose(f), free(blob), cram_wordpiece_free(wp);
    return cram_err_set(err, CRAM_E_IO, "%s: read error", path);
  }
  fclose(f);
  f = NULL;
  wp->blob = blob;
  wp->hash = fnv1a(blob, n);
  uint32_t lines = 0;
  for (size_t i = 0; i < n; i++) lines += blob[i] == '\n';
  if (n && blob[n - 1] != '\n') lines++;
  wp->off = malloc((lines ? lines : 1) * sizeof *wp->off);
  wp->len = malloc((lines ? lines : 1) * sizeof *wp->len);
  for (wp->cap = 16; wp->cap < 2 * (size_t)lines; wp->cap *= 2) {}
  wp->slot = calloc(wp->cap, sizeof *wp->slot);
  if (!wp->off || !wp->len || !wp->slot) goto oom;
  /* Only "\n" ends a line (tokens may hold other control characters); a
     * trailing "\r" is dropped, as the Python tool does. */
  for (size_t s = 0; s < n;) {
    size_t e = s;
    while (e < n && blob[e] != '\n') e++;
    size_t l = e - s;
    if (l && blob[s + l - 1] == '\r') l--;
    if (cram_wordpiece_id(wp, blob + s, l) >= 0) {
      cram_status st =
        cram_err_set(err, CRAM_E_ARG, "%s:%u: duplicate token '%.*s'", path, wp->n + 1, (int)(l > 60 ? 60 : l), blob + s);
      cram_wordpiece_free(wp);
      return st;
    }
    wp->off[wp->n] = (uint32_t)s;
    wp->len[wp->n] = (uint32_t)l;
    size_t i = (size_t)fnv1a(blob + s, l) & (wp->cap - 1);
    while (wp->slot[i]) i = (i + 1) & (wp->cap - 1);
    wp->slot[i] = ++wp->n;
    s = e + 1;
  }
  wp->sp = (cram_wp_specials){ special(wp, "[PAD]", "<pad>"), special(wp, "[UNK]", "<unk>"), special(wp, "[CLS]", "<cls>"),
                               special(wp, "[SEP]", "<sep>"), special(wp, "[MASK]", "<mask>") };
  if (wp->sp.unk == UINT32_MAX || wp->sp.cls == UINT32_MAX || wp->sp.sep == UINT32_MAX) {
    cram_wordpiece_free(wp);
    return cram_err_set(err, CRAM_E_ARG, "%s: vocabulary lacks [UNK], [CLS] or [SEP] (not a cram data vocab.txt?)", path);
  }
  *out = wp;
  return CRAM_OK;
oom:
  if (f) fclose(f);
  if (!wp || wp->blob != blob) free(blob);
  cram_wordpiece_free(wp);
  return cram_err_set(err, CRAM_E_NOMEM, "%s: out of memory", path);
}

uint32_t cram_wordpiece_size(const cram_wordpiece *wp) { return wp->n; }
cram_wp_specials cram_wordpiece_specials(const cram_wordpiece *wp) { return wp->sp; }
uint64_t cram_wordpiece_hash(const cram_wordpiece *wp) { return wp->hash; }

void cram_idvec_free(cram_idvec *v) {
  free(v->ids);
  memset(v, 0, sizeof *v);
}

int cram_idvec_push(cram_idvec *v, int32_t id) {
  if (v->n == v->cap) {
    size_t nc = v->cap ? v->cap * 2 : 64;
    int32_t *ni = realloc(v->ids, nc * sizeof *ni);
    if (!ni) return -1;
    v->ids = ni, v->cap = nc;
  }
  v->ids[v->n++] = id;
  return 0;
}

/* ---- normalisation ------------------------------------------------------------------- */

/* The ASCII character a non-ASCII code point becomes, or 0 (deleted). */
static char fold(uint32_t cp) {
  size_t lo = 0, hi = sizeof wordpiece_fold / sizeof wordpiece_fold[0];
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (wordpiece_fold[mid].cp == cp) return wordpiece_fold[mid].ascii;
    if (wordpiece_fold[mid].cp < cp) lo = mid + 1;
    else hi = mid;
  }
  return 0;
}

/* Decodes one UTF-8 sequence at s[0..n); returns its length and sets *cp
 * (UINT32_MAX for an invalid byte, consumed alone). */
static size_t utf8(const unsigned char *s, size_t n, uint32_t *cp) {
  unsigned c = s[0];
  size_t k = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
  if (k == 0 || k > n) return *cp = UINT32_MAX, 1;
  uint32_t v = k == 1 ? c : c & (0x7fu >> k);
  for (size_t i = 1; i < k; i++) {
    if ((s[i] & 0xc0) != 0x80) return *cp = UINT32_MAX, 1;
    v = v << 6 | (s[i] & 0x3f);
  }
  static const uint32_t min[] = { 0, 0, 0x80, 0x800, 0x10000 };
  if (v < min[k] || v > 0x10ffff || (v >= 0xd800 && v < 0xe000)) return *cp = UINT32_MAX, 1;
  *cp = v;
  return k;
}

/* The normalised text: `` -> ", then '' -> " (in that order, as the
 * reference's two Replace steps), ASCII lowercased, the rest folded or
 * dropped. Writes at most len bytes to dst; returns the length. */
static size_t normalise(const char *text, size_t len, char *dst) {
  size_t n = 0;
  for (size_t i = 0; i < len;) { /* `` -> " */
    if (text[i] == '`' && i + 1 < len && text[i + 1] == '`') dst[n++] = '"', i += 2;
    else dst[n++] = text[i++];
  }
  size_t m = 0;
  for (size_t i = 0; i < n;) { /* '' -> " (in place: m <= i) */
    if (dst[i] == '\'' && i + 1 < n && dst[i + 1] == '\'') dst[m++] = '"', i += 2;
    else dst[m++] = dst[i++];
  }
  size_t o = 0;
  for (size_t i = 0; i < m;) {
    uint32_t cp;
    i += utf8((const unsigned char *)dst + i, m - i, &cp);
    char c = cp < 0x80 ? (char)(cp >= 'A' && cp <= 'Z' ? cp + 32 : cp) : cp == UINT32_MAX ? 0 : fold(cp);
    if (c) dst[o++] = c; /* o <= i: each code point takes at least the byte it leaves */
  }
  return o;
}

/* ---- pre-tokenizer and WordPiece ------------------------------------------------------ */

static int is_word(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'; }
static int is_space(char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

/* Greedy longest-match-first split of one pre-token; the whole word is [UNK]
 * when some position has no piece. */
static int encode_word(const cram_wordpiece *wp, const char *w, size_t n, cram_idvec *out) {
  char piece[WP_MAX_WORD + 3] = "##";
  if (n > WP_MAX_WORD) return cram_idvec_push(out, (int32_t)wp->sp.unk);
  size_t mark = out->n;
  for (size_t start = 0; start < n;) {
    int64_t id = -1;
    size_t end = n;
    for (; end > start; end--) {
      if (start == 0) id = cram_wordpiece_id(wp, w, end);
      else memcpy(piece + 2, w + start, end - start), id = cram_wordpiece_id(wp, piece, end - start + 2);
      if (id >= 0) break;
    }
    if (id < 0) {
      out->n = mark;
      return cram_idvec_push(out, (int32_t)wp->sp.unk);
    }
    if (cram_idvec_push(out, (int32_t)id)) return -1;
    start = end;
  }
  return 0;
}

cram_status cram_wordpiece_encode(const cram_wordpiece *wp, const char *text, size_t len, cram_idvec *out, cram_err *err) {
  char *s = malloc(len ? len : 1);
  if (!s) return cram_err_set(err, CRAM_E_NOMEM, "tokenizer: out of memory");
  size_t n = normalise(text, len, s);
  int bad = 0;
  for (size_t i = 0; i < n && !bad;) {
    if (is_space(s[i])) {
      i++;
      continue;
    }
    int word = is_word(s[i]);
    size_t j = i;
    while (j < n && !is_space(s[j]) && is_word(s[j]) == word) j++;
    bad = encode_word(wp, s + i, j - i, out);
    i = j;
  }
  free(s);
  return bad ? cram_err_set(err, CRAM_E_NOMEM, "tokenizer: out of memory") : CRAM_OK;
}
