/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * policy.c — scheduler policy from host.yaml to each vendor's real knob.
 *
 * NVIDIA's vGPU scheduler is the RmPVMRL registry key of the nvidia module, per GPU through
 * NVreg_RegistryDwordsPerDevice: 0x00 best effort, 0x01 equal share, 0x11 fixed share, with a
 * custom time slice (ms, 1-30) in bits 16-23 (e.g. 0x00030001: equal share, 3 ms). It takes
 * effect when the module loads, so apply writes /etc/modprobe.d and says a reload is needed.
 * The frame-rate limiter is per vGPU: frame_rate_limiter=0|1 in nvidia/vgpu_params.
 * Other vendors' knobs (AMD GIM module parameters, Intel xe exec_quantum_ms) are refused with
 * a clear error until they are implemented.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "basic/error-util.h"
#include "basic/macro.h"
#include "basic/root.h"
#include "basic/sysfs.h"
#include "plan-internal.h"

unsigned nvidia_rmpvmrl(const struct vgpu_config_policy *p);
unsigned nvidia_rmpvmrl(const struct vgpu_config_policy *p) {
        unsigned v = p->scheduler == VGPU_SCHED_EQUAL_SHARE ? 0x01 : p->scheduler == VGPU_SCHED_FIXED_SHARE ? 0x11 : 0x00;
        if (v && p->timeslice_ms > 0)
                v |= (unsigned) p->timeslice_ms << 16;
        return v;
}

int plan_policy(const struct vgpu_host *host, const struct vgpu_config *cfg, struct vgpu_plan *plan, size_t *allocated,
                struct vgpu_error *err) {
        char *text = NULL;
        size_t size = 0;
        FILE *f = NULL;
        int n = 0;
        for (size_t g = 0; g < cfg->n_gpus; g++) {
                const struct vgpu_config_gpu *cg = &cfg->gpus[g];
                if (!cg->has_policy || cg->policy.scheduler == VGPU_SCHED_UNSET)
                        continue;
                for (size_t i = 0; i < host->n_gpus; i++) {
                        const struct vgpu_gpu *gpu = &host->gpus[i];
                        bool sel = cg->select == VGPU_SELECT_ALL ||
                                   ((cg->select == VGPU_SELECT_BDF || cg->select == VGPU_SELECT_PARENT) && strcmp(cg->value, gpu->bdf) == 0);
                        unsigned v, d;
                        if (cg->select == VGPU_SELECT_PCI_ID && sscanf(cg->value, "%x:%x", &v, &d) == 2)
                                sel = gpu->vendor_id == v && gpu->device_id == d;
                        if (!sel || gpu->physfn[0] || (!gpu->mdev_parent && !gpu->sriov && cg->select == VGPU_SELECT_ALL))
                                continue;
                        if (!streq(gpu->driver, "nvidia")) {
                                if (f)
                                        fclose(f);
                                free(text);
                                return vgpu_error_set(err, -EOPNOTSUPP, "%s:%d: scheduler policies are implemented for NVIDIA vGPU (RmPVMRL); %s (driver %s) has no knob vgpuctl can set yet",
                                                      cfg->source, cg->line, gpu->bdf, strempty(gpu->driver));
                        }
                        if (!f && !(f = open_memstream(&text, &size)))
                                return -ENOMEM;
                        fprintf(f, "%spci=%s;RmPVMRL=0x%02x", n++ ? ";" : "", gpu->bdf, nvidia_rmpvmrl(&cg->policy));
                }
                if (cg->select != VGPU_SELECT_ALL && cg->select != VGPU_SELECT_PCI_ID && !vgpu_host_find_gpu(host, cg->value))
                        return vgpu_error_set(err, -EOPNOTSUPP, "%s:%d: a scheduler policy needs a GPU; %s is none", cfg->source, cg->line, cg->value);
        }
        if (!f)
                return 0;
        fclose(f);
        char *content = NULL;
        int r = asprintf(&content, "# Written by vgpuctl apply: NVIDIA vGPU scheduler per GPU (RmPVMRL).\n"
                                   "options nvidia NVreg_RegistryDwordsPerDevice=\"%s\"\n", text);
        free(text);
        if (r < 0)
                return -ENOMEM;
        char full[4096], old[4096];
        bool same = root_path(full, sizeof(full), NVIDIA_POLICY_FILE) >= 0 &&
                    sysfs_read_at(AT_FDCWD, full, old, sizeof(old)) >= 0 && strncmp(old, content, strlen(old)) == 0 &&
                    strlen(old) + 1 == strlen(content);
        if (same) {
                free(content);
                return 0;
        }
        if (!GREEDY_REALLOC(plan->actions, *allocated, plan->n_actions + 1)) {
                free(content);
                return -ENOMEM;
        }
        plan->actions[plan->n_actions++] = (struct vgpu_action) {
                .kind = VGPU_ACTION_SET_POLICY, .detail = content,
                .spec = { .parent = strdup(NVIDIA_POLICY_FILE) },
        };
        free(plan->notes);
        plan->notes = strdup("the NVIDIA scheduler policy takes effect when the nvidia module is reloaded (or at the next boot)");
        return 0;
}
