/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * backend-states.h — what each vendor's backend keeps while the planner goes over host.yaml's
 * GPUs for one setting (scheduler policy, persistence), and the one call per backend that
 * ends it.
 *
 * A backend may plan a setting GPU by GPU, or keep what is host-wide (NVIDIA's one modprobe.d
 * line for every GPU's RmPVMRL, GIM's module parameters, nvidia-persistenced) in a state of its
 * own until all GPUs were seen, when its *_done hook appends the actions, or only frees the
 * state when another GPU's entry failed: a half-planned setting is never written.
 */
#pragma once

#include "backend/backend.h"
#include "plan-internal.h"

/* The host.yaml settings planned through a backend hook and its *_done. */
enum plan_setting {
        PLAN_SETTING_POLICY,      /* plan_policy, plan_policy_done */
        PLAN_SETTING_PERSISTENCE, /* plan_persistence, plan_persistence_done */
};

struct plan_backend_states {
        struct backend_plan *ctx;
        enum plan_setting setting;
        const struct vgpu_backend *const *list; /* the registered backends, in order */
        size_t n;
        /* list's states, and a last one for a backend not registered (the fallback, which
         * plans no setting and keeps nothing) */
        void **state;
};

/* For the backends of list (backend_list()'s): -ENOMEM, or 0. */
int plan_backend_states_init(struct plan_backend_states *s, const struct vgpu_backend *const *list, size_t n,
                             enum plan_setting setting, struct backend_plan *ctx);
/* Plan the setting of entry cg on gpu with be's hook (which be must have), be's state kept. */
int plan_backend_states_plan(struct plan_backend_states *s, const struct vgpu_backend *be,
                             const struct vgpu_config_gpu *cg, const struct vgpu_gpu *gpu,
                             struct vgpu_error *err);
/* Hand each state kept to its backend's *_done, in registration order: to append its actions
 * when r (what planning the GPUs returned) is a success, else only to free it. Frees s.
 * Returns r, or the first *_done failure when r was a success. */
int plan_backend_states_finish(struct plan_backend_states *s, int r, struct vgpu_error *err);
