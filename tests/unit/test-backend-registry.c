/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-backend-registry.c — the vendor layer (lib/backend): a vendor added as one file. This file is that
 * file: a backend for the driver "vgpu-test", registered with BACKEND_REGISTER() as the real ones
 * are, and nothing in lib/ names it. A copy of the intel-gvtg fixture with its GPU rebound to
 * "vgpu-test" is then planned and applied: the planner asks this backend for its instance
 * attributes and its scheduler knob, the executor creates and removes through it, and so do
 * vgpuctl create and remove (vgpu_mdev_create/remove, plans run by the same executor).
 */
#include <dirent.h>
#include <limits.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backend/backend.h"
#include "basic/macro.h"
#include "test-util.h"
#include "vgpu/apply.h"
#include "vgpu/config.h"

#define GPU      "0000:00:02.0"
#define TYPE     "i915-GVTg_V5_4"
#define OLD_UUID "f3a9c1d2-4b5e-4f60-8a71-92b3c4d5e6f7"

static char root[PATH_MAX];

/* What the executor asked of this backend, in order: "create UUID TYPE attr=value...", "remove UUID". */
static char calls[16][512];
static size_t n_calls;

static void pathf(char *buf, size_t size, const char *fmt, const char *arg) {
        int n = snprintf(buf, size, "%s", root);
        snprintf(buf + n, size - (size_t) n, fmt, arg);
}

/* As the kernel would: the device under its parent and its link on the mdev bus. */
static int test_create(const struct vgpu_action *a, struct vgpu_error *err) {
        (void) err;
        assert_true(n_calls < ELEMENTSOF(calls));
        char *c = calls[n_calls++];
        size_t n = (size_t) snprintf(c, sizeof(calls[0]), "create %s %s", a->spec.uuid, a->spec.type);
        for (size_t i = 0; i < a->spec.n_attrs; i++)
                n += (size_t) snprintf(c + n, sizeof(calls[0]) - n, " %s=%s", a->spec.attrs[i].key,
                                       a->spec.attrs[i].value);
        char dev[PATH_MAX], p[PATH_MAX + 64], target[PATH_MAX];
        pathf(dev, sizeof(dev), "/sys/devices/pci0000:00/" GPU "/%s", a->spec.uuid);
        assert_int_equal(mkdir(dev, 0755), 0);
        snprintf(p, sizeof(p), "%s/mdev_type", dev);
        snprintf(target, sizeof(target), "../mdev_supported_types/%s", a->spec.type);
        assert_int_equal(symlink(target, p), 0);
        pathf(p, sizeof(p), "/sys/bus/mdev/devices/%s", a->spec.uuid);
        snprintf(target, sizeof(target), "../../../devices/pci0000:00/" GPU "/%s", a->spec.uuid);
        assert_int_equal(symlink(target, p), 0);
        return 1;
}

static int test_remove(const struct vgpu_action *a, struct vgpu_error *err) {
        (void) err;
        assert_true(n_calls < ELEMENTSOF(calls));
        snprintf(calls[n_calls++], sizeof(calls[0]), "remove %s", a->spec.uuid);
        char p[PATH_MAX], cmd[PATH_MAX + 32];
        pathf(p, sizeof(p), "/sys/bus/mdev/devices/%s", a->spec.uuid);
        assert_int_equal(unlink(p), 0);
        pathf(p, sizeof(p), "/sys/devices/pci0000:00/" GPU "/%s", a->spec.uuid);
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", p);
        assert_int_equal(system(cmd), 0);
        return 1;
}

static int test_instance_attrs(const struct vgpu_parent *p, const struct vgpu_config_gpu *g,
                               const struct vgpu_config_device *dev, struct vgpu_mdev_attr *ret) {
        (void) p;
        (void) dev;
        if (!g->has_policy || g->policy.frame_rate_limit < 0)
                return 0;
        *ret = (struct vgpu_mdev_attr){ .key = (char *) "test_limiter", .value = (char *) "on" };
        return 1;
}

/* What the running instances have, as the vendor would read it back: the fixture's is off. */
static int test_instance_attr_differs(const struct vgpu_parent *p, const struct vgpu_instance *in,
                                      const struct vgpu_mdev_attr *attr, char *detail, size_t size) {
        (void) p;
        if (!streq(in->uuid, OLD_UUID) || streq(attr->value, "off"))
                return 0;
        snprintf(detail, size, "test_limiter off, the file says %s", attr->value);
        return 1;
}

