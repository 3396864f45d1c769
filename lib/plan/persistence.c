/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * persistence.c — host.yaml's `persistence: on|off` per GPU: which GPUs an entry selects, and
 * the vendor's backend to plan it (a driver mode of the vendor's: NVIDIA's persistence mode and
 * nvidia-persistenced, lib/backend/nvidia-persistence.c). A GPU whose vendor has no such mode is
 * refused when the entry names it; `gpus: all` selects the GPUs of vendors that have one.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "basic/error-util.h"
#include "basic/macro.h"
#include "backend-states.h"
#include "plan-internal.h"

/* The backend that plans the mode of gpu's vendor, or NULL. */
static const struct vgpu_backend *mode_backend(const struct vgpu_gpu *gpu) {
        const struct vgpu_backend *be = backend_for_vendor(gpu->vendor_id);
        return be && be->plan_persistence ? be : NULL;
}

static bool gpu_selected(const struct vgpu_config_gpu *cg, const struct vgpu_gpu *gpu) {
        unsigned v, d;
        switch (cg->select) {
        case VGPU_SELECT_ALL:
                return mode_backend(gpu);
        case VGPU_SELECT_BDF:
        case VGPU_SELECT_PARENT:
                return streq(cg->value, gpu->bdf);
        case VGPU_SELECT_PCI_ID:
                return sscanf(cg->value, "%x:%x", &v, &d) == 2 && gpu->vendor_id == v && gpu->device_id == d;
        }
        return false;
}

/* A restore limited to only[]: the GPU is listed, or one of its VFs is. */
static bool gpu_in_only(const struct vgpu_host *host, const char *const *only, size_t n_only,
                        const char *bdf) {
        if (!only)
                return true;
        for (size_t i = 0; i < n_only; i++) {
                if (streq(only[i], bdf))
                        return true;
                const struct vgpu_gpu *vf = vgpu_host_find_gpu(host, only[i]);
                if (vf && streq(vf->physfn, bdf))
                        return true;
        }
        return false;
}

/* "persistence is NVIDIA's driver mode; BDF (driver D) has none": the vendors that have one. */
static int refuse(const struct vgpu_config *cfg, const struct vgpu_config_gpu *cg, const struct vgpu_gpu *gpu,
                  const struct vgpu_backend *const *list, size_t n_backends, struct vgpu_error *err) {
        char vendors[128] = "";
        size_t n = 0, k = 0;
        for (size_t i = 0; i < n_backends && n < sizeof(vendors); i++)
                if (list[i]->plan_persistence)
                        n += (size_t) snprintf(vendors + n, sizeof(vendors) - n, "%s%s's", k++ ? " or " : "",
                                               list[i]->vendor ?: list[i]->name);
        return vgpu_error_set(err, -EOPNOTSUPP,
                              "%s:%d: persistence is %s driver mode; %s (driver %s) has none", cfg->source,
                              cg->line, k ? vendors : "no", gpu->bdf, strempty(gpu->driver));
}

int plan_persistence(const struct vgpu_host *host, const struct vgpu_config *cfg, const char *const *only,
                     size_t n_only, struct vgpu_plan *plan, size_t *allocated, struct vgpu_error *err) {
        struct backend_plan ctx = { .cfg = cfg, .plan = plan, .allocated = allocated };
        const struct vgpu_backend *const *list;
        size_t n_backends = backend_list(&list);
        struct plan_backend_states states;
        int r = plan_backend_states_init(&states, list, n_backends, PLAN_SETTING_PERSISTENCE, &ctx);
        if (r < 0)
                return r;
        for (size_t c = 0; r >= 0 && c < cfg->n_gpus; c++) {
                const struct vgpu_config_gpu *cg = &cfg->gpus[c];
                if (cg->persistence < 0)
                        continue;
                bool found = false;
                for (size_t i = 0; r >= 0 && i < host->n_gpus; i++) {
                        const struct vgpu_gpu *gpu = &host->gpus[i];
                        if (gpu->physfn[0] || !gpu_selected(cg, gpu))
                                continue;
                        found = true;
                        const struct vgpu_backend *be = mode_backend(gpu);
                        if (!be)
                                r = refuse(cfg, cg, gpu, list, n_backends, err);
                        else if (gpu_in_only(host, only, n_only, gpu->bdf))
                                r = plan_backend_states_plan(&states, be, cg, gpu, err);
                }
                if (r >= 0 && !found && (cg->select == VGPU_SELECT_BDF || cg->select == VGPU_SELECT_PARENT) &&
                    !only)
                        r = vgpu_error_set(err, -ENODEV, "%s:%d: persistence: no GPU %s on this host",
                                           cfg->source, cg->line, cg->value);
        }
        return plan_backend_states_finish(&states, r, err);
}
