/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * ipmi-check.c — run in the VM guest against QEMU's emulated BMC (ipmi-bmc-sim on KCS,
 * tests/vm/scenarios/45-ipmi.sh): reads the BMC's sensors and its SEL through libvgpu
 * (vgpu_ipmi_*), adds an over-temperature entry to the SEL itself (Add SEL Entry, netfn 0x0a
 * cmd 0x44, through the kernel's /dev/ipmi0 rather than FreeIPMI, so the writer and the reader
 * are independent), and reads the SEL again: the incremental read must report exactly that
 * entry; a second entry added, exactly the second (the first is still in the SEL: filtered by
 * record id); a last read nothing. Prints key=value lines for the scenario to check.
 * `ipmi-check add` only adds the entry and prints its record id (for the vgpud check);
 * add-undervolt and add-deassert add an under-voltage and a deasserted over-temperature one
 * (for `vgpuctl sel`).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/ipmi.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "vgpu/sensors.h"

/* Add SEL Entry: a system event record for a threshold sensor: sensor type (0x01 temperature,
 * 0x02 voltage), number, event direction (0x00 assertion, 0x80 deassertion), offset, trigger
 * reading and threshold. Returns the record id. */
static int add_entry(unsigned char type, unsigned char number, unsigned char dir, unsigned char offset,
                     unsigned char reading, unsigned char threshold) {
        int fd = open("/dev/ipmi0", O_RDWR | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        uint32_t now = (uint32_t) time(NULL);
        unsigned char rec[16] = {
                0x00,
                0x00, /* record id: the BMC assigns it */
                0x02, /* system event record */
                (unsigned char) now,
                (unsigned char) (now >> 8),
                (unsigned char) (now >> 16),
                (unsigned char) (now >> 24),
                0x20,
                0x00,                            /* generator: the BMC's own address, LUN 0 */
                0x04,                            /* event message format: IPMI 1.5+ */
                type,                            /* sensor type */
                number,                          /* sensor number */
                (unsigned char) (dir | 0x01),    /* direction, threshold event/reading type */
                (unsigned char) (0x50 | offset), /* data 2 = trigger reading, data 3 = threshold */
                reading,
                threshold,
        };
        struct ipmi_system_interface_addr bmc = {
                .addr_type = IPMI_SYSTEM_INTERFACE_ADDR_TYPE,
                .channel = IPMI_BMC_CHANNEL,
                .lun = 0,
        };
        struct ipmi_req req = {
                .addr = (unsigned char *) &bmc,
                .addr_len = sizeof(bmc),
                .msgid = 1,
                .msg = { .netfn = 0x0a, .cmd = 0x44, .data = rec, .data_len = sizeof(rec) },
        };
        int r = -EIO;
        if (ioctl(fd, IPMICTL_SEND_COMMAND, &req) < 0) {
                r = -errno;
                goto out;
        }
        struct pollfd p = { .fd = fd, .events = POLLIN };
        if (poll(&p, 1, 10000) != 1) {
                r = -ETIMEDOUT;
                goto out;
        }
        unsigned char data[64];
        struct ipmi_addr from;
        struct ipmi_recv recv = { .addr = (unsigned char *) &from,
                                  .addr_len = sizeof(from),
                                  .msg = { .data = data, .data_len = sizeof(data) } };
        if (ioctl(fd, IPMICTL_RECEIVE_MSG_TRUNC, &recv) < 0) {
                r = -errno;
                goto out;
        }
        /* completion code, then the record id (little endian) */
        if (recv.msg.data_len >= 3 && data[0] == 0)
                r = data[1] | data[2] << 8;
        else
                fprintf(stderr, "ipmi-check: Add SEL Entry: completion code 0x%02x\n", data[0]);
out:
        close(fd);
        return r;
}

/* Sensor 0x30 (Temperature), "upper critical going high" (offset 9) asserted: 95 over 90. */
static int add_overtemp_entry(void) {
        return add_entry(0x01, 0x30, 0x00, 0x09, 95, 90);
}

static void print_entries(const char *step, const struct vgpu_sel_entry *e, size_t n) {
        printf("%s_count=%zu\n", step, n);
        for (size_t i = 0; i < n; i++)
                printf("%s_entry=%u|%s|%s|%s|%s|over_temperature=%d|under_voltage=%d\n", step, e[i].record_id,
                       e[i].sensor_type, e[i].sensor, e[i].event, vgpu_sensor_state_to_string(e[i].severity),
                       e[i].over_temperature, e[i].under_voltage);
}

int main(int argc, char **argv) {
        if (argc > 1 && strcmp(argv[1], "add") == 0) {
                int id = add_overtemp_entry();
                printf("added=%d\n", id);
                return id < 0;
        }
        /* sensor 0x31 (Voltage), "lower critical going low" (offset 2) asserted: 10 under 11 */
        if (argc > 1 && strcmp(argv[1], "add-undervolt") == 0) {
                int id = add_entry(0x02, 0x31, 0x00, 0x02, 10, 11);
                printf("added=%d\n", id);
                return id < 0;
        }
        /* the over-temperature of `add` ending: deasserted, so not flagged */
        if (argc > 1 && strcmp(argv[1], "add-deassert") == 0) {
                int id = add_entry(0x01, 0x30, 0x80, 0x09, 85, 90);
                printf("added=%d\n", id);
                return id < 0;
        }
        struct vgpu_error err = {};
        struct vgpu_ipmi *ipmi = NULL;
        int r = vgpu_ipmi_open("/tmp/ipmi-sdr-cache", &ipmi, &err);
        printf("open=%d\n", r);
        if (r < 0) {
                fprintf(stderr, "ipmi-check: open: %s\n", err.message[0] ? err.message : strerror(-r));
                return 1;
        }
        struct vgpu_sensor *s = NULL;
        size_t n = 0;
        r = vgpu_ipmi_sensors_read(ipmi, &s, &n, &err);
        printf("sensors=%d\nsensors_count=%zu\n", r, r < 0 ? 0 : n);
        if (r < 0)
                fprintf(stderr, "ipmi-check: sensors: %s\n", err.message);
        for (size_t i = 0; r >= 0 && i < n; i++)
                printf("sensor=%s|%s|%g %s|%s\n", s[i].label, vgpu_sensor_kind_to_string(s[i].kind),
                       s[i].value, s[i].unit, vgpu_sensor_state_to_string(s[i].state));
        vgpu_sensors_free(s, n);

        /* first read: the whole SEL as it is; after each entry we add: that entry alone; last: none */
        for (int step = 0; step < 4; step++) {
                static const char *const names[] = { "first", "second", "third", "fourth" };
                struct vgpu_sel_entry *e = NULL;
                size_t ne = 0;
                if (step == 1 || step == 2) {
                        int id = add_overtemp_entry();
                        printf("added%d=%d\n", step, id);
                        if (id < 0)
                                fprintf(stderr, "ipmi-check: Add SEL Entry: %s\n", strerror(-id));
                }
                if ((r = vgpu_ipmi_sel_read(ipmi, &e, &ne, &err)) < 0) {
                        printf("%s=%d\n", names[step], r);
                        fprintf(stderr, "ipmi-check: SEL: %s\n", err.message);
                        vgpu_ipmi_free(ipmi);
                        return 1;
                }
                print_entries(names[step], e, ne);
                free(e);
        }
        vgpu_ipmi_free(ipmi);
        return 0;
}