static int test_plan_policy(struct backend_plan *ctx, const struct vgpu_config_gpu *cg,
                            const struct vgpu_gpu *gpu, void **state, struct vgpu_error *err) {
        (void) state;
        (void) err;
        char path[256];
        snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/test_scheduler", gpu->bdf);
        return backend_policy_write(ctx, path,
                                    cg->policy.scheduler == VGPU_SCHED_EQUAL_SHARE ? "equal" : "other");
}

/* A driver mode of the vendor's (host.yaml's persistence), planned as an action this backend runs. */
static int test_plan_persistence(struct backend_plan *ctx, const struct vgpu_config_gpu *cg,
                                 const struct vgpu_gpu *gpu, void **state, struct vgpu_error *err) {
        (void) state;
        (void) err;
        return backend_plan_action(ctx, backend_for_vendor(0x1234), VGPU_ACTION_SET_PERSISTENCE, gpu->bdf,
                                   cg->persistence ? "on" : "off")
                       ? 0
                       : -ENOMEM;
}

static int test_run_action(const struct vgpu_action *a, char **ret_undo, struct vgpu_error *err) {
        (void) ret_undo;
        (void) err;
        assert_true(n_calls < ELEMENTSOF(calls));
        snprintf(calls[n_calls++], sizeof(calls[0]), "%s %s %s", vgpu_action_kind_to_string(a->kind),
                 a->spec.parent, a->detail);
        return 1;
}

static void test_describe_type(struct vgpu_type *t) {
        (void) t; /* the vendor's text says no more than the kernel's */
}

static const char *const test_drivers[] = { "vgpu-test", NULL };

static const struct vgpu_backend backend_test = {
        .name = "test",
        .drivers = test_drivers,
        .describe_type = test_describe_type,
        .create = test_create,
        .remove = test_remove,
        .instance_attrs = test_instance_attrs,
        .instance_attr_differs = test_instance_attr_differs,
        .plan_policy = test_plan_policy,
        .pci_vendor = 0x1234,
        .plan_persistence = test_plan_persistence,
        .run_action = test_run_action,
};
BACKEND_REGISTER(backend_test);

static int setup(void **state) {
        (void) state;
        strcpy(root, "/tmp/vgpu-test-backend.XXXXXX");
        assert_non_null(mkdtemp(root));
        char cmd[PATH_MAX * 3];
        snprintf(cmd, sizeof(cmd),
                 "cp -a '%s/intel-gvtg/.' '%s/' && mkdir -p '%s/var/lib/vgpuctl' '%s/run' && cd "
                 "'%s/sys/devices/pci0000:00/" GPU
                 "' && ln -sfn ../../../bus/pci/drivers/vgpu-test driver && "
                 "sed -i 's/^DRIVER=i915/DRIVER=vgpu-test/; s/^PCI_ID=8086:/PCI_ID=1234:/' uevent && echo "
                 "0x1234 > "
                 "vendor && echo 0 > test_scheduler",
                 getenv("FIXTURES"), root, root, root, root);
        assert_int_equal(system(cmd), 0);
        setenv("VGPU_ROOT", root, 1);
        n_calls = 0;
        return 0;
}

static int teardown(void **state) {
        (void) state;
        rm_rf(root);
        return 0;
}

static void test_registry(void **state) {
        (void) state;
        assert_ptr_equal(backend_for_driver("vgpu-test"), &backend_test);
        assert_ptr_equal(backend_by_name("test"), &backend_test);
        /* the real ones are found the same way, and the kernel's mdev ABI is the fallback */
        assert_string_equal(backend_for_driver("nvidia")->name, "nvidia");
        assert_string_equal(backend_for_driver("xe")->name, "intel");
        assert_string_equal(backend_for_driver("gim")->name, "amd");
        assert_ptr_equal(backend_for_driver("mtty"), &backend_mdev);
        assert_ptr_equal(backend_for_driver(NULL), &backend_mdev);
        assert_null(backend_by_name("no-such-vendor"));
        const struct vgpu_backend *const *list;
        size_t n = backend_list(&list), seen = 0;
        for (size_t i = 0; i < n; i++)
                seen += list[i] == &backend_test;
        assert_int_equal(seen, 1);
}

