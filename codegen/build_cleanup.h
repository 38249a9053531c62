/* build_cleanup.h - what an artifact build leaves behind when cramc is
 * stopped by a signal: nothing.
 *
 * cg_build_target works in a temporary directory and links into a temporary
 * file beside the output; Ctrl-C (or SIGTERM, SIGHUP) used to leave both.
 * The build registers them here; a handler installed by the driver stops the
 * C compiler it is waiting for, removes the directory's files, the directory
 * and the partial output, and dies of the same signal. Only async-signal-safe
 * calls run in the handler (kill, waitpid, getdents64, unlinkat, rmdir). One
 * build at a time, from the main thread: cramc's case. */
#ifndef CRAMC_BUILD_CLEANUP_H
#define CRAMC_BUILD_CLEANUP_H

#include <sys/types.h>

/* Installs the handler for SIGINT, SIGTERM and SIGHUP (the driver, once). */
void cg_cleanup_install(void);
/* The build's temporary directory (its every file is removed on a signal);
 * the string must stay valid until cg_cleanup_end. */
void cg_cleanup_begin(const char *tmpdir);
/* The temporary output beside the artifact, and the running compiler's
 * process group (the pid of its leader; artifact.c's spawn() makes one). */
void cg_cleanup_output(const char *tmpout);
void cg_cleanup_child(pid_t pid);
/* The build is over (its own error paths cleaned up): forget everything. */
void cg_cleanup_end(void);

#endif
