/* cmd_eval.c - `cram eval STEP.so --data DIR [--checkpoint FILE|RUN_DIR]`:
 * mean MLM loss of a compiled step on held-out shards (masked as in
 * training, seeded), with the parameters of a checkpoint or a fresh init. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../json.h"
#include "../loader.h"
#include "../train.h"
#include "cli.h"

static const char *const splits[] = { "heldout", "train", NULL };

int cram_cmd_eval(int argc, char **argv) {
  const char *data = NULL, *ckpt = NULL;
  uint64_t max_seqs = 0, seed = 0, dev = 0;
  double rate = 0.25;
  int split = 0, json = 0, rate_set = 0;
  const cli_opt opts[] = {
    { "--data", "DIR", CLI_STR, &data, .section = "options", .help = "token shard directory [required]" },
    { "--checkpoint", "PATH", CLI_STR, &ckpt,
      .help = "parameters from a checkpoint file or a run directory (default:\nfresh init with --seed)" },
    { "--split", "NAME", CLI_CHOICE, &split, .choices = splits, .help = "heldout (default) | train" },
    { "--max-seqs", "N", CLI_U64, &max_seqs, 0, 1e12,
      .help =
        "evaluate the first N sequences only (default 0 = all); only\nwhole microbatches are evaluated, the rest is reported" },
    { "--seed", "N", CLI_U64, &seed, 0, 9.2e18, .help = "masking (and init) seed (default 0)" },
    { "--mask-rate", "P", CLI_F64, &rate, 0, 1, 1, .seen = &rate_set,
      .help = "prediction rate for models without a `masked` dim (default 0.25)" },
    { "--device", "N", CLI_U64, &dev, 0, 1024, .help = "CUDA device ordinal (default 0)" },
    { "--json", NULL, CLI_FLAG, &json, .help = "one JSON object on stdout instead of the sentence" },
  };
  const cli_command cmd = { "eval",
                            "usage: cram eval STEP.so --data DIR [options]\n"
                            "\n"
                            "Mean masked-LM loss of the model over the held-out shards of DIR (masking as\n"
                            "in training: the model's `masked` count per sequence, 80/10/10, seeded), and\n"
                            "the masked-token accuracy (argmax of the logits == target, over every\n"
                            "predicted position) when the model's loss is a cross_entropy.\n"
                            "\n",
                            opts, sizeof opts / sizeof opts[0], NULL };
  const char *pos[1];
  size_t np = 1;
  int pr = cli_parse(&cmd, argc, argv, pos, &np);
  if (pr) return pr < 0 ? 0 : pr;
  if (!np || !data) {
    fprintf(stderr, "cram eval: need STEP.so and --data DIR (see cram eval --help)\n");
    return 2;
  }
  cram_err err = { 0 };
  cram_step_lib lib;
  if (cram_step_load(&lib, pos[0], &err) != CRAM_OK) {
    fprintf(stderr, "cram eval: %s\n", err.msg);
    return 1;
  }
  /* --max-seqs below one microbatch: say so here, before the run would
     * blame the held-out set for being too small */
  const cram_step_meta *m = lib.api->meta;
  int ti = cram_step_input(m, "tokens");
  int64_t mbs = ti >= 0 && m->inputs[ti].rank == 2 ? m->inputs[ti].shape[0] : 0;
  if (max_seqs && mbs > 0 && max_seqs < (uint64_t)mbs) {
    fprintf(stderr,
            "cram eval: --max-seqs %" PRIu64 " is less than one microbatch of model '%s' (%" PRId64
            " sequences): give at least %" PRId64 "\n",
            max_seqs, m->model, mbs, mbs);
    cram_step_unload(&lib);
    return 2;
  }
  cram_eval_result res;
  cram_status r = cram_eval_run(lib.api, data, splits[split], ckpt, seed, rate, rate_set, max_seqs, (int)dev, &res, &err);
  /* the result first: nothing after the run may lose it */
  int code = 0;
  if (r != CRAM_OK) {
    fprintf(stderr, "cram eval: %s\n", err.msg);
    code = 1;
  } else if (json) {
    printf("{\"data\":");
    cram_json_put_str(stdout, data);
    printf(",\"split\":\"%s\",\"checkpoint\":", splits[split]);
    if (ckpt) cram_json_put_str(stdout, ckpt);
    else printf("null");
    printf(",\"loss\":%.9g,\"perplexity\":%.9g,\"accuracy\":", res.loss, exp(res.loss));
    if (isnan(res.accuracy)) printf("null"); /* the model's loss is not a cross-entropy */
    else printf("%.9g", res.accuracy);
    printf(",\"sequences\":%" PRIu64 ",\"left_out\":%" PRIu64 "}\n", res.nseqs, res.left_out);
  } else {
    char acc[64] = "";
    if (!isnan(res.accuracy)) snprintf(acc, sizeof acc, ", masked-token accuracy %.4f", res.accuracy);
    printf("%s: %s loss %.6f over %" PRIu64 " sequences (perplexity %.3f%s)\n", data, splits[split], res.loss, res.nseqs,
           exp(res.loss), acc);
    if (res.left_out)
      printf("(%" PRIu64 " more sequences do not fill a microbatch of %" PRIu64 " and were not evaluated)\n", res.left_out,
             res.mbs);
  }
  if (r == CRAM_OK && fflush(stdout) != 0) {
    fprintf(stderr, "cram eval: cannot write the result to stdout\n");
    code = 1;
  }
  cram_step_unload(&lib);
  return code;
}