static int apply_text(const char *text, struct vgpu_plan **ret, struct vgpu_error *err) {
        struct vgpu_config *cfg = NULL;
        assert_int_equal(vgpu_config_parse_text(text, strlen(text), "t.yaml", &cfg, err), 0);
        int r = vgpu_apply(cfg, text, 0, ret, err);
        vgpu_config_free(cfg);
        return r;
}

static void test_apply_through_backend(void **state) {
        (void) state;
        struct vgpu_error err = {};
        struct vgpu_plan *p = NULL;
        /* one more of the type that runs, the limiter attribute and the scheduler from this backend */
        int r = apply_text("version: 1\ngpus:\n  - bdf: " GPU "\n    policy: {scheduler: equal-share, "
                           "frame-rate-limit: true}\n    devices:\n      - type: " TYPE
                           "\n        count: 2\n",
                           &p, &err);
        if (r < 0)
                fail_msg("apply: %s", err.message);
        const struct vgpu_action *create = NULL, *pending = NULL;
        for (size_t i = 0; i < p->n_actions; i++)
                if (p->actions[i].kind == VGPU_ACTION_CREATE)
                        create = &p->actions[i];
                else if (p->actions[i].kind == VGPU_ACTION_FRAME_RATE_PENDING)
                        pending = &p->actions[i];
        assert_non_null(create);
        /* the running one has the attribute otherwise: it changes at its next start */
        assert_non_null(pending);
        assert_string_equal(pending->spec.uuid, OLD_UUID);
        assert_string_equal(pending->detail, "test_limiter off, the file says on: takes effect at its next "
                                             "start (apply --force restarts it now)");
        assert_string_equal(create->backend, "test");
        assert_int_equal(n_calls, 1);
        char want[512];
        snprintf(want, sizeof(want), "create %s " TYPE " test_limiter=on", create->spec.uuid);
        assert_string_equal(calls[0], want);
        char path[PATH_MAX], buf[64] = "";
        pathf(path, sizeof(path), "/sys/bus/pci/devices/%s/test_scheduler", GPU);
        FILE *f = fopen(path, "re");
        assert_non_null(f);
        assert_non_null(fgets(buf, sizeof(buf), f));
        fclose(f);
        assert_string_equal(buf, "equal");
        char created[VGPU_UUID_MAX];
        snprintf(created, sizeof(created), "%s", create->spec.uuid);
        vgpu_plan_free(p);

        /* nothing on the GPU: both instances go, through this backend */
        r = apply_text("version: 1\ngpus:\n  - bdf: " GPU "\n    devices: []\n", &p, &err);
        if (r < 0)
                fail_msg("apply: %s", err.message);
        vgpu_plan_free(p);
        assert_int_equal(n_calls, 3);
        bool old = false, new = false;
        for (size_t i = 1; i < 3; i++) {
                old |= strcmp(calls[i], "remove " OLD_UUID) == 0;
                new |= strncmp(calls[i], "remove ", 7) == 0 && strcmp(calls[i] + 7, created) == 0;
        }
        assert_true(old && new);
}

/* vgpuctl create, remove and stop: plans run by the same executor, through the same backend */
static void test_requests_through_backend(void **state) {
        (void) state;
        struct vgpu_error err = {};
        struct vgpu_mdev_spec spec = { .parent = strdup("00:02.0"), .type = strdup(TYPE) };
        assert_int_equal(vgpu_mdev_create(&spec, 0, &err), 1);
        assert_int_equal(n_calls, 1);
        char want[256];
        snprintf(want, sizeof(want), "create %s " TYPE, spec.uuid);
        assert_string_equal(calls[0], want);
        /* asked again: the planner finds it there, nothing is done */
        assert_int_equal(vgpu_mdev_create(&spec, 0, &err), 0);
        assert_int_equal(n_calls, 1);
        assert_int_equal(vgpu_mdev_remove(spec.uuid, &err), 1);
        assert_int_equal(n_calls, 2);
        snprintf(want, sizeof(want), "remove %s", spec.uuid);
        assert_string_equal(calls[1], want);
        assert_int_equal(vgpu_mdev_stop(spec.uuid, &err), 0);
        assert_int_equal(vgpu_mdev_remove(spec.uuid, &err), -ENOENT);
        assert_non_null(strstr(err.message, "no such vGPU instance"));
        assert_int_equal(n_calls, 2);
        vgpu_mdev_spec_free(&spec);
}

