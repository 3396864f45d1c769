/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-restore.c — restoring the saved state on some parents only (vgpu_apply_parents), as
 * vgpud does when a parent appears: executed for real on a copy of the kernel-samples fixture,
 * with a small fake kernel (a thread) playing the mdev ABI's create/remove, so that what was
 * touched is read back from the tree, not from the plan. Two parents have saved instances and
 * none are running; restoring one creates exactly its instances and definitions, leaves the
 * other parent and the saved state alone, and a failure rolls back like vgpu_apply. vgpu_restore()
 * does the whole host as the programs call it.
 */
#include "test-util.h"

#include <dirent.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <unistd.h>

#include "basic/macro.h"
#include "plan/plan-internal.h"
#include "vgpu/apply.h"
#include "vgpu/config.h"
#include "vgpu/host.h"

#define U_TTY1 "11111111-2222-4333-8444-000000000001"
#define U_TTY2 "11111111-2222-4333-8444-000000000002"
#define U_TTY3 "11111111-2222-4333-8444-000000000003"
#define U_MDPY "11111111-2222-4333-8444-000000000004"

/* the saved state: instances on mtty and on mdpy, none of them running in the fixture */
static const char saved[] = "version: 1\n"
                            "gpus:\n"
                            "  - parent: mtty\n"
                            "    devices:\n"
                            "      - type: mtty-1\n"
                            "        uuids: [" U_TTY1 ", " U_TTY2 "]\n"
                            "  - parent: mdpy\n"
                            "    devices:\n"
                            "      - type: mdpy-hd\n"
                            "        uuids: [" U_MDPY "]\n";

static char root[] = "/tmp/vgpu-test-restore.XXXXXX";

static void pathf(char *buf, size_t size, const char *fmt, const char *a, const char *b) {
        char rel[PATH_MAX];
        snprintf(rel, sizeof(rel), fmt, a, b);
        snprintf(buf, size, "%s%s", root, rel);
}

static bool exists(const char *fmt, const char *a, const char *b) {
        char p[PATH_MAX];
        pathf(p, sizeof(p), fmt, a, b);
        return access(p, F_OK) == 0;
}

/* The text written to a sysfs-like file since last time, emptied ("" when none). */
static void take(const char *path, char *buf, size_t size) {
        buf[0] = '\0';
        FILE *f = fopen(path, "r+e");
        if (!f)
                return;
        if (fgets(buf, (int) size, f))
                buf[strcspn(buf, "\n")] = '\0';
        fclose(f);
        if (buf[0])
                (void) truncate(path, 0);
}

/* ---- the fake kernel: creates the device a UUID written to `create` names; `remove` removes */
static atomic_bool fake_stop;

static void fake_create(const char *parent, const char *type, const char *uuid) {
        char dev[PATH_MAX], p[PATH_MAX], target[PATH_MAX];
        pathf(dev, sizeof(dev), "/sys/devices/virtual/%s/%s", parent, parent);
        snprintf(dev + strlen(dev), sizeof(dev) - strlen(dev), "/%s", uuid);
        assert_int_equal(mkdir(dev, 0755), 0);
        snprintf(p, sizeof(p), "%s/mdev_type", dev);
        snprintf(target, sizeof(target), "../mdev_supported_types/%s", type);
        assert_int_equal(symlink(target, p), 0);
        snprintf(p, sizeof(p), "%s/remove", dev);
        fclose(fopen(p, "we"));
        pathf(p, sizeof(p), "/sys/bus/mdev/devices%s", "", "");
        mkdir(p, 0755);
        snprintf(p + strlen(p), sizeof(p) - strlen(p), "/%s", uuid);
        snprintf(target, sizeof(target), "../../../devices/virtual/%s/%s/%s", parent, parent, uuid);
        assert_int_equal(symlink(target, p), 0);
}

static void fake_remove(const char *uuid) {
        char link[PATH_MAX], dev[PATH_MAX], p[PATH_MAX + 16];
        pathf(link, sizeof(link), "/sys/bus/mdev/devices/%s%s", uuid, "");
        assert_non_null(realpath(link, dev));
        unlink(link);
        snprintf(p, sizeof(p), "%s/mdev_type", dev);
        unlink(p);
        snprintf(p, sizeof(p), "%s/remove", dev);
        unlink(p);
        rmdir(dev);
}

