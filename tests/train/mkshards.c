/* mkshards.c - test helper: writes a small synthetic token-shard dataset
 * (train-00000..00001 + heldout-00000, vocab 64, seq 16, [MASK]=4) with a
 * learnable bigram structure, through libcramrt's shard writer.
 * With "skew", unigrams are skewed (the product of two uniform draws) and the
 * bigram rule holds half the time, so even a model that has not yet learnt to
 * attend lowers its loss within a few dozen updates (what the codegen CLI test
 * needs to see "the loss falls"). A vocab.txt of 64 made-up tokens goes
 * beside the shards, its FNV-1a the shards' tokenizer hash (as `cram data`).
 * usage: mkshards DIR [NSEQ_PER_SHARD [skew]] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "checksum.h"
#include "shard.h"

static uint64_t s_state;
static uint32_t rnd(void) {
  s_state = s_state * 6364136223846793005ull + 1442695040888963407ull;
  return (uint32_t)(s_state >> 33);
}

/* A token id in [5, 64): uniform, or skewed towards small ids. */
static uint16_t draw(int skew) { return (uint16_t)(5 + (skew ? (rnd() % 59) * (rnd() % 59) / 59 : rnd() % 59)); }

static uint64_t s_tokenizer_hash;

static int write_vocab(const char *dir) {
  char path[4200], text[1024];
  size_t n = 0;
  static const char *const special[] = { "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]" };
  for (int i = 0; i < 64; i++)
    n +=
      (size_t)(i < 5 ? snprintf(text + n, sizeof text - n, "%s\n", special[i]) : snprintf(text + n, sizeof text - n, "t%d\n", i));
  snprintf(path, sizeof path, "%s/vocab.txt", dir);
  FILE *f = fopen(path, "w");
  if (!f || fwrite(text, 1, n, f) != n || fclose(f) != 0) return 1;
  s_tokenizer_hash = cram_fnv1a64(CRAM_FNV1A64_INIT, text, n);
  return 0;
}

static int write_split(const char *dir, const char *split, uint32_t nshards, uint64_t nseq, int skew) {
  for (uint32_t si = 0; si < nshards; si++) {
    cram_shard_header h;
    memset(&h, 0, sizeof h);
    h.vocab_size = 64;
    h.seq_len = 16;
    h.pad_id = 0, h.unk_id = 1, h.cls_id = 2, h.sep_id = 3, h.mask_id = 4;
    h.shard_index = si;
    h.shard_count = nshards;
    h.split = strcmp(split, "train") == 0 ? CRAM_SPLIT_TRAIN : CRAM_SPLIT_HELDOUT;
    h.order = CRAM_ORDER_INPUT;
    h.order_token = CRAM_NO_TOKEN;
    h.tokenizer_hash = s_tokenizer_hash;
    char *path = cram_shard_name(dir, split, si);
    cram_shard_writer w;
    cram_err err = { 0 };
    if (cram_shard_writer_open(&w, path, &h, &err)) {
      fprintf(stderr, "mkshards: %s\n", err.msg);
      return 1;
    }
    for (uint64_t k = 0; k < nseq; k++) {
      uint16_t s[16];
      s[0] = draw(skew);
      for (int j = 1; j < 16; j++) /* next = 3*prev+1 mod 59 (+5) most of the time */
        s[j] = rnd() % (skew ? 2 : 4) ? (uint16_t)(5 + (3u * (s[j - 1] - 5u) + 1u) % 59u) : draw(skew);
      if (cram_shard_writer_append(&w, s, 1, &err)) {
        fprintf(stderr, "mkshards: %s\n", err.msg);
        return 1;
      }
    }
    if (cram_shard_writer_finish(&w, &err)) {
      fprintf(stderr, "mkshards: %s\n", err.msg);
      return 1;
    }
    free(path);
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: mkshards DIR [NSEQ_PER_SHARD [skew]]\n");
    return 2;
  }
  uint64_t n = argc > 2 ? strtoull(argv[2], NULL, 10) : 200;
  char cmd[4200];
  snprintf(cmd, sizeof cmd, "mkdir -p '%s'", argv[1]);
  if (system(cmd) != 0) return 1;
  s_state = 42;
  int skew = argc > 3 && strcmp(argv[3], "skew") == 0;
  return write_vocab(argv[1]) || write_split(argv[1], "train", 2, n, skew) ||
         write_split(argv[1], "heldout", 1, n / 4 ? n / 4 : 1, skew);
}
