/* test_glue.c - GLUE readers on the fixtures of tests/finetune/glue (every
 * task, every quirk of the real files), malformed input (file:line, stop),
 * WordPiece encoding, [CLS] a [SEP] b [SEP] with longest-first truncation,
 * padding and the additive mask. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "glue.h"

static char tmpdir[] = "/tmp/cram_test_glue_XXXXXX";

static const char *write_tmp(const char *name, const char *text) {
  static char path[512];
  snprintf(path, sizeof path, "%s/%s", tmpdir, name);
  FILE *f = fopen(path, "wb");
  fputs(text, f);
  fclose(f);
  return path;
}

static int field_is(const cram_glue_split *s, size_t i, int b, const char *want) {
  const cram_glue_example *x = &s->ex[i];
  uint32_t off = b ? x->b : x->a, len = b ? x->blen : x->alen;
  return len == strlen(want) && memcmp(s->text + off, want, len) == 0;
}

static cram_status read_fixture(const char *task, const char *file, cram_glue_split *s, cram_err *err) {
  char path[256];
  snprintf(path, sizeof path, "tests/finetune/glue/%s/%s", task, file);
  return cram_glue_read(cram_glue_task_find(task), path, s, err);
}

static void readers(void) {
  cram_err err = { 0 };
  cram_glue_split s;
  /* Every task's train and dev files read. */
  for (int t = 0; t < CRAM_GLUE_NTASKS; t++) {
    const cram_glue_task *task = &cram_glue_tasks[t];
    CHECK(read_fixture(task->name, "train.tsv", &s, &err) == CRAM_OK && s.n >= 2);
    cram_glue_split_free(&s);
    for (int d = 0; d < 2 && task->dev[d]; d++) {
      CHECK(read_fixture(task->name, task->dev[d], &s, &err) == CRAM_OK && s.n == (size_t)(2 + (t == 0 || t == 4)));
      cram_glue_split_free(&s);
    }
  }
  CHECK(cram_glue_task_find("sst2") == cram_glue_task_find("SST-2") && cram_glue_task_find("sts-b"));
  CHECK(cram_glue_task_find("wnli") == NULL);

  /* CoLA: no header, label in column 1, sentence last; a tab inside the sentence stays in it. */
  CHECK(read_fixture("CoLA", "train.tsv", &s, &err) == CRAM_OK);
  CHECK(s.n == 6 && s.ex[0].label == 1 && s.ex[1].label == 0 && s.ex[0].line == 1);
  CHECK(field_is(&s, 0, 0, "The sailors rode the breeze clear of the rocks."));
  CHECK(field_is(&s, 2, 0, "Bill's dog barked at \"Max\" loudly.")); /* quotes are literal */
  CHECK(field_is(&s, 4, 0, "She said\tthat it rained."));
  CHECK(s.counts[0] == 3 && s.counts[1] == 3);
  cram_glue_split_free(&s);
  /* SST-2: header, trailing space kept, literal quotes. */
  CHECK(read_fixture("SST-2", "train.tsv", &s, &err) == CRAM_OK);
  CHECK(s.n == 4 && field_is(&s, 2, 0, "\"a gorgeous , witty , seductive movie . \" ") && s.ex[2].label == 1);
  CHECK(s.ex[0].line == 2 && s.ex[0].b == 0 && s.ex[0].blen == 0);
  cram_glue_split_free(&s);
  /* MRPC: BOM before the header, label first, strings in columns 3 and 4. */
  CHECK(read_fixture("MRPC", "train.tsv", &s, &err) == CRAM_OK);
  CHECK(s.n == 3 && s.ex[0].label == 1 && field_is(&s, 1, 0, "Shares rose 5 percent in early trading .") &&
        field_is(&s, 1, 1, "The index fell 2 percent by noon ."));
  cram_glue_split_free(&s);
  /* STS-B: score last, a float. */
  CHECK(read_fixture("STS-B", "train.tsv", &s, &err) == CRAM_OK);
  CHECK(s.n == 3 && s.ex[1].label == 3.8f && s.ex[2].label == 0.0f && field_is(&s, 0, 1, "An air plane is taking off."));
  cram_glue_split_free(&s);
  /* MNLI: 12-column train and 16-column dev both give gold_label (last column); classes in the reference's order. */
  CHECK(read_fixture("MNLI", "train.tsv", &s, &err) == CRAM_OK);
  CHECK(s.n == 3 && s.ex[0].label == 2 && s.ex[1].label == 1 && s.ex[2].label == 0);
  CHECK(field_is(&s, 0, 1, "Product and geography are what make cream skimming work. "));
  cram_glue_split_free(&s);
  CHECK(read_fixture("MNLI", "dev_matched.tsv", &s, &err) == CRAM_OK && s.ex[0].label == 2 && s.ex[1].label == 0);
  cram_glue_split_free(&s);
  CHECK(read_fixture("MNLI", "dev_mismatched.tsv", &s, &err) == CRAM_OK && field_is(&s, 1, 0, "The answer is \"yes\"."));
  cram_glue_split_free(&s);
  /* QNLI / RTE: word labels. */
  CHECK(read_fixture("QNLI", "train.tsv", &s, &err) == CRAM_OK && s.ex[0].label == 1 && s.ex[1].label == 0);
  cram_glue_split_free(&s);
  CHECK(read_fixture("QQP", "dev.tsv", &s, &err) == CRAM_OK && s.n == 3 && s.ex[2].label == 1);
  cram_glue_split_free(&s);

  /* CRLF line ends and a missing final newline. */
  const cram_glue_task *rte = cram_glue_task_find("RTE");
  CHECK(cram_glue_read(
          rte, write_tmp("crlf.tsv", "index\tsentence1\tsentence2\tlabel\r\n0\ta\tb\tentailment\r\n1\tc\td\tnot_entailment"), &s,
          &err) == CRAM_OK &&
        s.n == 2 && s.ex[1].label == 1 && field_is(&s, 0, 1, "b"));
  cram_glue_split_free(&s);
}

