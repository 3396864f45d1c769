/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-policy.c — scheduler policies in the plan (lib/plan/policy.c): the exact modprobe.d text
 * for NVIDIA (RmPVMRL per GPU) and AMD GIM, Intel xe's sysfs profile writes, refusals with the
 * reason (GVT-g, xe's missing fixed share, drivers without a knob), and NVIDIA's frame-rate
 * limiter as an attribute of the vGPUs created. The backends' host-wide states that policy and
 * persistence keep (lib/plan/backend-states.c), with backends of the test's own.
 */
#include "test-plan-util.h"

#include "basic/macro.h"
#include "plan/backend-states.h"

static void test_policy(void **state) {
        (void) state;
        struct vgpu_plan *p = plan(
                "nvidia-mdev",
                "version: 1\ngpus:\n  - bdf: 3b:00.0\n    policy: {scheduler: equal-share, timeslice-ms: 3}\n"
                "  - bdf: 5e:00.0\n    policy: {scheduler: fixed-share}\n  - bdf: af:00.0\n    policy: "
                "{scheduler: best-effort}\n",
                0, NULL);
        /* selecting without devices manages the parents: 3b and 5e lose their instances too */
        assert_int_equal(count_kind(p, VGPU_ACTION_SET_POLICY), 1);
        const struct vgpu_action *a = &p->actions[p->n_actions - 1];
        assert_int_equal(a->kind, VGPU_ACTION_SET_POLICY);
        assert_string_equal(a->detail,
                            "# Written by vgpuctl apply: NVIDIA vGPU scheduler per GPU (RmPVMRL).\n"
                            "options nvidia "
                            "NVreg_RegistryDwordsPerDevice=\"pci=0000:3b:00.0;RmPVMRL=0x30001;pci=0000:5e:00."
                            "0;RmPVMRL=0x11;"
                            "pci=0000:af:00.0;RmPVMRL=0x00\"\n");
        assert_non_null(strstr(p->notes, "reloaded"));
        vgpu_plan_free(p);
}

static void test_policy_vendors(void **state) {
        (void) state;
        /* AMD GIM: module-wide parameters */
        struct vgpu_plan *p = plan("amd-mxgpu",
                                   "version: 1\ngpus:\n  - bdf: 03:00.0\n    policy: {scheduler: "
                                   "fixed-share, timeslice-ms: 10}\n",
                                   0, NULL);
        assert_int_equal(p->n_actions, 1);
        assert_string_equal(p->actions[0].spec.parent, "/etc/modprobe.d/gim-vgpuctl.conf");
        assert_string_equal(p->actions[0].detail,
                            "# Written by vgpuctl apply: AMD GIM world-switch scheduler.\noptions gim "
                            "sched_option=0 sched_interval=10\n");
        assert_non_null(strstr(p->notes, "gim module is reloaded"));
        vgpu_plan_free(p);
        p = plan("amd-mxgpu",
                 "version: 1\ngpus:\n  - pci-id: 1002:73a1\n    policy: {scheduler: equal-share}\n", 0, NULL);
        assert_string_equal(
                p->actions[0].detail,
                "# Written by vgpuctl apply: AMD GIM world-switch scheduler.\noptions gim sched_option=2\n");
        vgpu_plan_free(p);
        /* Intel xe: the GuC profile of the PF and every possible VF, in sysfs at run time */
        p = plan("intel-xe-sriov",
                 "version: 1\ngpus:\n  - bdf: 03:00.0\n    policy: {scheduler: equal-share, timeslice-ms: "
                 "10}\n",
                 0, NULL);
        assert_int_equal(p->n_actions, 18); /* 2 knobs x (PF + 8 VFs) */
        assert_int_equal(p->actions[0].kind, VGPU_ACTION_WRITE_ATTR);
        assert_string_equal(p->actions[0].spec.parent,
                            "/sys/bus/pci/devices/0000:03:00.0/sriov_admin/pf/profile/exec_quantum_ms");
        assert_string_equal(p->actions[0].detail, "10");
        assert_string_equal(p->actions[3].spec.parent,
                            "/sys/bus/pci/devices/0000:03:00.0/sriov_admin/vf1/profile/preempt_timeout_us");
        assert_string_equal(p->actions[3].detail, "20000");
        assert_null(p->notes); /* takes effect at once: no reload */
        vgpu_plan_free(p);
        p = plan("intel-xe-sriov",
                 "version: 1\ngpus:\n  - bdf: 03:00.0\n    policy: {scheduler: best-effort}\n", 0, NULL);
        assert_int_equal(p->n_actions, 0); /* the driver's defaults are best effort already */
        vgpu_plan_free(p);
        vgpu_plan_free(plan("intel-xe-sriov",
                            "version: 1\ngpus:\n  - bdf: 03:00.0\n    policy: {scheduler: fixed-share}\n",
                            -EOPNOTSUPP, "xe's sysfs has no strict fixed share"));
        /* Intel GVT-g: refused with the reason */
        vgpu_plan_free(plan(
                "intel-gvtg", "version: 1\ngpus:\n  - bdf: 00:02.0\n    policy: {scheduler: fixed-share}\n",
                -EOPNOTSUPP, "0000:00:02.0 (driver i915): GVT-g schedules by the weight fixed in each type"));
        /* NVIDIA frame-rate limiter: an attribute on the vGPUs created and defined */
        p = plan("nvidia-mdev",
                 "version: 1\ngpus:\n  - bdf: af:00.0\n    policy: {frame-rate-limit: off}\n    devices: "
                 "[{type: nvidia-230}]\n",
                 0, NULL);
        assert_int_equal(p->n_actions, 2);
        assert_int_equal(p->actions[0].kind, VGPU_ACTION_CREATE);
        assert_int_equal(p->actions[0].spec.n_attrs, 1);
        assert_string_equal(p->actions[0].spec.attrs[0].key, "nvidia/vgpu_params");
        assert_string_equal(p->actions[0].spec.attrs[0].value, "frame_rate_limiter=0");
        assert_string_equal(p->actions[1].spec.attrs[0].value, "frame_rate_limiter=0");
        vgpu_plan_free(p);
}

/* a policy where no knob exists is refused with the parent and the reason */
static void test_policy_refusals(void **state) {
        (void) state;
        vgpu_plan_free(
                plan("nvidia-mdev",
                     "version: 1\ngpus:\n  - pci-id: 10de:1eb8\n    policy: {scheduler: equal-share}\n"
                     "  - bdf: 03:00.0\n    policy: {scheduler: equal-share}\n",
                     -EOPNOTSUPP,
                     "t.yaml:5: 0000:03:00.0 (driver ast): vgpuctl knows no scheduler knob for this driver"));
        vgpu_plan_free(plan("kernel-samples",
                            "version: 1\ngpus:\n  - parent: mdpy\n    policy: {scheduler: equal-share}\n",
                            -EOPNOTSUPP, "t.yaml:3: a scheduler policy needs a GPU; mdpy is none"));
}

/* What the fake backends were called with, in order: "plan A", "done B commit" ... */
static char calls[512];
static int done_fails = 0; /* the *_done of the backend named in fail_name returns this */
static const char *fail_name;

static void record(const char *what, const char *name, const char *extra) {
        size_t n = strlen(calls);
        snprintf(calls + n, sizeof(calls) - n, "%s%s %s%s%s", n ? ", " : "", what, name, extra ? " " : "",
                 extra ?: "");
}

/* The state is the backend's name: the hook sees what it kept for an earlier GPU. */
static int fake_plan(struct backend_plan *ctx, const struct vgpu_config_gpu *cg, const struct vgpu_gpu *gpu,
                     void **state, struct vgpu_error *err) {
        (void) ctx, (void) cg, (void) err;
        bool kept = *state;
        if (!kept)
                assert_non_null(*state = strdup(gpu->driver));
        else
                assert_string_equal(*state, gpu->driver);
        record("plan", gpu->driver, kept ? "kept" : NULL);
        return 0;
}

static int fake_done(struct backend_plan *ctx, void *state, bool commit, struct vgpu_error *err) {
        (void) ctx, (void) err;
        record("done", state, commit ? "commit" : "free");
        int r = fail_name && streq(state, fail_name) ? done_fails : 0;
        free(state);
        return r;
}

static int wrong_hook(struct backend_plan *ctx, const struct vgpu_config_gpu *cg, const struct vgpu_gpu *gpu,
                      void **state, struct vgpu_error *err) {
        (void) ctx, (void) cg, (void) gpu, (void) state, (void) err;
        fail_msg("the other setting's hook was called");
        return -EINVAL;
}

static int wrong_done(struct backend_plan *ctx, void *state, bool commit, struct vgpu_error *err) {
        (void) ctx, (void) state, (void) commit, (void) err;
        fail_msg("the other setting's done was called");
        return -EINVAL;
}

static const struct vgpu_backend fake_a = { .name = "A",
                                            .plan_policy = fake_plan,
                                            .plan_policy_done = fake_done,
                                            .plan_persistence = wrong_hook,
                                            .plan_persistence_done = wrong_done },
                                 fake_b = { .name = "B",
                                            .plan_policy = fake_plan,
                                            .plan_policy_done = fake_done,
                                            .plan_persistence = fake_plan,
                                            .plan_persistence_done = fake_done },
                                 fake_c = { .name = "C",
                                            .plan_policy = fake_plan,
                                            .plan_policy_done = fake_done,
                                            .plan_persistence = wrong_hook,
                                            .plan_persistence_done = wrong_done };
static const struct vgpu_backend *const fakes[] = { &fake_a, &fake_b, &fake_c };

/* Plan the GPUs (their driver names the backend) with fakes[], then finish with r. */
static int run_states(enum plan_setting setting, const char *drivers, int r) {
        calls[0] = 0;
        struct backend_plan ctx = {};
        struct plan_backend_states s;
        assert_int_equal(plan_backend_states_init(&s, fakes, ELEMENTSOF(fakes), setting, &ctx), 0);
        for (const char *d = drivers; *d; d++) {
                struct vgpu_gpu gpu = { .driver = (char[]){ *d, 0 } };
                const struct vgpu_backend *be = *d == 'A' ? &fake_a : *d == 'B' ? &fake_b : &fake_c;
                assert_int_equal(plan_backend_states_plan(&s, be, NULL, &gpu, NULL), 0);
        }
        r = plan_backend_states_finish(&s, r, NULL);
        assert_null(s.state);
        return r;
}

static void test_backend_states(void **state) {
        (void) state;
        /* one state per backend, kept across its GPUs; each done once, in registration order */
        assert_int_equal(run_states(PLAN_SETTING_POLICY, "CAC", 0), 0);
        assert_string_equal(calls, "plan C, plan A, plan C kept, done A commit, done C commit");
        /* persistence takes the persistence hooks (the fakes' others fail the test) */
        assert_int_equal(run_states(PLAN_SETTING_PERSISTENCE, "BB", 0), 0);
        assert_string_equal(calls, "plan B, plan B kept, done B commit");
        /* a GPU's entry failed: every state freed, nothing committed, the first error kept */
        fail_name = "A", done_fails = -EIO;
        assert_int_equal(run_states(PLAN_SETTING_POLICY, "AB", -EINVAL), -EINVAL);
        assert_string_equal(calls, "plan A, plan B, done A free, done B free");
        /* a done that fails: its error, and the backends after it only free theirs */
        assert_int_equal(run_states(PLAN_SETTING_POLICY, "CBA", 0), -EIO);
        assert_string_equal(calls, "plan C, plan B, plan A, done A commit, done B free, done C free");
        fail_name = NULL, done_fails = 0;
        /* nothing planned: no done at all */
        assert_int_equal(run_states(PLAN_SETTING_POLICY, "", 0), 0);
        assert_string_equal(calls, "");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_policy),
                cmocka_unit_test(test_policy_vendors),
                cmocka_unit_test(test_policy_refusals),
                cmocka_unit_test(test_backend_states),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
