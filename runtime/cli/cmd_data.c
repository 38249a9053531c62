/* cmd_data.c - `cram data`: turn a text corpus into token shards.
 *
 * Runs the tokenizer tool (tools/cram_tokenize.py, Hugging Face `tokenizers`)
 * as a child process that normalises, trains or loads the WordPiece
 * tokenizer, writes tokenizer.json + vocab.txt into the output directory and
 * streams each document's token ids on a pipe; libcramrt's
 * cram_prepare_from_fd() filters, dedups, splits, packs, orders and writes
 * the shards. This file only parses options, finds and spawns the tool, draws
 * the progress bar and prints the summary. Details: docs/data.md. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../prepare.h"
#include "cli.h"

extern char **environ;

static volatile sig_atomic_t g_stop; /* set by SIGINT/SIGTERM; polled by the reader */

static void on_signal(int sig) {
  (void)sig;
  g_stop = 1;
}

/* ---- locating the tokenizer tool -------------------------------------------- */

static int readable(const char *p) { return p && access(p, R_OK) == 0; }

static char *find_tool(const char *flag) {
  if (flag) return strdup(flag);
  const char *env = getenv("CRAM_TOKENIZER_TOOL");
  if (env && *env) return strdup(env);
  char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n > 0) {
    exe[n] = 0;
    char *slash = strrchr(exe, '/');
    if (slash) *slash = 0;
    const char *rel[] = { "/../../tools/cram_tokenize.py", "/../tools/cram_tokenize.py",
                          "/../share/cramc/tools/cram_tokenize.py" };
    for (size_t i = 0; i < sizeof rel / sizeof rel[0]; i++) {
      char cand[PATH_MAX + 64];
      snprintf(cand, sizeof cand, "%s%s", exe, rel[i]);
      if (readable(cand)) return strdup(cand);
    }
  }
#ifdef CRAM_SOURCE_DIR
  if (readable(CRAM_SOURCE_DIR "/tools/cram_tokenize.py")) return strdup(CRAM_SOURCE_DIR "/tools/cram_tokenize.py");
#endif
  return NULL;
}

/* ---- progress bar ----------------------------------------------------------- */

typedef struct progress {
  int enabled, tty;
  double t0, stage_t0, last_draw;
  char stage[64];
  int drawn;
} progress;

static void human_mb(char *buf, size_t n, uint64_t bytes) { snprintf(buf, n, "%.1f", (double)bytes / 1e6); }

static void on_progress(void *ctx, const char *stage, uint64_t done, uint64_t total, const cram_prepare_stats *st) {
  progress *p = ctx;
  if (!p->enabled) return;
  double now = cli_now();
  if (strncmp(stage, p->stage, sizeof p->stage) != 0) {
    if (p->drawn) fputc('\n', stderr);
    p->drawn = 0;
    snprintf(p->stage, sizeof p->stage, "%s", stage);
    if (!p->tty) fprintf(stderr, "cram data: %s ...\n", stage);
    p->last_draw = 0;
    p->stage_t0 = now;
  }
  if (!p->tty || total == 0) return;
  if (now - p->last_draw < 0.1 && done < total) return;
  p->last_draw = now;
  double frac = (double)done / (double)total;
  if (frac > 1) frac = 1;
  char bar[31];
  int fill = (int)(frac * 30);
  for (int i = 0; i < 30; i++) bar[i] = i < fill ? '#' : '-';
  bar[30] = 0;
  char a[32], b[32];
  human_mb(a, sizeof a, done);
  human_mb(b, sizeof b, total);
  double el = now - p->stage_t0; /* rate of this stage's pass over the input */
  fprintf(stderr, "\r%-20.20s [%s] %5.1f%%  %s/%s MB  %.1f MB/s  %" PRIu64 " docs   ", stage, bar, 100 * frac, a, b,
          el > 0 ? (double)done / 1e6 / el : 0.0, st->docs_read);
  fflush(stderr);
  p->drawn = 1;
}

/* ---- the command -------------------------------------------------------------- */

