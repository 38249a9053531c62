/* export.c - see export.h. The renaming is a short table of prefix rules
 * applied to the layer-relative part of a name; anything the table does not
 * know is an error rather than a guess, so an exported file never silently
 * disagrees with the reference's module structure. */
#include "export.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checksum.h"
#include "ckpt.h"
#include "json.h"
#include "safetensors.h"

/* ours (after "layers.N.") -> reference (after "encoder.layers.N.") */
static const struct {
  const char *ours, *ref;
} layer_rules[] = {
  { "norm1.", "norm1." },         { "norm2.", "norm2." },         { "attn.qkv.", "attn.self_attention.query_key_value." },
  { "attn.out.", "attn.dense." }, { "ffn.in.", "ffn.dense_in." }, { "ffn.out.", "ffn.dense_out." },
};

/* top-level names: ours -> reference */
static const struct {
  const char *ours, *ref;
} top_rules[] = {
  { "embedding.weight", "encoder.embedding.word_embedding.weight" },
  { "pos.scale", "encoder.embedding.pos_embedding.scale_factor" },
  { "pos.weight", "encoder.embedding.pos_embedding.embedding.weight" },
  { "emb_norm.weight", "encoder.embedding.norm.weight" },
  { "emb_norm.bias", "encoder.embedding.norm.bias" },
  { "final_norm.weight", "encoder.final_norm.weight" },
  { "final_norm.bias", "encoder.final_norm.bias" },
  { "decoder.weight", "decoder.weight" },
  { "decoder.bias", "decoder.bias" },
};

static bool has_prefix(const char *s, const char *p) { return strncmp(s, p, strlen(p)) == 0; }

bool cram_export_name(const char *ours, char *out, size_t outlen) {
  for (size_t i = 0; i < sizeof top_rules / sizeof top_rules[0]; i++)
    if (strcmp(ours, top_rules[i].ours) == 0) return (size_t)snprintf(out, outlen, "%s", top_rules[i].ref) < outlen;
  unsigned layer;
  int used = 0;
  if (sscanf(ours, "layers.%u.%n", &layer, &used) != 1 || used == 0) return false;
  const char *rest = ours + used;
  for (size_t i = 0; i < sizeof layer_rules / sizeof layer_rules[0]; i++) {
    if (!has_prefix(rest, layer_rules[i].ours)) continue;
    const char *leaf = rest + strlen(layer_rules[i].ours);
    if (strcmp(leaf, "weight") && strcmp(leaf, "bias")) return false;
    return (size_t)snprintf(out, outlen, "encoder.layers.%u.%s%s", layer, layer_rules[i].ref, leaf) < outlen;
  }
  return false;
}

static int64_t dim_value(const cram_step_meta *m, const char *name) {
  for (uint32_t i = 0; i < m->ndims; i++)
    if (strcmp(m->dims[i].name, name) == 0) return m->dims[i].value;
  return 0;
}

static bool has_param(const cram_step_meta *m, const char *name) {
  for (uint32_t i = 0; i < m->nparams; i++)
    if (strcmp(m->params[i].name, name) == 0) return true;
  return false;
}

/* Everything a written tensor needs to own, freed in one place. */
typedef struct {
  cram_st_tensor *ts;
  char **names;
  unsigned char **data;
  size_t n, cap;
} Out;

static bool out_add(Out *o, const char *name, int rank, const int64_t *shape, const unsigned char *data, size_t nbytes) {
  if (o->n == o->cap) {
    size_t cap = o->cap ? 2 * o->cap : 64;
    cram_st_tensor *ts = realloc(o->ts, cap * sizeof *ts);
    if (ts) o->ts = ts;
    char **names = realloc(o->names, cap * sizeof *names);
    if (names) o->names = names;
    unsigned char **d = realloc(o->data, cap * sizeof *d);
    if (d) o->data = d;
    if (!ts || !names || !d) return false;
    o->cap = cap;
  }
  char *nm = strdup(name);
  unsigned char *copy = malloc(nbytes ? nbytes : 1);
  if (!nm || !copy) {
    free(nm);
    free(copy);
    return false;
  }
  memcpy(copy, data, nbytes);
  cram_st_tensor *t = &o->ts[o->n];
  memset(t, 0, sizeof *t);
  t->name = nm;
  t->dtype = CRAM_ST_F32;
  t->rank = rank;
  for (int d = 0; d < rank; d++) t->shape[d] = shape[d];
  t->data = copy;
  o->names[o->n] = nm;
  o->data[o->n] = copy;
  o->n++;
  return true;
}