static void *fake_kernel(void *arg) {
        static const char *const parents[] = { "mtty", "mdpy", "mbochs" };
        char dir[PATH_MAX], p[PATH_MAX + 300], uuid[64];
        (void) arg;
        while (!atomic_load(&fake_stop)) {
                for (size_t i = 0; i < ELEMENTSOF(parents); i++) {
                        pathf(dir, sizeof(dir), "/sys/class/mdev_bus/%s/mdev_supported_types", parents[i],
                              "");
                        DIR *d = opendir(dir);
                        for (struct dirent *de; d && (de = readdir(d));) {
                                if (de->d_name[0] == '.')
                                        continue;
                                snprintf(p, sizeof(p), "%s/%s/create", dir, de->d_name);
                                take(p, uuid, sizeof(uuid));
                                if (uuid[0])
                                        fake_create(parents[i], de->d_name, uuid);
                        }
                        if (d)
                                closedir(d);
                }
                pathf(dir, sizeof(dir), "/sys/bus/mdev/devices%s", "", "");
                DIR *d = opendir(dir);
                for (struct dirent *de; d && (de = readdir(d));) {
                        if (de->d_name[0] == '.')
                                continue;
                        snprintf(p, sizeof(p), "%s/%s/remove", dir, de->d_name);
                        take(p, uuid, sizeof(uuid));
                        if (streq(uuid, "1"))
                                fake_remove(de->d_name);
                }
                if (d)
                        closedir(d);
                usleep(2000);
        }
        return NULL;
}

static pthread_t fake;

static int setup(void **state) {
        (void) state;
        strcpy(root, "/tmp/vgpu-test-restore.XXXXXX");
        assert_non_null(mkdtemp(root));
        char cmd[PATH_MAX * 2];
        snprintf(cmd, sizeof(cmd),
                 "cp -a '%s/kernel-samples/.' '%s/' && mkdir -p '%s/var/lib/vgpuctl' '%s/run'",
                 getenv("FIXTURES"), root, root, root);
        assert_int_equal(system(cmd), 0);
        char p[PATH_MAX];
        pathf(p, sizeof(p), "%s%s", "/var/lib/vgpuctl/host.yaml", "");
        FILE *f = fopen(p, "we");
        assert_non_null(f);
        fputs(saved, f);
        fclose(f);
        setenv("VGPU_ROOT", root, 1);
        atomic_store(&fake_stop, false);
        assert_int_equal(pthread_create(&fake, NULL, fake_kernel, NULL), 0);
        return 0;
}

static int teardown(void **state) {
        (void) state;
        atomic_store(&fake_stop, true);
        pthread_join(fake, NULL);
        rm_rf(root);
        return 0;
}

static struct vgpu_config *load_saved(char **ret_text) {
        struct vgpu_config *cfg = NULL;
        struct vgpu_error err = {};
        if (vgpu_config_load(VGPU_STATE_CONFIG, VGPU_CONFIG_HOST_PATH, &cfg, ret_text, &err) < 0)
                fail_msg("loading the saved state: %s", err.message);
        return cfg;
}

static bool saved_unchanged(void) {
        char p[PATH_MAX], buf[sizeof(saved) + 16] = "";
        pathf(p, sizeof(p), "%s%s", VGPU_STATE_CONFIG, "");
        FILE *f = fopen(p, "re");
        size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
        if (f)
                fclose(f);
        return n == strlen(saved) && memcmp(buf, saved, n) == 0;
}