static int mkdir_p(const char *path) {
  char buf[PATH_MAX];
  if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf) return -1;
  for (char *p = buf + 1; *p; p++) {
    if (*p != '/') continue;
    *p = 0;
    if (mkdir(buf, 0755) != 0 && errno != EEXIST) return -1;
    *p = '/';
  }
  if (mkdir(buf, 0755) != 0 && errno != EEXIST) return -1;
  struct stat st;
  return stat(buf, &st) == 0 && S_ISDIR(st.st_mode) ? 0 : -1;
}

/* Everything `cram data` was asked for, after parsing. */
typedef struct data_args {
  const char *out, *tokenizer, *tool_flag, *order_token, *python, *doc_split;
  const char **inputs; /* positional arguments, owned */
  int ninputs, quiet, force_progress;
  uint64_t vocab, minfreq, max_docs;
  int minfreq_set, max_docs_set;
  cram_prepare_opts prep;
} data_args;

static const char *const k_orders[] = { "curriculum", "shuffle", "input", NULL };
static const int k_order_ids[] = { CRAM_ORDER_CURRICULUM, CRAM_ORDER_SHUFFLE, CRAM_ORDER_INPUT };
static const char *const k_splits[] = { "file", "paragraph", "line", NULL };

static const char k_usage[] = "usage: cram data INPUT... --out DIR [options]\n"
                              "\n"
                              "Prepare a pretraining corpus as the Cramming recipe does: normalise (`` and ''\n"
                              "-> \", NFD, lowercase, strip accents, collapse spaces, drop non-ASCII), train a\n"
                              "WordPiece tokenizer (or load one), drop documents whose token/char ratio is too\n"
                              "high, pack documents separated by [SEP] into fixed-length sequences, order them\n"
                              "(curriculum by '.' count, or shuffled) and write uint16 token shards.\n"
                              "\n"
                              "INPUT: text files, directories (recursed), JSONL files with a \"text\" field\n"
                              "(.jsonl/.json), any of them optionally .gz or .zst compressed.\n"
                              "\n"
                              "output (in DIR): train-NNNNN.shard, heldout-NNNNN.shard, tokenizer.json,\n"
                              "vocab.txt, dataset.json (counts). Special tokens of a trained tokenizer:\n"
                              "[PAD]=0 [UNK]=1 [CLS]=2 [SEP]=3 [MASK]=4.\n"
                              "\n";

/* Parses argv into A (A->inputs allocated). Returns -1 to go on, else the
 * exit status (0 after --help, 2 for a usage error). */
