/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * mdev.c (backend) — parents that no vendor backend claims: the kernel's sample drivers and any
 * other mdev driver. The kernel ABI gives no frame buffer size; mbochs says it in prose
 * ("virtual display, 16 MB video memory"), which is the one pattern read here.
 */
#include <string.h>

#include "backend.h"

static void mdev_describe_type(struct vgpu_type *t) {
        const char *p = t->description ? strstr(t->description, " MB video memory") : NULL;
        if (!p)
                return;
        /* walk back over the number */
        const char *q = p;
        while (q > t->description && q[-1] >= '0' && q[-1] <= '9')
                q--;
        if (q == p)
                return;
        t->framebuffer_bytes = parse_size_with_unit(q);
}

static const char *const mdev_drivers[] = { NULL };

const struct vgpu_backend backend_mdev = {
        .name = "mdev",
        .drivers = mdev_drivers,
        .describe_type = mdev_describe_type,
};