static void test_restore_one_parent(void **state) {
        (void) state;
        struct vgpu_config *cfg = load_saved(NULL);
        struct vgpu_error err = {};
        struct vgpu_plan *plan = NULL;
        const char *const only[] = { "mtty" };

        /* mtty appeared: its two instances are created and defined, and nothing else */
        int r = vgpu_apply_parents(cfg, only, 1, 0, &plan, &err);
        if (r < 0)
                fail_msg("restore failed: %s", err.message);
        assert_int_equal(r, 4);
        for (size_t i = 0; i < plan->n_actions; i++)
                assert_string_equal(plan->actions[i].spec.parent, "mtty");
        vgpu_plan_free(plan);
        assert_true(exists("/sys/bus/mdev/devices/%s%s", U_TTY1, ""));
        assert_true(exists("/sys/bus/mdev/devices/%s%s", U_TTY2, ""));
        assert_true(exists("/etc/mdevctl.d/mtty/%s%s", U_TTY1, ""));
        assert_true(exists("/etc/mdevctl.d/mtty/%s%s", U_TTY2, ""));
        /* mdpy has saved instances missing too, and they stay missing: not ours this time */
        assert_false(exists("/sys/bus/mdev/devices/%s%s", U_MDPY, ""));
        assert_false(exists("/etc/mdevctl.d/mdpy%s%s", "", ""));
        /* the saved state is still the whole file */
        assert_true(saved_unchanged());

        /* again: mtty matches now, nothing to do (the running instances were seen and kept) */
        assert_int_equal(vgpu_apply_parents(cfg, only, 1, 0, NULL, &err), 0);

        /* then mdpy appears: its one instance, and mtty's are left as they are */
        const char *const mdpy[] = { "mdpy" };
        r = vgpu_apply_parents(cfg, mdpy, 1, 0, &plan, &err);
        if (r < 0)
                fail_msg("restore failed: %s", err.message);
        assert_int_equal(r, 2);
        assert_int_equal(plan->actions[0].kind, VGPU_ACTION_CREATE);
        assert_string_equal(plan->actions[0].spec.uuid, U_MDPY);
        vgpu_plan_free(plan);
        assert_true(exists("/sys/bus/mdev/devices/%s%s", U_MDPY, ""));
        assert_true(exists("/sys/bus/mdev/devices/%s%s", U_TTY1, ""));
        assert_true(saved_unchanged());
        vgpu_config_free(cfg);
}

/* A count-only entry after the devices vanished (reboot, module reload): the stopped
 * definitions on the parent are started with their UUIDs (the VMs' XML names them), not
 * replaced by new ones; only what the count still lacks gets a new UUID. */
static void test_restore_count_keeps_defined_uuids(void **state) {
        (void) state;
        static const char text[] = "version: 1\n"
                                   "gpus:\n"
                                   "  - parent: mtty\n"
                                   "    devices:\n"
                                   "      - type: mtty-1\n"
                                   "        count: 3\n";
        struct vgpu_config *cfg = NULL;
        struct vgpu_error err = {};
        assert_int_equal(vgpu_config_parse_text(text, strlen(text), "count.yaml", &cfg, &err), 0);
        const char *const defined[] = { U_TTY1, U_TTY2 };
        for (size_t i = 0; i < ELEMENTSOF(defined); i++) {
                struct vgpu_mdev_spec spec = { .parent = (char *) "mtty",
                                               .type = (char *) "mtty-1",
                                               .auto_start = true };
                snprintf(spec.uuid, sizeof(spec.uuid), "%s", defined[i]);
                if (vgpu_mdev_define(&spec, &err) < 0)
                        fail_msg("define: %s", err.message);
        }
        const char *const only[] = { "mtty" };
        struct vgpu_plan *plan = NULL;
        int r = vgpu_apply_parents(cfg, only, 1, 0, &plan, &err);
        if (r < 0)
                fail_msg("restore failed: %s", err.message);
        /* two started as defined, one new (created and defined); nothing undefined */
        unsigned creates = 0, defines = 0;
        for (size_t i = 0; i < plan->n_actions; i++) {
                const struct vgpu_action *a = &plan->actions[i];
                assert_int_not_equal(a->kind, VGPU_ACTION_UNDEFINE);
                creates += a->kind == VGPU_ACTION_CREATE;
                defines += a->kind == VGPU_ACTION_DEFINE;
                if (a->kind == VGPU_ACTION_CREATE && i < 2) {
                        assert_string_equal(a->spec.uuid, defined[i]);
                        assert_string_equal(a->detail, "defined, not running");
                }
        }
        assert_int_equal(creates, 3);
        assert_int_equal(defines, 1);
        vgpu_plan_free(plan);
        assert_true(exists("/sys/bus/mdev/devices/%s%s", U_TTY1, ""));
        assert_true(exists("/sys/bus/mdev/devices/%s%s", U_TTY2, ""));
        assert_true(exists("/etc/mdevctl.d/mtty/%s%s", U_TTY1, ""));
        vgpu_config_free(cfg);
}