static int parse_data_args(data_args *A, int argc, char **argv) {
  memset(A, 0, sizeof *A);
  cram_prepare_opts_default(&A->prep);
  A->order_token = ".";
  A->python = getenv("CRAM_PYTHON");
  if (!A->python || !*A->python) A->python = "python3";
  A->vocab = 32768;
  uint64_t seq_len = A->prep.seq_len;
  int no_filter = 0, order = 0, split = 0;
  cram_prepare_opts *o = &A->prep;
  const cli_opt opts[] = {
    { "--out", "DIR", CLI_STR, &A->out, .help = "output directory (created if missing) [required]" },
    { "--vocab-size", "N", CLI_U64, &A->vocab, 16, 65536,
      .help = "WordPiece vocabulary size to train (default 32768, max 65536)" },
    { "--tokenizer", "FILE", CLI_STR, &A->tokenizer, .help = "use an existing tokenizer.json or vocab.txt instead of training" },
    { "--min-frequency", "N", CLI_U64, &A->minfreq, 0, 1e12, .seen = &A->minfreq_set,
      .help = "minimum pair frequency when training (default 0)" },
    { "--seq-len", "N", CLI_U64, &seq_len, 2, 1 << 20, .help = "tokens per sequence (default 128)" },
    { "--filter-ratio", "T", CLI_F64, &o->filter_ratio, 0, 1e6,
      .help = "drop documents with tokens >= T * characters (default 0.3)" },
    { "--no-filter", NULL, CLI_FLAG, &no_filter, .help = "keep every non-empty document" },
    { "--dedup", NULL, CLI_FLAG, &o->dedup, .help = "drop exact duplicate documents (default off)" },
    { "--order", "MODE", CLI_CHOICE, &order, .choices = k_orders, .help = "curriculum (default) | shuffle | input" },
    { "--order-token", "TOK", CLI_STR, &A->order_token,
      .help = "curriculum key: sort by count of TOK, descending (default \".\")" },
    { "--seed", "N", CLI_U64, &o->seed, 0, 9.2e18, .help = "shuffle seed (default 0)" },
    { "--heldout", "F", CLI_F64, &o->heldout_fraction, 0, 0.999,
      .help = "fraction of documents held out, evenly spaced (default 0.01)" },
    { "--shard-size", "N", CLI_U64, &o->shard_seqs, 1, 1e12, .help = "sequences per shard file (default 262144)" },
    { "--doc-split", "MODE", CLI_CHOICE, &split, .choices = k_splits,
      .help = "plain text: file (default: one file = one document) |\nparagraph (blank-line separated) | line" },
    { "--max-docs", "N", CLI_U64, &A->max_docs, 1, 1e15, .seen = &A->max_docs_set,
      .help = "stop after N documents (quick runs)" },
    { "--tokenizer-tool", "PATH", CLI_STR, &A->tool_flag,
      .help = "the tokenizer tool (default: $CRAM_TOKENIZER_TOOL, else\ntools/cram_tokenize.py of this source tree)" },
    { "--python", "EXE", CLI_STR, &A->python, .help = "Python interpreter (default: $CRAM_PYTHON, else python3)" },
    { "--progress", NULL, CLI_FLAG, &A->force_progress, .help = "force the progress bar" },
    { "--quiet", NULL, CLI_FLAG, &A->quiet, .help = "print only errors" },
    { "-q", NULL, CLI_FLAG, &A->quiet, .help = "the same as --quiet" },
  };
  const cli_command cmd = { "data", k_usage, opts, sizeof opts / sizeof opts[0], NULL };
  A->inputs = calloc((size_t)argc + 1, sizeof *A->inputs);
  if (!A->inputs) {
    fprintf(stderr, "cram data: out of memory\n");
    return 1;
  }
  size_t nin = (size_t)argc;
  int parsed = cli_parse(&cmd, argc, argv, A->inputs, &nin);
  if (parsed) return parsed < 0 ? 0 : parsed;
  A->ninputs = (int)nin;
  if (no_filter) o->filter_ratio = 0;
  o->order = k_order_ids[order];
  o->seq_len = (uint32_t)seq_len;
  A->doc_split = k_splits[split];
  return -1;
}

/* The checks that need no child process: one message each, exit status 2. */
static int check_data_args(const data_args *A) {
  if (!A->out) return fprintf(stderr, "cram data: --out DIR is required (see cram data --help)\n"), 2;
  if (A->ninputs == 0) return fprintf(stderr, "cram data: no input files or directories given (see cram data --help)\n"), 2;
  for (int i = 0; i < A->ninputs; i++) {
    struct stat st;
    if (stat(A->inputs[i], &st) != 0) return fprintf(stderr, "cram data: %s: %s\n", A->inputs[i], strerror(errno)), 2;
    /* a device or fifo would reach the tokenizer tool, which reported it as missing */
    if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode))
      return fprintf(stderr, "cram data: %s: not a regular file or a directory (give text files or directories of them)\n",
                     A->inputs[i]),
             2;
  }
  if (A->tokenizer && access(A->tokenizer, R_OK) != 0)
    return fprintf(stderr, "cram data: %s: %s\n", A->tokenizer, strerror(errno)), 2;
  return 0;
}

/* The tokenizer tool's command line (NULL-terminated, calloc'ed; the strings
 * are A's or nums'). */
