/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* backend.c — choosing a vendor backend for a parent, and text helpers the backends share. */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "basic/macro.h"

static const struct vgpu_backend *const backends[] = {
        &backend_nvidia,
        &backend_amd,
        &backend_intel,
};

const struct vgpu_backend *backend_for_driver(const char *driver) {
        if (driver)
                for (size_t i = 0; i < ELEMENTSOF(backends); i++)
                        for (const char *const *d = backends[i]->drivers; *d; d++)
                                if (streq(*d, driver))
                                        return backends[i];
        return &backend_mdev;
}

int64_t parse_size_with_unit(const char *s) {
        char *end;
        if (!s || !isdigit((unsigned char) *s))
                return -1;
        unsigned long long v = strtoull(s, &end, 10);
        while (*end == ' ')
                end++;
        uint64_t mult;
        switch (toupper((unsigned char) *end)) {
        case 'K':
                mult = 1ULL << 10;
                break;
        case 'M':
                mult = 1ULL << 20;
                break;
        case 'G':
                mult = 1ULL << 30;
                break;
        default:
                return -1; /* a bare number has no unit we could trust */
        }
        if (v > INT64_MAX / mult)
                return -1;
        return (int64_t) (v * mult);
}
