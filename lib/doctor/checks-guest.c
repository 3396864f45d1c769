/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * checks-guest.c — host driver against guest driver, per running NVIDIA vGPU. A guest driver of
 * a branch the host's vGPU manager does not support loads, then the vGPU fails at start or on
 * migration with only "Driver Version Mismatch" in the guest's log; NVML's own verdict
 * (nvmlGetVgpuCompatibility, read by the host scan) names the side that limits it.
 */
#include <stdio.h>

#include "doctor-internal.h"

static void limits_text(unsigned limits, char *buf, size_t size) {
        size_t len = 0;
        buf[0] = '\0';
        for (unsigned bit = 1; bit; bit <<= 1)
                if (limits & bit)
                        len += (size_t) snprintf(buf + len, len < size ? size - len : 0, "%s%s",
                                                 len ? ", " : "", vgpu_nvml_compat_limit_to_string(bit));
        if (!buf[0])
                snprintf(buf, size, "none");
}

static int check_one(struct doctor *d, const struct vgpu_gpu *g, const struct vgpu_nvml_vgpu *v,
                     const char *host_version) {
        _cleanup_text_ struct text ev = {};
        const char *subject = v->mdev_uuid[0] ? v->mdev_uuid : g->bdf;
        char limits[96], rem[512];

        text_line(&ev, "nvml: vGPU instance %u on %s, host driver %s", v->instance, g->bdf,
                  host_version ? host_version : "unknown");
        if (!v->guest_driver_version[0]) {
                text_line(&ev, "nvml: nvmlVgpuInstanceGetMetadata: guest info uninitialized");
                return doctor_add(d, subject, VGPU_CHECK_SKIP, &ev, NULL, "no guest driver loaded");
        }
        limits_text(v->guest_compat_limits, limits, sizeof(limits));
        text_line(&ev, "nvml: guest driver %s; nvmlGetVgpuCompatibility: %s (limited by: %s)",
                  v->guest_driver_version, vgpu_nvml_compat_to_string(v->guest_compat), limits);
        switch (v->guest_compat) {
        case VGPU_NVML_COMPAT_COMPATIBLE:
                return doctor_add(d, subject, VGPU_CHECK_PASS, &ev, NULL,
                                  "guest driver %s runs with host driver %s", v->guest_driver_version,
                                  host_version ? host_version : "unknown");
        case VGPU_NVML_COMPAT_INCOMPATIBLE:
                snprintf(rem, sizeof(rem),
                         "Install in the guest a driver of the branch the host's %s vGPU manager supports "
                         "(NVIDIA's "
                         "vGPU release notes list the guest drivers of each host release), or upgrade the "
                         "host's "
                         "vGPU manager to a release that supports guest driver %s.",
                         host_version ? host_version : "", v->guest_driver_version);
                return doctor_add(d, subject, VGPU_CHECK_FAIL, &ev, rem,
                                  "guest driver %s does not run with host driver %s (limited by: %s)",
                                  v->guest_driver_version, host_version ? host_version : "unknown", limits);
        default:
                return doctor_add(d, subject, VGPU_CHECK_SKIP, &ev, NULL,
                                  "NVML gave no verdict on guest driver %s", v->guest_driver_version);
        }
}

int check_nvidia_guest_driver(struct doctor *d) {
        bool any = false;
        for (size_t i = 0; i < d->host->n_gpus; i++) {
                const struct vgpu_gpu *g = &d->host->gpus[i];
                if (g->vendor_id != VGPU_PCI_VENDOR_NVIDIA || !g->nvml)
                        continue;
                for (size_t j = 0; j < g->nvml->n_vgpus; j++) {
                        any = true;
                        int r = check_one(d, g, &g->nvml->vgpus[j], g->nvml->driver_version);
                        if (r < 0)
                                return r;
                }
        }
        if (any)
                return 0;
        _cleanup_text_ struct text ev = {};
        text_line(&ev, "nvml: nvmlDeviceGetActiveVgpus lists no vGPU (or no NVML readings)");
        return doctor_add(d, NULL, VGPU_CHECK_SKIP, &ev, NULL, "no running NVIDIA vGPU");
}
