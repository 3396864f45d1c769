/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-plan.c — planning (lib/plan/plan.c) on fixture hosts: which instances are kept, created,
 * removed; types picked by frame buffer size; capacity and selection refusals; VF counts and
 * vendor-VFIO types. Execution against a real kernel is tests/vm/scenarios/30-apply.sh.
 * Runs with the NVML double (vendor-VFIO types' frame buffer sizes come from NVML).
 */
#include <limits.h>

#include "test-plan-util.h"

static void test_plan_keeps_and_creates(void **state) {
        (void) state;
        /* the host as it is (its export): nothing to do */
        struct vgpu_plan *p = plan(
                "nvidia-mdev",
                "version: 1\ngpus:\n  - parent: 0000:3b:00.0\n    devices: [{type: nvidia-232, count: 2}]\n"
                "  - bdf: 0000:5e:00.0\n    devices: [{type: nvidia-233, count: 1}]\n",
                0, NULL);
        assert_int_equal(p->n_actions, 0);
        vgpu_plan_free(p);

        /* one more T4-4Q on the first GPU: the two running ones are kept, one created and defined */
        p = plan("nvidia-mdev",
                 "version: 1\ngpus:\n  - bdf: 3b:00.0\n    devices: [{type: nvidia-232, count: 3}]\n", 0,
                 NULL);
        assert_int_equal(p->n_actions, 2);
        assert_int_equal(p->actions[0].kind, VGPU_ACTION_CREATE);
        assert_string_equal(p->actions[0].spec.parent, "0000:3b:00.0");
        assert_string_equal(p->actions[0].spec.type, "nvidia-232");
        assert_true(vgpu_uuid_valid(p->actions[0].spec.uuid));
        assert_int_equal(p->actions[1].kind, VGPU_ACTION_DEFINE);
        assert_string_equal(p->actions[1].spec.uuid, p->actions[0].spec.uuid);
        assert_true(p->actions[1].spec.auto_start);
        vgpu_plan_free(p);

        /* down to one: the other is removed and undefined, in that order, before anything else */
        p = plan("nvidia-mdev",
                 "version: 1\ngpus:\n  - bdf: 3b:00.0\n    devices:\n      - type: nvidia-232\n"
                 "        uuids: [b1e5c3f2-6a7d-4e21-9c43-1a2b3c4d5e02]\n",
                 0, NULL);
        assert_int_equal(p->n_actions, 2);
        assert_int_equal(p->actions[0].kind, VGPU_ACTION_REMOVE);
        assert_string_equal(p->actions[0].spec.uuid,
                            "b1e5c3f2-6a7d-4e21-9c43-1a2b3c4d5e01"); /* the fixed one stays */
        assert_int_equal(p->actions[1].kind, VGPU_ACTION_UNDEFINE);
        assert_string_equal(p->actions[1].spec.uuid, "b1e5c3f2-6a7d-4e21-9c43-1a2b3c4d5e01");
        vgpu_plan_free(p);

        /* an attribute or start mode that differs redefines, without touching the device */
        p = plan(
                "nvidia-mdev",
                "version: 1\ngpus:\n  - bdf: 5e:00.0\n    devices: [{type: nvidia-233, auto-start: false}]\n",
                0, NULL);
        assert_int_equal(p->n_actions, 1);
        assert_int_equal(p->actions[0].kind, VGPU_ACTION_DEFINE);
        assert_false(p->actions[0].spec.auto_start);
        assert_string_equal(p->actions[0].detail, "definition differs from the file");
        vgpu_plan_free(p);

        /* every T4 by PCI id: the third gets its first instance, the others keep theirs untouched */
        p = plan("nvidia-mdev",
                 "version: 1\ngpus:\n  - pci-id: 10de:1eb8\n    devices: [{type: nvidia-232, count: 2}]\n", 0,
                 NULL);
        assert_int_equal(count_kind(p, VGPU_ACTION_REMOVE), 1); /* the T4-8Q on 5e */
        assert_int_equal(count_kind(p, VGPU_ACTION_CREATE), 4); /* 2 on 5e, 2 on af */
        assert_int_equal(count_kind(p, VGPU_ACTION_DEFINE), 4);
        vgpu_plan_free(p);
}

/* 'framebuffer' instead of 'type': per parent, the smallest type that gives as much; of several
 * that size one running there, else the first listed; types of unknown size never */
static void test_plan_framebuffer(void **state) {
        (void) state;
        struct vgpu_config *cfg = parse_ok(
                "version: 1\ngpus:\n  - bdf: af:00.0\n    devices:\n      - {framebuffer: 3G, count: 2}\n");
        assert_null(cfg->gpus[0].devices[0].type);
        assert_int_equal(cfg->gpus[0].devices[0].framebuffer, 3ULL << 30);
        assert_int_equal(cfg->gpus[0].devices[0].framebuffer_line, 5);
        assert_int_equal(cfg->gpus[0].devices[0].framebuffer_column, 23);
        vgpu_config_free(cfg);
        parse_fails("version: 1\ngpus:\n  - bdf: af:00.0\n    devices:\n      - framebuffer: lots\n",
                    "t.yaml:5:22: field 'framebuffer': expected a size like 4G or 512M, got 'lots'");
        parse_fails("version: 1\ngpus:\n  - bdf: af:00.0\n    devices:\n      - framebuffer: 0\n",
                    "t.yaml:5:22: field 'framebuffer': expected a size like 4G or 512M, got '0'");
        parse_fails("version: 1\ngpus:\n  - bdf: af:00.0\n    devices:\n      - {type: nvidia-232, "
                    "framebuffer: 4G}\n",
                    "t.yaml:5:9: 'type' and 'framebuffer' both pick the type of a 'devices' item: give one");

        /* af runs nothing: of the three 4G types (T4-4A nvidia-227, -4Q 232, -4C 319) the first listed */
        struct vgpu_plan *p = plan(
                "nvidia-mdev",
                "version: 1\ngpus:\n  - bdf: af:00.0\n    devices:\n      - {framebuffer: 3G, count: 2}\n", 0,
                NULL);
        assert_int_equal(count_kind(p, VGPU_ACTION_CREATE), 2);
        assert_string_equal(p->actions[0].spec.type, "nvidia-227");
        vgpu_plan_free(p);
        /* 5000M: no 4G type gives it, an 8G one (T4-8A) */
        p = plan("nvidia-mdev",
                 "version: 1\ngpus:\n  - bdf: af:00.0\n    devices:\n      - framebuffer: 5000M\n", 0, NULL);
        assert_string_equal(p->actions[0].spec.type, "nvidia-228");
        vgpu_plan_free(p);
        /* 3b runs two T4-4Q: 4G picks that type, so the host as it is needs nothing (applying the
         * file again never swaps what runs for another type of the same size) */
        p = plan("nvidia-mdev",
                 "version: 1\ngpus:\n  - bdf: 3b:00.0\n    devices: [{framebuffer: 4G, count: 2}]\n", 0,
                 NULL);
        assert_int_equal(p->n_actions, 0);
        vgpu_plan_free(p);
        /* vendor-VFIO: the size from NVML (nvmlVgpuTypeGetFramebufferSize); of 8Q and 8A, 8Q is listed first */
        p = plan("nvidia-sriov-vfio",
                 "version: 1\ngpus:\n  - bdf: 41:00.5\n    devices: [{framebuffer: 6G}]\n", 0, NULL);
        assert_int_equal(count_kind(p, VGPU_ACTION_CREATE), 1);
        assert_string_equal(p->actions[0].spec.type, "1152");
        vgpu_plan_free(p);

        /* none fits: the largest named, at the field's place in the file */
        vgpu_plan_free(plan(
                "nvidia-mdev",
                "version: 1\ngpus:\n  - bdf: af:00.0\n    devices:\n      - framebuffer: 100G\n", -ENOSPC,
                "t.yaml:5:22: field 'framebuffer': 0000:af:00.0: no type gives 102400 MiB of frame buffer; "
                "the largest is nvidia-229 (GRID T4-16A, 16384 MiB)"));
        /* mtty's serial-port types have no frame buffer: never picked */
        vgpu_plan_free(
                plan("kernel-samples",
                     "version: 1\ngpus:\n  - parent: mtty\n    devices:\n      - framebuffer: 1M\n", -ENOENT,
                     "t.yaml:5:22: field 'framebuffer': mtty: no type with a known frame buffer size"));
}

static void test_plan_refusals(void **state) {
        (void) state;
        /* capacity: checked before anything runs */
        vgpu_plan_free(
                plan("nvidia-mdev",
                     "version: 1\ngpus:\n  - bdf: 3b:00.0\n    devices: [{type: nvidia-232, count: 5}]\n",
                     -ENOSPC, "0000:3b:00.0: 3 more nvidia-232 wanted, 2 available: nothing was changed"));
        vgpu_plan_free(
                plan("kernel-samples",
                     "version: 1\ngpus:\n  - parent: mbochs\n    devices:\n"
                     "      - {type: mbochs-medium, count: 10}\n      - {type: mbochs-large, count: 2}\n",
                     -ENOSPC, "mbochs: the new instances need 288 MiB of frame buffer, 256 MiB are free"));
        vgpu_plan_free(plan("nvidia-mdev",
                            "version: 1\ngpus:\n  - bdf: 3b:00.0\n    devices: [{type: nvidia-999}]\n",
                            -EINVAL, "0000:3b:00.0 offers no type nvidia-999"));
        vgpu_plan_free(plan("nvidia-mdev",
                            "version: 1\ngpus:\n  - bdf: 0000:99:00.0\n    devices: [{type: nvidia-232}]\n",
                            -ENODEV, "t.yaml:3: selects no vGPU parent on this host"));
        vgpu_plan_free(plan("nvidia-mdev", "version: 1\ngpus:\n  - bdf: 3b:00.0\n    vfs: 2\n", -EOPNOTSUPP,
                            "t.yaml:3: 0000:3b:00.0 has no SR-IOV"));
        vgpu_plan_free(plan("nvidia-sriov-vfio", "version: 1\ngpus:\n  - bdf: 41:00.0\n    vfs: 33\n",
                            -EINVAL, "supports at most 32 VFs, not 33"));
}

static void test_plan_vfio_and_vfs(void **state) {
        (void) state;
        /* vendor-VFIO: a VF takes a type; VF count on the second L40S */
        struct vgpu_plan *p = plan("nvidia-sriov-vfio",
                                   "version: 1\ngpus:\n  - bdf: 41:00.5\n    devices: [{type: \"1152\"}]\n"
                                   "  - bdf: 61:00.0\n    vfs: 8\n",
                                   0, NULL);
        assert_int_equal(p->n_actions, 2);
        assert_int_equal(p->actions[0].kind, VGPU_ACTION_SET_VFS);
        assert_string_equal(p->actions[0].spec.parent, "0000:61:00.0");
        assert_int_equal(p->actions[0].vfs, 8);
        assert_int_equal(p->actions[0].old_vfs, 0);
        assert_int_equal(p->actions[1].kind, VGPU_ACTION_CREATE);
        assert_true(p->actions[1].vendor_vfio);
        assert_string_equal(p->actions[1].spec.uuid, "");
        vgpu_plan_free(p);
        /* the busy VF already runs 1152: nothing to do; asking for another type removes it first */
        p = plan("nvidia-sriov-vfio",
                 "version: 1\ngpus:\n  - bdf: 41:00.4\n    devices: [{type: \"1152\"}]\n", 0, NULL);
        assert_int_equal(p->n_actions, 0);
        vgpu_plan_free(p);
}

/* A copy of fixture name where process 4242 holds /dev/vfio/group open, as QEMU holds a vGPU's
 * group; FIXTURES points at the copy's directory until the returned one is given back. */
static char *copy_with_vm(const char *name, int group, char **ret_saved) {
        char tmpl[] = "/tmp/test-plan-XXXXXX", cmd[PATH_MAX * 3];
        assert_non_null(mkdtemp(tmpl));
        snprintf(cmd, sizeof(cmd),
                 "cp -a '%s/%s' '%s/' && mkdir -p '%s/%s/proc/4242/fd' && ln -s /dev/vfio/%d "
                 "'%s/%s/proc/4242/fd/7'",
                 getenv("FIXTURES"), name, tmpl, tmpl, name, group, tmpl, name);
        assert_int_equal(system(cmd), 0);
        *ret_saved = strdup(getenv("FIXTURES"));
        setenv("FIXTURES", tmpl, 1);
        return strdup(tmpl);
}

static void give_back(char *copy, char *saved) {
        setenv("FIXTURES", saved, 1);
        rm_rf(copy);
        free(copy);
        free(saved);
}

/* A vGPU a VM holds is never removed: the plan refuses. The scan of a plan reads no IOMMU group
 * (VGPU_SCAN_PARENTS | VGPU_SCAN_INSTANCES), so the planner reads the group of each instance it
 * would remove: an mdev's own iommu_group link, a vendor-VFIO VF's function's. */
static void test_plan_refuses_held_removal(void **state) {
        (void) state;
        char *saved, *copy = copy_with_vm("nvidia-mdev", 9, &saved);
        vgpu_plan_free(
                plan("nvidia-mdev",
                     "version: 1\ngpus:\n  - bdf: 3b:00.0\n    devices:\n      - type: nvidia-232\n"
                     "        uuids: [b1e5c3f2-6a7d-4e21-9c43-1a2b3c4d5e02]\n",
                     -EBUSY,
                     "b1e5c3f2-6a7d-4e21-9c43-1a2b3c4d5e01 (nvidia-232 on 0000:3b:00.0) is in use by a "
                     "running VM (/dev/vfio/9 is open)"));
        /* another group held: the removal is planned */
        give_back(copy, saved);
        copy = copy_with_vm("nvidia-mdev", 8, &saved);
        struct vgpu_plan *p =
                plan("nvidia-mdev",
                     "version: 1\ngpus:\n  - bdf: 3b:00.0\n    devices:\n      - type: nvidia-232\n"
                     "        uuids: [b1e5c3f2-6a7d-4e21-9c43-1a2b3c4d5e02]\n",
                     0, NULL);
        assert_int_equal(count_kind(p, VGPU_ACTION_REMOVE), 1);
        vgpu_plan_free(p);
        give_back(copy, saved);

        /* the vendor-VFIO VF 41:00.4 runs type 1152 in group 9; a file without it removes it */
        copy = copy_with_vm("nvidia-sriov-vfio", 9, &saved);
        vgpu_plan_free(
                plan("nvidia-sriov-vfio", "version: 1\ngpus:\n  - bdf: 41:00.4\n    devices: []\n", -EBUSY,
                     "0000:41:00.4 (1152 on 0000:41:00.4) is in use by a running VM (/dev/vfio/9 is open)"));
        give_back(copy, saved);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_plan_keeps_and_creates),    cmocka_unit_test(test_plan_refusals),
                cmocka_unit_test(test_plan_framebuffer),          cmocka_unit_test(test_plan_vfio_and_vfs),
                cmocka_unit_test(test_plan_refuses_held_removal),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
