/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* sysfs.c — one-read attribute access relative to a directory fd (see sysfs.h). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "macro.h"
#include "sysfs.h"

static bool entry_ok(const char *s, size_t n) {
        if (n == 0 || n > 255 || (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
                return false;
        for (size_t i = 0; i < n; i++)
                if ((unsigned char) s[i] < 0x21 || s[i] == 0x7f || s[i] == '/')
                        return false;
        return true;
}

bool sysfs_name_ok(const char *name) {
        return name && entry_ok(name, strlen(name));
}

bool sysfs_rel_path_ok(const char *path) {
        if (!path || !*path)
                return false;
        for (const char *s = path;;) {
                size_t n = strcspn(s, "/");
                if (!entry_ok(s, n))
                        return false; /* also "", i.e. a leading, doubled or trailing '/' */
                if (!s[n])
                        return true;
                s += n + 1;
        }
}

size_t strip_trailing_space(char *s, size_t len) {
        while (len > 0 &&
               (s[len - 1] == '\n' || s[len - 1] == ' ' || s[len - 1] == '\t' || s[len - 1] == '\r'))
                len--;
        s[len] = '\0';
        return len;
}

int sysfs_read_at(int dirfd, const char *name, char *buf, size_t size) {
        bool full;
        return sysfs_read_at_full(dirfd, name, buf, size, &full);
}

int sysfs_read_at_full(int dirfd, const char *name, char *buf, size_t size, bool *ret_full) {
        *ret_full = false;
        if (size == 0)
                return -EINVAL;
        /* O_NONBLOCK: no effect on an attribute or a file; a FIFO must not block the reader */
        int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0)
                return -errno;
        ssize_t n = read(fd, buf, size - 1);
        int saved = errno;
        close(fd);
        if (n < 0)
                return -saved;
        *ret_full = (size_t) n == size - 1;
        return (int) strip_trailing_space(buf, (size_t) n);
}

int sysfs_read_alloc_at(int dirfd, const char *name, char **ret) {
        char buf[4097];
        int r = sysfs_read_at(dirfd, name, buf, sizeof(buf));
        if (r < 0)
                return r;
        char *s = strdup(buf);
        if (!s)
                return -ENOMEM;
        *ret = s;
        return r;
}

int sysfs_read_u64_at(int dirfd, const char *name, int base, uint64_t *ret) {
        char buf[64];
        int r = sysfs_read_at(dirfd, name, buf, sizeof(buf));
        if (r < 0)
                return r;
        return sysfs_parse_u64(buf, r, base, ret);
}

int sysfs_parse_u64(const char *buf, int len, int base, uint64_t *ret) {
        if (len == 0 || buf[0] == '-')
                return -EINVAL;
        char *end;
        errno = 0;
        unsigned long long v = strtoull(buf, &end, base);
        if (errno != 0 || *end != '\0')
                return -EINVAL;
        *ret = v;
        return 0;
}

int sysfs_read_int_at(int dirfd, const char *name, int *ret) {
        char buf[64];
        int r = sysfs_read_at(dirfd, name, buf, sizeof(buf));
        if (r < 0)
                return r;
        char *end;
        errno = 0;
        long v = strtol(buf, &end, 10);
        if (errno != 0 || end == buf || *end != '\0' || v < INT32_MIN || v > INT32_MAX)
                return -EINVAL;
        *ret = (int) v;
        return 0;
}

int sysfs_readlink_at(int dirfd, const char *name, char *buf, size_t size) {
        ssize_t n = readlinkat(dirfd, name, buf, size - 1);
        if (n < 0)
                return -errno;
        if ((size_t) n >= size - 1)
                return -ENAMETOOLONG;
        buf[n] = '\0';
        return (int) n;
}

int sysfs_link_basename_at(int dirfd, const char *name, char *buf, size_t size) {
        char target[4096];
        int r = sysfs_readlink_at(dirfd, name, target, sizeof(target));
        if (r < 0)
                return r;
        const char *base = strrchr(target, '/');
        base = base ? base + 1 : target;
        size_t n = strlen(base);
        if (n >= size)
                return -ENAMETOOLONG;
        memcpy(buf, base, n + 1);
        return (int) n;
}

bool sysfs_exists_at(int dirfd, const char *name) {
        struct stat st;
        return fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
}
