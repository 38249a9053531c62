/* interpret.c: `cramc FILE.cram --interpret ...`, the train step run in the
 * reference interpreter, writing the tensors reference/crammed_torch.py's CLI
 * writes (loss, grad_norm, grad.<p> of step 1, param.<p> after the last step)
 * so the two can be compared tensor by tensor. See docs/train-step.md. */
#include "interpret.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frontend.h"
#include "init.h"
#include "interp.h"
#include "passes.h"
#include "safetensors.h"

static const char usage[] =
    "usage: cramc FILE.cram --interpret --batch B.safetensors [--params P.safetensors | --init-seed S]\n"
    "             [--steps N] [--lr X] [--precision bf16|f32|f64] [--accum K] [--clip C] [--weight-decay W]\n"
    "             [-D name=value]... --out OUT.safetensors\n"
    "\n"
    "Run the whole train step (forward, backward, clip, AdamW) N times on one batch\n"
    "in the reference interpreter. The batch holds every INPUT of the model (tokens,\n"
    "targets, ...) with K * batch rows for --accum K. OUT gets loss [N], grad_norm [N],\n"
    "grad.<p> (step 1, before clipping) and param.<p> (after step N), in the precision's\n"
    "dtype: the tensors reference/crammed_torch.py writes. See docs/train-step.md.\n";

typedef struct IArgs {
    const char *input, *batch, *params, *out;
    long long seed;
    bool have_seed;
    long steps, accum;
    double lr, clip, wd;
    InterpPrecision prec;
    bool bf16; /* autocast_bf16 on the forward graph, then the f32 mode (which rounds bf16 nodes) */
    FeDefine *defs;
    int ndefs;
} IArgs;

