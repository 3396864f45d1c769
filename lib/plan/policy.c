/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * policy.c — scheduler policy from host.yaml to each vendor's real knob.
 *
 * NVIDIA's vGPU scheduler is the RmPVMRL registry key of the nvidia module, per GPU through
 * NVreg_RegistryDwordsPerDevice: 0x00 best effort, 0x01 equal share, 0x11 fixed share, with a
 * custom time slice (ms, 1-30) in bits 16-23 (e.g. 0x00030001: equal share, 3 ms). It takes
 * effect when the module loads, so apply writes /etc/modprobe.d and says a reload is needed.
 * The frame-rate limiter is per vGPU: frame_rate_limiter=0|1 in nvidia/vgpu_params (plan.c
 * adds it to the attributes of the vGPUs it creates and defines).
 *
 * AMD's GIM takes its world-switch scheduler as module parameters for all its GPUs:
 * sched_option 0 "round robin solid" (every VF keeps its slot, idle or not: fixed share),
 * 2 "round robin liquid" (idle slots go to busy VFs: equal share, and best effort), and
 * sched_interval, the time slice in ms (default 6). One policy per host, then.
 *
 * Intel xe (SR-IOV, Linux 6.19 sysfs): each function's GuC scheduling is its execution quantum
 * and preemption timeout, in /sys/bus/pci/devices/PF/sriov_admin/vfN/profile/; 0 means
 * unlimited. best-effort: 0/0 (a VF keeps the engine while it has work); equal-share: the time
 * slice (default 20 ms, xe's granularity is coarser than NVIDIA's) and twice it as the
 * preemption timeout, so busy VFs rotate. The kernel skips idle VFs; xe offers no strict
 * fixed share in sysfs, so fixed-share is refused. GVT-g's weights are fixed per type: refused.
 */
#include <errno.h>
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
        unsigned v = p->scheduler == VGPU_SCHED_EQUAL_SHARE   ? 0x01
                     : p->scheduler == VGPU_SCHED_FIXED_SHARE ? 0x11
                                                              : 0x00;
        if (v && p->timeslice_ms > 0)
                v |= (unsigned) p->timeslice_ms << 16;
        return v;
}

#define AMD_POLICY_FILE "/etc/modprobe.d/gim-vgpuctl.conf"

static int add_policy_action(struct vgpu_plan *plan, size_t *allocated, const char *path, char *content,
                             const char *note) {
        char old[4096];
        bool same = root_read(path, old, sizeof(old)) >= 0 && strlen(old) + 1 == strlen(content) &&
                    strncmp(old, content, strlen(old)) == 0;
        if (same) {
                free(content);
                return 0;
        }
        if (!GREEDY_REALLOC(plan->actions, *allocated, plan->n_actions + 1)) {
                free(content);
                return -ENOMEM;
        }
        plan->actions[plan->n_actions++] = (struct vgpu_action){
                .kind = VGPU_ACTION_SET_POLICY,
                .detail = content,
                .spec = { .parent = strdup(path) },
        };
        if (!plan->actions[plan->n_actions - 1].spec.parent)
                return -ENOMEM;
        char *joined = NULL;
        if (asprintf(&joined, "%s%s%s", plan->notes ? plan->notes : "", plan->notes ? "; " : "", note) < 0)
                return -ENOMEM;
        free(plan->notes);
        plan->notes = joined;
        return 0;
}

static int add_write(struct vgpu_plan *plan, size_t *allocated, const char *path, const char *value) {
        if (!GREEDY_REALLOC(plan->actions, *allocated, plan->n_actions + 1))
                return -ENOMEM;
        struct vgpu_action *a = &plan->actions[plan->n_actions++];
        *a = (struct vgpu_action){ .kind = VGPU_ACTION_WRITE_ATTR,
                                   .spec = { .parent = strdup(path) },
                                   .detail = strdup(value) };
        return a->spec.parent && a->detail ? 0 : -ENOMEM;
}

static int xe_policy(const struct vgpu_config *cfg, const struct vgpu_config_gpu *cg,
                     const struct vgpu_gpu *gpu, struct vgpu_plan *plan, size_t *allocated,
                     struct vgpu_error *err) {
        const struct vgpu_config_policy *pol = &cg->policy;
        if (pol->scheduler == VGPU_SCHED_FIXED_SHARE)
                return vgpu_error_set(err, -EOPNOTSUPP,
                                      "%s:%d: %s (driver xe): xe's sysfs has no strict fixed share (idle VFs "
                                      "are skipped); use equal-share",
                                      cfg->source, cg->line, gpu->bdf);
        if (!gpu->sriov)
                return vgpu_error_set(err, -EOPNOTSUPP, "%s:%d: %s (driver xe) has no SR-IOV to schedule",
                                      cfg->source, cg->line, gpu->bdf);
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
                                                cfg->source, cg->line, gpu->bdf, root_prefix(), path);
                                continue;
                        }
                        const char *want = k == 0 ? want_q : want_p;
                        if (strcmp(cur, want) != 0) {
                                int r = add_write(plan, allocated, path, want);
                                if (r < 0)
                                        return r;
                        }
                }
        }
        return 0;
}

