/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-report.c — lib/report: the tar writer (tar.c) read back by GNU tar (regular files with
 * their bytes and modes, directories, relative symlinks, names past ustar's 100 characters in
 * pax headers), and the support bundle of the nvidia-mdev fixture: its entry count, the
 * caller's extras byte for byte, the named sysfs attributes and never a BAR map or reset,
 * the unpacked tree scanning like the host it came from, and a path it cannot write refused
 * with nothing left behind. Runs with the NVML double (nvml.conf in the bundle).
 */
#include "test-util.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "report/tar.h"
#include "vgpu/host.h"
#include "vgpu/report.h"

static char dir[64];

static int setup(void **state) {
        (void) state;
        snprintf(dir, sizeof(dir), "/tmp/test-report-XXXXXX");
        assert_non_null(mkdtemp(dir));
        return 0;
}

static int teardown(void **state) {
        (void) state;
        rm_rf(dir);
        return 0;
}

/* The output of a shell command (at most 64 KiB), its exit status in *ret_status. */
static char *run(const char *cmd, int *ret_status) {
        FILE *p = popen(cmd, "re");
        assert_non_null(p);
        static char buf[65536];
        size_t n = fread(buf, 1, sizeof(buf) - 1, p);
        buf[n] = '\0';
        *ret_status = pclose(p);
        return buf;
}

static char *slurp(const char *path, size_t *ret_len) {
        FILE *f = fopen(path, "re");
        if (!f)
                return NULL;
        static char buf[65536];
        size_t n = fread(buf, 1, sizeof(buf) - 1, f);
        buf[n] = '\0';
        fclose(f);
        if (ret_len)
                *ret_len = n;
        return buf;
}

