/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * intel.c — Intel GVT-g (i915 mdev types) and xe SR-IOV. A GVT-g type's graphics memory is
 * its low (aperture) plus high (hidden) GM size, as its description says:
 *     low_gm_size: 128MB\nhigh_gm_size: 512MB\nfence: 4\nresolution: 1920x1200\nweight: 4
 */
#include <string.h>

#include "backend.h"

static int64_t line_value(const char *desc, const char *key) {
        const char *p = strstr(desc, key);
        if (!p)
                return -1;
        p += strlen(key);
        while (*p == ' ' || *p == ':')
                p++;
        return parse_size_with_unit(p);
}

static void intel_describe_type(struct vgpu_type *t) {
        if (!t->description)
                return;
        int64_t low = line_value(t->description, "low_gm_size");
        int64_t high = line_value(t->description, "high_gm_size");
        if (low >= 0 && high >= 0)
                t->framebuffer_bytes = low + high;
}

static const char *const intel_drivers[] = { "i915", "xe", NULL };

const struct vgpu_backend backend_intel = {
        .name = "intel",
        .drivers = intel_drivers,
        .describe_type = intel_describe_type,
};
