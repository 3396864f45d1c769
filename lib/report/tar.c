/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * tar.c — pax/ustar writer over zlib's gzip stream (see tar.h for why it is ours).
 * Format: POSIX.1-2001 pax (IEEE Std 1003.1): 512-byte ustar headers; a name longer than the
 * ustar fields allow, or a long link target, is carried in a preceding 'x' extended header.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zlib.h>

#include "basic/dlopen-util.h"
#include "basic/error-util.h"
#include "basic/macro.h"
#include "tar.h"

#define ZLIB_FUNCS(X) X(gzdopen) X(gzwrite) X(gzclose)
static struct { ZLIB_FUNCS(DLOPEN_FIELD) } zlib;
#define ZLIB_SYMBOL(fn) DLOPEN_SYMBOL(zlib, fn)
static const struct dlopen_symbol zlib_symbols[] = { ZLIB_FUNCS(ZLIB_SYMBOL) };
struct dlopen_library tar_zlib_library = DLOPEN_LIBRARY("libz.so.1", "zlib1g", zlib_symbols);

struct tar {
        gzFile gz;
        int error;
};

struct ustar_header {
        char name[100], mode[8], uid[8], gid[8], size[12], mtime[12], chksum[8], typeflag;
        char linkname[100], magic[6], version[2], uname[32], gname[32], devmajor[8], devminor[8];
        char prefix[155], pad[12];
};
_Static_assert(sizeof(struct ustar_header) == 512, "ustar header is one block");

struct tar *tar_open_fd(int fd, struct vgpu_error *err) {
        if (dlopen_library_load(&tar_zlib_library, err) < 0)
                return NULL;
        struct tar *t = calloc(1, sizeof(*t));
        if (!t) {
                vgpu_error_set(err, -ENOMEM, "out of memory");
                return NULL;
        }
        int dup_fd = dup(fd); /* gzclose closes its descriptor; the caller keeps fd */
        if (dup_fd < 0 || !(t->gz = zlib.gzdopen(dup_fd, "wb6"))) {
                /* gzdopen fails only for want of memory; dup for want of descriptors */
                vgpu_error_set_errno(err, dup_fd < 0 ? -errno : -ENOMEM, "cannot start the archive");
                if (dup_fd >= 0)
                        close(dup_fd);
                free(t);
                return NULL;
        }
        return t;
}

static int write_all(struct tar *t, const void *data, size_t size) {
        if (t->error)
                return t->error;
        while (size > 0) {
                unsigned chunk = size > (1u << 30) ? 1u << 30 : (unsigned) size;
                if (zlib.gzwrite(t->gz, data, chunk) != (int) chunk)
                        return (t->error = -EIO);
                data = (const char *) data + chunk;
                size -= chunk;
        }
        return 0;
}

static int write_padding(struct tar *t, size_t size) {
        static const char zeros[512];
        return size % 512 ? write_all(t, zeros, 512 - size % 512) : 0;
}

static void octal(char *field, size_t width, unsigned long long v) {
        snprintf(field, width, "%0*llo", (int) width - 1, v);
}

static int write_header(struct tar *t, const char *name, char typeflag, mode_t mode, time_t mtime,
                        size_t size, const char *linkname) {
        struct ustar_header h = {};
        size_t n = strlen(name);
        if (n <= sizeof(h.name))
                memcpy(h.name, name, n);
        else {
                /* split at a slash into prefix/name; the caller made a pax header if impossible */
                const char *slash = name + n - sizeof(h.name) - 1;
                slash = strchr(slash < name ? name : slash, '/');
                if (slash && (size_t) (slash - name) <= sizeof(h.prefix)) {
                        memcpy(h.prefix, name, (size_t) (slash - name));
                        memcpy(h.name, slash + 1, strlen(slash + 1));
                } else
                        memcpy(h.name, name, sizeof(h.name)); /* pax 'path' wins on extraction */
        }
        octal(h.mode, sizeof(h.mode), mode & 07777);
        octal(h.uid, sizeof(h.uid), 0);
        octal(h.gid, sizeof(h.gid), 0);
        octal(h.size, sizeof(h.size), size);
        octal(h.mtime, sizeof(h.mtime), (unsigned long long) (mtime > 0 ? mtime : 0));
        h.typeflag = typeflag;
        if (linkname)
                memcpy(h.linkname, linkname, strnlen(linkname, sizeof(h.linkname)));
        memcpy(h.magic, "ustar", 6);
        memcpy(h.version, "00", 2);
        memcpy(h.uname, "root", 4);
        memcpy(h.gname, "root", 4);
        memset(h.chksum, ' ', sizeof(h.chksum));
        unsigned sum = 0;
        for (size_t i = 0; i < sizeof(h); i++)
                sum += ((unsigned char *) &h)[i];
        snprintf(h.chksum, sizeof(h.chksum), "%06o", sum);
        return write_all(t, &h, sizeof(h));
}

/* A pax record is "<len> <key>=<value>\n" where len counts the whole record, itself included. */
static int pax_record(char *buf, size_t size, const char *key, const char *value) {
        size_t body = strlen(key) + strlen(value) + 3; /* ' ', '=', '\n' */
        size_t len = body + 1;
        while (len != body + (size_t) snprintf(NULL, 0, "%zu", len))
                len = body + (size_t) snprintf(NULL, 0, "%zu", len);
        return snprintf(buf, size, "%zu %s=%s\n", len, key, value);
}

static bool fits_ustar(const char *name) {
        size_t n = strlen(name);
        if (n <= 100)
                return true;
        const char *slash = strchr(name + (n > 101 ? n - 101 : 0), '/');
        return slash && (size_t) (slash - name) <= 155 && strlen(slash + 1) <= 100;
}

int tar_add(struct tar *t, const char *path, char type, mode_t mode, time_t mtime, const void *data,
            size_t size, const char *target) {
        char typeflag = type == 'd' ? '5' : type == 'l' ? '2' : '0';
        if (type != 'f')
                size = 0;
        bool long_path = !fits_ustar(path), long_link = target && strlen(target) > 100;
        if (long_path || long_link) {
                char ext[8192];
                int n = 0;
                if (long_path)
                        n += pax_record(ext + n, sizeof(ext) - (size_t) n, "path", path);
                if (long_link && n >= 0 && (size_t) n < sizeof(ext))
                        n += pax_record(ext + n, sizeof(ext) - (size_t) n, "linkpath", target);
                if (n < 0 || (size_t) n >= sizeof(ext))
                        return -ENAMETOOLONG;
                int r = write_header(t, "././@PaxHeader", 'x', 0644, mtime, (size_t) n, NULL);
                if (r >= 0)
                        r = write_all(t, ext, (size_t) n);
                if (r >= 0)
                        r = write_padding(t, (size_t) n);
                if (r < 0)
                        return r;
        }
        int r = write_header(t, path, typeflag, mode, mtime, size, target);
        if (r >= 0 && size > 0) {
                r = write_all(t, data, size);
                if (r >= 0)
                        r = write_padding(t, size);
        }
        return r;
}

int tar_close(struct tar *t) {
        static const char zeros[1024];
        int r = write_all(t, zeros, sizeof(zeros));
        if (zlib.gzclose(t->gz) != Z_OK && r >= 0)
                r = -EIO;
        free(t);
        return r;
}
