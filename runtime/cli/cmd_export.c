/* cmd_export.c - `cram export STEP.so CHECKPOINT --out FILE`: the parameters
 * of a training checkpoint as a plain safetensors file, named as the
 * reference implementation names them (or as cramc does), with the model's
 * .cram source, a JSON config (dims, parameters) and the tokenizer beside
 * it, so the export is self-describing. See export.h. */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "../export.h"
#include "../loader.h"
#include "cli.h"

static const char *const schemes[] = { "cramming", "cramc", NULL };

int cram_cmd_export(int argc, char **argv) {
  const char *out = NULL, *data = NULL;
  int scheme = 0;
  const cli_opt opts[] = {
    { "--out", "FILE", CLI_STR, &out, .section = "options",
      .help = "output file [required]; FILE.cram, FILE.json, FILE.vocab.txt (and\nFILE.tokenizer.json) go beside it (FILE "
              "without .safetensors)" },
    { "--names", "SCHEME", CLI_CHOICE, &scheme, .choices = schemes,
      .help = "cramming (default): the reference's state-dict "
              "names\n(encoder.layers.N.attn.self_attention.query_key_value.weight,\ntied decoder.weight, norm_factor buffers); "
              "cramc: our names" },
    { "--data", "DIR", CLI_STR, &data,
      .help = "the run's token shards, for the tokenizer (default: the directory\nthe checkpoint records)" },
  };
  const cli_command cmd = { "export",
                            "usage: cram export STEP.so CHECKPOINT --out FILE [options]\n"
                            "\n"
                            "Writes the parameters of CHECKPOINT (a run's checkpoint.safetensors, or the\n"
                            "run directory holding it) for the model of STEP.so as a plain safetensors\n"
                            "file (f32, written atomically), and beside it the model's .cram source, a\n"
                            "JSON config (dims, parameter names and shapes) and the tokenizer.\n"
                            "\n",
                            opts, sizeof opts / sizeof opts[0], NULL };
  const char *pos[2];
  size_t np = 2;
  int pr = cli_parse(&cmd, argc, argv, pos, &np);
  if (pr) return pr < 0 ? 0 : pr;
  if (np < 2 || !out) {
    fprintf(stderr, "cram export: need STEP.so, CHECKPOINT and --out FILE (see cram export --help)\n");
    return 2;
  }
  const char *step = pos[0], *ckpt = pos[1];
  char path[4096];
  struct stat sb;
  if (stat(ckpt, &sb) == 0 && S_ISDIR(sb.st_mode)) snprintf(path, sizeof path, "%s/checkpoint.safetensors", ckpt);
  else snprintf(path, sizeof path, "%s", ckpt);

  cram_step_lib lib;
  cram_err err = { 0 };
  if (cram_step_load(&lib, step, &err) != CRAM_OK) {
    fprintf(stderr, "cram export: %s\n", err.msg);
    return 1;
  }
  char written[8192] = "";
  cram_export_names names = scheme == 1 ? CRAM_NAMES_CRAMC : CRAM_NAMES_CRAMMING;
  cram_status r = cram_export(lib.api->meta, path, out, names, &err);
  if (r == CRAM_OK) r = cram_export_bundle(lib.api->meta, path, out, data, names, written, sizeof written, &err);
  if (r != CRAM_OK) fprintf(stderr, "cram export: %s\n", err.msg);
  else {
    printf("cram export: wrote %s (%u parameter tensors, %s names)\n", out, lib.api->meta->nparams, schemes[scheme]);
    for (const char *w = written; *w;) {
      const char *nl = strchr(w, '\n');
      int n = (int)(nl ? nl - w : (long)strlen(w));
      if (strncmp(w, "note: ", 6) == 0) printf("cram export: %.*s\n", n, w);
      else printf("cram export: wrote %.*s\n", n, w);
      w = nl ? nl + 1 : w + strlen(w);
    }
    if (!lib.api->meta->source) printf("cram export: (this step.so carries no .cram source; none written)\n");
  }
  fflush(stdout);
  cram_step_unload(&lib);
  return r == CRAM_OK ? 0 : 1;
}
