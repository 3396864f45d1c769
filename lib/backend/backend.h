/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * backend.h — the one small ops table behind which each vendor's specifics live.
 *
 * The generic mdev code (lib/host/mdev.c) reads what the kernel ABI offers; a backend adds what
 * only its vendor knows: how to read frame buffer size and instance limits out of its type
 * descriptions, and which types it offers outside the mdev ABI. The lifecycle operations
 * (create, remove, policy) join this table as they are built.
 */
#pragma once

#include <stdbool.h>

#include "vgpu/host.h"

struct vgpu_backend {
        const char *name;
        /* Drivers whose parents this backend owns, NULL-terminated. */
        const char *const *drivers;
        /* Fill t->framebuffer_bytes / t->max_instances from t->name and t->description.
         * Leaves them at -1 when the vendor's text does not say: never a guess. */
        void (*describe_type)(struct vgpu_type *t);
        /* Types a parent offers outside the mdev ABI, read relative to the parent's sysfs dir.
         * Returns the number of types added to *p, or -errno. NULL when the vendor has none. */
        int (*list_vfio_types)(int devfd, struct vgpu_parent *p);
};

extern const struct vgpu_backend backend_mdev; /* kernel ABI + sample drivers (fallback) */
extern const struct vgpu_backend backend_nvidia;
extern const struct vgpu_backend backend_amd;
extern const struct vgpu_backend backend_intel;

/* The backend for a parent bound to driver (NULL: a virtual parent); never NULL. */
const struct vgpu_backend *backend_for_driver(const char *driver);

/* Parse "<number><unit>" with unit K/M/G(B) (binary, as drivers mean it) at s. -1 if none. */
int64_t parse_size_with_unit(const char *s);
