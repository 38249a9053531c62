/* llvm_host.c - the host stepping code of a cuda artifact as an LLVM module
 * (LLVM-C API only), verified and compiled to a host object; see
 * llvm_host.h for what the module defines and docs/codegen.md for an
 * excerpt. The code is straight-line on purpose: every offset, grid and
 * block size is a constant the compiler knew, so the step needs no table
 * interpretation at run time, and a mistake in the planner's offsets shows
 * up as one wrong constant in the printed module. */
#include <stdlib.h>
#include <string.h>

#include "llvm_host.h"

#ifndef CRAMC_HAVE_LLVM

bool llvm_host_available(void) { return false; }

bool llvm_host_emit(const LlvmHostGraph *g, int n, unsigned flags, FILE *text, const char *obj_path, char *err, size_t errlen) {
  (void)g, (void)n, (void)flags, (void)text, (void)obj_path;
  snprintf(err, errlen,
           "this cramc was built without LLVM, which the cuda target's host code needs: install llvm-14-dev "
           "(scripts/install-deps.sh) and rebuild cramc, or use --target cpu");
  return false;
}

#else

#include <llvm-c/Analysis.h>
#include <llvm-c/Core.h>
#include <llvm-c/Target.h>
#include <llvm-c/TargetMachine.h>

bool llvm_host_available(void) { return true; }

/* The types and callbacks every function of the module uses. */
typedef struct Lh {
  LLVMContextRef cx;
  LLVMModuleRef m;
  LLVMBuilderRef b;
  LLVMTypeRef i32, i64, i8p, i64p, kern_ty, gemm_ty;
  LLVMValueRef kern, gemm;
  LLVMValueRef *slotv; /* per slot: its loaded base pointer in the current bind() */
  uint32_t nslotv;
} Lh;

static LLVMValueRef c32(Lh *l, uint32_t v) { return LLVMConstInt(l->i32, v, 0); }
static LLVMValueRef c64(Lh *l, int64_t v) { return LLVMConstInt(l->i64, (unsigned long long)v, 1); }

static LLVMValueRef define(Lh *l, const char *name, LLVMTypeRef ty) {
  LLVMValueRef f = LLVMAddFunction(l->m, name, ty);
  LLVMSetVisibility(f, LLVMHiddenVisibility); /* step.so exports only cram_step_entry */
  LLVMSetFunctionCallConv(f, LLVMCCallConv);
  return f;
}

/* cram_cuda_<pfx>_bind: one store per pointer, its offset a constant. */
static bool build_bind(Lh *l, const LlvmHostGraph *g) {
  char name[64];
  snprintf(name, sizeof name, "cram_cuda_%s_bind", g->prefix);
  LLVMTypeRef ps[] = { l->i64p, l->i64, l->i64, l->i64p };
  LLVMValueRef f = define(l, name, LLVMFunctionType(LLVMVoidTypeInContext(l->cx), ps, 4, 0));
  LLVMValueRef slots = LLVMGetParam(f, 0), arena = LLVMGetParam(f, 1), scratch = LLVMGetParam(f, 2), tab = LLVMGetParam(f, 3);
  LLVMSetValueName2(slots, "slots", 5), LLVMSetValueName2(arena, "arena", 5);
  LLVMSetValueName2(scratch, "scratch", 7), LLVMSetValueName2(tab, "tab", 3);
  LLVMPositionBuilderAtEnd(l->b, LLVMAppendBasicBlockInContext(l->cx, f, "entry"));
  const RenderCudaHost *h = g->h;
  uint32_t maxslot = 0;
  for (uint32_t i = 0; i < h->ntab; i++)
    if (h->tab[i].base < RC_NONE && h->tab[i].base + 1 > maxslot) maxslot = h->tab[i].base + 1;
  free(l->slotv);
  l->nslotv = maxslot;
  if (!(l->slotv = calloc(maxslot ? maxslot : 1, sizeof *l->slotv))) return false;
  for (uint32_t i = 0; i < h->ntab; i++) {
    const RenderCudaRef r = h->tab[i];
    LLVMValueRef base;
    if (r.base == RC_ARENA) base = arena;
    else if (r.base == RC_SCRATCH) base = scratch;
    else if (r.base == RC_NONE) base = c64(l, 0);
    else {
      if (!l->slotv[r.base]) { /* each slot's pointer loaded once */
        char sn[24];
        snprintf(sn, sizeof sn, "slot%u", r.base);
        LLVMValueRef idx = c64(l, r.base);
        LLVMValueRef p = LLVMBuildInBoundsGEP2(l->b, l->i64, slots, &idx, 1, "");
        l->slotv[r.base] = LLVMBuildLoad2(l->b, l->i64, p, sn);
      }
      base = l->slotv[r.base];
    }
    LLVMValueRef v = r.off && r.base != RC_NONE ? LLVMBuildAdd(l->b, base, c64(l, r.off), "") : base;
    LLVMValueRef idx = c64(l, i);
    LLVMBuildStore(l->b, v, LLVMBuildInBoundsGEP2(l->b, l->i64, tab, &idx, 1, ""));
  }
  LLVMBuildRetVoid(l->b);
  return true;
}

