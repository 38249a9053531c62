/* cmd_export.c - `cram export STEP.so CHECKPOINT --out FILE`: the parameters
 * of a training checkpoint as a plain safetensors file, named as the
 * reference implementation names them (or as cramc does), so the model can
 * be loaded elsewhere. See export.h. */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "../export.h"
#include "../loader.h"
#include "cli.h"

static void export_usage(FILE *f) {
    fprintf(f,
"usage: cram export STEP.so CHECKPOINT --out FILE [--names cramming|cramc]\n"
"\n"
"Writes the parameters of CHECKPOINT (a run's checkpoint.safetensors, or the\n"
"run directory holding it) for the model of STEP.so as a plain safetensors\n"
"file (f32, written atomically).\n"
"\n"
"options:\n"
"  --out FILE        output file [required]\n"
"  --names SCHEME    cramming (default): the reference's state-dict names\n"
"                    (encoder.layers.N.attn.self_attention.query_key_value.weight,\n"
"                    tied decoder.weight, norm_factor buffers); cramc: our names\n"
"  -h, --help        this help\n");
}

int cram_cmd_export(int argc, char **argv) {
    const char *step = NULL, *ckpt = NULL, *out = NULL, *scheme = "cramming";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        int m;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            export_usage(stdout);
            return 0;
        }
        if ((m = cli_match_opt(argc, argv, &i, "--out", &v)) || (m = cli_match_opt(argc, argv, &i, "--names", &v))) {
            if (m < 0) {
                fprintf(stderr, "cram export: missing value for %s\n", a);
                return 2;
            }
            if (strncmp(a, "--out", 5) == 0) out = v;
            else scheme = v;
            continue;
        }
        if (a[0] == '-') {
            fprintf(stderr, "cram export: unknown option '%s' (see cram export --help)\n", a);
            return 2;
        }
        if (!step) step = a;
        else if (!ckpt) ckpt = a;
        else {
            fprintf(stderr, "cram export: unexpected argument '%s'\n", a);
            return 2;
        }
    }
    cram_export_names names;
    if (strcmp(scheme, "cramming") == 0) names = CRAM_NAMES_CRAMMING;
    else if (strcmp(scheme, "cramc") == 0) names = CRAM_NAMES_CRAMC;
    else {
        fprintf(stderr, "cram export: --names must be cramming or cramc, got '%s'\n", scheme);
        return 2;
    }
    if (!step || !ckpt || !out) {
        fprintf(stderr, "cram export: need STEP.so, CHECKPOINT and --out FILE (see cram export --help)\n");
        return 2;
    }
    char path[4096];
    struct stat sb;
    if (stat(ckpt, &sb) == 0 && S_ISDIR(sb.st_mode)) snprintf(path, sizeof path, "%s/checkpoint.safetensors", ckpt);
    else snprintf(path, sizeof path, "%s", ckpt);

    cram_step_lib lib;
    cram_err err = {0};
    if (cram_step_load(&lib, step, &err) != CRAM_OK) {
        fprintf(stderr, "cram export: %s\n", err.msg);
        return 1;
    }
    cram_status r = cram_export(lib.api->meta, path, out, names, &err);
    if (r != CRAM_OK) fprintf(stderr, "cram export: %s\n", err.msg);
    else printf("cram export: wrote %s (%u parameter tensors, %s names)\n", out, lib.api->meta->nparams, scheme);
    cram_step_unload(&lib);
    return r == CRAM_OK ? 0 : 1;
}
