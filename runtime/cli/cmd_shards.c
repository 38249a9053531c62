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

static void shards_usage(FILE *f) {
    fprintf(f,
"usage: cram shards PATH... [options]\n"
"\n"
"Verify token shards and print their headers. PATH is a .shard file or a\n"
"directory written by `cram data` (all its train-*/heldout-* shards are checked\n"
"as a set). Exit status 1 if any shard is invalid; the error names the file.\n"
"\n"
"options:\n"
"  --expect-vocab N     fail unless the vocab size is N\n"
"  --expect-seq-len N   fail unless the sequence length is N\n"
"  --no-verify          skip the payload checksum and token-range scan\n"
"  --dump N             print the first N sequences of each shard (token ids)\n"
"  -h, --help           this help\n");
}

static const char *order_str(uint32_t o) {
    return o == CRAM_ORDER_CURRICULUM ? "curriculum" : o == CRAM_ORDER_SHUFFLE ? "shuffle" : "input";
}

static void print_shard(const cram_shard *s, uint64_t dump) {
    const cram_shard_header *h = &s->h;
    printf("%s: ok  split %s  shard %" PRIu32 "/%" PRIu32 "  sequences %" PRIu64 "  seq_len %" PRIu32
           "  vocab %" PRIu32 "  order %s",
           s->path, h->split == CRAM_SPLIT_TRAIN ? "train" : "heldout", h->shard_index, h->shard_count,
           h->seq_count, h->seq_len, h->vocab_size, order_str(h->order));
    if (h->order == CRAM_ORDER_CURRICULUM) printf(" (token %" PRIu32 ")", h->order_token);
    if (h->order == CRAM_ORDER_SHUFFLE) printf(" (seed %" PRIu64 ")", h->seed);
    printf("  crc32 %08" PRIx32 "  tokenizer %016" PRIx64 "  specials pad %" PRId64 " unk %" PRId64
           " cls %" PRId64 " sep %" PRId64 " mask %" PRId64 "\n",
           h->payload_crc32, h->tokenizer_hash,
           h->pad_id == CRAM_NO_TOKEN ? -1 : (int64_t)h->pad_id,
           h->unk_id == CRAM_NO_TOKEN ? -1 : (int64_t)h->unk_id,
           h->cls_id == CRAM_NO_TOKEN ? -1 : (int64_t)h->cls_id,
           h->sep_id == CRAM_NO_TOKEN ? -1 : (int64_t)h->sep_id,
           h->mask_id == CRAM_NO_TOKEN ? -1 : (int64_t)h->mask_id);
    for (uint64_t i = 0; i < dump && i < h->seq_count; i++) {
        const uint16_t *q = cram_shard_seq(s, i);
        for (uint32_t j = 0; j < h->seq_len; j++) printf("%s%u", j ? " " : "", q[j]);
        printf("\n");
    }
}

int cram_cmd_shards(int argc, char **argv) {
    cram_shard_expect ex = {0};
    unsigned verify = CRAM_VERIFY_CHECKSUM | CRAM_VERIFY_TOKENS;
    uint64_t dump = 0;
    int npaths = 0, bad = 0;
    for (int pass = 0; pass < 2; pass++) { /* pass 0: options, pass 1: paths */
        for (int i = 1; i < argc; i++) {
            const char *a = argv[i], *v = NULL;
            uint64_t u;
            int m;
            if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
                if (pass == 0) {
                    shards_usage(stdout);
                    return 0;
                }
                continue;
            }
            if ((m = cli_match_opt(argc, argv, &i, "--expect-vocab", &v)) != 0 ||
                (m = cli_match_opt(argc, argv, &i, "--expect-seq-len", &v)) != 0 ||
                (m = cli_match_opt(argc, argv, &i, "--dump", &v)) != 0) {
                if (m < 0 || cli_parse_u64(v, &u) || u > UINT32_MAX) {
                    fprintf(stderr, "cram shards: %s needs a non-negative integer\n", a);
                    return 2;
                }
                if (strncmp(a, "--expect-vocab", 14) == 0) ex.vocab_size = (uint32_t)u;
                else if (strncmp(a, "--expect-seq-len", 16) == 0) ex.seq_len = (uint32_t)u;
                else dump = u;
                continue;
            }
            if (strcmp(a, "--no-verify") == 0) {
                verify = CRAM_VERIFY_HEADER_ONLY;
                continue;
            }
            if (a[0] == '-' && a[1]) {
                fprintf(stderr, "cram shards: unknown option '%s' (see cram shards --help)\n", a);
                return 2;
            }
            if (pass == 0) {
                npaths++;
                continue;
            }
            struct stat st;
            if (stat(a, &st) != 0) {
                fprintf(stderr, "cram shards: %s: %s\n", a, strerror(errno));
                bad = 1;
                continue;
            }
            cram_err err = {0};
            if (S_ISDIR(st.st_mode)) {
                const char *splits[] = {"train", "heldout"};
                for (int k = 0; k < 2; k++) {
                    cram_dataset d;
                    cram_status r = cram_dataset_open(&d, a, splits[k], &ex, verify, &err);
                    if (r != CRAM_OK) {
                        fprintf(stderr, "cram shards: %s\n", err.msg);
                        bad = 1;
                        continue;
                    }
                    for (size_t j = 0; j < d.nshards; j++) print_shard(&d.shards[j], dump);
                    printf("%s: %s: %zu shard%s, %" PRIu64 " sequences, %" PRIu64 " tokens\n", a, splits[k],
                           d.nshards, d.nshards == 1 ? "" : "s", d.seq_count, d.seq_count * d.seq_len);
                    cram_dataset_close(&d);
                }
            } else {
                cram_shard s;
                if (cram_shard_open(&s, a, &ex, verify, &err) != CRAM_OK) {
                    fprintf(stderr, "cram shards: %s\n", err.msg);
                    bad = 1;
                    continue;
                }
                print_shard(&s, dump);
                cram_shard_close(&s);
            }
        }
        if (pass == 0 && npaths == 0) {
            fprintf(stderr, "cram shards: no shard file or directory given (see cram shards --help)\n");
            return 2;
        }
    }
    return bad ? 1 : 0;
}
