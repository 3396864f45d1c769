/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * pci.c — the PCI side of the snapshot: every display/3D-class function (class 0x03xxxx) with
 * its ids, driver, IOMMU group, NUMA node, PCIe link, SR-IOV state, BARs and hwmon temperature.
 *
 * Everything is read from the sysfs attributes of /sys/bus/pci/devices/BDF, relative to one
 * directory fd per function. Config-space capabilities are left to libpci (pci-names.c and the
 * doctor), which reads the same `config` file.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "basic/error-util.h"
#include "basic/macro.h"
#include "basic/root.h"
#include "basic/sysfs.h"
#include "host-internal.h"

/* Flags of the `resource` file (include/linux/ioport.h). */
#define IORESOURCE_MEM       0x00000200
#define IORESOURCE_PREFETCH  0x00002000
#define IORESOURCE_MEM_64    0x00100000

double pci_parse_link_speed(const char *s) {
        char *end;
        double v = strtod(s, &end);
        if (end == s || v <= 0)
                return 0;
        return v;
}

static int read_u16_hex(int dfd, const char *name, uint16_t *ret) {
        uint64_t v;
        int r = sysfs_read_u64_at(dfd, name, 16, &v);
        if (r < 0)
                return r;
        if (v > UINT16_MAX)
                return -ERANGE;
        *ret = (uint16_t) v;
        return 0;
}

static void read_link(int dfd, struct vgpu_link *link) {
        char buf[64];
        int v;

        if (sysfs_read_at(dfd, "current_link_speed", buf, sizeof(buf)) > 0)
                link->speed_current = pci_parse_link_speed(buf);
        if (sysfs_read_at(dfd, "max_link_speed", buf, sizeof(buf)) > 0)
                link->speed_max = pci_parse_link_speed(buf);
        /* The kernel prints 0 for a link that is down; keep 0 = unknown. */
        if (sysfs_read_int_at(dfd, "current_link_width", &v) == 0 && v > 0)
                link->width_current = v;
        if (sysfs_read_int_at(dfd, "max_link_width", &v) == 0 && v > 0)
                link->width_max = v;
}

static int read_bars(int dfd, struct vgpu_gpu *g) {
        char buf[4096];
        int r = sysfs_read_at(dfd, "resource", buf, sizeof(buf));
        if (r < 0)
                return r == -ENOENT ? 0 : r;

        size_t allocated = 0;
        int index = 0;
        for (char *line = buf, *next; line && *line && index <= 6; line = next, index++) {
                next = strchr(line, '\n');
                if (next)
                        *next++ = '\0';
                unsigned long long start, end, flags;
                if (sscanf(line, "%llx %llx %llx", &start, &end, &flags) != 3)
                        return -EBADMSG;
                if (!(flags & IORESOURCE_MEM) || end == 0)
                        continue;
                if (!GREEDY_REALLOC(g->bars, allocated, g->n_bars + 1))
                        return -ENOMEM;
                g->bars[g->n_bars++] = (struct vgpu_bar) {
                        .index = index,
                        .start = start,
                        .size = end - start + 1,
                        .is_64bit = flags & IORESOURCE_MEM_64,
                        .prefetchable = flags & IORESOURCE_PREFETCH,
                };
        }
        return 0;
}