static void test_tar(void **state) {
        (void) state;
        char path[128], cmd[512];
        snprintf(path, sizeof(path), "%s/t.tgz", dir);
        int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        assert_true(fd >= 0);
        struct tar *t = tar_open_fd(fd, NULL);
        assert_non_null(t);
        /* a name longer than ustar's 100 bytes, and one whose data holds a NUL */
        char longname[200];
        snprintf(longname, sizeof(longname), "sys/devices/%s/attr",
                 "pci0000:3a/0000:3a:00.0/0000:3b:00.0/mdev_supported_types/nvidia-232/"
                 "a-directory-name-long-enough-to-need-pax");
        assert_true(strlen(longname) > 100);
        assert_int_equal(tar_add(t, "sys", 'd', 0755, 1700000000, NULL, 0, NULL), 0);
        assert_int_equal(tar_add(t, "sys/vendor", 'f', 0444, 1700000000, "0x10de\n", 7, NULL), 0);
        assert_int_equal(tar_add(t, "sys/bin", 'f', 0644, 1700000000, "a\0b", 3, NULL), 0);
        assert_int_equal(
                tar_add(t, "sys/driver", 'l', 0777, 1700000000, NULL, 0, "../../bus/pci/drivers/nvidia"), 0);
        assert_int_equal(tar_add(t, longname, 'f', 0600, 1700000000, "long\n", 5, NULL), 0);
        assert_int_equal(tar_close(t), 0);
        close(fd);

        int status;
        snprintf(cmd, sizeof(cmd), "tar -tvzf '%s' 2>&1", path);
        char *list = run(cmd, &status);
        if (status != 0)
                fail_msg("GNU tar cannot list the archive:\n%s", list);
        assert_non_null(strstr(list, "drwxr-xr-x"));
        assert_non_null(strstr(list, "-r--r--r--"));
        assert_non_null(strstr(list, "sys/driver -> ../../bus/pci/drivers/nvidia"));
        assert_non_null(strstr(list, longname));

        snprintf(cmd, sizeof(cmd), "mkdir '%s/x' && tar -xzf '%s' -C '%s/x' 2>&1", dir, path, dir);
        char *out = run(cmd, &status);
        if (status != 0)
                fail_msg("GNU tar cannot unpack the archive:\n%s", out);
        char p[512];
        size_t len;
        snprintf(p, sizeof(p), "%s/x/sys/vendor", dir);
        assert_string_equal(slurp(p, NULL), "0x10de\n");
        snprintf(p, sizeof(p), "%s/x/sys/bin", dir);
        char *bin = slurp(p, &len);
        assert_int_equal(len, 3);
        assert_memory_equal(bin, "a\0b", 3);
        snprintf(p, sizeof(p), "%s/x/%s", dir, longname);
        assert_string_equal(slurp(p, NULL), "long\n");
        struct stat st;
        assert_int_equal(stat(p, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0600);
        assert_int_equal(st.st_mtime, 1700000000);
        char target[128] = {};
        snprintf(p, sizeof(p), "%s/x/sys/driver", dir);
        assert_int_equal(readlink(p, target, sizeof(target) - 1), 28);
        assert_string_equal(target, "../../bus/pci/drivers/nvidia");
}

static void test_bundle(void **state) {
        (void) state;
        /* a copy of the fixture with what a real GPU's directory also has: a BAR map and reset */
        char host_root[128], cmd[512];
        snprintf(host_root, sizeof(host_root), "%s/host", dir);
        snprintf(cmd, sizeof(cmd),
                 "cp -a '%s/nvidia-mdev' '%s' && cd '%s/sys/bus/pci/devices/0000:3b:00.0/' && "
                 "echo BAR >resource0 && echo 1 >reset",
                 getenv("FIXTURES"), host_root, host_root);
        assert_int_equal(system(cmd), 0);
        setenv("VGPU_ROOT", host_root, 1);
        struct vgpu_host *host = NULL;
        struct vgpu_error err = {};
        assert_int_equal(vgpu_host_scan(VGPU_SCAN_ALL, &host, &err), 0);
        static const char doctor[] = "[{\"id\": \"privileges\", \"status\": \"pass\"}]\n";
        const struct vgpu_report_extra extras[] = {
                { .name = "vgpuctl/doctor.json", .data = doctor, .size = sizeof(doctor) - 1 },
        };
        char path[128];
        snprintf(path, sizeof(path), "%s/report.tgz", dir);
        int n = vgpu_report_write(host, path, extras, 1, &err);
        if (n < 0)
                fail_msg("report: %s", err.message);

        int status;
        snprintf(cmd, sizeof(cmd), "tar -tzf '%s'", path);
        char *list = run(cmd, &status);
        assert_int_equal(status, 0);
        size_t lines = 0;
        for (const char *c = list; *c; c++)
                lines += *c == '\n';
        assert_int_equal(lines, (size_t) n); /* what it says it wrote */
        const char *want[] = {
                "vgpuctl/doctor.json\n",
                "nvml.conf\n",
                "proc/cmdline\n",
                "sys/bus/pci/devices/0000:3b:00.0\n",
                "/0000:3b:00.0/vendor\n",
                "/0000:3b:00.0/mdev_supported_types/nvidia-232/description\n",
                "/0000:3b:00.0/iommu_group\n",
        };
        for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
                if (!strstr(list, want[i]))
                        fail_msg("the bundle lacks %s", want[i]);
        /* only named attributes: a BAR map would hang or read gigabytes on a real card, and
         * reset is write-only */
        assert_non_null(strstr(list, "/0000:3b:00.0/resource\n"));
        assert_null(strstr(list, "/resource0\n"));
        assert_null(strstr(list, "/reset\n"));

        snprintf(cmd, sizeof(cmd), "mkdir '%s/r' && tar -xzf '%s' -C '%s/r'", dir, path, dir);
        run(cmd, &status);
        assert_int_equal(status, 0);
        char p[256];
        size_t len;
        snprintf(p, sizeof(p), "%s/r/vgpuctl/doctor.json", dir);
        char *got = slurp(p, &len);
        assert_non_null(got);
        assert_int_equal(len, sizeof(doctor) - 1);
        assert_string_equal(got, doctor);

        /* the unpacked bundle is a host vgpuctl reads as the one it came from */
        snprintf(p, sizeof(p), "%s/r", dir);
        setenv("VGPU_ROOT", p, 1);
        struct vgpu_host *again = NULL;
        assert_int_equal(vgpu_host_scan(VGPU_SCAN_ALL, &again, &err), 0);
        assert_int_equal(again->n_gpus, host->n_gpus);
        assert_int_equal(again->n_parents, host->n_parents);
        assert_int_equal(again->n_instances, host->n_instances);
        for (size_t i = 0; i < host->n_parents; i++) {
                assert_string_equal(again->parents[i].name, host->parents[i].name);
                assert_int_equal(again->parents[i].n_types, host->parents[i].n_types);
        }
        vgpu_host_free(again);
        vgpu_host_free(host);
}

static void test_bundle_unwritable(void **state) {
        (void) state;
        use_fixture("nvidia-mdev");
        struct vgpu_host *host = NULL;
        struct vgpu_error err = {};
        assert_int_equal(vgpu_host_scan(VGPU_SCAN_ALL, &host, &err), 0);
        char path[128];
        snprintf(path, sizeof(path), "%s/no-such-dir/report.tgz", dir);
        assert_true(vgpu_report_write(host, path, NULL, 0, &err) < 0);
        if (!strstr(err.message, "no-such-dir"))
                fail_msg("the message does not name the path: %s", err.message);
        vgpu_host_free(host);
        /* nothing left in the directory: no temporary file, no half a report */
        int status;
        char cmd[256];
        snprintf(cmd, sizeof(cmd), "ls -A '%s'", dir);
        assert_string_equal(run(cmd, &status), "");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_tar, setup, teardown),
                cmocka_unit_test_setup_teardown(test_bundle, setup, teardown),
                cmocka_unit_test_setup_teardown(test_bundle_unwritable, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