/* cram_cuda_<pfx>_run: the launches in order, each followed by an early
 * return of a nonzero rc through one exit block. */
static void build_run(Lh *l, const LlvmHostGraph *g, bool broken) {
  char name[64];
  snprintf(name, sizeof name, "cram_cuda_%s_run", g->prefix);
  LLVMTypeRef ps[] = { l->i8p };
  LLVMValueRef f = define(l, name, LLVMFunctionType(l->i32, ps, 1, 0));
  LLVMValueRef rt = LLVMGetParam(f, 0);
  LLVMSetValueName2(rt, "rt", 2);
  LLVMBasicBlockRef cur = LLVMAppendBasicBlockInContext(l->cx, f, "entry");
  LLVMBasicBlockRef fail = LLVMAppendBasicBlockInContext(l->cx, f, "fail");
  LLVMPositionBuilderAtEnd(l->b, fail);
  LLVMValueRef rc = LLVMBuildPhi(l->b, l->i32, "rc");
  const RenderCudaHost *h = g->h;
  for (uint32_t i = 0; i < h->nlaunch; i++) {
    const RenderCudaLaunch *L = &h->launch[i];
    LLVMPositionBuilderAtEnd(l->b, cur);
    LLVMValueRef r;
    if (L->gemm) {
      LLVMValueRef a[] = { rt, c32(l, i) };
      r = LLVMBuildCall2(l->b, l->gemm_ty, l->gemm, a, 2, "r");
    } else {
      LLVMValueRef a[] = { rt, c32(l, i), c32(l, L->grid), c32(l, L->block), c32(l, L->first) };
      r = LLVMBuildCall2(l->b, l->kern_ty, l->kern, a, 5, "r");
    }
    LLVMValueRef bad = LLVMBuildICmp(l->b, LLVMIntNE, r, c32(l, 0), "bad");
    char bn[32];
    snprintf(bn, sizeof bn, "l%u", i + 1);
    LLVMBasicBlockRef next = LLVMAppendBasicBlockInContext(l->cx, f, bn);
    LLVMBuildCondBr(l->b, bad, fail, next);
    LLVMAddIncoming(rc, &r, &cur, 1);
    cur = next;
  }
  LLVMPositionBuilderAtEnd(l->b, cur);
  if (!broken) LLVMBuildRet(l->b, c32(l, 0));
  LLVMMoveBasicBlockAfter(fail, cur); /* read top to bottom: the launches, then the exit */
  LLVMPositionBuilderAtEnd(l->b, fail);
  if (h->nlaunch) LLVMBuildRet(l->b, rc);
  else LLVMInstructionEraseFromParent(rc), LLVMBuildUnreachable(l->b); /* no launch: fail is never reached */
}

static bool fail_msg(char *err, size_t errlen, const char *what, char *msg) {
  const char *m = msg && *msg ? msg : "no detail";
  size_t n = strcspn(m, "\n");
  snprintf(err, errlen, "%s: %.*s", what, (int)n, m);
  if (msg) LLVMDisposeMessage(msg);
  return false;
}

