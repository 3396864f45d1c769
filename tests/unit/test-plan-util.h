/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-plan-util.h — what test-plan.c and test-policy.c share: plan a host.yaml text on a fixture
 * host with its definitions, as apply would (nothing executes), and count the actions of a kind. */
#pragma once

#include "test-config-util.h"

#include "plan/plan-internal.h"
#include "vgpu/apply.h"

static inline struct vgpu_plan *plan(const char *fixture, const char *text, int expect, const char *message) {
        use_fixture(fixture);
        struct vgpu_config *cfg = parse_ok(text);
        struct vgpu_error err = {};
        struct vgpu_host *host;
        assert_int_equal(vgpu_host_scan(VGPU_SCAN_PARENTS | VGPU_SCAN_INSTANCES, &host, &err), 0);
        struct vgpu_mdev_spec *defs;
        size_t n_defs;
        assert_int_equal(vgpu_mdev_definitions(&defs, &n_defs, NULL, &err), 0);
        struct vgpu_plan *p = NULL;
        int r = plan_compute(host, defs, n_defs, cfg, 0, &p, &err);
        vgpu_mdev_specs_free(defs, n_defs);
        vgpu_host_free(host);
        vgpu_config_free(cfg);
        if (r != expect)
                fail_msg("plan returned %d, expected %d: %s", r, expect, err.message);
        if (message && !strstr(err.message, message))
                fail_msg("message: %s\nwanted: %s", err.message, message);
        return p;
}

static inline size_t count_kind(const struct vgpu_plan *p, enum vgpu_action_kind k) {
        size_t n = 0;
        for (size_t i = 0; i < p->n_actions; i++)
                n += p->actions[i].kind == k;
        return n;
}
