/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * nvml-vgpu-types.c — the frame buffer of NVIDIA vendor-VFIO types, from NVML.
 *
 * mdev types describe themselves ("framebuffer=4096M" in their description); a vendor-VFIO VF
 * lists only "ID : name" in nvidia/creatable_vgpu_types, so without this the frame buffer of
 * those types was unknown (the `types` FB column empty, and `--framebuffer` could pick none).
 * The ids are NVML's vGPU type ids (nvmlVgpuTypeId_t), which nvmlVgpuTypeGetFramebufferSize
 * answers for. NVML is loaded once per call, for all parents together: nvmlInit costs far more
 * than the lookups. No library, no driver or an unknown id: the frame buffer stays unknown.
 */
#include <dlfcn.h>
#include <stdlib.h>

#include "host-internal.h"
#include "nvml-abi.h"

void nvml_vgpu_type_framebuffers(struct vgpu_parent *parents, size_t n_parents) {
        bool any = false;
        for (size_t i = 0; i < n_parents; i++)
                for (size_t t = 0; t < parents[i].n_types; t++)
                        any |= parents[i].types[t].kind == VGPU_TYPE_NVIDIA_VFIO &&
                               parents[i].types[t].framebuffer_bytes < 0;
        if (!any)
                return; /* no driver library loaded for nothing */
        void *dl = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
        if (!dl)
                return;
        nvml_return_t (*init)(void), (*shutdown)(void), (*fb_size)(unsigned, unsigned long long *);
        *(void **) &init = dlsym(dl, "nvmlInit_v2");
        *(void **) &shutdown = dlsym(dl, "nvmlShutdown");
        *(void **) &fb_size = dlsym(dl, "nvmlVgpuTypeGetFramebufferSize");
        if (init && shutdown && fb_size && init() == 0) {
                for (size_t i = 0; i < n_parents; i++)
                        for (size_t t = 0; t < parents[i].n_types; t++) {
                                struct vgpu_type *type = &parents[i].types[t];
                                char *end;
                                unsigned long id = strtoul(type->id, &end, 10);
                                unsigned long long bytes;
                                if (type->kind != VGPU_TYPE_NVIDIA_VFIO || type->framebuffer_bytes >= 0 ||
                                    *end || end == type->id)
                                        continue;
                                if (fb_size((unsigned) id, &bytes) == 0 && bytes > 0 && bytes <= INT64_MAX)
                                        type->framebuffer_bytes = (int64_t) bytes;
                        }
                shutdown();
        }
        dlclose(dl);
}
