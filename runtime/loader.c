/* loader.c - dlopen a step.so and validate its cram_step_api table. */
#include "loader.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

const char *cram_step_rc_str(cram_step_rc rc) {
    switch (rc) {
    case CRAM_STEP_OK: return "ok";
    case CRAM_STEP_E_ARG: return "bad argument";
    case CRAM_STEP_E_DATA: return "bad batch data";
    case CRAM_STEP_E_DEVICE: return "device error";
    case CRAM_STEP_E_NOMEM: return "out of memory";
    case CRAM_STEP_E_STATE: return "called in the wrong order";
    }
    return "unknown error";
}

int64_t cram_step_dim(const cram_step_meta *m, const char *name, int64_t dflt) {
    for (uint32_t i = 0; m && m->dims && i < m->ndims; i++)
        if (m->dims[i].name && strcmp(m->dims[i].name, name) == 0) return m->dims[i].value;
    return dflt;
}

int cram_step_input(const cram_step_meta *m, const char *name) {
    for (uint32_t i = 0; m && m->inputs && i < m->ninputs; i++)
        if (m->inputs[i].name && strcmp(m->inputs[i].name, name) == 0) return (int)i;
    return -1;
}

static int tensor_ok(const cram_tensor_info *t) {
    if (!t->name || t->rank > CRAM_STEP_MAX_RANK) return 0;
    int64_t n = 1;
    for (uint32_t d = 0; d < t->rank; d++) {
        if (t->shape[d] < 0) return 0;
        n *= t->shape[d];
    }
    return n == t->numel;
}

cram_status cram_step_check(const cram_step_api *api, const char *label, cram_err *err) {
    if (!api) return cram_err_set(err, CRAM_E_MAGIC, "%s: %s() returned no table", label, CRAM_STEP_ENTRY);
    if (api->abi_version != CRAM_STEP_ABI_VERSION)
        return cram_err_set(err, CRAM_E_VERSION,
                            "%s: built for step ABI v%u, this cram speaks v%u: recompile with this cramc", label,
                            api->abi_version, CRAM_STEP_ABI_VERSION);
    if (api->struct_size < sizeof(cram_step_api))
        return cram_err_set(err, CRAM_E_VERSION,
                            "%s: step table is %u bytes, smaller than the %zu of step ABI v%u: recompile with this cramc",
                            label, api->struct_size, sizeof(cram_step_api), CRAM_STEP_ABI_VERSION);
    const cram_step_meta *m = api->meta;
    if (!m) return cram_err_set(err, CRAM_E_HEADER, "%s: step table has no metadata", label);
    if (m->abi_version != api->abi_version)
        return cram_err_set(err, CRAM_E_HEADER, "%s: metadata says step ABI v%u, table v%u", label, m->abi_version,
                            api->abi_version);
    if (!api->create || !api->destroy || !api->last_error || !api->init_params || !api->get_param ||
        !api->set_param || !api->get_moments || !api->set_moments || !api->step || !api->update || !api->eval ||
        !api->grad_norm || !api->zero_grad || !api->predict)
        return cram_err_set(err, CRAM_E_HEADER, "%s: step table has a missing entry point", label);
    if ((m->ndims && !m->dims) || (m->ninputs && !m->inputs) || (m->nparams && !m->params) ||
        (m->noutputs && !m->outputs))
        return cram_err_set(err, CRAM_E_HEADER, "%s: metadata arrays missing", label);
    int64_t total = 0;
    for (uint32_t i = 0; i < m->nparams; i++) {
        if (!tensor_ok(&m->params[i]))
            return cram_err_set(err, CRAM_E_HEADER, "%s: parameter %u has an inconsistent shape", label, i);
        total += m->params[i].numel;
    }
    for (uint32_t i = 0; i < m->ninputs; i++)
        if (!tensor_ok(&m->inputs[i]))
            return cram_err_set(err, CRAM_E_HEADER, "%s: input %u has an inconsistent shape", label, i);
    for (uint32_t i = 0; i < m->noutputs; i++)
        if (!tensor_ok(&m->outputs[i]))
            return cram_err_set(err, CRAM_E_HEADER, "%s: output %u has an inconsistent shape", label, i);
    if (total != m->nparam_elems)
        return cram_err_set(err, CRAM_E_HEADER, "%s: parameter table sums to %lld elements, metadata says %lld", label,
                            (long long)total, (long long)m->nparam_elems);
    return CRAM_OK;
}

cram_status cram_step_load(cram_step_lib *lib, const char *path, cram_err *err) {
    memset(lib, 0, sizeof *lib);
    struct stat st;
    if (stat(path, &st) != 0) return cram_err_set(err, CRAM_E_IO, "%s: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode)) return cram_err_set(err, CRAM_E_IO, "%s: not a file", path);
    FILE *f = fopen(path, "rb");
    if (!f) return cram_err_set(err, CRAM_E_IO, "%s: %s", path, strerror(errno));
    unsigned char mag[4] = {0};
    size_t got = fread(mag, 1, 4, f);
    fclose(f);
    if (got != 4 || memcmp(mag, "\177ELF", 4) != 0)
        return cram_err_set(err, CRAM_E_MAGIC, "%s: not a shared object (no ELF header): expected a step.so built by cramc",
                            path);
    /* dlopen searches the library path for names without a slash. */
    char buf[4096];
    const char *p = path;
    if (!strchr(path, '/')) {
        snprintf(buf, sizeof buf, "./%s", path);
        p = buf;
    }
    dlerror();
    void *h = dlopen(p, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *e = dlerror();
        return cram_err_set(err, CRAM_E_MAGIC, "%s: not a loadable shared object: %s", path, e ? e : "dlopen failed");
    }
    dlerror();
    void *sym = dlsym(h, CRAM_STEP_ENTRY);
    if (!sym) {
        dlclose(h);
        return cram_err_set(err, CRAM_E_MAGIC, "%s: not a cramc artifact (no %s symbol)", path, CRAM_STEP_ENTRY);
    }
    cram_step_entry_fn fn;
    memcpy(&fn, &sym, sizeof fn); /* object -> function pointer, as POSIX allows */
    const cram_step_api *api = fn();
    cram_status r = cram_step_check(api, path, err);
    if (r != CRAM_OK) {
        dlclose(h);
        return r;
    }
    lib->handle = h;
    lib->api = api;
    return CRAM_OK;
}

void cram_step_unload(cram_step_lib *lib) {
    if (lib->handle) dlclose(lib->handle);
    memset(lib, 0, sizeof *lib);
}