static const char **tool_argv(const data_args *A, const char *tool, char nums[3][32]) {
  const char **v = calloc((size_t)A->ninputs + 20, sizeof *v);
  if (!v) return NULL;
  int n = 0;
  const char *fixed[] = { A->python,       "-u",           tool,          "stream",    "--out-dir", A->out,
                          "--order-token", A->order_token, "--doc-split", A->doc_split };
  for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) v[n++] = fixed[i];
  snprintf(nums[0], 32, "%" PRIu64, A->vocab);
  snprintf(nums[1], 32, "%" PRIu64, A->minfreq);
  snprintf(nums[2], 32, "%" PRIu64, A->max_docs);
  if (A->tokenizer) v[n++] = "--tokenizer", v[n++] = A->tokenizer;
  else v[n++] = "--vocab-size", v[n++] = nums[0];
  if (A->minfreq_set) v[n++] = "--min-frequency", v[n++] = nums[1];
  if (A->max_docs_set) v[n++] = "--max-docs", v[n++] = nums[2];
  v[n++] = "--";
  for (int i = 0; i < A->ninputs; i++) v[n++] = A->inputs[i];
  v[n] = NULL;
  return v;
}

/* Starts the tool with its stdout on a pipe: *fd is the read end. */
static int spawn_tool(const data_args *A, const char *tool, pid_t *pid, int *fd) {
  char nums[3][32];
  const char **argv_child = tool_argv(A, tool, nums);
  if (!argv_child) return fprintf(stderr, "cram data: out of memory\n"), 1;
  int pipefd[2];
  if (pipe(pipefd) != 0) {
    fprintf(stderr, "cram data: pipe: %s\n", strerror(errno));
    free(argv_child);
    return 1;
  }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, pipefd[1], 1);
  posix_spawn_file_actions_addclose(&fa, pipefd[0]);
  posix_spawn_file_actions_addclose(&fa, pipefd[1]);
  int se = posix_spawnp(pid, A->python, &fa, NULL, (char *const *)argv_child, environ);
  posix_spawn_file_actions_destroy(&fa);
  close(pipefd[1]);
  free(argv_child);
  if (se != 0) {
    fprintf(stderr, "cram data: cannot run %s: %s (pass --python EXE or set CRAM_PYTHON)\n", A->python, strerror(se));
    close(pipefd[0]);
    return 1;
  }
  *fd = pipefd[0];
  return 0;
}

static void print_summary(const data_args *A, const cram_prepare_stats *st, double elapsed) {
  const cram_prepare_opts *o = &A->prep;
  double in_mb = (double)st->input_bytes / 1e6;
  printf("cram data: %s: done in %.1f s\n", A->out, elapsed);
  printf("  input      %.1f MB, %" PRIu64 " characters\n", in_mb, st->chars);
  printf("  documents  %" PRIu64 " read, %" PRIu64 " dropped by the ratio filter (t = %.3g), %" PRIu64
         " duplicates dropped, %" PRIu64 " train, %" PRIu64 " held out\n",
         st->docs_read, st->docs_filtered, o->filter_ratio, st->docs_duplicate, st->docs_train, st->docs_heldout);
  printf("  tokens     %" PRIu64 " read, %" PRIu64 " kept (with [SEP]), %" PRIu64 " lost in remainders\n", st->tokens_read,
         st->tokens_kept, st->tokens_remainder);
  printf("  sequences  %" PRIu64 " train (%" PRIu32 " shard%s), %" PRIu64 " held out (%" PRIu32 " shard%s), %" PRIu32
         " tokens each, order %s\n",
         st->seqs_train, st->shards_train, st->shards_train == 1 ? "" : "s", st->seqs_heldout, st->shards_heldout,
         st->shards_heldout == 1 ? "" : "s", o->seq_len,
         o->order == CRAM_ORDER_CURRICULUM ? "curriculum"
         : o->order == CRAM_ORDER_SHUFFLE  ? "shuffle"
                                           : "input");
  int64_t sp[5];
  for (int i = 0; i < 5; i++) sp[i] = st->special[i] == CRAM_NO_TOKEN ? -1 : (int64_t)st->special[i];
  printf("  tokenizer  vocab %" PRIu32 ", hash %016" PRIx64 ", [PAD]=%" PRId64 " [UNK]=%" PRId64 " [CLS]=%" PRId64
         " [SEP]=%" PRId64 " [MASK]=%" PRId64 "\n",
         st->vocab_size, st->tokenizer_hash, sp[0], sp[1], sp[2], sp[3], sp[4]);
  printf("  output     %.1f MB of shards + tokenizer.json, vocab.txt, dataset.json\n", (double)st->output_bytes / 1e6);
  printf("  speed      %.2f MB/s of input, %.0f tokens/s\n", elapsed > 0 ? in_mb / elapsed : 0.0,
         elapsed > 0 ? (double)st->tokens_read / elapsed : 0.0);
}

