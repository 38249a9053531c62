/* pool_step.c - the fixture step (tests/train/fixture_step.c) plus what a cpu
 * artifact brings with OpenBLAS/libgomp: a worker thread that lives in the
 * library's own code for as long as the process does. Were the runtime to
 * unmap the library (dlclose of the last reference), the thread would wake
 * into unmapped code and the process would die with SIGSEGV after the command
 * had done its work; tests/robustness/test_unload.sh runs every command that
 * loads a step many times and checks the exit code and the output. The
 * destructor makes that certain: called from dlclose, it aborts. */
#define _GNU_SOURCE /* dladdr */
#include <dlfcn.h>
#include <execinfo.h>
#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#include "../train/fixture_step.c"

/* What an idle OpenMP worker does: spin on a flag for a while, yield, spin
 * again. Spinning keeps the thread in this library's code, so unmapping it
 * faults at once instead of at the thread's next wake-up. */
static volatile unsigned long pool_spins;

static void *pool_worker(void *arg) {
  (void)arg;
  for (;;) {
    for (int i = 0; i < 100000; i++) pool_spins++;
    sched_yield();
  }
  return NULL;
}

__attribute__((constructor)) static void pool_start(void) {
  pthread_t t;
  if (pthread_create(&t, NULL, pool_worker, NULL) == 0) pthread_detach(t);
}

/* The worker above crashes the process only if it happens to run between
 * the unmapping and the exit, which a loaded machine may never schedule. So
 * the destructor says it outright: destructors run at exit (fine, the
 * threads die with the process) or from dlclose, which then unmaps the code
 * the worker is in. Being called from dlclose is the bug: abort. */
__attribute__((destructor)) static void pool_stop(void) {
  void *frames[64];
  int n = backtrace(frames, 64);
  for (int i = 0; i < n; i++) {
    Dl_info di;
    if (dladdr(frames[i], &di) && di.dli_sname && strstr(di.dli_sname, "dlclose")) {
      static const char msg[] = "pool_step: unloaded by dlclose while its worker thread runs\n";
      if (write(2, msg, sizeof msg - 1) < 0) abort();
      abort();
    }
  }
}