/* A parent the kernel registers again (module reload) between two scans has a new generation,
 * which is how vgpud tells "came back empty" from "was always there"; the others keep theirs. */
static void test_parent_generation(void **state) {
        (void) state;
        struct vgpu_error err = {};
        struct vgpu_host *before = NULL, *after = NULL;
        assert_int_equal(vgpu_host_scan(VGPU_SCAN_PARENTS, &before, &err), 0);
        const struct vgpu_parent *tty = vgpu_host_find_parent(before, "mtty"),
                                 *mdpy = vgpu_host_find_parent(before, "mdpy");
        assert_non_null(tty);
        assert_non_null(mdpy);
        assert_int_not_equal(tty->generation, 0);
        /* what mdev_register_parent() does again on modprobe: a new type directory and a new
         * link in the class directory (made before the old one goes, so that no file system
         * hands the same inode number out again) */
        char cmd[PATH_MAX * 3];
        snprintf(cmd, sizeof(cmd),
                 "cd '%s/sys/class/mdev_bus/mtty/' && cp -a mdev_supported_types t.new && "
                 "rm -rf mdev_supported_types && mv t.new mdev_supported_types && cd .. && "
                 "ln -s \"$(readlink mtty)\" mtty.new && mv -T mtty.new mtty",
                 root);
        assert_int_equal(system(cmd), 0);
        assert_int_equal(vgpu_host_scan(VGPU_SCAN_PARENTS, &after, &err), 0);
        assert_int_not_equal(vgpu_host_find_parent(after, "mtty")->generation, tty->generation);
        assert_int_equal(vgpu_host_find_parent(after, "mdpy")->generation, mdpy->generation);
        vgpu_host_free(before);
        vgpu_host_free(after);
}

/* A parent the file does not mention, or one not on the host: nothing to do, no error. */
static void test_restore_unmanaged(void **state) {
        (void) state;
        struct vgpu_config *cfg = load_saved(NULL);
        struct vgpu_error err = {};
        const char *const only[] = { "mbochs", "0000:99:00.0" };
        assert_int_equal(vgpu_apply_parents(cfg, only, 2, 0, NULL, &err), 0);
        assert_int_equal(vgpu_apply_parents(cfg, only, 0, 0, NULL, &err), 0);
        assert_false(exists("/sys/bus/mdev/devices/%s%s", U_TTY1, ""));
        assert_false(exists("/etc/mdevctl.d%s%s", "", ""));
        vgpu_config_free(cfg);
}

/* A failure half-way through one parent's restore undoes what it did there, as apply does. */
static void test_restore_rolls_back(void **state) {
        (void) state;
        static const char three[] = "version: 1\ngpus:\n  - parent: mtty\n    devices:\n"
                                    "      - {type: mtty-1, uuids: [" U_TTY1 ", " U_TTY2 "]}\n"
                                    "      - {type: mtty-2, uuids: [" U_TTY3 "]}\n";
        struct vgpu_config *cfg = NULL;
        struct vgpu_error err = {};
        assert_int_equal(vgpu_config_parse_text(three, strlen(three), "t.yaml", &cfg, &err), 0);
        /* the kernel refuses mtty-2 (its create file is gone): the third creation fails */
        char p[PATH_MAX];
        pathf(p, sizeof(p), "/sys/class/mdev_bus/mtty/mdev_supported_types/%s/create", "mtty-2", "");
        assert_int_equal(unlink(p), 0);
        const char *const only[] = { "mtty" };
        int r = vgpu_apply_parents(cfg, only, 1, 0, NULL, &err);
        assert_true(r < 0);
        if (!strstr(err.message, "every earlier step was rolled back"))
                fail_msg("message: %s", err.message);
        assert_false(exists("/sys/bus/mdev/devices/%s%s", U_TTY1, ""));
        assert_false(exists("/sys/bus/mdev/devices/%s%s", U_TTY2, ""));
        assert_false(exists("/etc/mdevctl.d/mtty/%s%s", U_TTY1, ""));
        assert_true(saved_unchanged());
        vgpu_config_free(cfg);
}

