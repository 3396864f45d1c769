/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-doctor-network.c — the doctor's network.vdi_link check on scratch roots: which interfaces
 * it looks at (routed ones, bridges and bonds followed down to their physical ports, virtual
 * ones and unrouted ones left alone) and how a port's speed, carrier and counters decide.
 */
#include <sys/stat.h>
#include <unistd.h>

#include "test-doctor-util.h"

/* A NIC port as sysfs shows it; speed NULL: the attribute reads EINVAL (no link), left out. */
static void nic(const char *name, const char *carrier, const char *speed, const char *rx_packets,
                const char *rx_errors, const char *rx_dropped, bool physical) {
        char p[128], dev[128];
        snprintf(p, sizeof(p), "sys/class/net/%s/carrier", name);
        scratch_file(p, carrier);
        if (speed) {
                snprintf(p, sizeof(p), "sys/class/net/%s/speed", name);
                scratch_file(p, speed);
        }
        static const char *const names[] = { "rx_packets", "rx_errors", "tx_errors", "rx_dropped",
                                             "tx_dropped" };
        const char *values[] = { rx_packets, rx_errors, "0\n", rx_dropped, "0\n" };
        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                snprintf(p, sizeof(p), "sys/class/net/%s/statistics/%s", name, names[i]);
                scratch_file(p, values[i]);
        }
        if (physical) {
                snprintf(p, sizeof(p), "sys/class/net/%s/device", name);
                snprintf(dev, sizeof(dev), "../../../devices/pci0000:00/0000:00:1c.0/%s", name);
                scratch_link(p, dev);
        }
}

/* "IF=status" per result of network.vdi_link, in order; summaries of non-pass ones after '|'. */
static char *run_check(char *buf, size_t size) {
        struct vgpu_error err = {};
        struct vgpu_host *host = NULL;
        struct vgpu_doctor_report *report = NULL;
        assert_int_equal(vgpu_host_scan(0, &host, &err), 0);
        assert_int_equal(vgpu_doctor_run(host, &report, &err), 0);
        size_t n = 0;
        buf[0] = '\0';
        for (size_t i = 0; i < report->n_results; i++) {
                const struct vgpu_check_result *r = &report->results[i];
                if (strcmp(r->id, "network.vdi_link") != 0)
                        continue;
                n += snprintf(buf + n, size - n, "%s=%s%s%s\n", r->subject ? r->subject : "(host)",
                              vgpu_check_status_to_string(r->status), r->status == VGPU_CHECK_PASS ? "" : "|",
                              r->status == VGPU_CHECK_PASS ? "" : r->summary);
                if (r->status == VGPU_CHECK_FAIL || r->status == VGPU_CHECK_WARN)
                        assert_non_null(r->remedy);
                assert_true(strstr(r->evidence, "/sys/class/net/") || strstr(r->evidence, "/proc/net/"));
                assert_true(n < size);
        }
        vgpu_doctor_report_free(report);
        vgpu_host_free(host);
        return buf;
}

static void test_interfaces_and_verdicts(void **state) {
        (void) state;
        char buf[2048];
        /* nothing routed: one skip for the host */
        assert_string_equal(run_check(buf, sizeof(buf)),
                            "(host)=skip|no physical interface carries routed traffic\n");

        /* br0 has the default route, over bond0 of two ports; eno3 a subnet route at 1 Gb/s;
         * eno4 a global IPv6 address and no link; virbr0's veth ports and the unrouted eno5 are
         * not looked at; docker0 is virtual with no ports. */
        scratch_file("proc/net/route",
                     "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
                     "br0\t00000000\t0100000A\t0003\t0\t0\t0\t00000000\t0\t0\t0\n"
                     "br0\t0000000A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"
                     "eno3\t0001A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"
                     "docker0\t000011AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n");
        scratch_file("proc/net/if_inet6", "00000000000000000000000000000001 01 80 10 80       lo\n"
                                          "fe800000000000000000000000000001 05 40 20 80     eno5\n"
                                          "20010db8000000000000000000000004 06 40 00 80     eno4\n");
        scratch_file("sys/class/net/br0/carrier", "1\n");
        scratch_link("sys/class/net/br0/brif/bond0", "../../bond0/brport");
        scratch_file("sys/class/net/bond0/carrier", "1\n");
        scratch_link("sys/class/net/bond0/lower_ens1f0", "../ens1f0");
        scratch_link("sys/class/net/bond0/lower_ens1f1", "../ens1f1");
        nic("ens1f0", "1\n", "25000\n", "1000000\n", "0\n", "12\n", true);
        nic("ens1f1", "1\n", "25000\n", "1000000\n", "3\n", "0\n", true);
        nic("eno3", "1\n", "1000\n", "500\n", "0\n", "0\n", true);
        nic("eno4", "0\n", NULL, "0\n", "0\n", "0\n", true);
        nic("eno5", "1\n", "100\n", "10\n", "0\n", "0\n", true);
        nic("docker0", "1\n", "10000\n", "10\n", "0\n", "0\n", false);
        const char *got = run_check(buf, sizeof(buf));
        assert_string_equal(got, "eno3=fail|links at 1000 Mb/s, below 10 Gb/s\n"
                                 "eno4=fail|no link (carrier 0)\n"
                                 "ens1f0=pass\n"
                                 "ens1f1=warn|25000 Mb/s, but 3 errors and 0 dropped packets\n");

        /* drops: a few are normal, more than 1 in 1000 received packets is a warning */
        scratch_file("sys/class/net/ens1f0/statistics/rx_dropped", "5000\n");
        got = run_check(buf, sizeof(buf));
        assert_non_null(strstr(got, "ens1f0=warn|25000 Mb/s, but 0 errors and 5000 dropped packets\n"));
        /* link up but no speed from the driver */
        scratch_file("sys/class/net/eno3/speed", "-1\n");
        got = run_check(buf, sizeof(buf));
        assert_non_null(strstr(got, "eno3=warn|link up, speed unknown\n"));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_interfaces_and_verdicts, scratch_setup,
                                                scratch_teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
