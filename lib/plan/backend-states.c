/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* backend-states.c — the backends' states while one setting is planned (see the header). */
#include <errno.h>
#include <stdlib.h>

#include "backend-states.h"

typedef int (*setting_plan_fn)(struct backend_plan *ctx, const struct vgpu_config_gpu *cg,
                               const struct vgpu_gpu *gpu, void **state, struct vgpu_error *err);
typedef int (*setting_done_fn)(struct backend_plan *ctx, void *state, bool commit, struct vgpu_error *err);

static setting_plan_fn plan_hook(const struct vgpu_backend *be, enum plan_setting setting) {
        return setting == PLAN_SETTING_POLICY ? be->plan_policy : be->plan_persistence;
}

static setting_done_fn done_hook(const struct vgpu_backend *be, enum plan_setting setting) {
        return setting == PLAN_SETTING_POLICY ? be->plan_policy_done : be->plan_persistence_done;
}

int plan_backend_states_init(struct plan_backend_states *s, const struct vgpu_backend *const *list, size_t n,
                             enum plan_setting setting, struct backend_plan *ctx) {
        *s = (struct plan_backend_states){ .ctx = ctx, .setting = setting, .list = list, .n = n };
        s->state = calloc(n + 1, sizeof(*s->state));
        return s->state ? 0 : -ENOMEM;
}

int plan_backend_states_plan(struct plan_backend_states *s, const struct vgpu_backend *be,
                             const struct vgpu_config_gpu *cg, const struct vgpu_gpu *gpu,
                             struct vgpu_error *err) {
        size_t k = 0;
        while (k < s->n && s->list[k] != be)
                k++; /* k == n: not registered */
        return plan_hook(be, s->setting)(s->ctx, cg, gpu, &s->state[k], err);
}

int plan_backend_states_finish(struct plan_backend_states *s, int r, struct vgpu_error *err) {
        for (size_t k = 0; k < s->n; k++)
                if (s->state[k]) {
                        int q = done_hook(s->list[k], s->setting)(s->ctx, s->state[k], r >= 0, err);
                        if (r >= 0 && q < 0)
                                r = q;
                }
        free(s->state);
        s->state = NULL;
        return r;
}
