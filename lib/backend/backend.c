/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* backend.c — the registry of vendor backends (BACKEND_REGISTER), and text helpers they share. */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "basic/macro.h"
#include "basic/size-util.h"

/* The linker collects every BACKEND_REGISTER() pointer between these two symbols; weak, so that a
 * link with no backend at all still resolves them (to NULL: an empty list). */
extern const struct vgpu_backend *const __start_vgpu_backends[] __attribute__((weak));
extern const struct vgpu_backend *const __stop_vgpu_backends[] __attribute__((weak));

size_t backend_list(const struct vgpu_backend *const **ret) {
        *ret = __start_vgpu_backends;
        return __start_vgpu_backends ? (size_t) (__stop_vgpu_backends - __start_vgpu_backends) : 0;
}

const struct vgpu_backend *backend_for_driver(const char *driver) {
        const struct vgpu_backend *const *list;
        size_t n = backend_list(&list);
        if (driver)
                for (size_t i = 0; i < n; i++)
                        for (const char *const *d = list[i]->drivers; *d; d++)
                                if (streq(*d, driver))
                                        return list[i];
        return &backend_mdev;
}

const struct vgpu_backend *backend_for_vendor(uint16_t vendor) {
        const struct vgpu_backend *const *list;
        size_t n = backend_list(&list);
        for (size_t i = 0; vendor && i < n; i++)
                if (list[i]->pci_vendor == vendor)
                        return list[i];
        return NULL;
}

const struct vgpu_backend *backend_by_name(const char *name) {
        if (!name || streq(name, backend_mdev.name))
                return &backend_mdev;
        const struct vgpu_backend *const *list;
        size_t n = backend_list(&list);
        for (size_t i = 0; i < n; i++)
                if (streq(list[i]->name, name))
                        return list[i];
        return NULL;
}

bool backend_typed_vf(const struct vgpu_gpu *gpu) {
        if (!gpu)
                return false;
        const struct vgpu_backend *be = backend_for_driver(gpu->driver);
        return be->typed_vf && be->typed_vf(gpu);
}

int64_t parse_size_with_unit(const char *s) {
        char *end;
        if (!s || !isdigit((unsigned char) *s))
                return -1;
        unsigned long long v = strtoull(s, &end, 10);
        while (*end == ' ')
                end++;
        uint64_t mult = size_unit_factor(*end);
        /* a bare number has no unit we could trust; no driver speaks of T */
        if (!mult || mult > size_unit_factor('G'))
                return -1;
        if (v > INT64_MAX / mult)
                return -1;
        return (int64_t) (v * mult);
}