/* Malformed input: one error naming file:line, no result. */
static int fails_with(const char *task, const char *text, const char *want) {
  cram_err err = { 0 };
  cram_glue_split s;
  const char *p = write_tmp("bad.tsv", text);
  cram_status st = cram_glue_read(cram_glue_task_find(task), p, &s, &err);
  int ok = st != CRAM_OK && strstr(err.msg, want) != NULL && strstr(err.msg, "bad.tsv") != NULL && s.ex == NULL;
  if (!ok) fprintf(stderr, "  got: %s\n", err.msg);
  return ok;
}

static void malformed(void) {
  CHECK(fails_with("RTE", "index\tsentence1\tsentence2\tlabel\n0\ta\tb\tentailment\n1\tc\tnot_entailment\n",
                   "bad.tsv:3: 3 fields, RTE rows have 4"));
  CHECK(fails_with("RTE", "index\tsentence1\tsentence2\tlabel\n0\ta\tb\tentailment\textra\n", "bad.tsv:2: more than 4 fields"));
  CHECK(fails_with("RTE", "index\tsentence1\tsentence2\tlabel\n0\ta\tb\tmaybe\n",
                   "bad.tsv:2: label 'maybe' is not one of entailment, not_entailment"));
  CHECK(fails_with("SST-2", "sentence\tlabel\ngood\t1\nbad\t2\n", "bad.tsv:3: label '2' is not one of 0, 1"));
  CHECK(fails_with("STS-B",
                   "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore\n"
                   "0\tg\tf\ty\to\ts\ts\ta\tb\tfive\n",
                   "bad.tsv:2: label 'five' is not a number"));
  CHECK(fails_with("MNLI", "index\tsentence1\tlabel\n0\ta\tneutral\n", "bad.tsv:1: header lacks"));
  CHECK(fails_with("CoLA", "gj04\t1\t\tA sentence.\ngj04\t1\tno sentence\n", "bad.tsv:2: 3 fields"));
  CHECK(fails_with("SST-2", "sentence\tlabel\n", "no examples"));
  CHECK(fails_with("SST-2", "sentence\tlabel\ngood\t1\n\nbad\t0\n", "bad.tsv:3: 1 fields")); /* a blank line is not skipped */
  cram_err err = { 0 };
  cram_glue_split s;
  CHECK(cram_glue_read(cram_glue_task_find("RTE"), "/nonexistent/dev.tsv", &s, &err) == CRAM_E_IO &&
        strstr(err.msg, "/nonexistent/dev.tsv") != NULL);
}

