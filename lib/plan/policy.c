/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * policy.c — scheduler policy from host.yaml to each vendor's knob: which GPUs an entry's policy
 * applies to, asking each GPU's backend (lib/backend/) to plan it, and the actions a backend
 * may append (a module options file, a sysfs attribute). The knobs themselves — NVIDIA's
 * RmPVMRL, GIM's sched_option, xe's profiles — are in the vendors' files.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "basic/error-util.h"
#include "basic/macro.h"
#include "basic/root.h"
#include "backend-states.h"
#include "plan-internal.h"

const struct vgpu_config *backend_plan_config(const struct backend_plan *ctx) {
        return ctx->cfg;
}

int backend_policy_file(struct backend_plan *ctx, const char *path, char *content, const char *note) {
        struct vgpu_plan *plan = ctx->plan;
        char old[4096];
        bool same = root_read(path, old, sizeof(old)) >= 0 && strlen(old) + 1 == strlen(content) &&
                    strncmp(old, content, strlen(old)) == 0;
        if (same) {
                free(content);
                return 0;
        }
        if (!GREEDY_REALLOC(plan->actions, *ctx->allocated, plan->n_actions + 1)) {
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

struct vgpu_action *backend_plan_action(struct backend_plan *ctx, const struct vgpu_backend *be,
                                        enum vgpu_action_kind kind, const char *target, const char *detail) {
        struct vgpu_plan *plan = ctx->plan;
        if (!GREEDY_REALLOC(plan->actions, *ctx->allocated, plan->n_actions + 1))
                return NULL;
        struct vgpu_action *a = &plan->actions[plan->n_actions++];
        *a = (struct vgpu_action){ .kind = kind,
                                   .backend = be->name,
                                   .spec = { .parent = strdup(target) },
                                   .detail = strdup(detail) };
        return a->spec.parent && a->detail ? a : NULL;
}

int backend_policy_write(struct backend_plan *ctx, const char *path, const char *value) {
        struct vgpu_plan *plan = ctx->plan;
        if (!GREEDY_REALLOC(plan->actions, *ctx->allocated, plan->n_actions + 1))
                return -ENOMEM;
        struct vgpu_action *a = &plan->actions[plan->n_actions++];
        *a = (struct vgpu_action){ .kind = VGPU_ACTION_WRITE_ATTR,
                                   .spec = { .parent = strdup(path) },
                                   .detail = strdup(value) };
        return a->spec.parent && a->detail ? 0 : -ENOMEM;
}

int backend_policy_refuse(struct backend_plan *ctx, const struct vgpu_config_gpu *cg,
                          const struct vgpu_gpu *gpu, const char *why, struct vgpu_error *err) {
        return vgpu_error_set(err, -EOPNOTSUPP, "%s:%d: %s (driver %s): %s", ctx->cfg->source, cg->line,
                              gpu->bdf, strempty(gpu->driver),
                              why ?: "vgpuctl knows no scheduler knob for this driver");
}

static bool policy_selects(const struct vgpu_config_gpu *cg, const struct vgpu_gpu *gpu) {
        bool sel = cg->select == VGPU_SELECT_ALL ||
                   ((cg->select == VGPU_SELECT_BDF || cg->select == VGPU_SELECT_PARENT) &&
                    strcmp(cg->value, gpu->bdf) == 0);
        unsigned v, d;
        if (cg->select == VGPU_SELECT_PCI_ID && sscanf(cg->value, "%x:%x", &v, &d) == 2)
                sel = gpu->vendor_id == v && gpu->device_id == d;
        return sel && !gpu->physfn[0] && (gpu->mdev_parent || gpu->sriov || cg->select != VGPU_SELECT_ALL);
}

int plan_policy(const struct vgpu_host *host, const struct vgpu_config *cfg, struct vgpu_plan *plan,
                size_t *allocated, struct vgpu_error *err) {
        struct backend_plan ctx = { .cfg = cfg, .plan = plan, .allocated = allocated };
        const struct vgpu_backend *const *list;
        size_t n_backends = backend_list(&list);
        /* per registered backend, what it keeps for the whole host (module-wide options) */
        struct plan_backend_states states;
        int r = plan_backend_states_init(&states, list, n_backends, PLAN_SETTING_POLICY, &ctx);
        if (r < 0)
                return r;
        for (size_t g = 0; r >= 0 && g < cfg->n_gpus; g++) {
                const struct vgpu_config_gpu *cg = &cfg->gpus[g];
                if (!cg->has_policy || cg->policy.scheduler == VGPU_SCHED_UNSET)
                        continue;
                for (size_t i = 0; r >= 0 && i < host->n_gpus; i++) {
                        const struct vgpu_gpu *gpu = &host->gpus[i];
                        if (!policy_selects(cg, gpu))
                                continue;
                        const struct vgpu_backend *be = backend_for_driver(gpu->driver);
                        r = be->plan_policy ? plan_backend_states_plan(&states, be, cg, gpu, err)
                                            : backend_policy_refuse(&ctx, cg, gpu, NULL, err);
                }
                if (r >= 0 && cg->select != VGPU_SELECT_ALL && cg->select != VGPU_SELECT_PCI_ID &&
                    !vgpu_host_find_gpu(host, cg->value))
                        r = vgpu_error_set(err, -EOPNOTSUPP,
                                           "%s:%d: a scheduler policy needs a GPU; %s is none", cfg->source,
                                           cg->line, cg->value);
        }
        /* every state is freed, and written only when all went well */
        return plan_backend_states_finish(&states, r, err);
}
