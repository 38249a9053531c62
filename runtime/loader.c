/* loader.c - dlopen a step.so and validate its cram_step_api table. */
#include "loader.h"

#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
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

/* Bounds on what an artifact may declare. Every count read from a step.so is
 * checked against these before it sizes a buffer: cramc's IR never builds a
 * tensor over IR_MAX_NUMEL (2^40) elements, so neither can a genuine artifact,
 * and products stay far from int64/size_t overflow (3 x 2^40 x 4 bytes for a
 * checkpoint). A name longer than cramc allows is corruption too. */
#define STEP_MAX_NUMEL   (INT64_C(1) << 40)
#define STEP_MAX_TENSORS (1u << 20)

static int tensor_ok(const cram_tensor_info *t) {
  if (!t->name || !t->name[0] || strlen(t->name) > CRAM_STEP_MAX_NAME || t->rank > CRAM_STEP_MAX_RANK) return 0;
  int64_t n = 1;
  for (uint32_t d = 0; d < t->rank; d++) {
    if (t->shape[d] < 0 || t->shape[d] > STEP_MAX_NUMEL) return 0;
    n *= t->shape[d]; /* both factors <= 2^40 and the product checked at each step: no overflow */
    if (n > STEP_MAX_NUMEL) return 0;
  }
  return n == t->numel;
}

cram_status cram_step_check(const cram_step_api *api, const char *label, cram_err *err) {
  if (!api) return cram_err_set(err, CRAM_E_MAGIC, "%s: %s() returned no table", label, CRAM_STEP_ENTRY);
  if (api->abi_version != CRAM_STEP_ABI_VERSION)
    return cram_err_set(err, CRAM_E_VERSION, "%s: built for step ABI v%u, this cram speaks v%u: recompile with this cramc", label,
                        api->abi_version, CRAM_STEP_ABI_VERSION);
  if (api->struct_size < sizeof(cram_step_api))
    return cram_err_set(err, CRAM_E_VERSION,
                        "%s: step table is %u bytes, smaller than the %zu of step ABI v%u: recompile with this cramc", label,
                        api->struct_size, sizeof(cram_step_api), CRAM_STEP_ABI_VERSION);
  const cram_step_meta *m = api->meta;
  if (!m) return cram_err_set(err, CRAM_E_HEADER, "%s: step table has no metadata", label);
  if (m->abi_version != api->abi_version)
    return cram_err_set(err, CRAM_E_HEADER, "%s: metadata says step ABI v%u, table v%u", label, m->abi_version, api->abi_version);
  if (!api->create || !api->destroy || !api->last_error || !api->init_params || !api->get_param || !api->set_param ||
      !api->get_moments || !api->set_moments || !api->step || !api->update || !api->eval || !api->grad_norm || !api->zero_grad ||
      !api->predict || !api->eval_accuracy || !api->grad_buffer)
    return cram_err_set(err, CRAM_E_HEADER, "%s: step table has a missing entry point", label);
  if ((m->ndims && !m->dims) || (m->ninputs && !m->inputs) || (m->nparams && !m->params) || (m->noutputs && !m->outputs))
    return cram_err_set(err, CRAM_E_HEADER, "%s: metadata arrays missing", label);
  if (m->nparams > STEP_MAX_TENSORS || m->ninputs > STEP_MAX_TENSORS || m->ndims > STEP_MAX_TENSORS)
    return cram_err_set(err, CRAM_E_HEADER, "%s: metadata declares %u parameters, %u inputs, %u dims (at most %u each)", label,
                        m->nparams, m->ninputs, m->ndims, STEP_MAX_TENSORS);
  for (uint32_t i = 0; i < m->ndims; i++)
    if (!m->dims[i].name) return cram_err_set(err, CRAM_E_HEADER, "%s: dim %u has no name", label, i);
  int64_t total = 0;
  for (uint32_t i = 0; i < m->nparams; i++) {
    if (!tensor_ok(&m->params[i]))
      return cram_err_set(err, CRAM_E_HEADER, "%s: parameter %u has an inconsistent shape, over 2^40 elements or a bad name",
                          label, i);
    total += m->params[i].numel;
    if (total > STEP_MAX_NUMEL) return cram_err_set(err, CRAM_E_HEADER, "%s: parameters total over 2^40 elements", label);
  }
  for (uint32_t i = 0; i < m->ninputs; i++)
    if (!tensor_ok(&m->inputs[i]))
      return cram_err_set(err, CRAM_E_HEADER, "%s: input %u has an inconsistent shape, over 2^40 elements or a bad name", label,
                          i);
  if (m->noutputs > STEP_MAX_TENSORS)
    return cram_err_set(err, CRAM_E_HEADER, "%s: metadata declares %u outputs (at most %u)", label, m->noutputs,
                        STEP_MAX_TENSORS);
  for (uint32_t i = 0; i < m->noutputs; i++)
    if (!tensor_ok(&m->outputs[i]))
      return cram_err_set(err, CRAM_E_HEADER, "%s: output %u has an inconsistent shape, over 2^40 elements or a bad name", label,
                          i);
  if (total != m->nparam_elems)
    return cram_err_set(err, CRAM_E_HEADER, "%s: parameter table sums to %lld elements, metadata says %lld", label,
                        (long long)total, (long long)m->nparam_elems);
  return CRAM_OK;
}