static void encoding(void) {
  /* Vocabulary: specials, then words. */
  const char *vp = write_tmp("vocab.txt", "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\na\nb\nc\nd\ne\n.\nthe\ncat\n##s\n");
  cram_err err = { 0 };
  cram_wordpiece *wp;
  CHECK(cram_wordpiece_load(vp, &wp, &err) == CRAM_OK);
  if (!wp) return;
  CHECK(cram_wordpiece_size(wp) == 14 && cram_wordpiece_specials(wp).cls == 2 && cram_wordpiece_specials(wp).sep == 3);
  cram_idvec v = { 0 };
  CHECK(cram_wordpiece_encode(wp, "The CATS. xyz", 13, &v, &err) == CRAM_OK);
  CHECK(v.n == 5 && v.ids[0] == 11 && v.ids[1] == 12 && v.ids[2] == 13 && v.ids[3] == 10 && v.ids[4] == 1);
  cram_idvec_free(&v);

  /* Pairs: a = 5 tokens, b = 2; seq 8 leaves 5 -> a loses 2 (longest first). */
  const char *p = write_tmp("pairs.tsv", "index\tsentence1\tsentence2\tlabel\n"
                                         "0\ta b c d e\tthe cat\tentailment\n"
                                         "1\ta b\tc d\tnot_entailment\n"
                                         "2\ta b c\td e a\tentailment\n");
  cram_glue_split s;
  cram_glue_encoded e;
  CHECK(cram_glue_read(cram_glue_task_find("RTE"), p, &s, &err) == CRAM_OK);
  CHECK(cram_glue_encode(wp, &s, 8, &e, &err) == CRAM_OK);
  const int32_t want0[] = { 2, 5, 6, 7, 3, 11, 12, 3 };
  const int32_t want1[] = { 2, 5, 6, 3, 7, 8, 3, 0 };
  CHECK(memcmp(e.tokens, want0, sizeof want0) == 0 && e.len[0] == 8);
  CHECK(memcmp(e.tokens + 8, want1, sizeof want1) == 0 && e.len[1] == 7);
  /* a = 3, b = 3, budget 5: on the tie b loses its last token. */
  const int32_t want2b[] = { 2, 5, 6, 7, 3, 8, 9, 3 };
  CHECK(memcmp(e.tokens + 16, want2b, sizeof want2b) == 0);
  CHECK(e.truncated == 2 && e.label[1] == 1 && e.n == 3);
  float mask[8];
  cram_glue_mask(&e, 1, mask);
  CHECK(mask[0] == 0 && mask[6] == 0 && mask[7] == -10000.0f);
  cram_glue_encoded_free(&e);
  cram_glue_split_free(&s);
  /* Single sentences: [CLS] a [SEP], budget seq - 2. */
  p = write_tmp("single.tsv", "sentence\tlabel\na b c d e a b\t1\nthe\t0\n");
  CHECK(cram_glue_read(cram_glue_task_find("SST-2"), p, &s, &err) == CRAM_OK);
  CHECK(cram_glue_encode(wp, &s, 6, &e, &err) == CRAM_OK);
  const int32_t single[] = { 2, 5, 6, 7, 8, 3, 2, 11, 3, 0, 0, 0 };
  CHECK(memcmp(e.tokens, single, sizeof single) == 0 && e.len[0] == 6 && e.len[1] == 3 && e.truncated == 1);
  cram_glue_encoded_free(&e);
  cram_glue_split_free(&s);
  cram_wordpiece_free(wp);

  CHECK(cram_wordpiece_load(write_tmp("nosep.txt", "[PAD]\n[UNK]\n[CLS]\na\n"), &wp, &err) != CRAM_OK &&
        strstr(err.msg, "lacks") != NULL);
  CHECK(cram_wordpiece_load(write_tmp("dup.txt", "[UNK]\n[CLS]\n[SEP]\na\na\n"), &wp, &err) != CRAM_OK &&
        strstr(err.msg, "dup.txt:5: duplicate token 'a'") != NULL);
}

int main(void) {
  if (!mkdtemp(tmpdir)) return perror("mkdtemp"), 1;
  readers();
  malformed();
  encoding();
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
  return check_summary("test_glue");
}