/* A vGPU parent that is an SR-IOV VF, from the fixture itself; NULL if none. */
static const struct vgpu_parent *first_vf_parent(const struct vgpu_host *host) {
        for (size_t i = 0; i < host->n_parents; i++)
                if (host->parents[i].gpu && host->parents[i].gpu->physfn[0])
                        return &host->parents[i];
        return NULL;
}

/* Planning limited to VFs plans their PF's VF count first; other PFs' counts are left alone. */
static void test_plan_vfs_for_vf_parents(void **state) {
        (void) state;
        use_fixture("nvidia-sriov-vfio");
        struct vgpu_error err = {};
        struct vgpu_host *host;
        assert_int_equal(vgpu_host_scan(VGPU_SCAN_PARENTS | VGPU_SCAN_INSTANCES, &host, &err), 0);
        /* a VF parent and its PF, from the fixture itself */
        const struct vgpu_parent *vf = first_vf_parent(host);
        assert_non_null(vf);
        const struct vgpu_gpu *pf = vgpu_host_find_gpu(host, vf->gpu->physfn);
        assert_non_null(pf);
        unsigned want = pf->num_vfs > 1 ? pf->num_vfs - 1 : pf->total_vfs;
        assert_int_not_equal(want, pf->num_vfs);
        char text[512];
        snprintf(text, sizeof(text), "version: 1\ngpus:\n  - bdf: %s\n    vfs: %u\n", pf->bdf, want);
        struct vgpu_config *cfg = NULL;
        assert_int_equal(vgpu_config_parse_text(text, strlen(text), "t.yaml", &cfg, &err), 0);

        struct vgpu_plan *plan = NULL;
        const char *const one_vf[] = { vf->name };
        assert_int_equal(plan_compute_only(host, NULL, 0, cfg, one_vf, 1, 0, &plan, &err), 0);
        assert_int_equal(plan->n_actions, 1);
        assert_int_equal(plan->actions[0].kind, VGPU_ACTION_SET_VFS);
        assert_string_equal(plan->actions[0].spec.parent, pf->bdf);
        assert_int_equal(plan->actions[0].vfs, want);
        vgpu_plan_free(plan);

        const char *const other[] = { "mtty" };
        assert_int_equal(plan_compute_only(host, NULL, 0, cfg, other, 1, 0, &plan, &err), 0);
        assert_int_equal(plan->n_actions, 0);
        vgpu_plan_free(plan);
        vgpu_config_free(cfg);
        vgpu_host_free(host);
}

/* Out of memory on purpose: test-restore is linked with -Wl,--wrap=calloc (tests/meson.build),
 * so the library's calloc() calls come here; calloc_fail_in = N makes the Nth from then on
 * fail, once. */
void *__real_calloc(size_t n, size_t size);
void *__wrap_calloc(size_t n, size_t size);
static int calloc_fail_in = -1;
static bool calloc_failed;

void *__wrap_calloc(size_t n, size_t size) {
        if (calloc_fail_in >= 0 && calloc_fail_in-- == 0) {
                calloc_failed = true;
                return NULL;
        }
        return __real_calloc(n, size);
}

/* Planning some parents only, with each of the planner's callocs failing in turn: every run
 * says "out of memory" and plans nothing, until one where no calloc failed plans as usual. The
 * parents outside the set are dropped from a table that may not have been allocated. */