static void out_free(Out *o) {
  for (size_t i = 0; i < o->n; i++) {
    free(o->names[i]);
    free(o->data[i]);
  }
  free(o->ts);
  free(o->names);
  free(o->data);
}

cram_status cram_export(const cram_step_meta *meta, const char *ckpt, const char *out, cram_export_names names, cram_err *err) {
  cram_st_file f;
  cram_status r = cram_st_read(ckpt, &f, err);
  cram_train_state st; /* a checkpoint of this model, whole, before anything is written */
  if (r == CRAM_OK) r = cram_ckpt_parse_state(&f, ckpt, meta, &st, err);
  if (r != CRAM_OK) {
    cram_st_free(&f);
    return r;
  }
  Out o = { 0 };
  /* names are at most CRAM_STEP_MAX_NAME bytes (the loader checks), so these fit */
  char key[CRAM_STEP_MAX_NAME + 16], name[2 * CRAM_STEP_MAX_NAME + 64];
  for (uint32_t i = 0; i < meta->nparams && r == CRAM_OK; i++) {
    const cram_tensor_info *p = &meta->params[i];
    snprintf(key, sizeof key, "param.%s", p->name);
    const cram_st_tensor *t = cram_st_find(&f, key);
    int same = t && t->dtype == CRAM_ST_F32 && t->rank == (int)p->rank;
    for (uint32_t d = 0; same && d < p->rank; d++) same = t->shape[d] == p->shape[d];
    if (!same) {
      r = cram_err_set(err, CRAM_E_HEADER,
                       t ? "%s: tensor '%s' is not F32 of the parameter's shape (checkpoint of another model?)"
                         : "%s: checkpoint has no tensor '%s' (checkpoint of another model?)",
                       ckpt, key);
      break;
    }
    if (names == CRAM_NAMES_CRAMC) snprintf(name, sizeof name, "%s", p->name);
    else if (!cram_export_name(p->name, name, sizeof name)) {
      r = cram_err_set(err, CRAM_E_ARG, "parameter '%s' has no counterpart in the reference's state dict (use --names cramc)",
                       p->name);
      break;
    }
    if (!out_add(&o, name, (int)p->rank, p->shape, t->data, t->nbytes)) r = cram_err_set(err, CRAM_E_NOMEM, "out of memory");
    /* The reference ties the decoder to the word embedding but keeps both keys. */
    if (r == CRAM_OK && names == CRAM_NAMES_CRAMMING && strcmp(p->name, "embedding.weight") == 0 &&
        !has_param(meta, "decoder.weight") && !out_add(&o, "decoder.weight", (int)p->rank, p->shape, t->data, t->nbytes))
      r = cram_err_set(err, CRAM_E_NOMEM, "out of memory");
  }
  /* Each layer's attention scale is a persistent buffer of the reference. */
  int64_t layers = dim_value(meta, "layers"), heads = dim_value(meta, "heads"), hidden = dim_value(meta, "hidden");
  if (r == CRAM_OK && names == CRAM_NAMES_CRAMMING && layers > 0 && heads > 0 && hidden % heads == 0) {
    unsigned char nf[4]; /* a scalar f32, little-endian */
    cram_st_put(CRAM_ST_F32, nf, 0, 1.0 / sqrt((double)(hidden / heads)));
    for (int64_t l = 0; l < layers && r == CRAM_OK; l++) {
      snprintf(name, sizeof name, "encoder.layers.%" PRId64 ".attn.self_attention.norm_factor", l);
      if (!out_add(&o, name, 0, NULL, nf, sizeof nf)) r = cram_err_set(err, CRAM_E_NOMEM, "out of memory");
    }
  }
  if (r == CRAM_OK) {
    cram_st_meta md[2] = { { "format", "pt" }, { "model", (char *)meta->model } };
    r = cram_st_write(out, o.ts, o.n, md, 2, err);
  }
  out_free(&o);
  cram_st_free(&f);
  return r;
}

