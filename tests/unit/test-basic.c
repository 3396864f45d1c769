/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-basic.c — lib/basic: sysfs.c and root.c, one-read attributes, links, the root prefix. */
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test-util.h"

#include "basic/macro.h"
#include "basic/root.h"
#include "basic/sysfs.h"

static char tmpdir[64];

static void write_file(const char *name, const char *content) {
        char p[256];
        snprintf(p, sizeof(p), "%s/%s", tmpdir, name);
        FILE *f = fopen(p, "w");
        assert_non_null(f);
        fputs(content, f);
        fclose(f);
}

static int setup(void **state) {
        (void) state;
        snprintf(tmpdir, sizeof(tmpdir), "/tmp/vgpu-test-basic.XXXXXX");
        assert_non_null(mkdtemp(tmpdir));
        write_file("vendor", "0x10de\n");
        write_file("numa_node", "-1\n");
        write_file("bad", "12abc\n");
        write_file("empty", "");
        char p[256];
        snprintf(p, sizeof(p), "%s/driver", tmpdir);
        assert_int_equal(symlink("../../../bus/pci/drivers/nvidia", p), 0);
        return 0;
}

static int teardown(void **state) {
        (void) state;
        rm_rf(tmpdir);
        return 0;
}

static void test_read(void **state) {
        (void) state;
        int fd = open(tmpdir, O_RDONLY | O_DIRECTORY);
        char buf[64];
        assert_int_equal(sysfs_read_at(fd, "vendor", buf, sizeof(buf)), 6);
        assert_string_equal(buf, "0x10de");
        assert_int_equal(sysfs_read_at(fd, "missing", buf, sizeof(buf)), -ENOENT);
        assert_int_equal(sysfs_read_at(fd, "empty", buf, sizeof(buf)), 0);
        /* a short buffer truncates instead of overflowing */
        assert_int_equal(sysfs_read_at(fd, "vendor", buf, 4), 3);
        assert_string_equal(buf, "0x1");
        close(fd);
}

static void test_numbers(void **state) {
        (void) state;
        int fd = open(tmpdir, O_RDONLY | O_DIRECTORY);
        uint64_t v;
        int i;
        assert_int_equal(sysfs_read_u64_at(fd, "vendor", 16, &v), 0);
        assert_int_equal(v, 0x10de);
        assert_int_equal(sysfs_read_u64_at(fd, "numa_node", 10, &v), -EINVAL);
        assert_int_equal(sysfs_read_int_at(fd, "numa_node", &i), 0);
        assert_int_equal(i, -1);
        assert_int_equal(sysfs_read_u64_at(fd, "bad", 10, &v), -EINVAL);
        assert_int_equal(sysfs_read_u64_at(fd, "empty", 10, &v), -EINVAL);
        close(fd);
}

static void test_links(void **state) {
        (void) state;
        int fd = open(tmpdir, O_RDONLY | O_DIRECTORY);
        char buf[64];
        assert_int_equal(sysfs_link_basename_at(fd, "driver", buf, sizeof(buf)), 6);
        assert_string_equal(buf, "nvidia");
        assert_true(sysfs_exists_at(fd, "driver"));
        assert_false(sysfs_exists_at(fd, "nope"));
        assert_int_equal(sysfs_link_basename_at(fd, "vendor", buf, sizeof(buf)), -EINVAL);
        close(fd);
}

/* Names from users that become paths (sysfs.h): one entry, or entries below a device. */
static void test_names(void **state) {
        (void) state;
        const char *const names[] = { "0000:3b:00.0", "mtty", "nvidia-232", "i915-GVTg_V5_4", "a.b" };
        for (size_t i = 0; i < ELEMENTSOF(names); i++)
                assert_true(sysfs_name_ok(names[i]));
        const char *const bad_names[] = { "", ".", "..", "a/b", "../x", "a b", "a\nb", "x\x7f" };
        for (size_t i = 0; i < ELEMENTSOF(bad_names); i++)
                assert_false(sysfs_name_ok(bad_names[i]));
        assert_false(sysfs_name_ok(NULL));
        const char *const paths[] = { "nvidia/vgpu_params", "frame_rate", "a/b/c", "..x/y" };
        for (size_t i = 0; i < ELEMENTSOF(paths); i++)
                assert_true(sysfs_rel_path_ok(paths[i]));
        const char *const bad_paths[] = {
                "",     "/etc/passwd", "a/../b", "..",  "../../proc/sys/kernel/core_pattern",
                "a//b", "a/",          "./a",    "a/.", "a\tb"
        };
        for (size_t i = 0; i < ELEMENTSOF(bad_paths); i++)
                assert_false(sysfs_rel_path_ok(bad_paths[i]));
}

static void test_root(void **state) {
        (void) state;
        char buf[256];
        unsetenv("VGPU_ROOT");
        assert_string_equal(root_prefix(), "");
        assert_int_equal(root_path(buf, sizeof(buf), "/sys/bus"), 0);
        assert_string_equal(buf, "/sys/bus");
        setenv("VGPU_ROOT", "/", 1);
        assert_int_equal(root_path(buf, sizeof(buf), "/sys/bus"), 0);
        assert_string_equal(buf, "/sys/bus");
        setenv("VGPU_ROOT", "/srv/host//", 1);
        assert_int_equal(root_path(buf, sizeof(buf), "/proc/cmdline"), 0);
        assert_string_equal(buf, "/srv/host/proc/cmdline");
        assert_int_equal(root_path(buf, sizeof(buf), "relative"), -EINVAL);
        assert_int_equal(root_path(buf, 8, "/proc/cmdline"), -ENAMETOOLONG);
        setenv("VGPU_ROOT", tmpdir, 1);
        assert_int_equal(root_read("/vendor", buf, sizeof(buf)), 6);
        assert_string_equal(buf, "0x10de");
        unsetenv("VGPU_ROOT");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_read),  cmocka_unit_test(test_numbers), cmocka_unit_test(test_links),
                cmocka_unit_test(test_names), cmocka_unit_test(test_root),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
