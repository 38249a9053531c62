/* pool_step.c - the fixture step (tests/train/fixture_step.c) plus what a cpu
 * artifact brings with OpenBLAS/libgomp: a worker thread that lives in the
 * library's own code for as long as the process does. Were the runtime to
 * unmap the library (dlclose of the last reference), the thread would wake
 * into unmapped code and the process would die with SIGSEGV after the command
 * had done its work; tests/robustness/test_unload.sh runs every command that
 * loads a step many times and checks the exit code and the output. */
#include <pthread.h>
#include <sched.h>

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