/* Reads the tool's stream into shards (SIGINT/SIGTERM stop it cleanly), then
 * reaps the tool; one message for whichever side failed first. */
static int run_prepare(data_args *A, const char *tool, pid_t pid, int fd) {
  struct sigaction sa, old_int, old_term;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0; /* no SA_RESTART: a blocked read returns EINTR and the flag is seen */
  sigaction(SIGINT, &sa, &old_int);
  sigaction(SIGTERM, &sa, &old_term);

  progress pr = { 0 };
  pr.tty = isatty(2);
  pr.enabled = !A->quiet && (pr.tty || A->force_progress);
  pr.t0 = cli_now();
  A->prep.out_dir = A->out;
  A->prep.progress = on_progress;
  A->prep.progress_ctx = &pr;
  A->prep.stop = &g_stop;

  cram_prepare_stats st;
  cram_err err = { 0 };
  cram_status r = cram_prepare_from_fd(fd, &A->prep, &st, &err);
  double elapsed = cli_now() - pr.t0;
  if (pr.drawn) fputc('\n', stderr);
  int stopped = r != CRAM_OK && kill(pid, SIGTERM) == 0; /* stop the tool; it may be blocked writing to us */
  close(fd);
  int wst = 0;
  while (waitpid(pid, &wst, 0) < 0 && errno == EINTR) {}
  sigaction(SIGINT, &old_int, NULL);
  sigaction(SIGTERM, &old_term, NULL);
  /* killed by our own SIGTERM: our error is the cause, not the tool's death */
  int child_ok = (WIFEXITED(wst) && WEXITSTATUS(wst) == 0) || (stopped && WIFSIGNALED(wst) && WTERMSIG(wst) == SIGTERM);
  if (r == CRAM_OK && child_ok) {
    if (!A->quiet) print_summary(A, &st, elapsed);
    return 0;
  }
  if (!child_ok && r != CRAM_OK && r != CRAM_E_INTERRUPTED) /* the tool printed its own error; ours is the consequence */
    fprintf(stderr, "cram data: tokenizer tool %s failed (%s %d)\n", tool, WIFEXITED(wst) ? "exit status" : "signal",
            WIFEXITED(wst) ? WEXITSTATUS(wst) : WTERMSIG(wst));
  else if (r == CRAM_E_DATASET) /* the corpus is what is wrong: name it */
    fprintf(stderr, "cram data: %s%s: %s\n", A->inputs[0], A->ninputs > 1 ? " (and the other inputs)" : "", err.msg);
  else if (r != CRAM_OK) fprintf(stderr, "cram data: %s\n", err.msg);
  else
    fprintf(stderr, "cram data: tokenizer tool %s exited with status %d after a complete stream\n", tool,
            WIFEXITED(wst) ? WEXITSTATUS(wst) : 128 + WTERMSIG(wst));
  return 1;
}

int cram_cmd_data(int argc, char **argv) {
  data_args A;
  int rc = parse_data_args(&A, argc, argv);
  if (rc >= 0 || (rc = check_data_args(&A)) != 0) {
    free(A.inputs);
    return rc;
  }
  char *tool = find_tool(A.tool_flag);
  if (!tool || !readable(tool)) {
    fprintf(stderr, "cram data: tokenizer tool %s not found (pass --tokenizer-tool PATH or set CRAM_TOKENIZER_TOOL)\n",
            tool ? tool : "tools/cram_tokenize.py");
    rc = 1;
  } else if (mkdir_p(A.out) != 0) {
    fprintf(stderr, "cram data: %s: cannot create output directory: %s\n", A.out, strerror(errno));
    rc = 1;
  } else {
    pid_t pid;
    int fd;
    rc = spawn_tool(&A, tool, &pid, &fd);
    if (!rc) rc = run_prepare(&A, tool, pid, fd);
  }
  free(tool);
  free(A.inputs);
  return rc;
}