/* hwmon: DEV/hwmon/hwmonN/temp1_input, as amdgpu and some others expose it. */
static void read_hwmon(int dfd, struct vgpu_gpu *g) {
        g->hwmon_temp_mc = g->hwmon_crit_mc = INT_MIN;

        int hfd = openat(dfd, "hwmon", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (hfd < 0)
                return;
        DIR *d = fdopendir(hfd);
        if (!d) {
                close(hfd);
                return;
        }
        struct dirent *de;
        while ((de = readdir(d))) {
                if (strncmp(de->d_name, "hwmon", 5) != 0)
                        continue;
                char p[300];
                int v;
                snprintf(p, sizeof(p), "%s/temp1_input", de->d_name);
                if (sysfs_read_int_at(dirfd(d), p, &v) == 0)
                        g->hwmon_temp_mc = v;
                snprintf(p, sizeof(p), "%s/temp1_crit", de->d_name);
                if (sysfs_read_int_at(dirfd(d), p, &v) == 0)
                        g->hwmon_crit_mc = v;
                else {
                        snprintf(p, sizeof(p), "%s/temp1_max", de->d_name);
                        if (sysfs_read_int_at(dirfd(d), p, &v) == 0)
                                g->hwmon_crit_mc = v;
                }
                break;
        }
        closedir(d);
}

static int read_vfs(int dfd, struct vgpu_gpu *g) {
        uint64_t v;

        if (sysfs_read_u64_at(dfd, "sriov_totalvfs", 10, &v) < 0)
                return 0;
        g->sriov = true;
        g->total_vfs = (unsigned) v;
        if (sysfs_read_u64_at(dfd, "sriov_numvfs", 10, &v) == 0)
                g->num_vfs = (unsigned) v;
        if (g->num_vfs == 0)
                return 0;

        g->vfs = calloc(g->num_vfs, sizeof(*g->vfs));
        if (!g->vfs)
                return -ENOMEM;
        /* virtfnN are numbered densely from 0 while VFs are enabled. */
        for (unsigned i = 0; i < g->num_vfs; i++) {
                char name[32];
                snprintf(name, sizeof(name), "virtfn%u", i);
                if (sysfs_link_basename_at(dfd, name, g->vfs[g->n_vfs], VGPU_BDF_MAX) < 0)
                        break;
                g->n_vfs++;
        }
        return 0;
}

static int read_gpu(int dfd, const char *bdf, uint32_t class_code, struct vgpu_gpu *g, struct vgpu_error *err) {
        char buf[256];
        int r;

        *g = (struct vgpu_gpu) { .class_code = class_code, .iommu_group = -1, .numa_node = -1 };
        if (strlen(bdf) >= sizeof(g->bdf))
                return vgpu_error_set(err, -EINVAL, "%s/%s: not a PCI address", SYS_PCI_DEVICES, bdf);
        memcpy(g->bdf, bdf, strlen(bdf) + 1);

        if ((r = read_u16_hex(dfd, "vendor", &g->vendor_id)) < 0 ||
            (r = read_u16_hex(dfd, "device", &g->device_id)) < 0)
                return vgpu_error_set_errno(err, r, "%s/%s: cannot read vendor/device", SYS_PCI_DEVICES, bdf);
        /* VFs have no subsystem ids on some kernels: keep 0. */
        (void) read_u16_hex(dfd, "subsystem_vendor", &g->subsystem_vendor_id);
        (void) read_u16_hex(dfd, "subsystem_device", &g->subsystem_device_id);

        if (sysfs_link_basename_at(dfd, "driver", buf, sizeof(buf)) >= 0 && !(g->driver = strdup(buf)))
                return -ENOMEM;
        if (sysfs_link_basename_at(dfd, "iommu_group", buf, sizeof(buf)) >= 0)
                g->iommu_group = atoi(buf);
        (void) sysfs_read_int_at(dfd, "numa_node", &g->numa_node);
        read_link(dfd, &g->link);

        if (sysfs_link_basename_at(dfd, "physfn", buf, sizeof(buf)) >= 0)
                snprintf(g->physfn, sizeof(g->physfn), "%.15s", buf);
        if ((r = read_vfs(dfd, g)) < 0)
                return vgpu_error_set_errno(err, r, "%s/%s: reading SR-IOV state", SYS_PCI_DEVICES, bdf);

        g->mdev_parent = sysfs_exists_at(dfd, "mdev_supported_types");
        g->nvidia_vfio = sysfs_exists_at(dfd, "nvidia/creatable_vgpu_types");

        if ((r = read_bars(dfd, g)) < 0)
                return vgpu_error_set_errno(err, r, "%s/%s/resource: unreadable", SYS_PCI_DEVICES, bdf);
        read_hwmon(dfd, g);
        return 0;
}

static int cmp_gpu(const void *a, const void *b) {
        return strcmp(((const struct vgpu_gpu *) a)->bdf, ((const struct vgpu_gpu *) b)->bdf);
}

int pci_scan_gpus(struct vgpu_host *host, struct vgpu_error *err) {
        int fd = root_open_dir(SYS_PCI_DEVICES);
        if (fd == -ENOENT)
                return 0;       /* no PCI bus at all (some containers): an empty host */
        if (fd < 0)
                return vgpu_error_set_errno(err, fd, "%s%s: cannot open", root_prefix(), SYS_PCI_DEVICES);
        DIR *d = fdopendir(fd);
        if (!d) {
                close(fd);
                return -errno;
        }

        size_t allocated = 0;
        int r = 0;
        struct dirent *de;
        while ((de = readdir(d))) {
                if (de->d_name[0] == '.')
                        continue;
                _cleanup_close_ int dfd = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (dfd < 0)
                        continue;       /* hot-unplugged while we looked */
                uint64_t class_code;
                if (sysfs_read_u64_at(dfd, "class", 16, &class_code) < 0 || (class_code >> 16) != PCI_BASE_CLASS_DISPLAY)
                        continue;
                if (!GREEDY_REALLOC(host->gpus, allocated, host->n_gpus + 1)) {
                        r = -ENOMEM;
                        break;
                }
                r = read_gpu(dfd, de->d_name, (uint32_t) class_code, &host->gpus[host->n_gpus], err);
                host->n_gpus++;         /* counted even on failure, so it is freed */
                if (r < 0)
                        break;
        }
        closedir(d);
        if (r < 0)
                return r == -ENOMEM ? vgpu_error_set(err, r, "out of memory") : r;

        qsort(host->gpus, host->n_gpus, sizeof(*host->gpus), cmp_gpu);
        return 0;
}