/* ---- the files beside the weights ----------------------------------------------- */

static char *read_all(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  char *buf = NULL;
  size_t cap = 0;
  *n = 0;
  for (;;) {
    if (*n == cap) {
      char *q = realloc(buf, cap = cap ? 2 * cap : 65536);
      if (!q) break;
      buf = q;
    }
    size_t k = fread(buf + *n, 1, cap - *n, f);
    *n += k;
    if (k == 0) break;
  }
  int bad = ferror(f);
  fclose(f);
  if (bad) {
    free(buf);
    return NULL;
  }
  return buf;
}

/* Writes n bytes to path atomically (temp file, rename). */
static cram_status write_file(const char *path, const void *data, size_t n, cram_err *err) {
  char tmp[4200];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  FILE *f = fopen(tmp, "wb");
  if (!f) return cram_err_set(err, CRAM_E_IO, "%s: %s", tmp, strerror(errno));
  int bad = fwrite(data, 1, n, f) != n;
  if (fclose(f) != 0 || bad || rename(tmp, path) != 0) {
    int e = errno;
    remove(tmp);
    return cram_err_set(err, CRAM_E_IO, "%s: %s", path, strerror(e ? e : EIO));
  }
  return CRAM_OK;
}

static void note(char *w, size_t wl, const char *path) {
  size_t l = strlen(w);
  if (l < wl) snprintf(w + l, wl - l, "%s\n", path);
}

