/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-telemetry.c — lib/telemetry: sensors.c and ipmi.c, and vgpud's sensor collectors, on the
 * amd-mxgpu fixture.
 *
 * libsensors reads only the live /sys (it checks that /sys is sysfs), so the fixture cannot be
 * handed to it through VGPU_ROOT. Instead this process enters its own mount namespace and binds
 * the fixture's sys/devices, sys/class and sys/bus over the live ones: /sys stays sysfs, and
 * libsensors sees the fixture's chips (an amdgpu on the GPU's PCI function, coretemp, and an
 * nct6779 with an alarm). Expected values are read from the fixture files themselves. Needs
 * root (CAP_SYS_ADMIN) for that; without it those tests are skipped, the rest still run.
 */
#include <math.h>
#include <sched.h>
#include <sys/mount.h>
#include <unistd.h>

#include "test-util.h"
#include "vgpud.h"

#define GPU            "0000:03:00.0"
#define GPU_HWMON      "sys/devices/pci0000:00/0000:00:01.1/0000:01:00.0/0000:02:00.0/0000:03:00.0/hwmon/hwmon3"
#define NCT_HWMON      "sys/devices/platform/nct6775.656/hwmon/hwmon2"
#define CORETEMP_HWMON "sys/devices/platform/coretemp.0/hwmon/hwmon1"

static char fixture[4096];

/* A fixture attribute (millidegrees, millivolts, microwatts, RPM) divided by scale. */
static double attr(const char *dir, const char *name, double scale) {
        char p[8192], buf[64];
        snprintf(p, sizeof(p), "%s/%s/%s", fixture, dir, name);
        FILE *f = fopen(p, "re");
        assert_non_null(f);
        assert_non_null(fgets(buf, sizeof(buf), f));
        fclose(f);
        return strtod(buf, NULL) / scale;
}

static const struct vgpu_sensor *find(const struct vgpu_sensor *s, size_t n, const char *chip,
                                      const char *label) {
        for (size_t i = 0; i < n; i++)
                if (strcmp(s[i].chip, chip) == 0 && strcmp(s[i].label, label) == 0)
                        return &s[i];
        fail_msg("no sensor %s / %s among %zu", chip, label, n);
        return NULL;
}

static void assert_close(double got, double want) {
        if (!(fabs(got - want) < 1e-6))
                fail_msg("got %g, expected %g", got, want);
}

