/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* fileio.c — atomic state files and sysfs writes (see fileio.h). */
#include <dirent.h>
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
#include "sysfs.h"

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

bool mkstemp_suffix_ok(const char *s) {
        size_t n = 0;
        for (; s[n]; n++)
                if (!((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= 'A' && s[n] <= 'Z') ||
                      (s[n] >= '0' && s[n] <= '9')))
                        return false;
        return n == 6;
}

int remove_temps_at(int parentfd, const char *subdir, bool (*is_temp)(const char *name)) {
        int fd = openat(parentfd, subdir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return errno == ENOENT ? 0 : -errno;
        DIR *d = fdopendir(fd);
        if (!d) {
                close(fd);
                return -ENOMEM;
        }
        int removed = 0;
        struct dirent *de;
        while ((de = readdir(d)))
                if (is_temp(de->d_name) && remove_temp_entry(dirfd(d), de->d_name))
                        removed++;
        closedir(d);
        return removed;
}

bool remove_temp_entry(int dirfd, const char *name) {
        struct stat st;
        /* regular files only: a directory or a link of that name is someone else's */
        return fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) &&
               unlinkat(dirfd, name, 0) == 0;
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
                r = -errno; /* some attributes report their error at close */
        return r;
}

int sysfs_write_beneath(const char *dir, const char *rel, const char *value) {
        /* a path longer than this is refused, never cut to something that names another file */
        char walk[PATH_MAX];
        if (!sysfs_rel_path_ok(rel))
                return -EINVAL;
        if (strlen(rel) >= sizeof(walk))
                return -ENAMETOOLONG;
        memcpy(walk, rel, strlen(rel) + 1);
        /* the directory itself may be reached through a link (/sys/bus/mdev/devices/UUID is one) */
        int fd = root_open(dir, O_PATH | O_DIRECTORY);
        if (fd < 0)
                return fd;
        /* then one component at a time, never through a symbolic link: sysfs has links inside a
         * device's directory (mdev_type, driver, iommu_group) that lead to other objects' files */
        char *name = walk;
        for (char *slash; (slash = strchr(name, '/')); name = slash + 1) {
                *slash = '\0';
                int sub = openat(fd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                int saved = errno;
                struct stat st;
                if (sub < 0 && saved == ENOTDIR && fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                    S_ISLNK(st.st_mode))
                        saved = ELOOP;
                close(fd);
                if (sub < 0)
                        return -saved;
                fd = sub;
        }
        /* O_NONBLOCK: a FIFO planted in a fixture or store must not hang the writer */
        int wfd = openat(fd, name, O_WRONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
        int saved = errno;
        close(fd);
        if (wfd < 0)
                return -saved;
        struct stat st;
        if (fstat(wfd, &st) < 0 || !S_ISREG(st.st_mode)) {
                close(wfd);
                return -EINVAL;
        }
        /* as the shell's "echo > attr": a no-op on sysfs, right on a fixture tree */
        if (ftruncate(wfd, 0) < 0) {
                /* sysfs may say no to a truncation it does not need */
        }
        size_t n = strlen(value);
        ssize_t w = write(wfd, value, n);
        int r = w < 0 ? -errno : (size_t) w != n ? -EIO : 0;
        if (close(wfd) < 0 && r == 0)
                r = -errno;
        return r;
}