/* create --persist of a UUID defined otherwise: refused while planning, before the device is made */
static void test_create_persist_conflict(void **state) {
        (void) state;
        struct vgpu_error err = {};
        struct vgpu_mdev_spec def = { .parent = strdup(GPU),
                                      .type = strdup("i915-GVTg_V5_8"),
                                      .uuid = "0b3c2f5e-7d1a-4c2b-9e8f-1a2b3c4d5e6f" };
        assert_int_equal(vgpu_mdev_define(&def, &err), 1);
        assert_int_equal(vgpu_mdev_define(&def, &err), 0);
        struct vgpu_mdev_spec spec = { .parent = strdup(GPU),
                                       .type = strdup(TYPE),
                                       .uuid = "0b3c2f5e-7d1a-4c2b-9e8f-1a2b3c4d5e6f" };
        assert_int_equal(vgpu_mdev_create(&spec, VGPU_CREATE_PERSIST, &err), -EEXIST);
        assert_non_null(
                strstr(err.message, "already defined differently (type " TYPE ", not i915-GVTg_V5_8)"));
        assert_int_equal(n_calls, 0);
        vgpu_mdev_spec_free(&spec);
        vgpu_mdev_spec_free(&def);
}

/* A type the parent does not offer: create, define and apply refuse it in the same words. */
static void test_same_messages_as_apply(void **state) {
        (void) state;
        struct vgpu_error create_err = {}, define_err = {}, apply_err = {};
        struct vgpu_mdev_spec spec = { .parent = strdup(GPU), .type = strdup("i915-GVTg_V9_9") };
        assert_int_equal(vgpu_mdev_create(&spec, 0, &create_err), -EINVAL);
        assert_int_equal(vgpu_mdev_define(&spec, &define_err), -EINVAL);
        vgpu_mdev_spec_free(&spec);
        struct vgpu_plan *p = NULL;
        assert_int_equal(apply_text("version: 1\ngpus:\n  - bdf: " GPU "\n    devices:\n      - type: "
                                    "i915-GVTg_V9_9\n        count: 1\n",
                                    &p, &apply_err),
                         -EINVAL);
        assert_null(p);
        assert_string_equal(create_err.message, define_err.message);
        assert_string_equal(create_err.message,
                            GPU " offers no type i915-GVTg_V9_9 (it offers: i915-GVTg_V5_1, i915-GVTg_V5_2, "
                                "i915-GVTg_V5_4, i915-GVTg_V5_8; see 'vgpuctl types " GPU "')");
        char want[VGPU_ERROR_MESSAGE_MAX + 16];
        snprintf(want, sizeof(want), "line 5: %s", create_err.message);
        assert_string_equal(apply_err.message, want);
        assert_int_equal(n_calls, 0);
}

/* host.yaml's persistence goes to the GPU's vendor backend, and its action comes back to it */
static void test_vendor_action(void **state) {
        (void) state;
        struct vgpu_error err = {};
        struct vgpu_plan *p = NULL;
        int r = apply_text("version: 1\ngpus:\n  - bdf: " GPU "\n    persistence: on\n", &p, &err);
        if (r < 0)
                fail_msg("apply: %s", err.message);
        assert_int_equal(p->n_actions, 2); /* its instance goes (no devices), then the mode */
        assert_string_equal(p->actions[1].backend, "test");
        vgpu_plan_free(p);
        assert_int_equal(n_calls, 2);
        assert_string_equal(calls[0], "remove " OLD_UUID);
        assert_string_equal(calls[1], "persistence " GPU " on");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_registry),
                cmocka_unit_test_setup_teardown(test_apply_through_backend, setup, teardown),
                cmocka_unit_test_setup_teardown(test_requests_through_backend, setup, teardown),
                cmocka_unit_test_setup_teardown(test_create_persist_conflict, setup, teardown),
                cmocka_unit_test_setup_teardown(test_same_messages_as_apply, setup, teardown),
                cmocka_unit_test_setup_teardown(test_vendor_action, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