/* GIM's parameters are module-wide: every AMD GPU must ask for the same policy. */
static int amd_policy(const struct vgpu_config *cfg, const struct vgpu_config_gpu *cg,
                      const struct vgpu_config_policy **amd, int *amd_line, struct vgpu_error *err) {
        if (*amd && (memcmp(*amd, &cg->policy, sizeof(cg->policy)) != 0))
                return vgpu_error_set(
                        err, -EINVAL,
                        "%s:%d: GIM's scheduler is one for all AMD GPUs, and line %d asks for another",
                        cfg->source, cg->line, *amd_line);
        *amd = &cg->policy;
        *amd_line = cg->line;
        return 0;
}

int plan_policy(const struct vgpu_host *host, const struct vgpu_config *cfg, struct vgpu_plan *plan,
                size_t *allocated, struct vgpu_error *err) {
        char *text = NULL;
        size_t size = 0;
        FILE *f = NULL;
        int n = 0, amd_line = 0;
        const struct vgpu_config_policy *amd = NULL;
        for (size_t g = 0; g < cfg->n_gpus; g++) {
                const struct vgpu_config_gpu *cg = &cfg->gpus[g];
                if (!cg->has_policy || cg->policy.scheduler == VGPU_SCHED_UNSET)
                        continue;
                for (size_t i = 0; i < host->n_gpus; i++) {
                        const struct vgpu_gpu *gpu = &host->gpus[i];
                        bool sel = cg->select == VGPU_SELECT_ALL ||
                                   ((cg->select == VGPU_SELECT_BDF || cg->select == VGPU_SELECT_PARENT) &&
                                    strcmp(cg->value, gpu->bdf) == 0);
                        unsigned v, d;
                        if (cg->select == VGPU_SELECT_PCI_ID && sscanf(cg->value, "%x:%x", &v, &d) == 2)
                                sel = gpu->vendor_id == v && gpu->device_id == d;
                        if (!sel || gpu->physfn[0] ||
                            (!gpu->mdev_parent && !gpu->sriov && cg->select == VGPU_SELECT_ALL))
                                continue;
                        if (streq(gpu->driver, "gim")) {
                                int q = amd_policy(cfg, cg, &amd, &amd_line, err);
                                if (q < 0) {
                                        if (f)
                                                fclose(f);
                                        free(text);
                                        return q;
                                }
                                continue;
                        }
                        if (streq(gpu->driver, "xe")) {
                                int q = xe_policy(cfg, cg, gpu, plan, allocated, err);
                                if (q < 0) {
                                        if (f)
                                                fclose(f);
                                        free(text);
                                        return q;
                                }
                                continue;
                        }
                        if (!streq(gpu->driver, "nvidia")) {
                                if (f)
                                        fclose(f);
                                free(text);
                                return vgpu_error_set(
                                        err, -EOPNOTSUPP, "%s:%d: %s (driver %s): %s", cfg->source, cg->line,
                                        gpu->bdf, strempty(gpu->driver),
                                        streq(gpu->driver, "i915")
                                                ? "GVT-g schedules by the weight fixed in each type; choose "
                                                  "the type instead of a policy"
                                                : "vgpuctl knows no scheduler knob for this driver");
                        }
                        if (!f && !(f = open_memstream(&text, &size)))
                                return -ENOMEM;
                        fprintf(f, "%spci=%s;RmPVMRL=0x%02x", n++ ? ";" : "", gpu->bdf,
                                nvidia_rmpvmrl(&cg->policy));
                }
                if (cg->select != VGPU_SELECT_ALL && cg->select != VGPU_SELECT_PCI_ID &&
                    !vgpu_host_find_gpu(host, cg->value)) {
                        if (f)
                                fclose(f);
                        free(text);
                        return vgpu_error_set(err, -EOPNOTSUPP,
                                              "%s:%d: a scheduler policy needs a GPU; %s is none",
                                              cfg->source, cg->line, cg->value);
                }
        }
        int r = 0;
        if (f) {
                fclose(f);
                char *content = NULL;
                r = asprintf(&content,
                             "# Written by vgpuctl apply: NVIDIA vGPU scheduler per GPU (RmPVMRL).\n"
                             "options nvidia NVreg_RegistryDwordsPerDevice=\"%s\"\n",
                             text);
                free(text);
                r = r < 0 ? -ENOMEM
                          : add_policy_action(plan, allocated, NVIDIA_POLICY_FILE, content,
                                              "the NVIDIA scheduler policy takes effect when the nvidia "
                                              "module is reloaded (or at the next boot)");
        }
        if (r >= 0 && amd) {
                char *content = NULL;
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
                          : add_policy_action(plan, allocated, AMD_POLICY_FILE, content,
                                              "the AMD GIM scheduler takes effect when the gim module is "
                                              "reloaded (or at the next boot)");
        }
        return r;
}
