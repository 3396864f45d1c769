/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * checks-network.c — do the network interfaces that carry the VDI streams link fast enough and
 * cleanly? The admin guide asks for 10 Gb/s (SFP+) for VDI streaming; a desktop protocol on a
 * 1 Gb/s link, or on a port that drops or corrupts packets, reads to the user as "high latency"
 * however idle the GPU is. One result per physical interface, with its counters as evidence.
 *
 * Which interfaces: those the host routes through — every interface in the IPv4 routing table
 * (/proc/net/route: a default route, or the subnet route of an address) and every one with a
 * global IPv6 address (/proc/net/if_inet6, scope 00). A bridge, bond or VLAN is followed down to
 * the physical ports under it (brif/, lower_*), since only those have a link speed; physical
 * means a device link (/sys/class/net/IF/device), which no virtual interface has.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "basic/root.h"
#include "doctor-internal.h"

#define VDI_LINK_MIN_MBPS 10000 /* the guide's table: "10Gbps SFP+ Network" for VDI streaming */
#define MAX_IFACES        32
#define MAX_DEPTH         4  /* bridge on a bond on a VLAN on a port is already deep */
#define IFNAME_MAX        16 /* IFNAMSIZ */

struct ifaces {
        char names[MAX_IFACES][IFNAME_MAX];
        size_t n;
};

static bool ifname_is_valid(const char *s) {
        size_t len = strlen(s);
        return len > 0 && len < IFNAME_MAX && !strchr(s, '/') && strcmp(s, ".") != 0 && strcmp(s, "..") != 0;
}

static void ifaces_add(struct ifaces *l, const char *name) {
        if (!ifname_is_valid(name) || l->n >= MAX_IFACES)
                return;
        for (size_t i = 0; i < l->n; i++)
                if (streq(l->names[i], name))
                        return;
        snprintf(l->names[l->n++], IFNAME_MAX, "%s", name);
}

static bool iface_is_physical(const char *name) {
        char path[128], p[4096];
        struct stat st;
        snprintf(path, sizeof(path), "/sys/class/net/%s/device", name);
        return root_path(p, sizeof(p), path) >= 0 && lstat(p, &st) == 0;
}

/* name itself when physical, else the physical ports below it (bridge ports, a bond's or a
 * VLAN's lower devices). */
static void add_physical(struct ifaces *out, const char *name, unsigned depth) {
        if (iface_is_physical(name)) {
                ifaces_add(out, name);
                return;
        }
        if (depth >= MAX_DEPTH)
                return;
        char path[128];
        for (int pass = 0; pass < 2; pass++) {
                snprintf(path, sizeof(path), pass == 0 ? "/sys/class/net/%s/brif" : "/sys/class/net/%s",
                         name);
                int fd = root_open_dir(path);
                if (fd < 0)
                        continue;
                DIR *dir = fdopendir(fd);
                if (!dir) {
                        close(fd);
                        continue;
                }
                struct dirent *de;
                while ((de = readdir(dir)))
                        if (pass == 0 && de->d_name[0] != '.')
                                add_physical(out, de->d_name, depth + 1);
                        else if (pass == 1 && strncmp(de->d_name, "lower_", 6) == 0)
                                add_physical(out, de->d_name + 6, depth + 1);
                closedir(dir);
        }
}

