/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* root.c — host paths under VGPU_ROOT (see root.h for why every path goes through here). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "root.h"
#include "sysfs.h"

const char *root_prefix(void) {
        static char cached_env[4096];
        static char cached_prefix[4096];
        const char *e = getenv("VGPU_ROOT");

        if (!e || !*e)
                return "";
        /* Normalising costs a copy; remember the last value so hot loops pay it once. */
        if (strcmp(e, cached_env) == 0)
                return cached_prefix;
        size_t n = strlen(e);
        if (n >= sizeof(cached_prefix))
                return "";
        memcpy(cached_env, e, n + 1);
        while (n > 0 && e[n - 1] == '/')
                n--;
        memcpy(cached_prefix, e, n);
        cached_prefix[n] = '\0';
        return cached_prefix;
}

int root_path(char *buf, size_t size, const char *path) {
        if (!path || path[0] != '/')
                return -EINVAL;
        int n = snprintf(buf, size, "%s%s", root_prefix(), path);
        if (n < 0 || (size_t) n >= size)
                return -ENAMETOOLONG;
        return 0;
}

int root_open(const char *path, int flags) {
        char p[4096];
        int r = root_path(p, sizeof(p), path);
        if (r < 0)
                return r;
        int fd = open(p, flags | O_CLOEXEC);
        return fd < 0 ? -errno : fd;
}

int root_open_dir(const char *path) {
        return root_open(path, O_RDONLY | O_DIRECTORY);
}

int root_access(const char *path, int mode) {
        char p[4096];
        int r = root_path(p, sizeof(p), path);
        if (r < 0)
                return r;
        return access(p, mode) < 0 ? -errno : 0;
}

int root_read(const char *path, char *buf, size_t size) {
        char p[4096];
        int r = root_path(p, sizeof(p), path);
        if (r < 0)
                return r;
        return sysfs_read_at(AT_FDCWD, p, buf, size);
}

int root_read_tail(const char *path, size_t max, char **ret_buf, size_t *ret_len, size_t *ret_start) {
        int fd = root_open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return fd == -ENOMEM ? fd : -ENOENT;
        struct stat st;
        if (fstat(fd, &st) < 0) {
                close(fd);
                return -ENOENT;
        }
        size_t file = st.st_size > 0 ? (size_t) st.st_size : 0;
        size_t start = file > max ? file - max : 0;
        char *buf = malloc(file - start + 1);
        if (!buf) {
                close(fd);
                return -ENOMEM;
        }
        ssize_t got = pread(fd, buf, file - start, (off_t) start);
        close(fd);
        if (got < 0) {
                free(buf);
                return -ENOENT;
        }
        buf[got] = '\0';
        *ret_buf = buf;
        *ret_len = (size_t) got;
        if (ret_start)
                *ret_start = start;
        return 0;
}