/* The ELF machine this process runs on, and its name for messages. */
#if defined(__x86_64__)
#define HOST_EM EM_X86_64
#elif defined(__aarch64__)
#define HOST_EM EM_AARCH64
#elif defined(__powerpc64__)
#define HOST_EM EM_PPC64
#elif defined(__riscv) && __riscv_xlen == 64
#define HOST_EM EM_RISCV
#endif

static const char *em_name(unsigned em) {
  switch (em) {
  case EM_386: return "x86 (32-bit)";
  case EM_X86_64: return "x86-64";
  case EM_ARM: return "arm (32-bit)";
  case EM_AARCH64: return "aarch64";
  case EM_PPC64: return "ppc64";
  case EM_RISCV: return "riscv";
  case EM_S390: return "s390";
  }
  return "an unknown machine";
}

/* Checks the ELF header and program headers against the file before dlopen:
 * dlopen maps the PT_LOAD segments as they are declared, so a truncated file
 * is touched past its end (SIGBUS), and a library for another machine is
 * skipped with "No such file or directory". Only 64-bit little-endian ELF
 * shared objects of this machine pass. */
static cram_status elf_check(const char *path, FILE *f, uint64_t fsize, cram_err *err) {
  Elf64_Ehdr eh;
  if (fsize < sizeof eh || fread(&eh, sizeof eh, 1, f) != 1)
    return cram_err_set(err, CRAM_E_TRUNCATED, "%s: truncated step.so (%llu bytes, shorter than an ELF header)", path,
                        (unsigned long long)fsize);
  if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_ident[EI_DATA] != ELFDATA2LSB)
    return cram_err_set(err, CRAM_E_MAGIC, "%s: not a 64-bit little-endian shared object: rebuild it with cramc on this machine",
                        path);
#ifdef HOST_EM
  if (eh.e_machine != HOST_EM)
    return cram_err_set(err, CRAM_E_MAGIC, "%s: built for %s (ELF machine %u), this cram runs on %s: rebuild it with cramc here",
                        path, em_name(eh.e_machine), (unsigned)eh.e_machine, em_name(HOST_EM));