cram_status cram_export_bundle(const cram_step_meta *meta, const char *ckpt, const char *out, const char *data_dir,
                               cram_export_names names, char *written, size_t written_len, cram_err *err) {
  if (written_len) written[0] = 0;
  char stem[4096], path[4200], dbuf[4096];
  size_t ol = strlen(out);
  if (ol > 12 && strcmp(out + ol - 12, ".safetensors") == 0) ol -= 12;
  if (ol >= sizeof stem) return cram_err_set(err, CRAM_E_ARG, "%s: path too long", out);
  memcpy(stem, out, ol);
  stem[ol] = 0;
  /* the tokenizer the run trained with */
  cram_st_file f;
  cram_status r = cram_st_read(ckpt, &f, err);
  if (r) {
    cram_st_free(&f);
    return r;
  }
  const char *rec_dir = cram_st_meta_get(&f, "data_dir"), *rec_tok = cram_st_meta_get(&f, "data_tokenizer");
  snprintf(dbuf, sizeof dbuf, "%s", data_dir ? data_dir : rec_dir ? rec_dir : "");
  char tok_hex[32];
  snprintf(tok_hex, sizeof tok_hex, "%s", rec_tok ? rec_tok : "");
  cram_st_free(&f);
  /* no data directory known (a checkpoint from `cram bench --save-init`), or
     * the recorded one is gone: the rest is still written, and said */
  size_t vn = 0;
  snprintf(path, sizeof path, "%s/vocab.txt", dbuf);
  char *vocab = *dbuf ? read_all(path, &vn) : NULL;
  if (!vocab && data_dir)
    return cram_err_set(err, CRAM_E_IO, "%s: %s (the tokenizer of the run's data)", path, strerror(errno ? errno : ENOENT));
  if (!vocab) {
    char line[4400];
    if (*dbuf) snprintf(line, sizeof line, "note: no tokenizer written: %s is gone (pass --data DIR)", path);
    else snprintf(line, sizeof line, "note: no tokenizer written: %s records no data directory (pass --data DIR)", ckpt);
    note(written, written_len, line);
  }
  char got[32] = "";
  if (vocab) snprintf(got, sizeof got, "%016" PRIx64, cram_fnv1a64(CRAM_FNV1A64_INIT, vocab, vn));
  if (vocab && *tok_hex && strcmp(got, tok_hex) != 0) {
    free(vocab);
    return cram_err_set(err, CRAM_E_TOKENIZER,
                        "%s has tokenizer hash %s, the run trained with %s: pass the run's "
                        "--data DIR",
                        path, got, tok_hex);
  }
  if (vocab) {
    snprintf(path, sizeof path, "%s.vocab.txt", stem);
    r = write_file(path, vocab, vn, err);
    free(vocab);
    if (r) return r;
    note(written, written_len, path);
  }
  snprintf(path, sizeof path, "%s/tokenizer.json", dbuf);
  size_t tn = 0;
  char *tj = *got ? read_all(path, &tn) : NULL;
  int has_tj = tj != NULL;
  if (tj) {
    snprintf(path, sizeof path, "%s.tokenizer.json", stem);
    r = write_file(path, tj, tn, err);
    free(tj);
    if (r) return r;
    note(written, written_len, path);
  }
  /* the architecture: source and config */
  if (meta->source) {
    snprintf(path, sizeof path, "%s.cram", stem);
    if ((r = write_file(path, meta->source, strlen(meta->source), err))) return r;
    note(written, written_len, path);
  }
  char *js = NULL;
  size_t jn = 0;
  FILE *j = open_memstream(&js, &jn);
  if (!j) return cram_err_set(err, CRAM_E_NOMEM, "out of memory");
  const char *base = strrchr(stem, '/') ? strrchr(stem, '/') + 1 : stem;
  fprintf(j, "{\n  \"model\": ");
  cram_json_put_str(j, meta->model);
  fprintf(j, ",\n  \"source\": ");
  if (meta->source) fprintf(j, "\"%s.cram\"", base);
  else fprintf(j, "null");
  fprintf(j, ",\n  \"source_hash\": ");
  cram_json_put_str(j, meta->source_hash);
  fprintf(j, ",\n  \"cramc_version\": ");
  cram_json_put_str(j, meta->cramc_version);
  fprintf(j, ",\n  \"weights\": \"%s.safetensors\",\n  \"names\": \"%s\",\n", base,
          names == CRAM_NAMES_CRAMC ? "cramc" : "cramming");
  if (*got) {
    fprintf(j, "  \"tokenizer\": {\"vocab\": \"%s.vocab.txt\", \"tokenizer_json\": ", base);
    if (has_tj) fprintf(j, "\"%s.tokenizer.json\"", base);
    else fprintf(j, "null");
    fprintf(j, ", \"hash\": \"%s\"},\n", got);
  } else {
    fprintf(j, "  \"tokenizer\": null,\n");
  }
  fprintf(j, "  \"dims\": {");
  for (uint32_t i = 0; i < meta->ndims; i++) {
    fprintf(j, "%s", i ? ", " : "");
    cram_json_put_str(j, meta->dims[i].name);
    fprintf(j, ": %" PRId64, meta->dims[i].value);
  }
  fprintf(j, "},\n  \"parameters\": [\n");
  for (uint32_t i = 0; i < meta->nparams; i++) {
    const cram_tensor_info *p = &meta->params[i];
    char nm[512];
    if (names == CRAM_NAMES_CRAMC || !cram_export_name(p->name, nm, sizeof nm)) snprintf(nm, sizeof nm, "%s", p->name);
    fprintf(j, "    {\"name\": ");
    cram_json_put_str(j, nm);
    fprintf(j, ", \"cramc_name\": ");
    cram_json_put_str(j, p->name);
    fprintf(j, ", \"shape\": [");
    for (uint32_t d = 0; d < p->rank; d++) fprintf(j, "%s%" PRId64, d ? ", " : "", p->shape[d]);
    fprintf(j, "], \"decay\": %u}%s\n", p->decay, i + 1 < meta->nparams ? "," : "");
  }
  fprintf(j, "  ]\n}\n");
  fclose(j);
  snprintf(path, sizeof path, "%s.json", stem);
  r = js ? write_file(path, js, jn, err) : cram_err_set(err, CRAM_E_NOMEM, "out of memory");
  free(js);
  if (r == CRAM_OK) note(written, written_len, path);
  return r;
}
