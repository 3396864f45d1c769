/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* fileio.c — atomic state files, sysfs writes and the host-change lock (see fileio.h). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fileio.h"
#include "macro.h"
#include "root.h"

#define LOCK_PATH "/run/vgpuctl/lock"

int mkdir_parents_root(const char *path, mode_t mode) {
        char p[PATH_MAX];
        int r = root_path(p, sizeof(p), path);
        if (r < 0)
                return r;
        size_t skip = strlen(root_prefix());
        for (char *s = p + skip + 1; *s; s++) {
                if (*s != '/')
                        continue;
                *s = '\0';
                if (mkdir(p, mode) < 0 && errno != EEXIST) {
                        *s = '/';
                        return -errno;
                }
                *s = '/';
        }
        if (mkdir(p, mode) < 0 && errno != EEXIST)
                return -errno;
        return 0;
}

static int fsync_directory_of(const char *path) {
        char dir[PATH_MAX];
        snprintf(dir, sizeof(dir), "%s", path);
        char *slash = strrchr(dir, '/');
        if (!slash)
                return 0;
        *slash = '\0';
        int fd = open(dir[0] ? dir : "/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        int r = fsync(fd) < 0 ? -errno : 0;
        close(fd);
        return r;
}

int write_file_atomic(const char *path, const void *data, size_t size, mode_t mode) {
        char p[PATH_MAX], tmp[PATH_MAX + 16];
        int r = root_path(p, sizeof(p), path);
        if (r < 0)
                return r;
        char parent[PATH_MAX];
        snprintf(parent, sizeof(parent), "%s", path);
        char *slash = strrchr(parent, '/');
        if (slash && slash != parent) {
                *slash = '\0';
                if ((r = mkdir_parents_root(parent, 0755)) < 0)
                        return r;
        }
        snprintf(tmp, sizeof(tmp), "%s.XXXXXX", p);
        int fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0)
                return -errno;
        const char *d = data;
        size_t left = size;
        while (left > 0) {
                ssize_t n = write(fd, d, left);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        r = -errno;
                        break;
                }
                d += n;
                left -= (size_t) n;
        }
        if (r >= 0 && fchmod(fd, mode) < 0)
                r = -errno;
        if (r >= 0 && fsync(fd) < 0)
                r = -errno;
        close(fd);
        if (r >= 0 && rename(tmp, p) < 0)
                r = -errno;
        if (r < 0) {
                unlink(tmp);
                return r;
        }
        return fsync_directory_of(p);
}

int sysfs_write(const char *path, const char *value) {
        char p[PATH_MAX];
        int r = root_path(p, sizeof(p), path);
        if (r < 0)
                return r;
        /* O_TRUNC as the shell's "echo > attr" does: harmless on sysfs, right on a fixture tree */
        int fd = open(p, O_WRONLY | O_TRUNC | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        size_t n = strlen(value);
        /* one write: the kernel acts on each write(2) as one command */
        ssize_t w = write(fd, value, n);
        r = w < 0 ? -errno : (size_t) w != n ? -EIO : 0;
        if (close(fd) < 0 && r == 0)
                r = -errno;     /* some attributes report their error at close */
        return r;
}

int lock_host(int timeout_ms) {
        int r = mkdir_parents_root("/run/vgpuctl", 0755);
        if (r < 0)
                return r;
        char p[PATH_MAX];
        if ((r = root_path(p, sizeof(p), LOCK_PATH)) < 0)
                return r;
        int fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (fd < 0)
                return -errno;
        for (int waited = 0;; waited += 10) {
                if (flock(fd, LOCK_EX | LOCK_NB) == 0)
                        return fd;
                if (errno != EWOULDBLOCK || waited >= timeout_ms) {
                        r = errno == EWOULDBLOCK ? -EBUSY : -errno;
                        close(fd);
                        return r;
                }
                nanosleep(&(struct timespec) { .tv_nsec = 10 * 1000 * 1000 }, NULL);
        }
}

void unlock_host(int fd) {
        if (fd >= 0)
                close(fd);      /* closing releases the flock */
}