#endif
  if (eh.e_type != ET_DYN)
    return cram_err_set(err, CRAM_E_MAGIC, "%s: an ELF file but not a shared object (type %u): expected a step.so built by cramc",
                        path, (unsigned)eh.e_type);
  if (eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum == 0 || eh.e_phnum >= PN_XNUM)
    return cram_err_set(err, CRAM_E_HEADER, "%s: corrupt ELF header (%u program headers of %u bytes)", path, (unsigned)eh.e_phnum,
                        (unsigned)eh.e_phentsize);
  uint64_t phend = (uint64_t)eh.e_phnum * sizeof(Elf64_Phdr);
  if (eh.e_phoff > fsize || phend > fsize - eh.e_phoff)
    return cram_err_set(err, CRAM_E_TRUNCATED, "%s: truncated step.so (%llu bytes, its program headers end at %llu)", path,
                        (unsigned long long)fsize, (unsigned long long)(eh.e_phoff + phend));
  if (fseek(f, (long)eh.e_phoff, SEEK_SET) != 0) return cram_err_set(err, CRAM_E_IO, "%s: %s", path, strerror(errno));
  for (unsigned i = 0; i < eh.e_phnum; i++) {
    Elf64_Phdr ph;
    if (fread(&ph, sizeof ph, 1, f) != 1) return cram_err_set(err, CRAM_E_IO, "%s: cannot read program header %u", path, i);
    if (ph.p_type != PT_LOAD && ph.p_type != PT_DYNAMIC) continue;
    if (ph.p_offset > fsize || ph.p_filesz > fsize - ph.p_offset)
      return cram_err_set(err, CRAM_E_TRUNCATED,
                          "%s: truncated step.so (%llu bytes, a loadable segment ends at %llu): rebuild it with cramc", path,
                          (unsigned long long)fsize, (unsigned long long)(ph.p_offset + ph.p_filesz));
  }
  /* The section table is the last thing a linker writes: a file cut short
     * loses it first, even when the segments happen to fit. */
  uint64_t shend = (uint64_t)eh.e_shnum * eh.e_shentsize;
  if (eh.e_shoff > fsize || shend > fsize - eh.e_shoff)
    return cram_err_set(err, CRAM_E_TRUNCATED,
                        "%s: truncated step.so (%llu bytes, its section table ends at %llu): rebuild it with cramc", path,
                        (unsigned long long)fsize, (unsigned long long)(eh.e_shoff + shend));
  return CRAM_OK;
}

cram_status cram_step_load(cram_step_lib *lib, const char *path, cram_err *err) {
  memset(lib, 0, sizeof *lib);
  struct stat st;
  if (stat(path, &st) != 0) return cram_err_set(err, CRAM_E_IO, "%s: %s", path, strerror(errno));
  if (!S_ISREG(st.st_mode)) return cram_err_set(err, CRAM_E_IO, "%s: not a file", path);
  FILE *f = fopen(path, "rb");
  if (!f) return cram_err_set(err, CRAM_E_IO, "%s: %s", path, strerror(errno));
  unsigned char mag[4] = { 0 };
  size_t got = fread(mag, 1, 4, f);
  if (got != 4 || memcmp(mag, "\177ELF", 4) != 0) {
    fclose(f);
    return cram_err_set(err, CRAM_E_MAGIC, "%s: not a shared object (no ELF header): expected a step.so built by cramc", path);
  }
  rewind(f);
  cram_status er = elf_check(path, f, (uint64_t)st.st_size, err);
  fclose(f);
  if (er != CRAM_OK) return er;
  /* dlopen searches the library path for names without a slash. */
  char buf[4096];
  const char *p = path;
  if (!strchr(path, '/')) {
    snprintf(buf, sizeof buf, "./%s", path);
    p = buf;
  }
  /* RTLD_NODELETE: a cpu artifact pulls in OpenBLAS and libgomp, whose
     * worker threads outlive every call into the step; unmapping their code
     * under them crashes the process at exit (SIGSEGV after the run had
     * succeeded). The artifact stays mapped until the process ends. */
  dlerror();
  void *h = dlopen(p, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
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

/* Drops the handle; the library itself stays mapped (RTLD_NODELETE). */
void cram_step_unload(cram_step_lib *lib) {
  if (lib->handle) dlclose(lib->handle);
  memset(lib, 0, sizeof *lib);
}

void cram_step_opts_from_env(cram_create_opts *o) {
  const char *tf = getenv("CRAM_CUDA_TF32"), *gr = getenv("CRAM_CUDA_GRAPHS");
  if (tf && !strcmp(tf, "1")) o->tf32 = 1;
  if (gr && !strcmp(gr, "0")) o->no_graphs = 1;
}
