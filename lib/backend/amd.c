/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * amd.c — AMD MxGPU: the GIM driver (or amdgpu on newer parts) splits the GPU into SR-IOV VFs;
 * there are no mdev types, each VF is one vGPU. Inventory sees the VFs through the PCI scan;
 * this backend claims the drivers so nothing else mistakes them for mdev parents.
 */
#include "backend.h"

static void amd_describe_type(struct vgpu_type *t) {
        (void) t; /* no mdev types on MxGPU */
}

static const char *const amd_drivers[] = { "gim", "amdgpu", NULL };

const struct vgpu_backend backend_amd = {
        .name = "amd",
        .drivers = amd_drivers,
        .describe_type = amd_describe_type,
};