static void test_plan_out_of_memory(void **state) {
        (void) state;
        use_fixture("nvidia-sriov-vfio");
        struct vgpu_error err = {};
        struct vgpu_host *host;
        assert_int_equal(vgpu_host_scan(VGPU_SCAN_PARENTS | VGPU_SCAN_INSTANCES, &host, &err), 0);
        const struct vgpu_parent *vf = first_vf_parent(host);
        assert_non_null(vf);
        assert_true(host->n_parents > 1); /* some parent is outside the set */
        char text[512];
        snprintf(text, sizeof(text), "version: 1\ngpus:\n  - bdf: %s\n    vfs: 1\n", vf->gpu->physfn);
        struct vgpu_config *cfg = NULL;
        assert_int_equal(vgpu_config_parse_text(text, strlen(text), "t.yaml", &cfg, &err), 0);

        const char *const one_vf[] = { vf->name };
        int failed = 0;
        for (int n = 0;; n++) {
                struct vgpu_plan *plan = NULL;
                err = (struct vgpu_error){};
                calloc_failed = false;
                calloc_fail_in = n;
                int r = plan_compute_only(host, NULL, 0, cfg, one_vf, 1, 0, &plan, &err);
                calloc_fail_in = -1;
                if (!calloc_failed) {
                        assert_int_equal(r, 0);
                        assert_non_null(plan);
                        vgpu_plan_free(plan);
                        break;
                }
                assert_int_equal(r, -ENOMEM);
                assert_null(plan);
                assert_string_equal(err.message, "out of memory");
                failed++;
        }
        assert_true(failed >= 5); /* at least the planner's own tables */
        vgpu_config_free(cfg);
        vgpu_host_free(host);
}

/* vgpu_restore(), as vgpuctl apply --restore and vgpud call it: the whole saved state at boot,
 * then a parent that appears, which finds nothing left to do; the saved file stays as it was. */
static void test_restore_whole_host(void **state) {
        (void) state;
        struct vgpu_error err = {};
        struct vgpu_restore_report report;
        int r = vgpu_restore(NULL, 0, 0, NULL, &report, &err);
        if (r < 0)
                fail_msg("restore failed: %s", err.message);
        assert_int_equal(r, 6); /* three instances, each created and defined */
        assert_false(report.nothing_saved);
        assert_int_equal(report.n_slices, 0);
        assert_int_equal(report.slices_error.code, 0);
        assert_int_equal(report.plan->n_actions, 6);
        vgpu_plan_free(report.plan);
        assert_true(exists("/sys/bus/mdev/devices/%s%s", U_TTY1, ""));
        assert_true(exists("/sys/bus/mdev/devices/%s%s", U_TTY2, ""));
        assert_true(exists("/sys/bus/mdev/devices/%s%s", U_MDPY, ""));
        assert_true(exists("/etc/mdevctl.d/mdpy/%s%s", U_MDPY, ""));
        assert_true(saved_unchanged());

        const char *const mdpy[] = { "mdpy" };
        assert_int_equal(vgpu_restore(mdpy, 1, 0, NULL, &report, &err), 0);
        assert_int_equal(report.plan->n_actions, 0);
        vgpu_plan_free(report.plan);

        /* nothing saved: not a failure, and nothing to print a plan of */
        char p[PATH_MAX];
        pathf(p, sizeof(p), "%s%s", VGPU_STATE_CONFIG, "");
        assert_int_equal(unlink(p), 0);
        assert_int_equal(vgpu_restore(mdpy, 1, 0, NULL, &report, &err), 0);
        assert_true(report.nothing_saved);
        assert_null(report.plan);
        assert_int_equal(err.code, 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_restore_one_parent, setup, teardown),
                cmocka_unit_test_setup_teardown(test_restore_whole_host, setup, teardown),
                cmocka_unit_test_setup_teardown(test_restore_count_keeps_defined_uuids, setup, teardown),
                cmocka_unit_test_setup_teardown(test_parent_generation, setup, teardown),
                cmocka_unit_test_setup_teardown(test_restore_unmanaged, setup, teardown),
                cmocka_unit_test_setup_teardown(test_restore_rolls_back, setup, teardown),
                cmocka_unit_test(test_plan_vfs_for_vf_parents),
                cmocka_unit_test(test_plan_out_of_memory),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
