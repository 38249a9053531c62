/* build_cleanup.c - removing a build's temporary files on a signal; see
 * build_cleanup.h. The state is process-wide because a signal handler can
 * reach nothing else. */
#define _GNU_SOURCE /* SYS_getdents64 */
#include "build_cleanup.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *volatile g_tmpdir;
static volatile int g_dirfd = -1;
static const char *volatile g_tmpout;
static volatile pid_t g_child;

/* One record of getdents64 (the kernel's layout). */
struct dent64 {
  uint64_t ino;
  int64_t off;
  unsigned short reclen;
  unsigned char type;
  char name[];
};

static void on_signal(int sig) {
  pid_t child = g_child;
  if (child > 0) { /* the same signal to the compiler's process group: the driver and the cc1/as/ld it runs */
    kill(-child, sig);
    while (waitpid(-child, NULL, 0) > 0 || errno == EINTR) {}
  }
  const char *out = g_tmpout;
  if (out) unlink(out);
  int fd = g_dirfd;
  if (fd >= 0) {
    char buf[4096] __attribute__((aligned(8)));
    long n;
    while ((n = syscall(SYS_getdents64, fd, buf, sizeof buf)) > 0)
      for (long off = 0; off < n;) {
        struct dent64 *d = (struct dent64 *)(void *)(buf + off);
        if (strcmp(d->name, ".") && strcmp(d->name, "..")) unlinkat(fd, d->name, 0);
        off += d->reclen;
      }
    const char *dir = g_tmpdir;
    if (dir) rmdir(dir);
  }
  signal(sig, SIG_DFL);
  raise(sig);
}

void cg_cleanup_install(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaddset(&sa.sa_mask, SIGINT);
  sigaddset(&sa.sa_mask, SIGTERM);
  sigaddset(&sa.sa_mask, SIGHUP);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGHUP, &sa, NULL);
}

void cg_cleanup_begin(const char *tmpdir) {
  g_dirfd = open(tmpdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  g_tmpdir = tmpdir;
}

void cg_cleanup_output(const char *tmpout) { g_tmpout = tmpout; }
void cg_cleanup_child(pid_t pid) { g_child = pid; }

void cg_cleanup_end(void) {
  g_child = 0;
  g_tmpout = NULL;
  g_tmpdir = NULL;
  int fd = g_dirfd;
  g_dirfd = -1;
  if (fd >= 0) close(fd);
}