/* The interfaces the host routes through, as named in the kernel's tables. */
static int routed_interfaces(struct ifaces *ret) {
        _cleanup_free_ char *route = NULL, *inet6 = NULL;
        int r = doctor_read_file("/proc/net/route", &route);
        if (r == -ENOMEM)
                return r;
        if (r >= 0) {
                char *save = NULL;
                /* "Iface Destination Gateway ..." header, then one route per line */
                for (char *line = strtok_r(route, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                        char name[IFNAME_MAX];
                        if (sscanf(line, "%15s", name) == 1 && !streq(name, "Iface"))
                                ifaces_add(ret, name);
                }
        }
        r = doctor_read_file("/proc/net/if_inet6", &inet6);
        if (r == -ENOMEM)
                return r;
        if (r >= 0) {
                char *save = NULL;
                /* "address ifindex prefixlen scope flags name"; scope 00 is global */
                for (char *line = strtok_r(inet6, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                        char addr[33], name[IFNAME_MAX];
                        unsigned idx, plen, scope, flags;
                        if (sscanf(line, "%32s %x %x %x %x %15s", addr, &idx, &plen, &scope, &flags, name) ==
                                    6 &&
                            scope == 0)
                                ifaces_add(ret, name);
                }
        }
        return 0;
}

/* A number from /sys/class/net/IF/<attr>; -1 when unreadable (speed reads EINVAL without link). */
static int64_t read_attr(const char *name, const char *attr) {
        char path[160];
        _cleanup_free_ char *s = NULL;
        snprintf(path, sizeof(path), "/sys/class/net/%s/%s", name, attr);
        if (doctor_read_file(path, &s) <= 0)
                return -1;
        char *end;
        errno = 0;
        long long v = strtoll(s, &end, 10);
        return errno == 0 && end != s ? (int64_t) v : -1;
}

static int check_interface(struct doctor *d, const char *name) {
        _cleanup_text_ struct text ev = {};
        static const char *const counters[] = { "rx_packets", "rx_errors", "tx_errors", "rx_dropped",
                                                "tx_dropped" };
        int64_t c[ELEMENTSOF(counters)];

        int64_t carrier = read_attr(name, "carrier"), speed = read_attr(name, "speed");
        text_line(&ev, "/sys/class/net/%s/carrier: %" PRId64 ", speed: %" PRId64 " Mb/s", name, carrier,
                  speed);
        for (size_t i = 0; i < ELEMENTSOF(counters); i++) {
                char attr[48];
                snprintf(attr, sizeof(attr), "statistics/%s", counters[i]);
                c[i] = read_attr(name, attr);
        }
        text_line(&ev,
                  "/sys/class/net/%s/statistics: rx_packets %" PRId64 ", rx_errors %" PRId64
                  ", tx_errors %" PRId64 ", rx_dropped %" PRId64 ", tx_dropped %" PRId64,
                  name, c[0], c[1], c[2], c[3], c[4]);
        int64_t errors = (c[1] > 0 ? c[1] : 0) + (c[2] > 0 ? c[2] : 0);
        int64_t dropped = c[3] > 0 ? c[3] : 0;

        char rem[320];
        if (carrier != 1)
                return doctor_add(d, name, VGPU_CHECK_FAIL, &ev,
                                  "Check the cable or transceiver and the switch port; `ip link set IF up` "
                                  "if it is down.",
                                  "no link (carrier %" PRId64 ")", carrier);
        if (speed <= 0)
                return doctor_add(d, name, VGPU_CHECK_WARN, &ev,
                                  "Check the link with `ethtool IF`; the driver reports no speed.",
                                  "link up, speed unknown");
        if (speed < VDI_LINK_MIN_MBPS) {
                snprintf(rem, sizeof(rem),
                         "VDI streaming needs a %d Gb/s link (SFP+ or faster): use a 10/25 Gb/s port for the "
                         "desktop traffic, "
                         "or check why it negotiated %" PRId64
                         " Mb/s (`ethtool %s`: cable, transceiver, switch port).",
                         VDI_LINK_MIN_MBPS / 1000, speed, name);
                return doctor_add(d, name, VGPU_CHECK_FAIL, &ev, rem,
                                  "links at %" PRId64 " Mb/s, below %d Gb/s", speed,
                                  VDI_LINK_MIN_MBPS / 1000);
        }
        /* Errors are damaged frames: a cable, optic or port fault. Drops are common in small
         * numbers (frames of protocols nobody listens to); more than 1 in 1000 is congestion. */
        if (errors > 0 || (c[0] > 0 && dropped * 1000 > c[0])) {
                snprintf(rem, sizeof(rem),
                         "Packet loss shows in the VDI stream as stutter: for errors check the "
                         "cable/transceiver and the switch "
                         "port's counters; for drops the ring sizes (`ethtool -g %s`) and interrupt load.",
                         name);
                return doctor_add(d, name, VGPU_CHECK_WARN, &ev, rem,
                                  "%" PRId64 " Mb/s, but %" PRId64 " errors and %" PRId64 " dropped packets",
                                  speed, errors, dropped);
        }
        return doctor_add(d, name, VGPU_CHECK_PASS, &ev, NULL, "%" PRId64 " Mb/s, no errors", speed);
}

static int cmp_name(const void *a, const void *b) {
        return strcmp(a, b);
}

int check_vdi_network(struct doctor *d) {
        struct ifaces routed = {}, physical = {};
        int r = routed_interfaces(&routed);
        if (r < 0)
                return r;
        for (size_t i = 0; i < routed.n; i++)
                add_physical(&physical, routed.names[i], 0);
        if (physical.n == 0) {
                _cleanup_text_ struct text ev = {};
                text_line(&ev, "/proc/net/route, /proc/net/if_inet6: %zu routed interfaces, none physical",
                          routed.n);
                return doctor_add(d, NULL, VGPU_CHECK_SKIP, &ev, NULL,
                                  "no physical interface carries routed traffic");
        }
        /* by name: the order of directory entries is the file system's, not the admin's */
        qsort(physical.names, physical.n, sizeof(physical.names[0]), cmp_name);
        for (size_t i = 0; i < physical.n; i++)
                if ((r = check_interface(d, physical.names[i])) < 0)
                        return r;
        return 0;
}
