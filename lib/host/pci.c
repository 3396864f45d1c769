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
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "basic/error-util.h"
#include "basic/macro.h"
#include "basic/parallel.h"
#include "basic/root.h"
#include "basic/sysfs.h"
#include "basic/sysfs-batch.h"
#include "host-internal.h"

/* Flags of the `resource` file (include/linux/ioport.h). */
#define IORESOURCE_MEM      0x00000200
#define IORESOURCE_PREFETCH 0x00002000
#define IORESOURCE_MEM_64   0x00100000

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
        /* The kernel prints 0 for a link that is down and 255 when the register reads as
         * invalid (emulated devices): both are unknown. PCIe links have at most 32 lanes. */
        if (sysfs_read_int_at(dfd, "current_link_width", &v) == 0 && v > 0 && v <= 32)
                link->width_current = v;
        if (sysfs_read_int_at(dfd, "max_link_width", &v) == 0 && v > 0 && v <= 32)
                link->width_max = v;
}

/* The BARs from `resource`: 0, -ENOMEM, or another -errno with the line that was not in the
 * kernel's format in *ret_bad_line (0 when the file could not be read at all). */
static int read_bars(int dfd, struct vgpu_gpu *g, int *ret_bad_line) {
        char buf[4096];
        *ret_bad_line = 0;
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
                if (sscanf(line, "%llx %llx %llx", &start, &end, &flags) != 3 || end < start) {
                        *ret_bad_line = index + 1;
                        return -EBADMSG;
                }
                if (!(flags & IORESOURCE_MEM) || end == 0)
                        continue;
                if (!GREEDY_REALLOC(g->bars, allocated, g->n_bars + 1))
                        return -ENOMEM;
                g->bars[g->n_bars++] = (struct vgpu_bar){
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

/*
 * VF addresses follow from the PF's SR-IOV capability, as the kernel computes them
 * (pci_iov_virtfn_bus/devfn): routing id = PF's + First VF Offset + i * VF Stride. Computing
 * them instead of reading virtfnN (and each VF's physfn) saves two symlink reads per VF, which
 * on a 512-VF host is most of a `list`. Without the offset/stride files the links are read.
 */
static int vf_bdf(unsigned dom, unsigned pf_rid, unsigned offset, unsigned stride, unsigned i,
                  char ret[VGPU_BDF_MAX]) {
        static const char hex[] = "0123456789abcdef";
        unsigned rid = pf_rid + offset + stride * i;
        if (rid > 0xffff)
                return -ERANGE;
        /* "%04x:%02x:%02x.%x" by hand: snprintf was a tenth of a 512-VF scan's user time */
        unsigned dev = (rid >> 3) & 0x1f;
        char *p = ret;
        for (int shift = 12; shift >= 0; shift -= 4)
                *p++ = hex[(dom >> shift) & 0xf];
        *p++ = ':';
        *p++ = hex[rid >> 12];
        *p++ = hex[(rid >> 8) & 0xf];
        *p++ = ':';
        *p++ = hex[dev >> 4];
        *p++ = hex[dev & 0xf];
        *p++ = '.';
        *p++ = hex[rid & 7];
        *p = '\0';
        return 0;
}

static int read_vfs(int busfd, struct vgpu_gpu *g) {
        char path[300];
        uint64_t v, offset, stride;

        snprintf(path, sizeof(path), "%s/sriov_totalvfs", g->bdf);
        if (sysfs_read_u64_at(busfd, path, 10, &v) < 0)
                return 0;
        g->sriov = true;
        g->total_vfs = (unsigned) v;
        snprintf(path, sizeof(path), "%s/sriov_numvfs", g->bdf);
        if (sysfs_read_u64_at(busfd, path, 10, &v) == 0)
                g->num_vfs = (unsigned) v;
        if (g->num_vfs == 0)
                return 0;

        g->vfs = calloc(g->num_vfs, sizeof(*g->vfs));
        if (!g->vfs)
                return -ENOMEM;
        char off_path[300], stride_path[300];
        snprintf(off_path, sizeof(off_path), "%s/sriov_offset", g->bdf);
        snprintf(stride_path, sizeof(stride_path), "%s/sriov_stride", g->bdf);
        unsigned dom, bus, dev, fn;
        bool computed = sysfs_read_u64_at(busfd, off_path, 10, &offset) == 0 &&
                        sysfs_read_u64_at(busfd, stride_path, 10, &stride) == 0 && offset > 0 &&
                        sscanf(g->bdf, "%x:%x:%x.%x", &dom, &bus, &dev, &fn) == 4 && dom <= 0xffff;
        for (unsigned i = 0; i < g->num_vfs; i++) {
                int r;
                if (computed)
                        r = vf_bdf(dom, bus << 8 | dev << 3 | fn, (unsigned) offset, (unsigned) stride, i,
                                   g->vfs[g->n_vfs]);
                else {
                        /* virtfnN are numbered densely from 0 while VFs are enabled */
                        snprintf(path, sizeof(path), "%s/virtfn%u", g->bdf, i);
                        r = sysfs_link_basename_at(busfd, path, g->vfs[g->n_vfs], VGPU_BDF_MAX);
                }
                if (r < 0)
                        break;
                g->n_vfs++;
        }
        return 0;
}

/* "A:B" in hex (the ids' format in uevent) into *a and *b; false when it is not that. */
static bool parse_hex_pair(const char *s, unsigned *a, unsigned *b) {
        char *end;
        unsigned long x = strtoul(s, &end, 16);
        if (end == s || *end != ':')
                return false;
        s = end + 1;
        unsigned long y = strtoul(s, &end, 16);
        if (end == s)
                return false;
        *a = (unsigned) x;
        *b = (unsigned) y;
        return true;
}

/*
 * The kernel's uevent file gives driver, class and ids of a function in one read, where the
 * separate attributes cost four opens: on a host with hundreds of VFs that is most of a `list`.
 *     DRIVER=nvidia  PCI_CLASS=30200  PCI_ID=10DE:20B5  PCI_SUBSYS_ID=10DE:1533
 * buf holds the file (read by the batch in pci_scan) and is cut into lines here.
 */
static int parse_uevent(char *buf, struct pci_function *f) {
        bool have_class = false, have_id = false;
        for (char *line = buf, *next; line && *line; line = next) {
                next = strchr(line, '\n');
                if (next)
                        *next++ = '\0';
                unsigned a, b;
                if (strncmp(line, "DRIVER=", 7) == 0) {
                        if (!(f->driver = strdup(line + 7)))
                                return -ENOMEM;
                } else if (strncmp(line, "PCI_CLASS=", 10) == 0) {
                        char *end;
                        unsigned long c = strtoul(line + 10, &end, 16);
                        if (end != line + 10) {
                                f->class_code = (uint32_t) c;
                                have_class = true;
                        }
                } else if (strncmp(line, "PCI_ID=", 7) == 0 && parse_hex_pair(line + 7, &a, &b)) {
                        f->vendor_id = (uint16_t) a;
                        f->device_id = (uint16_t) b;
                        have_id = true;
                } else if (strncmp(line, "PCI_SUBSYS_ID=", 14) == 0 && parse_hex_pair(line + 14, &a, &b)) {
                        f->subsystem_vendor_id = (uint16_t) a;
                        f->subsystem_device_id = (uint16_t) b;
                }
        }
        return have_class && have_id ? 0 : -EBADMSG;
}

/* Fallback without uevent (some report trees): the separate attributes. */
static int read_attributes(int busfd, const char *bdf, struct pci_function *f) {
        _cleanup_close_ int dfd = openat(busfd, bdf, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return -errno;
        uint64_t c;
        int r;
        if ((r = sysfs_read_u64_at(dfd, "class", 16, &c)) < 0 ||
            (r = read_u16_hex(dfd, "vendor", &f->vendor_id)) < 0 ||
            (r = read_u16_hex(dfd, "device", &f->device_id)) < 0)
                return r;
        f->class_code = (uint32_t) c;
        (void) read_u16_hex(dfd, "subsystem_vendor", &f->subsystem_vendor_id);
        (void) read_u16_hex(dfd, "subsystem_device", &f->subsystem_device_id);
        char buf[256];
        if (sysfs_link_basename_at(dfd, "driver", buf, sizeof(buf)) >= 0 && !(f->driver = strdup(buf)))
                return -ENOMEM;
        return 0;
}

/* The size of a uevent buffer: a PCI function's is some 150 to 200 bytes. The batch reads
 * into slots of UEVENT_SLOT: one of UEVENT_MAX for each of a large host's 544 functions was
 * 137 fresh pages to fault in and zero (2 us each on the bench machine), a quarter of a
 * `list`'s page faults and some 3 % of its CPU time. A uevent that fills its slot is read
 * again, whole. */
#define UEVENT_MAX  1024
#define UEVENT_SLOT 256

/*
 * Resolve the links once. /sys/bus/pci/devices/BDF is a link into /sys/devices, and every path
 * through it (BDF/uevent, BDF/iommu_group) walks the link's whole target again: six to ten
 * components, a third of a `list`'s time in the kernel. The functions of one bus are entries of
 * one directory there (the kernel makes every device, VFs included, a child of its bus's
 * bridge), so that directory is opened once per bus, from one function's link, and the files
 * are read relative to it. A function not found there is read through its link as before.
 */
struct bus_dir {
        char bus[8]; /* "DDDD:BB" */
        int fd;
};

static int bus_dir_for(int busfd, const char *bdf, struct bus_dir **dirs, size_t *n, size_t *allocated) {
        for (size_t i = 0; i < *n; i++)
                if (strncmp((*dirs)[i].bus, bdf, 7) == 0)
                        return (*dirs)[i].fd;
        char target[4096];
        int fd = busfd;
        if (sysfs_readlink_at(busfd, bdf, target, sizeof(target)) > 0) {
                char *slash = strrchr(target, '/');
                if (slash && slash != target && streq(slash + 1, bdf)) {
                        *slash = '\0';
                        fd = openat(busfd, target, O_PATH | O_DIRECTORY | O_CLOEXEC);
                        if (fd < 0)
                                fd = busfd;
                }
        }
        if (!GREEDY_REALLOC(*dirs, *allocated, *n + 1)) {
                if (fd != busfd)
                        close(fd);
                return busfd;
        }
        snprintf((*dirs)[*n].bus, sizeof((*dirs)[*n].bus), "%.7s", bdf);
        (*dirs)[(*n)++].fd = fd;
        return fd;
}

/* e: the batch's read of the function's uevent, its text (result >= 0) or why it could not be
 * read (result < 0). */
static int read_function(int busfd, struct pci_function *f, const struct sysfs_batch_entry *e,
                         bool want_group) {
        const char *bdf = f->bdf;
        char path[300], buf[64], whole[UEVENT_MAX];
        char *uevent = e->buf;
        int r = e->result;
        /* again, as much as a uevent buffer holds: longer than its slot, or not in its bus's
         * directory after all (a tree laid out otherwise), then through the link */
        bool again = r >= 0 && e->full;
        if (r == -ENOENT && f->dirfd != busfd) {
                f->dirfd = busfd;
                again = true;
        }
        if (again) {
                snprintf(path, sizeof(path), "%s/uevent", bdf);
                r = sysfs_read_at(f->dirfd, path, uevent = whole, sizeof(whole));
        }
        if (r >= 0)
                r = parse_uevent(uevent, f);
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                free(f->driver);
                f->driver = NULL;
                if ((r = read_attributes(busfd, bdf, f)) < 0)
                        return r;
        }
        if (want_group) {
                snprintf(path, sizeof(path), "%s/iommu_group", bdf);
                if (sysfs_link_basename_at(f->dirfd, path, buf, sizeof(buf)) >= 0)
                        f->iommu_group = atoi(buf);
        }
        f->read = true;
        return 0;
}

struct function_round {
        int busfd;
        struct pci_function *funcs;
        struct sysfs_batch_entry *uevents;
        bool want_groups;
};

static int read_function_job(size_t i, void *userdata) {
        struct function_round *round = userdata;
        int r = read_function(round->busfd, &round->funcs[i], &round->uevents[i], round->want_groups);
        /* a function that vanished while we looked (hot-unplug) is skipped, not an error */
        return r == -ENOMEM ? r : 0;
}

/* g->problem set to "SYSFS/BDF/what", the first problem kept. */
_printf_(2, 3) static int gpu_problem(struct vgpu_gpu *g, const char *fmt, ...) {
        if (g->problem)
                return 0;
        char what[256];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(what, sizeof(what), fmt, ap);
        va_end(ap);
        return asprintf(&g->problem, "%s%s/%s/%s", root_prefix(), SYS_PCI_DEVICES, g->bdf, what) < 0
                       ? (g->problem = NULL, -ENOMEM)
                       : 0;
}

/* What only physical functions carry, read from the function's own directory. What cannot be
 * read stays unknown and is named in g->problem: one GPU's corrupt (or vanished) attribute
 * must not fail the scan, and with it every command and every daemon poll for all GPUs.
 * 0, or -ENOMEM. */
static int read_details(int busfd, struct vgpu_gpu *g) {
        _cleanup_close_ int dfd = openat(busfd, g->bdf, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return gpu_problem(g, "cannot open: %s", strerror(errno));
        (void) sysfs_read_int_at(dfd, "numa_node", &g->numa_node);
        read_link(dfd, &g->link);
        int bad_line, r = read_bars(dfd, g, &bad_line);
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                free(g->bars); /* a BAR list with holes would mislead the checks */
                g->bars = NULL;
                g->n_bars = 0;
                r = bad_line ? gpu_problem(g,
                                           "resource: line %d is not 'START END FLAGS' in hex; BARs unknown",
                                           bad_line)
                             : gpu_problem(g, "resource: unreadable (%s); BARs unknown", strerror(-r));
                if (r < 0)
                        return r;
        }
        read_hwmon(dfd, g);
        return 0;
}

static int gpu_from_function(struct vgpu_gpu *g, struct pci_function *f) {
        *g = (struct vgpu_gpu){
                .vendor_id = f->vendor_id,
                .device_id = f->device_id,
                .subsystem_vendor_id = f->subsystem_vendor_id,
                .subsystem_device_id = f->subsystem_device_id,
                .class_code = f->class_code,
                .iommu_group = f->iommu_group,
                .numa_node = -1,
                .hwmon_temp_mc = INT_MIN,
                .hwmon_crit_mc = INT_MIN,
        };
        memcpy(g->bdf, f->bdf, sizeof(g->bdf));
        if (f->driver && !(g->driver = strdup(f->driver)))
                return -ENOMEM;
        return 0;
}

static int cmp_gpu(const void *a, const void *b) {
        return strcmp(((const struct vgpu_gpu *) a)->bdf, ((const struct vgpu_gpu *) b)->bdf);
}

/* One more entry of the listing; false without memory. */
static bool listing_add(struct mdev_bus_listing *l, const char *name, uint64_t ino) {
        if (!GREEDY_REALLOC(l->names, l->allocated_names, l->n + 1) ||
            !GREEDY_REALLOC(l->inos, l->allocated_inos, l->n + 1) || !(l->names[l->n] = strdup(name)))
                return false;
        l->inos[l->n++] = ino;
        return true;
}

/* Parents on the mdev bus are marked from its one directory, not by a stat per function; with
 * keep, the listing stays with the host for mdev.c's parents (without memory it lists again). */
static void mark_mdev_parents(struct vgpu_host *host, bool keep) {
        int fd = root_open_dir(SYS_MDEV_BUS);
        if (fd < 0)
                return;
        DIR *d = fdopendir(fd);
        if (!d) {
                close(fd);
                return;
        }
        _cleanup_(mdev_bus_listing_freep) struct mdev_bus_listing *l =
                keep ? calloc(1, sizeof(struct mdev_bus_listing)) : NULL;
        struct dirent *de;
        while ((de = readdir(d))) {
                struct vgpu_gpu *g = (struct vgpu_gpu *) vgpu_host_find_gpu(host, de->d_name);
                if (g)
                        g->mdev_parent = true;
                if (l && de->d_name[0] != '.' && !listing_add(l, de->d_name, de->d_ino))
                        mdev_bus_listing_free(TAKE_PTR(l));
        }
        closedir(d);
        host_of(host)->mdev_bus = TAKE_PTR(l);
}

/*
 * PFs and VFs: in BDF order a PF comes before its VFs (their routing ids are higher), so by
 * the time a VF is reached its PF has named it. A function nobody named reads its physfn link
 * once (a VF whose PF is no display function), and otherwise is a PF: its SR-IOV state is read.
 */
static int link_vfs(struct vgpu_host *host, int busfd) {
        for (size_t i = 0; i < host->n_gpus; i++) {
                struct vgpu_gpu *g = &host->gpus[i];
                if (g->physfn[0])
                        continue;
                char path[300], buf[64];
                snprintf(path, sizeof(path), "%s/physfn", g->bdf);
                if (sysfs_link_basename_at(busfd, path, buf, sizeof(buf)) >= 0) {
                        snprintf(g->physfn, sizeof(g->physfn), "%.15s", buf);
                        continue;
                }
                int r = read_vfs(busfd, g);
                if (r < 0)
                        return r;
                for (size_t j = 0; j < g->n_vfs; j++) {
                        struct vgpu_gpu *vf = (struct vgpu_gpu *) vgpu_host_find_gpu(host, g->vfs[j]);
                        if (vf)
                                memcpy(vf->physfn, g->bdf, sizeof(vf->physfn));
                }
        }
        return 0;
}

static void free_functions(struct pci_function *f, size_t n) {
        for (size_t i = 0; i < n; i++)
                free(f[i].driver);
        free(f);
}

int pci_scan(struct vgpu_host *host, unsigned flags, struct vgpu_error *err) {
        int busfd = root_open_dir(SYS_PCI_DEVICES);
        if (busfd == -ENOENT)
                return 0; /* no PCI bus at all (some containers): an empty host */
        if (busfd < 0)
                return vgpu_error_set_errno(err, busfd, "%s%s: cannot open", root_prefix(), SYS_PCI_DEVICES);
        DIR *d = fdopendir(busfd);
        if (!d) {
                close(busfd);
                return vgpu_error_set(err, -ENOMEM, "out of memory");
        }

        /* Names first (one getdents), then the functions in parallel, then the GPUs in order. */
        struct pci_function *funcs = NULL;
        size_t n_funcs = 0, funcs_allocated = 0;
        int r = 0;
        struct dirent *de;
        while ((de = readdir(d))) {
                if (de->d_name[0] == '.' || strlen(de->d_name) >= VGPU_BDF_MAX)
                        continue;
                if (!GREEDY_REALLOC(funcs, funcs_allocated, n_funcs + 1)) {
                        r = -ENOMEM;
                        break;
                }
                funcs[n_funcs] = (struct pci_function){ .iommu_group = -1 };
                memcpy(funcs[n_funcs++].bdf, de->d_name, strlen(de->d_name) + 1);
        }
        _cleanup_free_ struct bus_dir *bus_dirs = NULL;
        size_t n_bus_dirs = 0, bus_dirs_allocated = 0;
        for (size_t i = 0; r >= 0 && i < n_funcs; i++)
                funcs[i].dirfd =
                        strlen(funcs[i].bdf) == 12 && funcs[i].bdf[4] == ':' && funcs[i].bdf[7] == ':'
                                ? bus_dir_for(dirfd(d), funcs[i].bdf, &bus_dirs, &n_bus_dirs,
                                              &bus_dirs_allocated)
                                : dirfd(d);
        /* every uevent in one batch (basic/sysfs-batch.h), then the links, in parallel */
        _cleanup_free_ struct sysfs_batch_entry *uevents = NULL;
        _cleanup_free_ char *uevent_text = NULL;
        _cleanup_free_ char *uevent_paths = NULL;
        if (r >= 0 && n_funcs > 0) {
                uevents = calloc(n_funcs, sizeof(*uevents));
                uevent_text = malloc(n_funcs * UEVENT_SLOT);
                uevent_paths = malloc(n_funcs * (VGPU_BDF_MAX + sizeof("/uevent")));
                if (!uevents || !uevent_text || !uevent_paths)
                        r = -ENOMEM;
        }
        for (size_t i = 0; r >= 0 && i < n_funcs; i++) {
                /* "BDF/uevent" (the name is shorter than VGPU_BDF_MAX), without printf's engine */
                char *path = uevent_paths + i * (VGPU_BDF_MAX + sizeof("/uevent"));
                size_t len = strlen(funcs[i].bdf);
                memcpy(path, funcs[i].bdf, len);
                memcpy(path + len, "/uevent", sizeof("/uevent"));
                uevents[i] = (struct sysfs_batch_entry){ .dirfd = funcs[i].dirfd,
                                                         .path = path,
                                                         .buf = uevent_text + i * UEVENT_SLOT,
                                                         .size = UEVENT_SLOT };
        }
        if (r >= 0 && n_funcs > 0)
                r = sysfs_batch_read(uevents, n_funcs);
        struct function_round round = { dirfd(d), funcs, uevents, flags & VGPU_SCAN_GROUPS };
        if (r >= 0)
                r = parallel_for(n_funcs, 128, read_function_job, &round);

        size_t n_display = 0;
        for (size_t i = 0; r >= 0 && i < n_funcs; i++)
                n_display += funcs[i].read && (funcs[i].class_code >> 16) == PCI_BASE_CLASS_DISPLAY;
        if (r >= 0 && n_display > 0 && !(host->gpus = calloc(n_display, sizeof(*host->gpus))))
                r = -ENOMEM;
        for (size_t i = 0; r >= 0 && i < n_funcs; i++)
                if (funcs[i].read && (funcs[i].class_code >> 16) == PCI_BASE_CLASS_DISPLAY)
                        r = gpu_from_function(&host->gpus[host->n_gpus++], &funcs[i]);

        if (r >= 0) {
                qsort_safe(host->gpus, host->n_gpus, sizeof(*host->gpus), cmp_gpu);
                r = link_vfs(host, dirfd(d));
        }
        if (r >= 0)
                mark_mdev_parents(host, flags & (VGPU_SCAN_TYPES | VGPU_SCAN_PARENTS));
        for (size_t i = 0; r >= 0 && i < host->n_gpus; i++) {
                struct vgpu_gpu *g = &host->gpus[i];
                if ((flags & VGPU_SCAN_DETAILS) && !g->physfn[0])
                        r = read_details(dirfd(d), g);
                /* vendor-VFIO VFs (vGPU 17+): NVIDIA VFs that are no mdev parent */
                if (r >= 0 && g->vendor_id == VGPU_PCI_VENDOR_NVIDIA && g->physfn[0] && !g->mdev_parent &&
                    streq(g->driver, "nvidia")) {
                        char path[300];
                        snprintf(path, sizeof(path), "%s/nvidia/creatable_vgpu_types", g->bdf);
                        g->nvidia_vfio = sysfs_exists_at(dirfd(d), path);
                }
        }
        /* a VF sits on its PF's device: same NUMA node */
        for (size_t i = 0; r >= 0 && i < host->n_gpus; i++) {
                const struct vgpu_gpu *pf =
                        host->gpus[i].physfn[0] ? vgpu_host_find_gpu(host, host->gpus[i].physfn) : NULL;
                if (pf)
                        host->gpus[i].numa_node = pf->numa_node;
        }
        if (r >= 0 && (flags & VGPU_SCAN_GROUPS))
                r = iommu_build_groups(host, funcs, n_funcs, err);
        for (size_t i = 0; i < n_bus_dirs; i++)
                if (bus_dirs[i].fd != dirfd(d))
                        close(bus_dirs[i].fd);
        closedir(d);
        free_functions(funcs, n_funcs);
        if (r == -ENOMEM)
                return vgpu_error_set(err, r, "out of memory");
        return r;
}