/* The target machine for the host triple (PIC: the object goes into a .so). */
static bool host_machine(LLVMTargetMachineRef *tm, char **triple, char *err, size_t errlen) {
  if (LLVMInitializeNativeTarget() || LLVMInitializeNativeAsmPrinter())
    return fail_msg(err, errlen, "LLVM has no code generator for this host", NULL);
  *triple = LLVMGetDefaultTargetTriple();
  LLVMTargetRef t;
  char *msg = NULL;
  if (LLVMGetTargetFromTriple(*triple, &t, &msg)) return fail_msg(err, errlen, "LLVM target for the host triple", msg);
  /* "generic": the artifact may run on another CPU of the same architecture */
  *tm = LLVMCreateTargetMachine(t, *triple, "generic", "", LLVMCodeGenLevelNone, LLVMRelocPIC, LLVMCodeModelDefault);
  return *tm ? true : fail_msg(err, errlen, "LLVM cannot create a target machine for the host triple", NULL);
}

bool llvm_host_emit(const LlvmHostGraph *g, int n, unsigned flags, FILE *text, const char *obj_path, char *err, size_t errlen) {
  Lh l = { 0 };
  LLVMTargetMachineRef tm = NULL;
  LLVMTargetDataRef td = NULL;
  char *triple = NULL, *msg = NULL;
  bool ok = false;
  if (!host_machine(&tm, &triple, err, errlen)) goto out;
  l.cx = LLVMContextCreate();
  l.m = LLVMModuleCreateWithNameInContext("cramc_host", l.cx);
  l.b = LLVMCreateBuilderInContext(l.cx);
  LLVMSetTarget(l.m, triple);
  td = LLVMCreateTargetDataLayout(tm);
  LLVMSetModuleDataLayout(l.m, td);
  l.i32 = LLVMInt32TypeInContext(l.cx), l.i64 = LLVMInt64TypeInContext(l.cx);
  l.i8p = LLVMPointerType(LLVMInt8TypeInContext(l.cx), 0), l.i64p = LLVMPointerType(l.i64, 0);
  LLVMTypeRef kp[] = { l.i8p, l.i32, l.i32, l.i32, l.i32 }, gp[] = { l.i8p, l.i32 };
  l.kern_ty = LLVMFunctionType(l.i32, kp, 5, 0), l.gemm_ty = LLVMFunctionType(l.i32, gp, 2, 0);
  l.kern = define(&l, "cram_cuda_rt_kernel", l.kern_ty); /* declarations: the shim defines them */
  l.gemm = define(&l, "cram_cuda_rt_gemm", l.gemm_ty);
  for (int i = 0; i < n; i++) {
    if (!build_bind(&l, &g[i])) {
      snprintf(err, errlen, "out of memory building the host code");
      goto out;
    }
    build_run(&l, &g[i], i == 0 && (flags & LLVM_HOST_TEST_BREAK));
  }
  if (LLVMVerifyModule(l.m, LLVMReturnStatusAction, &msg)) {
    fail_msg(err, errlen, "internal: the generated host code does not verify (LLVM)", msg);
    msg = NULL;
    goto out;
  }
  LLVMDisposeMessage(msg), msg = NULL;
  if (text) {
    char *s = LLVMPrintModuleToString(l.m);
    bool wrote = s && fputs(s, text) >= 0;
    LLVMDisposeMessage(s);
    if (!wrote) {
      snprintf(err, errlen, "cannot write the LLVM module");
      goto out;
    }
  }
  if (obj_path && LLVMTargetMachineEmitToFile(tm, l.m, (char *)obj_path, LLVMObjectFile, &msg)) {
    fail_msg(err, errlen, "LLVM cannot compile the host code", msg);
    msg = NULL;
    goto out;
  }
  ok = true;
out:
  if (msg) LLVMDisposeMessage(msg);
  free(l.slotv);
  if (l.b) LLVMDisposeBuilder(l.b);
  if (l.m) LLVMDisposeModule(l.m);
  if (l.cx) LLVMContextDispose(l.cx);
  if (td) LLVMDisposeTargetData(td);
  if (tm) LLVMDisposeTargetMachine(tm);
  if (triple) LLVMDisposeMessage(triple);
  return ok;
}

#endif
