/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-policy.c — scheduler policies in the plan (lib/plan/policy.c): the exact modprobe.d text
 * for NVIDIA (RmPVMRL per GPU) and AMD GIM, Intel xe's sysfs profile writes, refusals with the
 * reason (GVT-g, xe's missing fixed share, drivers without a knob), and NVIDIA's frame-rate
 * limiter as an attribute of the vGPUs created.
 */
#include "test-plan-util.h"

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

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_policy),
                cmocka_unit_test(test_policy_vendors),
                cmocka_unit_test(test_policy_refusals),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
