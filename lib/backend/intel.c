/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * intel.c — Intel GVT-g (i915 mdev types) and xe SR-IOV. A GVT-g type's graphics memory is
 * its low (aperture) plus high (hidden) GM size, as its description says:
 *     low_gm_size: 128MB\nhigh_gm_size: 512MB\nfence: 4\nresolution: 1920x1200\nweight: 4
 * GVT-g instances are mdev devices (the kernel's ABI, backend mdev.c); the xe scheduler policy
 * is planned here.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "backend.h"
#include "basic/error-util.h"
#include "basic/macro.h"
#include "basic/root.h"

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

/*
 * Scheduling. Intel xe (SR-IOV, Linux 6.19 sysfs): each function's GuC scheduling is its
 * execution quantum and preemption timeout, in /sys/bus/pci/devices/PF/sriov_admin/vfN/profile/;
 * 0 means unlimited. best-effort: 0/0 (a VF keeps the engine while it has work); equal-share:
 * the time slice (default 20 ms, xe's granularity is coarser than NVIDIA's) and twice it as the
 * preemption timeout, so busy VFs rotate. The kernel skips idle VFs; xe offers no strict fixed
 * share in sysfs, so fixed-share is refused. GVT-g's weights are fixed per type: refused.
 */
static int xe_policy(struct backend_plan *ctx, const struct vgpu_config_gpu *cg, const struct vgpu_gpu *gpu,
                     struct vgpu_error *err) {
        const char *source = backend_plan_config(ctx)->source;
        const struct vgpu_config_policy *pol = &cg->policy;
        if (pol->scheduler == VGPU_SCHED_FIXED_SHARE)
                return vgpu_error_set(err, -EOPNOTSUPP,
                                      "%s:%d: %s (driver xe): xe's sysfs has no strict fixed share (idle VFs "
                                      "are skipped); use equal-share",
                                      source, cg->line, gpu->bdf);
        if (!gpu->sriov)
                return vgpu_error_set(err, -EOPNOTSUPP, "%s:%d: %s (driver xe) has no SR-IOV to schedule",
                                      source, cg->line, gpu->bdf);
        unsigned quantum = pol->scheduler == VGPU_SCHED_EQUAL_SHARE
                                   ? (unsigned) (pol->timeslice_ms > 0 ? pol->timeslice_ms : 20)
                                   : 0;
        char want_q[16], want_p[16];
        snprintf(want_q, sizeof(want_q), "%u", quantum);
        snprintf(want_p, sizeof(want_p), "%u", quantum * 2000);
        /* PF and every possible VF: a VF enabled later starts with the same profile */
        for (unsigned fn = 0; fn <= gpu->total_vfs; fn++) {
                static const char *const attrs[] = { "exec_quantum_ms", "preempt_timeout_us" };
                for (size_t k = 0; k < 2; k++) {
                        char path[256], cur[32];
                        if (fn == 0)
                                snprintf(path, sizeof(path),
                                         "/sys/bus/pci/devices/%s/sriov_admin/pf/profile/%s", gpu->bdf,
                                         attrs[k]);
                        else
                                snprintf(path, sizeof(path),
                                         "/sys/bus/pci/devices/%s/sriov_admin/vf%u/profile/%s", gpu->bdf, fn,
                                         attrs[k]);
                        if (root_read(path, cur, sizeof(cur)) < 0) {
                                if (fn == 0)
                                        return vgpu_error_set(
                                                err, -EOPNOTSUPP,
                                                "%s:%d: %s (driver xe): no %s%s (the sriov_admin sysfs tree "
                                                "needs Linux 6.19 or newer)",
                                                source, cg->line, gpu->bdf, root_prefix(), path);
                                continue;
                        }
                        const char *want = k == 0 ? want_q : want_p;
                        if (strcmp(cur, want) != 0) {
                                int r = backend_policy_write(ctx, path, want);
                                if (r < 0)
                                        return r;
                        }
                }
        }
        return 0;
}

static int intel_plan_policy(struct backend_plan *ctx, const struct vgpu_config_gpu *cg,
                             const struct vgpu_gpu *gpu, void **state, struct vgpu_error *err) {
        (void) state;
        if (streq(gpu->driver, "xe"))
                return xe_policy(ctx, cg, gpu, err);
        return backend_policy_refuse(
                ctx, cg, gpu,
                "GVT-g schedules by the weight fixed in each type; choose the type instead of a policy", err);
}

static const char *const intel_drivers[] = { "i915", "xe", NULL };

const struct vgpu_backend backend_intel = {
        .name = "intel",
        .vendor = "Intel",
        .drivers = intel_drivers,
        .describe_type = intel_describe_type,
        .create = backend_mdev_create_action,
        .remove = backend_mdev_remove_action,
        .pci_vendor = VGPU_PCI_VENDOR_INTEL,
        .plan_policy = intel_plan_policy,
};
BACKEND_REGISTER(backend_intel);
