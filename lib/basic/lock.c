/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* lock.c — the host-change lock and the one message a waiter gets (see lock.h). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "error-util.h"
#include "fileio.h"
#include "lock.h"
#include "macro.h"
#include "root.h"

/* The PID the holder wrote, when it is a live process; 0 when unknown (an older holder that
 * did not write one, or one that has not yet written it). */
static pid_t holder_pid(int fd) {
        char buf[32];
        ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
        if (n <= 0)
                return 0;
        buf[n] = '\0';
        char *end;
        long pid = strtol(buf, &end, 10);
        if (end == buf || pid <= 0 || pid > INT_MAX)
                return 0;
        if (kill((pid_t) pid, 0) < 0 && errno == ESRCH)
                return 0;
        return (pid_t) pid;
}

/* Who holds the lock now, for the next waiter's message; the lock works without it. */
static void note_holder(int fd) {
        char buf[32];
        int n = snprintf(buf, sizeof(buf), "%d\n", (int) getpid());
        if (ftruncate(fd, 0) == 0)
                (void) !pwrite(fd, buf, (size_t) n, 0);
}

int host_lock_take_timeout(int timeout_ms, struct vgpu_error *err) {
        int r = mkdir_parents_root("/run/vgpuctl", 0755);
        if (r < 0)
                return vgpu_error_set_errno(err, r, "taking the lock %s%s", root_prefix(), HOST_LOCK_PATH);
        char p[PATH_MAX];
        if ((r = root_path(p, sizeof(p), HOST_LOCK_PATH)) < 0)
                return vgpu_error_set_errno(err, r, "taking the lock %s%s", root_prefix(), HOST_LOCK_PATH);
        _cleanup_close_ int fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (fd < 0)
                return vgpu_error_set_errno(err, -errno, "taking the lock %s", p);
        for (int waited = 0;; waited += 10) {
                if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
                        note_holder(fd);
                        return TAKE_FD(fd);
                }
                if (errno != EWOULDBLOCK)
                        return vgpu_error_set_errno(err, -errno, "taking the lock %s", p);
                if (waited >= timeout_ms)
                        break;
                nanosleep(&(struct timespec){ .tv_nsec = 10 * 1000 * 1000 }, NULL);
        }
        pid_t pid = holder_pid(fd);
        if (pid > 0)
                return vgpu_error_set(err, -EBUSY,
                                      "another vgpuctl or vgpud (PID %d) holds the lock %s; waited %d s",
                                      (int) pid, p, timeout_ms / 1000);
        return vgpu_error_set(err, -EBUSY, "another vgpuctl or vgpud holds the lock %s; waited %d s", p,
                              timeout_ms / 1000);
}

int host_lock_take(struct vgpu_error *err) {
        return host_lock_take_timeout(HOST_LOCK_TIMEOUT_MS, err);
}

void host_lock_release(int fd) {
        if (fd >= 0)
                close(fd); /* closing releases the flock */
}
