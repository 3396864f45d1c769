/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * cdi-driver.c — the host driver's user-space libraries a slice's container needs to run CUDA
 * (libcuda.so.1, libnvidia-ml.so.1, ...), found the way the host's own programs find them:
 * through the dynamic loader's cache, VGPU_ROOT/etc/ld.so.cache, which knows where the driver
 * installed them (/usr/lib/x86_64-linux-gnu, /usr/lib64, Debian's nvidia/current, ...).
 *
 * The cache's format is glibc's (elf/dl-cache.h): an optional old-format table, then the
 * "glibc-ld.so.cache1.1" header, nlibs entries of 24 bytes and a string table whose offsets
 * count from that header. Entries come in the loader's order of preference, so the first one
 * for a name of this architecture is the one the host loads.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "basic/macro.h"
#include "basic/root.h"
#include "manage.h"

/* What NVIDIA's container toolkit mounts for compute, by soname. */
static const char *const driver_libraries[] = {
        "libcuda.so.1",
        "libcudadebugger.so.1",
        "libnvidia-ml.so.1",
        "libnvidia-ptxjitcompiler.so.1",
        "libnvidia-nvvm.so.4",
        "libnvidia-gpucomp.so",
        "libnvidia-allocator.so.1",
        "libnvidia-cfg.so.1",
        "libnvidia-opencl.so.1",
};

#define CACHE_MAGIC_NEW   "glibc-ld.so.cache1.1"
#define CACHE_HEADER_SIZE 48 /* magic[17] version[3] nlibs len_strings flags pad ext unused[3] */
#define CACHE_ENTRY_SIZE  24 /* int32 flags, uint32 key, value, osversion, uint64 hwcap */
#define CACHE_MAX_SIZE    (64u << 20)
#define FLAG_ELF_LIBC6    0x0003
#if defined(__x86_64__)
#define FLAG_ARCH 0x0300 /* FLAG_X8664_LIB64 */
#elif defined(__aarch64__)
#define FLAG_ARCH 0x0a00 /* FLAG_AARCH64_LIB64 */
#else
#define FLAG_ARCH -1 /* any: the first libc6 entry */
#endif

static uint32_t u32(const unsigned char *p) {
        uint32_t v;
        memcpy(&v, p, sizeof(v));
        return v;
}

static int read_cache(unsigned char **ret, size_t *ret_size) {
        int fd = root_open("/etc/ld.so.cache", O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return fd;
        struct stat st;
        if (fstat(fd, &st) < 0 || st.st_size <= 0 || (uint64_t) st.st_size > CACHE_MAX_SIZE) {
                close(fd);
                return -EBADMSG;
        }
        unsigned char *buf = malloc((size_t) st.st_size);
        if (!buf) {
                close(fd);
                return -ENOMEM;
        }
        size_t n = 0;
        while (n < (size_t) st.st_size) {
                ssize_t k = read(fd, buf + n, (size_t) st.st_size - n);
                if (k <= 0)
                        break;
                n += (size_t) k;
        }
        close(fd);
        *ret = buf;
        *ret_size = n;
        return 0;
}

/* A NUL-terminated string at offset off of the table [base, end), or NULL. */
static const char *cache_string(const unsigned char *base, const unsigned char *end, uint32_t off) {
        if (off >= (size_t) (end - base))
                return NULL;
        const char *s = (const char *) base + off;
        return memchr(s, '\0', (size_t) (end - base) - off) ? s : NULL;
}

int cdi_driver_libraries(struct cdi_library **ret, size_t *ret_n) {
        *ret = NULL;
        *ret_n = 0;
        _cleanup_free_ unsigned char *buf = NULL;
        size_t size = 0;
        int r = read_cache(&buf, &size);
        if (r == -ENOENT)
                return 0; /* no cache: no driver libraries to hand out */
        if (r < 0)
                return r;
        const unsigned char *end = buf + size;
        const unsigned char *h = memmem(buf, size, CACHE_MAGIC_NEW, strlen(CACHE_MAGIC_NEW));
        if (!h || (size_t) (end - h) < CACHE_HEADER_SIZE)
                return 0; /* only the old format (glibc < 2.32 may write it): none found */
        uint32_t nlibs = u32(h + 20);
        if (nlibs > ((size_t) (end - h) - CACHE_HEADER_SIZE) / CACHE_ENTRY_SIZE)
                return -EBADMSG;
        struct cdi_library *out = calloc(ELEMENTSOF(driver_libraries), sizeof(*out));
        if (!out)
                return -ENOMEM;
        size_t n = 0;
        for (size_t l = 0; l < ELEMENTSOF(driver_libraries); l++)
                for (uint32_t i = 0; i < nlibs; i++) {
                        const unsigned char *e = h + CACHE_HEADER_SIZE + (size_t) i * CACHE_ENTRY_SIZE;
                        int32_t flags = (int32_t) u32(e);
                        const char *key = cache_string(h, end, u32(e + 4)),
                                   *value = cache_string(h, end, u32(e + 8));
                        if (!key || !value || !streq(key, driver_libraries[l]) ||
                            (flags & 0xff) != FLAG_ELF_LIBC6 ||
                            (FLAG_ARCH != -1 && (flags & 0xff00) != FLAG_ARCH) || value[0] != '/' ||
                            strlen(value) >= sizeof(out[n].host_path))
                                continue;
                        snprintf(out[n].soname, sizeof(out[n].soname), "%s", key);
                        snprintf(out[n].host_path, sizeof(out[n].host_path), "%s", value);
                        n++;
                        break;
                }
        *ret = out;
        *ret_n = n;
        return 0;
}