/* Enter a mount namespace where /sys/{devices,class,bus} are the fixture's. */
static int enter_fixture_sysfs(void) {
        static const char *const dirs[] = { "devices", "class", "bus" };
        if (geteuid() != 0 || unshare(CLONE_NEWNS) < 0 ||
            mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
                return -errno ?: -EPERM;
        for (size_t i = 0; i < 3; i++) {
                char src[8192], dst[64];
                snprintf(src, sizeof(src), "%s/sys/%s", fixture, dirs[i]);
                snprintf(dst, sizeof(dst), "/sys/%s", dirs[i]);
                if (mount(src, dst, NULL, MS_BIND, NULL) < 0)
                        return -errno;
        }
        return 0;
}

/* libsensors on the fixture: every chip, label, value, threshold and alarm, and the PCI mapping. */
static void test_sensors_read(void **state) {
        (void) state;
        struct vgpu_sensor *s = NULL;
        size_t n = 0;
        struct vgpu_error err = {};
        assert_int_equal(vgpu_sensors_read(&s, &n, &err), 0);
        /* amdgpu: edge, junction, power; coretemp: package; nct6779: Vcore, +12V, fan1, SYSTIN */
        assert_int_equal(n, 8);

        const struct vgpu_sensor *x = find(s, n, "amdgpu-pci-0300", "edge");
        assert_string_equal(x->source, "hwmon");
        assert_int_equal(x->kind, VGPU_SENSOR_TEMPERATURE);
        assert_string_equal(x->unit, "C");
        assert_close(x->value, attr(GPU_HWMON, "temp1_input", 1000));
        assert_close(x->max, attr(GPU_HWMON, "temp1_max", 1000));
        assert_close(x->crit, attr(GPU_HWMON, "temp1_crit", 1000));
        assert_true(isnan(x->min));
        assert_int_equal(x->state, VGPU_SENSOR_OK);
        assert_string_equal(x->bdf, GPU);
        x = find(s, n, "amdgpu-pci-0300", "junction");
        assert_close(x->value, attr(GPU_HWMON, "temp2_input", 1000));
        assert_close(x->crit, attr(GPU_HWMON, "temp2_crit", 1000));
        assert_string_equal(x->bdf, GPU);
        x = find(s, n, "amdgpu-pci-0300", "power1"); /* no label file: the feature's name */
        assert_int_equal(x->kind, VGPU_SENSOR_POWER);
        assert_string_equal(x->unit, "W");
        assert_close(x->value, attr(GPU_HWMON, "power1_average", 1e6)); /* amdgpu has only the average */

        x = find(s, n, "coretemp-isa-0000", "Package id 0");
        assert_close(x->value, attr(CORETEMP_HWMON, "temp1_input", 1000));
        assert_close(x->crit, attr(CORETEMP_HWMON, "temp1_crit", 1000));
        assert_int_equal(x->state, VGPU_SENSOR_OK);
        assert_string_equal(x->bdf, ""); /* not on a PCI device */

        x = find(s, n, "nct6779-isa-0290", "Vcore");
        assert_int_equal(x->kind, VGPU_SENSOR_VOLTAGE);
        assert_string_equal(x->unit, "V");
        assert_close(x->value, attr(NCT_HWMON, "in0_input", 1000));
        assert_close(x->min, attr(NCT_HWMON, "in0_min", 1000));
        assert_close(x->max, attr(NCT_HWMON, "in0_max", 1000));
        assert_int_equal(x->state, VGPU_SENSOR_OK);
        x = find(s, n, "nct6779-isa-0290", "+12V"); /* in1_alarm is set: below its minimum */
        assert_close(x->value, attr(NCT_HWMON, "in1_input", 1000));
        assert_true(attr(NCT_HWMON, "in1_alarm", 1) == 1);
        assert_int_equal(x->state, VGPU_SENSOR_WARN);
        x = find(s, n, "nct6779-isa-0290", "fan1");
        assert_int_equal(x->kind, VGPU_SENSOR_FAN);
        assert_close(x->value, attr(NCT_HWMON, "fan1_input", 1));
        assert_close(x->min, attr(NCT_HWMON, "fan1_min", 1));
        assert_int_equal(x->state, VGPU_SENSOR_OK);

        int temp, crit;
        assert_int_equal(vgpu_sensors_gpu_temperature(s, n, GPU, &temp, &crit), 0);
        assert_int_equal(
                temp, (int) attr(GPU_HWMON, "temp1_input", 1000)); /* temp1 (edge), not the hotter junction */
        assert_int_equal(crit, (int) attr(GPU_HWMON, "temp1_crit", 1000));
        assert_int_equal(vgpu_sensors_gpu_temperature(s, n, "0000:03:02.0", &temp, &crit), -ENOENT);
        vgpu_sensors_free(s, n);
}

static struct vgpud *new_daemon(void) {
        struct vgpud *d = calloc(1, sizeof(*d));
        assert_non_null(d);
        assert_int_equal(vgpud_config_default(&d->config), 0);
        return d;
}

static void free_daemon(struct vgpud *d) {
        sensors_stop(d);
        events_clear(d);
        vgpud_config_free(d->config);
        free(d);
}

/* The daemon's collector: libsensors' reading becomes the GPU's hwmon temperature in telemetry. */
static void test_collector_feeds_gpu(void **state) {
        (void) state;
        struct vgpu_error err = {};
        struct vgpu_host *host = NULL;
        assert_int_equal(vgpu_host_scan(VGPU_SCAN_DETAILS, &host, &err), 0);
        struct vgpu_gpu *g = (struct vgpu_gpu *) vgpu_host_find_gpu(host, GPU);
        assert_non_null(g);
        /* forget the scan's own hwmon reading: what comes back came from libsensors */
        g->hwmon_temp_mc = g->hwmon_crit_mc = INT32_MIN;

        struct vgpud *d = new_daemon();
        d->config->collect_sensors = false;
        sensors_collect_hwmon(d, host);
        assert_int_equal(d->sensors.n, 0);
        assert_int_equal(g->hwmon_temp_mc, INT32_MIN); /* off: nothing read, nothing changed */

        d->config->collect_sensors = true;
        sensors_collect_hwmon(d, host);
        assert_true(d->sensors.hwmon_live);
        assert_int_equal(d->sensors.n, 8);
        assert_int_equal(g->hwmon_temp_mc, (int) attr(GPU_HWMON, "temp1_input", 1));
        assert_int_equal(g->hwmon_crit_mc, (int) attr(GPU_HWMON, "temp1_crit", 1));

        struct vgpu_telemetry t = {};
        assert_int_equal(vgpu_telemetry_update(&t, host, VGPU_TELEMETRY_HWMON, &d->config->thermal, NULL,
                                               NULL, NULL, NULL, &err),
                         0);
        const struct vgpu_gpu_telemetry *gt = vgpu_telemetry_find(&t, GPU);
        assert_non_null(gt);
        assert_int_equal(gt->temperature_c, (int) attr(GPU_HWMON, "temp1_input", 1000));
        assert_string_equal(gt->temperature_source, "hwmon");
        assert_int_equal(gt->slowdown_c, (int) attr(GPU_HWMON, "temp1_crit", 1000));
        vgpu_telemetry_free(&t);

        /* a second poll replaces the list rather than adding to it */
        sensors_collect_hwmon(d, host);
        assert_int_equal(d->sensors.n, 8);
        free_daemon(d);
        vgpu_host_free(host);
}

/* Under VGPU_ROOT libsensors is not asked: -EOPNOTSUPP, and the daemon keeps the scan's hwmon. */
static void test_sensors_fixture_root(void **state) {
        (void) state;
        use_fixture("amd-mxgpu");
        struct vgpu_sensor *s = NULL;
        size_t n = 0;
        struct vgpu_error err = {};
        assert_int_equal(vgpu_sensors_read(&s, &n, &err), -EOPNOTSUPP);
        assert_non_null(strstr(err.message, "VGPU_ROOT"));

        struct vgpu_host *host = NULL;
        assert_int_equal(vgpu_host_scan(VGPU_SCAN_DETAILS, &host, &err), 0);
        const struct vgpu_gpu *g = vgpu_host_find_gpu(host, GPU);
        assert_non_null(g);
        int before = g->hwmon_temp_mc;
        assert_int_equal(before, (int) attr(GPU_HWMON, "temp1_input", 1));
        struct vgpud *d = new_daemon();
        sensors_collect_hwmon(d, host);
        assert_false(d->sensors.hwmon_live);
        assert_true(d->sensors.hwmon_off_logged);
        assert_int_equal(d->sensors.n, 0);
        assert_int_equal(g->hwmon_temp_mc, before);
        free_daemon(d);
        vgpu_host_free(host);
        unsetenv("VGPU_ROOT");
}

/* No /dev/ipmi0: -ENODEV without a message; the collector is off, quietly, with no event. */
/* The GPU's first temperature, rounded half away from zero as lround() does; no crit is
 * INT32_MIN, and nonsense from a broken chip is clamped, not undefined. */
static void test_gpu_temperature_rounding(void **state) {
        (void) state;
        struct vgpu_sensor s[] = {
                { .kind = VGPU_SENSOR_FAN, .bdf = GPU, .value = 1200, .crit = NAN },
                { .kind = VGPU_SENSOR_TEMPERATURE, .bdf = GPU, .value = 44.5, .crit = 94.49 },
                { .kind = VGPU_SENSOR_TEMPERATURE, .bdf = "0000:04:00.0", .value = -0.5, .crit = 0 },
                { .kind = VGPU_SENSOR_TEMPERATURE, .bdf = "0000:05:00.0", .value = 1e300, .crit = NAN },
        };
        int temp, crit;
        assert_int_equal(vgpu_sensors_gpu_temperature(s, ELEMENTSOF(s), GPU, &temp, &crit), 0);
        assert_int_equal(temp, 45);
        assert_int_equal(crit, 94);
        assert_int_equal(vgpu_sensors_gpu_temperature(s, ELEMENTSOF(s), "0000:04:00.0", &temp, &crit), 0);
        assert_int_equal(temp, -1);
        assert_int_equal(crit, INT32_MIN);
        assert_int_equal(vgpu_sensors_gpu_temperature(s, ELEMENTSOF(s), "0000:05:00.0", &temp, &crit), 0);
        assert_int_equal(temp, 1000000);
        assert_int_equal(crit, INT32_MIN);
}

static void test_ipmi_absent(void **state) {
        (void) state;
        use_fixture("amd-mxgpu");
        struct vgpu_ipmi *ipmi = NULL;
        struct vgpu_error err = {};
        assert_int_equal(vgpu_ipmi_open(NULL, &ipmi, &err), -ENODEV);
        assert_null(ipmi);
        assert_string_equal(err.message, "");

        struct vgpud *d = new_daemon();
        for (int i = 0; i < 3; i++) {
                sensors_collect_ipmi(d);
                assert_null(d->sensors.ipmi);
                assert_true(d->sensors.ipmi_off_logged);
                assert_false(d->sensors.ipmi_failing);
        }
        assert_int_equal(d->sensors.n, 0);
        assert_int_equal(d->next_seq, 0); /* no events */
        assert_int_equal(d->events_total[EV_BMC_EVENT], 0);
        free_daemon(d);
        unsetenv("VGPU_ROOT");
}

int main(void) {
        const char *dir = getenv("FIXTURES");
        if (!dir)
                return 77;
        snprintf(fixture, sizeof(fixture), "%s/amd-mxgpu", dir);
        const struct CMUnitTest rooted[] = {
                cmocka_unit_test(test_sensors_fixture_root),
                cmocka_unit_test(test_ipmi_absent),
                cmocka_unit_test(test_gpu_temperature_rounding),
        };
        int r = cmocka_run_group_tests(rooted, NULL, NULL);
        if (r != 0)
                return r;
        int e = enter_fixture_sysfs();
        if (e < 0) {
                printf("# SKIP libsensors on the fixture: cannot bind it over /sys in a mount namespace: "
                       "%s\n",
                       strerror(-e));
                return 0;
        }
        const struct CMUnitTest live[] = {
                cmocka_unit_test(test_sensors_read),
                cmocka_unit_test(test_collector_feeds_gpu),
        };
        return cmocka_run_group_tests(live, NULL, NULL);
}
