/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * amd.c — AMD MxGPU: the GIM driver (or amdgpu on newer parts) splits the GPU into SR-IOV VFs;
 * there are no mdev types, each VF is one vGPU. Inventory sees the VFs through the PCI scan;
 * this backend claims the drivers so nothing else mistakes them for mdev parents.
 *
 * GIM takes its world-switch scheduler as module parameters for all its GPUs: sched_option 0
 * "round robin solid" (every VF keeps its slot, idle or not: fixed share), 2 "round robin
 * liquid" (idle slots go to busy VFs: equal share, and best effort), and sched_interval, the
 * time slice in ms (default 6). One policy per host, then.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "basic/error-util.h"
#include "basic/macro.h"

#define AMD_POLICY_FILE "/etc/modprobe.d/gim-vgpuctl.conf"

static void amd_describe_type(struct vgpu_type *t) {
        (void) t; /* no mdev types on MxGPU */
}

struct amd_policy {
        const struct vgpu_config_policy *policy; /* the first entry's: every other must agree */
        int line;
};

/* GIM's parameters are module-wide: every AMD GPU must ask for the same policy. */
static int amd_plan_policy(struct backend_plan *ctx, const struct vgpu_config_gpu *cg,
                           const struct vgpu_gpu *gpu, void **state, struct vgpu_error *err) {
        if (!streq(gpu->driver, "gim"))
                return backend_policy_refuse(ctx, cg, gpu, NULL, err);
        struct amd_policy *ap = *state;
        if (ap && memcmp(ap->policy, &cg->policy, sizeof(cg->policy)) != 0)
                return vgpu_error_set(
                        err, -EINVAL,
                        "%s:%d: GIM's scheduler is one for all AMD GPUs, and line %d asks for another",
                        backend_plan_config(ctx)->source, cg->line, ap->line);
        if (!ap) {
                if (!(ap = calloc(1, sizeof(*ap))))
                        return -ENOMEM;
                *state = ap;
        }
        ap->policy = &cg->policy;
        ap->line = cg->line;
        return 0;
}

static int amd_plan_policy_done(struct backend_plan *ctx, void *state, bool commit, struct vgpu_error *err) {
        (void) err;
        struct amd_policy *ap = state;
        int r = 0;
        if (commit) {
                char *content = NULL;
                const struct vgpu_config_policy *amd = ap->policy;
                /* liquid round robin for best effort and equal share, solid for fixed share */
                int opt = amd->scheduler == VGPU_SCHED_FIXED_SHARE ? 0 : 2;
                if (amd->timeslice_ms > 0)
                        r = asprintf(&content,
                                     "# Written by vgpuctl apply: AMD GIM world-switch scheduler.\noptions "
                                     "gim sched_option=%d sched_interval=%d\n",
                                     opt, amd->timeslice_ms);
                else
                        r = asprintf(&content,
                                     "# Written by vgpuctl apply: AMD GIM world-switch scheduler.\noptions "
                                     "gim sched_option=%d\n",
                                     opt);
                r = r < 0 ? -ENOMEM
                          : backend_policy_file(ctx, AMD_POLICY_FILE, content,
                                                "the AMD GIM scheduler takes effect when the gim module is "
                                                "reloaded (or at the next boot)");
        }
        free(ap);
        return r;
}

static const char *const amd_drivers[] = { "gim", "amdgpu", NULL };

const struct vgpu_backend backend_amd = {
        .name = "amd",
        .vendor = "AMD",
        .drivers = amd_drivers,
        .describe_type = amd_describe_type,
        .pci_vendor = VGPU_PCI_VENDOR_AMD,
        .plan_policy = amd_plan_policy,
        .plan_policy_done = amd_plan_policy_done,
};
BACKEND_REGISTER(backend_amd);