static int uerr(const char *fmt, const char *arg) {
    fprintf(stderr, "cramc: error: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, " (see cramc --interpret --help)\n");
    return 2;
}

static bool parse_num(const char *s, double *v) {
    char *end;
    errno = 0;
    *v = strtod(s, &end);
    return *s && !*end && !errno && isfinite(*v);
}

static bool parse_int(const char *s, long long *v) {
    char *end;
    errno = 0;
    *v = strtoll(s, &end, 10);
    return *s && !*end && !errno;
}

static int parse(int argc, char **argv, IArgs *a) {
    a->steps = 1;
    a->accum = 1;
    a->lr = 1e-3;
    a->clip = 0.5;
    a->wd = 0.01;
    a->prec = INTERP_F32;
    a->defs = calloc((size_t)argc, sizeof(FeDefine));
    if (!a->defs) {
        fputs("cramc: error: out of memory\n", stderr);
        return 1;
    }
    for (int i = 1; i < argc; i++) {
        char *s = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        double x;
        long long n;
#define NEED()                                                         \
    do {                                                               \
        if (!val) return uerr("%s needs a value", s);                  \
        i++;                                                           \
    } while (0)
        if (!strcmp(s, "--help") || !strcmp(s, "-h")) {
            fputs(usage, stdout);
            return 0;
        } else if (!strcmp(s, "--interpret")) {
        } else if (!strcmp(s, "--batch")) {
            NEED();
            a->batch = val;
        } else if (!strcmp(s, "--params")) {
            NEED();
            a->params = val;
        } else if (!strcmp(s, "--out")) {
            NEED();
            a->out = val;
        } else if (!strcmp(s, "--init-seed")) {
            NEED();
            if (!parse_int(val, &n) || n < 0) return uerr("--init-seed needs a non-negative integer, got '%s'", val);
            a->seed = n;
            a->have_seed = true;
        } else if (!strcmp(s, "--steps") || !strcmp(s, "--accum")) {
            NEED();
            if (!parse_int(val, &n) || n < 1 || n > 1000000) return uerr("expected an integer in [1, 1000000], got '%s'", val);
            if (s[2] == 's') a->steps = (long)n;
            else a->accum = (long)n;
        } else if (!strcmp(s, "--lr") || !strcmp(s, "--clip") || !strcmp(s, "--weight-decay")) {
            NEED();
            if (!parse_num(val, &x)) return uerr("expected a number, got '%s'", val);
            if (!strcmp(s, "--lr")) a->lr = x;
            else if (!strcmp(s, "--clip")) a->clip = x;
            else a->wd = x;
        } else if (!strcmp(s, "--precision")) {
            NEED();
            a->bf16 = !strcmp(val, "bf16");
            if (!strcmp(val, "f32") || a->bf16) a->prec = INTERP_F32;
            else if (!strcmp(val, "f64")) a->prec = INTERP_F64;
            else return uerr("--precision must be bf16, f32 or f64, got '%s'", val);
        } else if (!strncmp(s, "-D", 2)) {
            const char *def = s[2] ? s + 2 : (val ? argv[++i] : NULL);
            if (!def) return uerr("%s needs name=value", s);
            char *copy = strdup(def);
            char *eq = copy ? strchr(copy, '=') : NULL;
            if (!eq || eq == copy || !eq[1]) {
                free(copy);
                return uerr("malformed define '%s' (expected -D name=value)", def);
            }
            *eq = '\0';
            for (int k = 0; k < a->ndefs; k++)
                if (!strcmp(a->defs[k].name, copy)) {
                    free(copy);
                    return uerr("-D %s given twice: give each dim once", a->defs[k].name);
                }
            a->defs[a->ndefs].name = copy;
            a->defs[a->ndefs].value = eq + 1;
            a->ndefs++;
        } else if (s[0] == '-' && s[1]) {
            return uerr("unknown option '%s' for --interpret", s);
        } else {
            if (a->input) return uerr("more than one input file ('%s')", s);
            a->input = s;
        }
#undef NEED
    }
    if (!a->input) return uerr("%s", "no input file");
    if (!a->batch) return uerr("%s", "--interpret needs --batch B.safetensors");
    if (!a->out) return uerr("%s", "--interpret needs --out OUT.safetensors");
    if (a->params && a->have_seed) return uerr("%s", "give --params or --init-seed, not both");
    if (!a->params && !a->have_seed) a->have_seed = true; /* seed 0 */
    return -1;
}

/* ---- running graphs ---------------------------------------------------------- */

/* One graph with its buffer table. Sources are bound to caller arrays. */
typedef struct Run {
    const Graph *g;
    double **bufs;
    bool *owned;
} Run;

static bool run_init(Run *r, const Graph *g) {
    r->g = g;
    r->bufs = calloc(g->n ? g->n : 1, sizeof *r->bufs);
    r->owned = calloc(g->n ? g->n : 1, sizeof *r->owned);
    return r->bufs && r->owned;
}

static ValueId find_source(const Graph *g, OpKind op, const char *name) {
    for (ValueId v = 0; v < g->n; v++)
        if (g->nodes[v].op == op && !strcmp(ir_get_str(&g->nodes[v], ATTR_NAME), name)) return v;
    return IR_NONE;
}

static ValueId find_out(const Graph *g, const char *name) {
    for (uint32_t i = 0; i < g->nout; i++)
        if (!strcmp(g->outputs[i].name, name)) return g->outputs[i].value;
    return IR_NONE;
}

static bool bind(Run *r, OpKind op, const char *name, double *data) {
    ValueId v = find_source(r->g, op, name);
    if (v == IR_NONE) return false;
    r->bufs[v] = data;
    return true;
}

static bool execute(Run *r, const InterpOpts *o) {
    char err[512];
    /* interp_run clears owned[]; caller-bound sources are never owned. */
    if (!interp_run(r->g, o, r->bufs, r->owned, err, sizeof err)) {
        fprintf(stderr, "cramc: error: interpreter: %s\n", err);
        return false;
    }
    return true;
}

/* After a run: drop computed buffers (keep the source bindings). */
static void reset(Run *r) {
    interp_free(r->g, r->bufs, r->owned);
    for (ValueId v = 0; v < r->g->n; v++)
        if (ir_ops[r->g->nodes[v].op].cls != OC_SOURCE || r->g->nodes[v].op == OP_FILL ||
            r->g->nodes[v].op == OP_SINUSOID || r->g->nodes[v].op == OP_ARANGE)
            r->bufs[v] = NULL;
}

static const double *out_data(const Run *r, const char *name) {
    ValueId v = find_out(r->g, name);
    return v == IR_NONE ? NULL : r->bufs[v];
}

/* ---- the driver ------------------------------------------------------------- */

typedef struct Param {
    const char *name;
    ValueId node;
    int64_t numel;
    double *p, *m, *v, *acc, *grad1;
} Param;

static char *join(const char *a, const char *b) {
    size_t n = strlen(a) + strlen(b) + 1;
    char *s = malloc(n);
    if (s) snprintf(s, n, "%s%s", a, b);
    return s;
}

static void round_all(double *x, int64_t n, InterpPrecision prec) {
    if (prec == INTERP_F32)
        for (int64_t i = 0; i < n; i++) x[i] = interp_round_f32(x[i]);
}

/* Every failure path says why: an allocation failure used to exit 1 silently. */
#define OOM(what)                                                                                 \
    do {                                                                                          \
        fprintf(stderr, "cramc: error: --interpret: out of memory for %s\n", what);               \
        goto out;                                                                                 \
    } while (0)
#define INTERNAL(what)                                                                            \
    do {                                                                                          \
        fprintf(stderr, "cramc: internal error: --interpret: %s (or out of memory)\n", what);     \
        goto out;                                                                                 \
    } while (0)

static int interpret(const IArgs *a, const Graph *fwd) {
    int rc = 1;
    Diag d;
    diag_init(&d, stderr);
    cram_err err = {0};
    cram_st_file batch = {0}, pfile = {0};
    Graph *ad = NULL, *ts = NULL, *acc = NULL, *up = NULL;
    Param *ps = NULL;
    int np = 0;
    double **inputs = NULL; /* per microbatch, per forward INPUT node */
    ValueId *in_nodes = NULL;
    int nin = 0;
    Run r1 = {0}, r2 = {0};
    double *losses = calloc((size_t)a->steps, sizeof(double)), *norms = calloc((size_t)a->steps, sizeof(double));
    double step_v = 0, lr_v = a->prec == INTERP_F32 ? interp_round_f32(a->lr) : a->lr, scale_v = 1.0 / (double)a->accum;
    if (a->prec == INTERP_F32) scale_v = interp_round_f32(scale_v);
    if (!losses || !norms) OOM("the loss and norm tables");

    AdamWOptions o = pass_adamw_defaults();
    o.max_norm = a->clip;
    o.weight_decay = a->wd;
    o.accum = (int)a->accum;
    o.emit_grads = true;
    double hyper_v[IR_ADAM_HYPER];
    pass_adamw_hyper(&o, hyper_v);
    for (int i = 0; i < IR_ADAM_HYPER && a->prec == INTERP_F32; i++) hyper_v[i] = interp_round_f32(hyper_v[i]);
    if (!(ad = pass_autodiff(fwd, &d))) goto out;
    if (a->accum == 1) {
        if (!(ts = pass_train_step(ad, &o, &d))) goto out;
    } else if (!(acc = pass_accumulate(ad, &d)) || !(up = pass_update(fwd, &o, &d))) goto out;

    /* params */
    for (ValueId v = 0; v < fwd->n; v++) np += fwd->nodes[v].op == OP_PARAM;
    ps = calloc((size_t)(np ? np : 1), sizeof *ps);
    if (!ps) OOM("the parameter table");
    if (a->params && cram_st_read(a->params, &pfile, &err) != CRAM_OK) {
        fprintf(stderr, "cramc: error: %s\n", err.msg);
        goto out;
    }
    int k = 0;
    for (ValueId v = 0; v < fwd->n; v++) {
        const Node *n = &fwd->nodes[v];
        if (n->op != OP_PARAM) continue;
        Param *p = &ps[k++];
        p->name = ir_get_str(n, ATTR_NAME);
        p->node = v;
        p->numel = ir_shape_numel(&n->shape);
        size_t sz = (size_t)p->numel * sizeof(double);
        p->p = malloc(sz);
        p->m = calloc(1, sz);
        p->v = calloc(1, sz);
        p->acc = calloc(1, sz);
        p->grad1 = calloc(1, sz);
        if (!p->p || !p->m || !p->v || !p->acc || !p->grad1) OOM(p->name);
        if (a->params) {
            const cram_st_tensor *t = cram_st_find(&pfile, p->name);
            if (!t) {
                fprintf(stderr, "cramc: error: %s: no tensor '%s' (a parameter of model %s)\n", a->params, p->name,
                        fwd->name);
                goto out;
            }
            bool same = t->rank == n->shape.rank && t->dtype != CRAM_ST_I32 && t->dtype != CRAM_ST_I64;
            for (int i = 0; same && i < t->rank; i++) same = t->shape[i] == n->shape.dim[i];
            if (!same) {
                char ty[200];
                fprintf(stderr, "cramc: error: %s: tensor '%s' is %s with %d dims; the model wants %s\n", a->params,
                        p->name, cram_st_dtype_name(t->dtype), t->rank, ir_type_str(n->dtype, &n->shape, ty, sizeof ty));
                goto out;
            }
            for (int64_t i = 0; i < p->numel; i++) p->p[i] = cram_st_get(t, i);
        } else {
            char msg[256];
            if (!ir_init_param(n, (uint64_t)a->seed, p->p, msg, sizeof msg)) {
                fprintf(stderr, "cramc: error: %s\n", msg);
                goto out;
            }
        }
        round_all(p->p, p->numel, a->prec);
    }
    if (a->params)
        for (size_t i = 0; i < pfile.count; i++) {
            bool known = false;
            for (int j = 0; j < np && !known; j++) known = !strcmp(ps[j].name, pfile.tensors[i].name);
            if (!known) {
                fprintf(stderr, "cramc: error: %s: tensor '%s' is not a parameter of model %s\n", a->params,
                        pfile.tensors[i].name, fwd->name);
                goto out;
            }
        }

    /* batch: every forward INPUT, with accum * B rows split into microbatches */
    if (cram_st_read(a->batch, &batch, &err) != CRAM_OK) {
        fprintf(stderr, "cramc: error: %s\n", err.msg);
        goto out;
    }
    for (ValueId v = 0; v < fwd->n; v++) nin += fwd->nodes[v].op == OP_INPUT;
    in_nodes = calloc((size_t)(nin ? nin : 1), sizeof *in_nodes);
    inputs = calloc((size_t)(nin ? nin : 1) * (size_t)a->accum, sizeof *inputs);
    if (!in_nodes || !inputs) OOM("the input table");
    k = 0;
    for (ValueId v = 0; v < fwd->n; v++) {
        const Node *n = &fwd->nodes[v];
        if (n->op != OP_INPUT) continue;
        in_nodes[k] = v;
        const char *name = ir_get_str(n, ATTR_NAME);
        const cram_st_tensor *t = cram_st_find(&batch, name);
        char ty[200];
        ir_type_str(n->dtype, &n->shape, ty, sizeof ty);
        if (!t) {
            fprintf(stderr, "cramc: error: %s: no tensor '%s' (model input %s)\n", a->batch, name, ty);
            goto out;
        }
        bool ok = t->rank == n->shape.rank && t->rank >= 1 && t->shape[0] == n->shape.dim[0] * a->accum;
        for (int i = 1; ok && i < t->rank; i++) ok = t->shape[i] == n->shape.dim[i];
        if (ok && n->dtype == DT_I32) ok = t->dtype == CRAM_ST_I32 || t->dtype == CRAM_ST_I64;
        if (!ok) {
            fprintf(stderr,
                    "cramc: error: %s: tensor '%s' (%s, %d dims, first dim %lld) does not fit model input %s%s\n",
                    a->batch, name, cram_st_dtype_name(t->dtype), t->rank, (long long)(t->rank ? t->shape[0] : 0), ty,
                    a->accum > 1 ? " with --accum rows per microbatch" : "");
            goto out;
        }
        int64_t per = ir_shape_numel(&n->shape);
        for (long mb = 0; mb < a->accum; mb++) {
            double *x = malloc((size_t)per * sizeof(double));
            if (!x) OOM("a batch input");
            inputs[(size_t)k * (size_t)a->accum + (size_t)mb] = x;
            for (int64_t i = 0; i < per; i++) x[i] = cram_st_get(t, (int64_t)mb * per + i);
            if (n->dtype != DT_I32) round_all(x, per, a->prec);
        }
        k++;
    }

    InterpOpts io = {.prec = a->prec, .training = false, .seed = 0};
    if (!run_init(&r1, ts ? ts : acc) || (up && !run_init(&r2, up))) OOM("the graphs' buffer tables");
    for (long s = 1; s <= a->steps; s++) {
        step_v = (double)s;
        double loss_sum = 0;
        if (ts) {
            for (int j = 0; j < nin; j++) r1.bufs[in_nodes[j]] = inputs[(size_t)j * (size_t)a->accum];
            bool okb = bind(&r1, OP_INPUT, "step", &step_v) && bind(&r1, OP_INPUT, "lr", &lr_v) &&
                       bind(&r1, OP_INPUT, "hyper", hyper_v);
            for (int i = 0; okb && i < np; i++) {
                char *mn = join("adam_m.", ps[i].name), *vn = join("adam_v.", ps[i].name);
                okb = mn && vn && bind(&r1, OP_PARAM, ps[i].name, ps[i].p) && bind(&r1, OP_INPUT, mn, ps[i].m) &&
                      bind(&r1, OP_INPUT, vn, ps[i].v);
                free(mn);
                free(vn);
            }
            if (!okb) {
                fprintf(stderr, "cramc: internal error: train-step graph inputs do not match the model\n");
                goto out;
            }
            if (!execute(&r1, &io)) goto out;
            losses[s - 1] = out_data(&r1, "loss")[0];
            norms[s - 1] = out_data(&r1, "grad_norm")[0];
            for (int i = 0; i < np; i++) {
                char *pn = join("param.", ps[i].name), *mn = join("adam_m.", ps[i].name),
                     *vn = join("adam_v.", ps[i].name), *gn = join("grad.", ps[i].name);
                const double *np_ = pn ? out_data(&r1, pn) : NULL, *nm = mn ? out_data(&r1, mn) : NULL,
                             *nv = vn ? out_data(&r1, vn) : NULL, *gg = gn ? out_data(&r1, gn) : NULL;
                free(pn);
                free(mn);
                free(vn);
                free(gn);
                if (!np_ || !nm || !nv || !gg) INTERNAL("a train-step output is missing");
                size_t sz = (size_t)ps[i].numel * sizeof(double);
                if (s == 1) memcpy(ps[i].grad1, gg, sz);
                /* copy new state before freeing the run's buffers */
                memcpy(ps[i].acc, np_, sz); /* staging */
                memcpy(ps[i].m, nm, sz);
                memcpy(ps[i].v, nv, sz);
            }
            reset(&r1);
            for (int i = 0; i < np; i++) memcpy(ps[i].p, ps[i].acc, (size_t)ps[i].numel * sizeof(double));
            continue;
        }
        /* accumulate over microbatches, then update */
        for (int i = 0; i < np; i++) memset(ps[i].acc, 0, (size_t)ps[i].numel * sizeof(double));
        for (long mb = 0; mb < a->accum; mb++) {
            for (int j = 0; j < nin; j++) r1.bufs[in_nodes[j]] = inputs[(size_t)j * (size_t)a->accum + (size_t)mb];
            bool okb = bind(&r1, OP_INPUT, "accum_scale", &scale_v);
            for (int i = 0; okb && i < np; i++) {
                char *an = join("grad_acc.", ps[i].name);
                okb = an && bind(&r1, OP_PARAM, ps[i].name, ps[i].p) && bind(&r1, OP_INPUT, an, ps[i].acc);
                free(an);
            }
            if (!okb) goto out;
            if (!execute(&r1, &io)) goto out;
            loss_sum += out_data(&r1, "loss")[0];
            for (int i = 0; i < np; i++) {
                char *an = join("grad_acc.", ps[i].name);
                const double *x = an ? out_data(&r1, an) : NULL;
                free(an);
                if (!x) INTERNAL("a gradient accumulator output is missing");
                memcpy(ps[i].acc, x, (size_t)ps[i].numel * sizeof(double));
            }
            reset(&r1);
        }
        losses[s - 1] = loss_sum / (double)a->accum;
        if (s == 1)
            for (int i = 0; i < np; i++) memcpy(ps[i].grad1, ps[i].acc, (size_t)ps[i].numel * sizeof(double));
        bool okb = bind(&r2, OP_INPUT, "step", &step_v) && bind(&r2, OP_INPUT, "lr", &lr_v) &&
                   bind(&r2, OP_INPUT, "hyper", hyper_v);
        for (int i = 0; okb && i < np; i++) {
            char *an = join("grad_acc.", ps[i].name), *mn = join("adam_m.", ps[i].name),
                 *vn = join("adam_v.", ps[i].name);
            okb = an && mn && vn && bind(&r2, OP_PARAM, ps[i].name, ps[i].p) && bind(&r2, OP_INPUT, an, ps[i].acc) &&
                  bind(&r2, OP_INPUT, mn, ps[i].m) && bind(&r2, OP_INPUT, vn, ps[i].v);
            free(an);
            free(mn);
            free(vn);
        }
        if (!okb || !execute(&r2, &io)) goto out;
        norms[s - 1] = out_data(&r2, "grad_norm")[0];
        for (int i = 0; i < np; i++) {
            char *pn = join("param.", ps[i].name), *mn = join("adam_m.", ps[i].name), *vn = join("adam_v.", ps[i].name);
            const double *a1 = pn ? out_data(&r2, pn) : NULL, *a2 = mn ? out_data(&r2, mn) : NULL,
                         *a3 = vn ? out_data(&r2, vn) : NULL;
            free(pn);
            free(mn);
            free(vn);
            if (!a1 || !a2 || !a3) INTERNAL("an update output is missing");
            size_t sz = (size_t)ps[i].numel * sizeof(double);
            memcpy(ps[i].acc, a1, sz); /* staging: the update's inputs stay bound until reset */
            memcpy(ps[i].m, a2, sz);
            memcpy(ps[i].v, a3, sz);
        }
        reset(&r2);
        for (int i = 0; i < np; i++) memcpy(ps[i].p, ps[i].acc, (size_t)ps[i].numel * sizeof(double));
    }
    for (long s = 0; s < a->steps; s++)
        fprintf(stderr, "step %ld: loss %.6f grad_norm %.6f\n", s + 1, losses[s], norms[s]);

    /* write OUT: loss, grad_norm, grad.<p>, param.<p> */
    {
        cram_st_dtype dt = a->prec == INTERP_F64 ? CRAM_ST_F64 : CRAM_ST_F32;
        size_t es = cram_st_dtype_size(dt), nt = 2 + 2 * (size_t)np;
        cram_st_tensor *t = calloc(nt, sizeof *t);
        unsigned char **blobs = calloc(nt, sizeof *blobs);
        char **names = calloc(nt, sizeof *names);
        bool ok = t && blobs && names;
        for (size_t i = 0; ok && i < nt; i++) {
            const double *src;
            int64_t count;
            const Node *pn = NULL;
            if (i < 2) {
                names[i] = strdup(i == 0 ? "loss" : "grad_norm");
                src = i == 0 ? losses : norms;
                count = a->steps;
                t[i].rank = 1;
                t[i].shape[0] = a->steps;
            } else {
                const Param *p = &ps[(i - 2) % (size_t)np];
                bool is_grad = i - 2 < (size_t)np;
                names[i] = join(is_grad ? "grad." : "param.", p->name);
                src = is_grad ? p->grad1 : p->p;
                count = p->numel;
                pn = &fwd->nodes[p->node];
                t[i].rank = pn->shape.rank;
                for (int j = 0; j < pn->shape.rank; j++) t[i].shape[j] = pn->shape.dim[j];
            }
            blobs[i] = malloc((size_t)(count ? count : 1) * es);
            if (!names[i] || !blobs[i]) {
                ok = false;
                break;
            }
            for (int64_t j = 0; j < count; j++) cram_st_put(dt, blobs[i], j, src[j]);
            t[i].name = names[i];
            t[i].dtype = dt;
            t[i].data = blobs[i];
        }
        char steps_s[32];
        snprintf(steps_s, sizeof steps_s, "%ld", a->steps);
        cram_st_meta meta[3] = {{"model", (char *)fwd->name},
                                {"steps", steps_s},
                                {"producer", a->prec == INTERP_F64 ? "cramc --interpret f64" : "cramc --interpret f32"}};
        if (!ok) fprintf(stderr, "cramc: error: out of memory writing '%s'\n", a->out);
        else if (cram_st_write(a->out, t, nt, meta, 3, &err) != CRAM_OK) fprintf(stderr, "cramc: error: %s\n", err.msg);
        else rc = 0;
        for (size_t i = 0; i < nt && names && blobs; i++) {
            free(names[i]);
            free(blobs[i]);
        }
        free(names);
        free(blobs);
        free(t);
    }
out:
    if (r1.bufs) reset(&r1);
    if (r2.bufs) reset(&r2);
    free(r1.bufs);
    free(r1.owned);
    free(r2.bufs);
    free(r2.owned);
    if (inputs)
        for (size_t i = 0; i < (size_t)nin * (size_t)a->accum; i++) free(inputs[i]);
    free(inputs);
    free(in_nodes);
    for (int i = 0; ps && i < np; i++) {
        free(ps[i].p);
        free(ps[i].m);
        free(ps[i].v);
        free(ps[i].acc);
        free(ps[i].grad1);
    }
    free(ps);
    free(losses);
    free(norms);
    cram_st_free(&batch);
    cram_st_free(&pfile);
    ir_graph_free(ad);
    ir_graph_free(ts);
    ir_graph_free(acc);
    ir_graph_free(up);
    return rc;
}

int cramc_interpret_main(int argc, char **argv) {
    IArgs a = {0};
    int rc = parse(argc, argv, &a);
    if (rc < 0) {
        rc = 1;
        size_t len = 0;
        char *text = cramc_read_source(a.input, &len);
        if (text) {
            Diag d;
            diag_init(&d, stderr);
            Graph *fwd = fe_compile(a.input, text, len, a.defs, a.ndefs, &d);
            if (fwd && a.bf16) {
                Graph *m = pass_autocast_bf16(fwd, &d);
                ir_graph_free(fwd);
                fwd = m;
            }
            if (fwd) rc = interpret(&a, fwd);
            ir_graph_free(fwd);
            free(text);
        }
    }
    for (int i = 0; i < a.ndefs; i++) free((char *)a.defs[i].name);
    free(a.defs);
    return rc;
}

Graph *cramc_train_ir(const Graph *fwd, Diag *d) {
    Graph *ad = pass_autodiff(fwd, d);
    if (!ad) return NULL;
    AdamWOptions o = pass_adamw_defaults();
    Graph *ts = pass_train_step(ad, &o, d);
    ir_graph_free(ad);
    return ts;
}
