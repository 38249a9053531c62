/* cmd_shards.c - `cram shards`: inspect and verify token shards.
 * Opens each file (or every train/heldout shard of a directory) through the
 * libcramrt reader with full verification (size, header CRC, payload CRC32,
 * token range) and prints one line per shard, or the error naming the file.
 * Used by people to check a prepared dataset and by the CLI tests. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../shard.h"
#include "cli.h"

static const char *order_str(uint32_t o) {
  return o == CRAM_ORDER_CURRICULUM ? "curriculum" : o == CRAM_ORDER_SHUFFLE ? "shuffle" : "input";
}

static void print_shard(const cram_shard *s, uint64_t dump) {
  const cram_shard_header *h = &s->h;
  printf("%s: ok  split %s  shard %" PRIu32 "/%" PRIu32 "  sequences %" PRIu64 "  seq_len %" PRIu32 "  vocab %" PRIu32
         "  order %s",
         s->path, h->split == CRAM_SPLIT_TRAIN ? "train" : "heldout", h->shard_index, h->shard_count, h->seq_count, h->seq_len,
         h->vocab_size, order_str(h->order));
  if (h->order == CRAM_ORDER_CURRICULUM) printf(" (token %" PRIu32 ")", h->order_token);
  if (h->order == CRAM_ORDER_SHUFFLE) printf(" (seed %" PRIu64 ")", h->seed);
  printf("  crc32 %08" PRIx32 "  tokenizer %016" PRIx64 "  specials pad %" PRId64 " unk %" PRId64 " cls %" PRId64 " sep %" PRId64
         " mask %" PRId64 "\n",
         h->payload_crc32, h->tokenizer_hash, h->pad_id == CRAM_NO_TOKEN ? -1 : (int64_t)h->pad_id,
         h->unk_id == CRAM_NO_TOKEN ? -1 : (int64_t)h->unk_id, h->cls_id == CRAM_NO_TOKEN ? -1 : (int64_t)h->cls_id,
         h->sep_id == CRAM_NO_TOKEN ? -1 : (int64_t)h->sep_id, h->mask_id == CRAM_NO_TOKEN ? -1 : (int64_t)h->mask_id);
  for (uint64_t i = 0; i < dump && i < h->seq_count; i++) {
    const uint16_t *q = cram_shard_seq(s, i);
    for (uint32_t j = 0; j < h->seq_len; j++) printf("%s%u", j ? " " : "", q[j]);
    printf("\n");
  }
}

/* One PATH: a shard file, or a directory whose train and heldout sets are checked. Returns 1 if bad. */
static int check_path(const char *a, const cram_shard_expect *ex, unsigned verify, uint64_t dump) {
  struct stat st;
  if (stat(a, &st) != 0) {
    fprintf(stderr, "cram shards: %s: %s\n", a, strerror(errno));
    return 1;
  }
  cram_err err = { 0 };
  int bad = 0;
  if (S_ISDIR(st.st_mode)) {
    const char *splits[] = { "train", "heldout" };
    for (int k = 0; k < 2; k++) {
      cram_dataset d;
      cram_status r = cram_dataset_open(&d, a, splits[k], ex, verify, &err);
      if (r != CRAM_OK) {
        fprintf(stderr, "cram shards: %s\n", err.msg);
        bad = 1;
        continue;
      }
      for (size_t j = 0; j < d.nshards; j++) print_shard(&d.shards[j], dump);
      printf("%s: %s: %zu shard%s, %" PRIu64 " sequences, %" PRIu64 " tokens\n", a, splits[k], d.nshards,
             d.nshards == 1 ? "" : "s", d.seq_count, d.seq_count * d.seq_len);
      cram_dataset_close(&d);
    }
    return bad;
  }
  cram_shard s;
  if (cram_shard_open(&s, a, ex, verify, &err) != CRAM_OK) {
    fprintf(stderr, "cram shards: %s\n", err.msg);
    return 1;
  }
  print_shard(&s, dump);
  cram_shard_close(&s);
  return 0;
}

int cram_cmd_shards(int argc, char **argv) {
  uint64_t vocab = 0, seq_len = 0, dump = 0;
  int no_verify = 0;
  const cli_opt opts[] = {
    { "--expect-vocab", "N", CLI_U64, &vocab, 0, 65536, .help = "fail unless the vocab size is N" },
    { "--expect-seq-len", "N", CLI_U64, &seq_len, 0, 1 << 20, .help = "fail unless the sequence length is N" },
    { "--no-verify", NULL, CLI_FLAG, &no_verify, .help = "skip the payload checksum and token-range scan" },
    { "--dump", "N", CLI_U64, &dump, 0, 1e12, .help = "print the first N sequences of each shard (token ids)" },
  };
  const cli_command cmd = { "shards",
                            "usage: cram shards PATH... [options]\n"
                            "\n"
                            "Verify token shards and print their headers. PATH is a .shard file or a\n"
                            "directory written by `cram data` (all its train-*/heldout-* shards are checked\n"
                            "as a set). Exit status 1 if any shard is invalid; the error names the file.\n"
                            "\n",
                            opts, sizeof opts / sizeof opts[0], NULL };
  const char *paths[256];
  size_t np = 256;
  int pr = cli_parse(&cmd, argc, argv, paths, &np);
  if (pr) return pr < 0 ? 0 : pr;
  if (np == 0) {
    fprintf(stderr, "cram shards: no shard file or directory given (see cram shards --help)\n");
    return 2;
  }
  cram_shard_expect ex = { .vocab_size = (uint32_t)vocab, .seq_len = (uint32_t)seq_len };
  unsigned verify = no_verify ? CRAM_VERIFY_HEADER_ONLY : CRAM_VERIFY_CHECKSUM | CRAM_VERIFY_TOKENS;
  int bad = 0;
  for (size_t i = 0; i < np; i++) bad |= check_path(paths[i], &ex, verify, dump);
  return bad ? 1 : 0;
}
