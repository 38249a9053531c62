/* cmd_tokenize.c - `cram tokenize --vocab FILE [TEXT...]`: the token ids that
 * finetuning feeds the model for each text (runtime/wordpiece.c), one line of
 * space-separated ids per text; without TEXT, one per line of stdin. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../wordpiece.h"
#include "cli.h"

static void tokenize_usage(FILE *f) {
    fprintf(f,
"usage: cram tokenize --vocab FILE [TEXT...]\n"
"\n"
"Token ids of each TEXT (or of each line of stdin) as `cram finetune` and\n"
"`cram glue` encode task text: the vocab.txt that `cram data` wrote, the\n"
"reference normaliser, WordPiece; no [CLS]/[SEP] added. One line per text.\n"
"\n"
"options:\n"
"  --vocab FILE        vocab.txt of the pretraining data [required]\n"
"  -h, --help          this help\n");
}

static int print_ids(const cram_wordpiece *wp, const char *s, size_t n) {
    cram_idvec v = {0};
    cram_err err = {0};
    if (cram_wordpiece_encode(wp, s, n, &v, &err) != CRAM_OK) {
        fprintf(stderr, "cram tokenize: %s\n", err.msg);
        return 1;
    }
    for (size_t i = 0; i < v.n; i++) printf("%s%d", i ? " " : "", v.ids[i]);
    putchar('\n');
    cram_idvec_free(&v);
    return 0;
}

int cram_cmd_tokenize(int argc, char **argv) {
    const char *vocab = NULL;
    int first_text = argc;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        int m;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            tokenize_usage(stdout);
            return 0;
        }
        if ((m = cli_match_opt(argc, argv, &i, "--vocab", &v))) {
            if (m < 0) {
                fprintf(stderr, "cram tokenize: --vocab needs a file\n");
                return 2;
            }
            vocab = v;
            continue;
        }
        if (strcmp(a, "--") == 0) {
            first_text = i + 1;
            break;
        }
        if (a[0] == '-' && a[1]) {
            fprintf(stderr, "cram tokenize: unknown option '%s' (see cram tokenize --help)\n", a);
            return 2;
        }
        first_text = i;
        break;
    }
    if (!vocab) {
        fprintf(stderr, "cram tokenize: need --vocab FILE (see cram tokenize --help)\n");
        return 2;
    }
    cram_err err = {0};
    cram_wordpiece *wp;
    if (cram_wordpiece_load(vocab, &wp, &err) != CRAM_OK) {
        fprintf(stderr, "cram tokenize: %s\n", err.msg);
        return 1;
    }
    int rc = 0;
    if (first_text < argc) {
        for (int i = first_text; i < argc && !rc; i++) rc = print_ids(wp, argv[i], strlen(argv[i]));
    } else {
        char *line = NULL;
        size_t cap = 0;
        ssize_t n;
        while (!rc && (n = getline(&line, &cap, stdin)) >= 0) {
            if (n && line[n - 1] == '\n') n--;
            rc = print_ids(wp, line, (size_t)n);
        }
        free(line);
    }
    cram_wordpiece_free(wp);
    return rc;
}
