/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * report.c — the support bundle (see vgpu/report.h), a gzip-compressed tar (tar.c).
 *
 * Only named attributes are copied, never whole directories: a PCI device directory also holds
 * resourceN files that map the card's BARs (reading them can hang or read gigabytes) and
 * write-only files like remove/reset. Symlinks are stored as the kernel made them (relative),
 * so they resolve inside the unpacked tree exactly as in /sys.
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
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "basic/error-util.h"
#include "basic/macro.h"
#include "basic/root.h"
#include "basic/sysfs.h"
#include "report-internal.h"
#include "tar.h"
#include "vgpu/report.h"

/* Attributes of a PCI function worth a look, and safe to read. */
static const char *const pci_attrs[] = {
        "vendor",
        "device",
        "subsystem_vendor",
        "subsystem_device",
        "class",
        "revision",
        "numa_node",
        "local_cpulist",
        "current_link_speed",
        "max_link_speed",
        "current_link_width",
        "max_link_width",
        "resource",
        "config",
        "enable",
        "d3cold_allowed",
        "driver_override",
        "sriov_totalvfs",
        "sriov_numvfs",
        "sriov_offset",
        "sriov_stride",
        "sriov_vf_device",
        "sriov_drivers_autoprobe",
        "nvidia/creatable_vgpu_types",
        "nvidia/current_vgpu_type",
        "nvidia/vgpu_params",
};
static const char *const pci_links[] = { "driver", "iommu_group", "physfn" };
static const char *const type_attrs[] = { "name", "description", "device_api", "available_instances" };
static const char *const host_files[] = {
        "/proc/cmdline",
        "/proc/cpuinfo",
        "/proc/modules",
        "/proc/sys/kernel/osrelease",
        "/proc/sys/kernel/tainted",
        "/proc/self/status",
        "/etc/default/grub",
        "/sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c",
        "/sys/firmware/acpi/tables/DMAR",
        "/sys/firmware/acpi/tables/IVRS",
};
/* Programs whose presence the doctor checks: recorded as empty executables, not copied. */
static const char *const host_tools[] = {
        "/usr/bin/lspci", "/usr/sbin/lspci", "/bin/lspci", "/usr/bin/gcc", "/usr/bin/make", "/bin/make",
};
/* Modules whose state explains a vGPU host, beyond the drivers bound to GPUs. */
static const char *const extra_modules[] = {
        "nvidia",   "nvidia_vgpu_vfio", "nouveau", "i915", "xe",   "kvmgt",  "gim", "amdgpu",    "vfio",
        "vfio_pci", "vfio_iommu_type1", "mdev",    "mtty", "mdpy", "mbochs", "kvm", "kvm_intel", "kvm_amd",
};

/* 1: rel is new and now recorded, 0: written already, -ENOMEM (not "seen": the entry would be
 * left out of the report without a word). */
int seen_add(struct report *r, const char *rel) {
        /* Reports hold a few thousand entries: a linear check is cheap next to the I/O. */
        for (size_t i = r->n_seen; i-- > 0;)
                if (streq(r->seen[i], rel))
                        return 0;
        if (!GREEDY_REALLOC(r->seen, r->allocated, r->n_seen + 1))
                return -ENOMEM;
        char *s = strdup(rel);
        if (!s)
                return -ENOMEM;
        r->seen[r->n_seen++] = s;
        return 1;
}

int write_entry(struct report *r, const char *rel, char type, mode_t perm, const void *data, size_t size,
                const char *link_target) {
        int ret = tar_add(r->tar, rel, type, perm, r->now, data, size, link_target);
        if (ret < 0)
                return vgpu_error_set_errno(r->err, ret, "writing report entry %s", rel);
        r->entries++;
        return 0;
}

/* Add one host file or symlink (path absolute, under the root) if it exists. */
int add_path(struct report *r, const char *path) {
        char full[PATH_MAX];
        struct stat st;
        if (root_path(full, sizeof(full), path) < 0 || lstat(full, &st) < 0)
                return 0;
        const char *rel = path + 1;
        int q = seen_add(r, rel);
        if (q <= 0)
                return q;
        if (S_ISLNK(st.st_mode)) {
                char target[PATH_MAX];
                ssize_t n = readlink(full, target, sizeof(target) - 1);
                if (n < 0)
                        return 0;
                target[n] = '\0';
                return write_entry(r, rel, 'l', 0777, NULL, 0, target);
        }
        if (S_ISDIR(st.st_mode))
                return write_entry(r, rel, 'd', 0755, NULL, 0, NULL);
        if (!S_ISREG(st.st_mode))
                return 0;
        /* One read, as for any attribute; write-only attributes (0200) are kept as empty files. */
        char buf[65536];
        ssize_t n = 0;
        if (st.st_mode & 0444) {
                int fd = open(full, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
                if (fd < 0)
                        return 0;
                n = read(fd, buf, sizeof(buf));
                close(fd);
                if (n < 0)
                        return 0; /* e.g. EIO from an attribute the device can't answer now */
        }
        return write_entry(r, rel, 'f', st.st_mode & 07777, buf, (size_t) n, NULL);
}

static int add_pathf(struct report *r, const char *fmt, ...) _printf_(2, 3);
static int add_pathf(struct report *r, const char *fmt, ...) {
        char p[PATH_MAX];
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(p, sizeof(p), fmt, ap);
        va_end(ap);
        return n < 0 || (size_t) n >= sizeof(p) ? 0 : add_path(r, p);
}

/* The real directory behind a /sys link, as an absolute host path (root prefix removed). */
static int resolve(const char *path, char *ret, size_t size) {
        char full[PATH_MAX], real[PATH_MAX], prefix[PATH_MAX] = "";
        if (root_path(full, sizeof(full), path) < 0 || !realpath(full, real))
                return -ENOENT;
        /* the prefix may be relative or hold symlinks itself: compare canonical forms */
        if (root_prefix()[0] && !realpath(root_prefix(), prefix))
                return -ENOENT;
        size_t plen = strlen(prefix);
        if (strncmp(real, prefix, plen) != 0 || (real[plen] != '/' && real[plen] != '\0'))
                return -EXDEV;
        snprintf(ret, size, "%s", real[plen] ? real + plen : "/");
        return 0;
}

/* Every entry of a directory under the root, as names, by callback. */
static int for_each_entry(const char *dir, int (*fn)(struct report *, const char *, const char *),
                          struct report *r) {
        char full[PATH_MAX];
        if (root_path(full, sizeof(full), dir) < 0)
                return 0;
        DIR *d = opendir(full);
        if (!d)
                return 0;
        int ret = 0;
        struct dirent *de;
        while (ret >= 0 && (de = readdir(d)))
                if (de->d_name[0] != '.')
                        ret = fn(r, dir, de->d_name);
        closedir(d);
        return ret;
}

static int add_module(struct report *r, const char *name);

static int add_module_param(struct report *r, const char *dir, const char *name) {
        return add_pathf(r, "%s/%s", dir, name);
}

static int add_module(struct report *r, const char *name) {
        char dir[256];
        snprintf(dir, sizeof(dir), "/sys/module/%s", name);
        if (root_access(dir, F_OK) < 0)
                return 0;
        int ret = add_pathf(r, "%s/taint", dir);
        if (ret >= 0)
                ret = add_pathf(r, "%s/version", dir);
        if (ret >= 0)
                ret = add_pathf(r, "%s/srcversion", dir);
        if (ret >= 0) {
                char pdir[300];
                snprintf(pdir, sizeof(pdir), "%s/parameters", dir);
                ret = for_each_entry(pdir, add_module_param, r);
        }
        return ret;
}

/* A directory of symlinks (virtfn*, iommu group members, mdev instances): the links only. */
static int add_link_entry(struct report *r, const char *dir, const char *name) {
        return add_pathf(r, "%s/%s", dir, name);
}

static int add_type(struct report *r, const char *dir, const char *id) {
        int ret = 0;
        for (size_t i = 0; ret >= 0 && i < ELEMENTSOF(type_attrs); i++)
                ret = add_pathf(r, "%s/%s/%s", dir, id, type_attrs[i]);
        if (ret >= 0)
                ret = add_pathf(r, "%s/%s/create", dir, id);
        if (ret >= 0) {
                char ddir[PATH_MAX];
                snprintf(ddir, sizeof(ddir), "%s/%s/devices", dir, id);
                ret = for_each_entry(ddir, add_link_entry, r);
        }
        return ret;
}

static int add_hwmon(struct report *r, const char *dir, const char *name) {
        static const char *const attrs[] = { "name", "temp1_input", "temp1_crit", "temp1_max",
                                             "temp1_label" };
        int ret = 0;
        for (size_t i = 0; ret >= 0 && i < ELEMENTSOF(attrs); i++)
                ret = add_pathf(r, "%s/%s/%s", dir, name, attrs[i]);
        return ret;
}

/* A device directory (PCI function or virtual mdev parent) and what hangs off it. */
static int add_device_dir(struct report *r, const char *devdir) {
        int ret = add_path(r, devdir);
        for (size_t i = 0; ret >= 0 && i < ELEMENTSOF(pci_attrs); i++)
                ret = add_pathf(r, "%s/%s", devdir, pci_attrs[i]);
        for (size_t i = 0; ret >= 0 && i < ELEMENTSOF(pci_links); i++)
                ret = add_pathf(r, "%s/%s", devdir, pci_links[i]);
        for (int i = 0; ret >= 0 && i < 256; i++) {
                char p[PATH_MAX];
                snprintf(p, sizeof(p), "%s/virtfn%d", devdir, i);
                if (root_access(p, F_OK) < 0)
                        break;
                ret = add_path(r, p);
        }
        char sub[PATH_MAX];
        snprintf(sub, sizeof(sub), "%s/mdev_supported_types", devdir);
        if (ret >= 0)
                ret = for_each_entry(sub, add_type, r);
        snprintf(sub, sizeof(sub), "%s/hwmon", devdir);
        if (ret >= 0)
                ret = for_each_entry(sub, add_hwmon, r);
        /* the driver's directory, and its module */
        char drv[PATH_MAX];
        snprintf(sub, sizeof(sub), "%s/driver", devdir);
        if (ret >= 0 && resolve(sub, drv, sizeof(drv)) == 0) {
                ret = add_path(r, drv);
                if (ret >= 0)
                        ret = add_pathf(r, "%s/module", drv);
                const char *name = strrchr(drv, '/');
                if (ret >= 0 && name)
                        ret = add_module(r, name + 1);
        }
        return ret;
}

/* /sys/bus/pci/devices/BDF: the link, the device, and the bridges above it. */
static int add_pci_function(struct report *r, const char *bdf) {
        char link[128], dev[PATH_MAX];
        snprintf(link, sizeof(link), "/sys/bus/pci/devices/%s", bdf);
        if (resolve(link, dev, sizeof(dev)) < 0)
                return 0;
        int ret = add_path(r, link);
        if (ret >= 0)
                ret = add_device_dir(r, dev);
        /* upstream bridges: their class and link tell where a slow link or a shared group comes from */
        for (char *slash = strrchr(dev, '/'); ret >= 0 && slash; slash = strrchr(dev, '/')) {
                *slash = '\0';
                const char *base = strrchr(dev, '/');
                if (!base || strncmp(base + 1, "pci", 3) == 0 || !strchr(base + 1, ':'))
                        break;
                char bridge_link[128];
                snprintf(bridge_link, sizeof(bridge_link), "/sys/bus/pci/devices/%s", base + 1);
                ret = add_path(r, bridge_link);
                for (const char *const *a =
                             (const char *const[]){ "vendor", "device", "class", "current_link_speed",
                                                    "max_link_speed", "current_link_width", "max_link_width",
                                                    "driver", "iommu_group", "config", NULL };
                     ret >= 0 && *a; a++)
                        ret = add_pathf(r, "%s/%s", dev, *a);
        }
        return ret;
}

static int add_group_member(struct report *r, const char *dir, const char *bdf) {
        int ret = add_pathf(r, "%s/%s", dir, bdf);
        return ret < 0 ? ret : add_pci_function(r, bdf);
}

static int add_mdev_parent(struct report *r, const char *dir, const char *name) {
        char dev[PATH_MAX], link[PATH_MAX];
        snprintf(link, sizeof(link), "%s/%s", dir, name);
        int ret = add_path(r, link);
        if (ret >= 0 && resolve(link, dev, sizeof(dev)) == 0)
                ret = add_device_dir(r, dev);
        return ret;
}

static int add_mdev_instance(struct report *r, const char *dir, const char *uuid) {
        char dev[PATH_MAX], link[PATH_MAX];
        snprintf(link, sizeof(link), "%s/%s", dir, uuid);
        int ret = add_path(r, link);
        if (ret >= 0 && resolve(link, dev, sizeof(dev)) == 0) {
                ret = add_path(r, dev);
                if (ret >= 0)
                        ret = add_pathf(r, "%s/mdev_type", dev);
                if (ret >= 0)
                        ret = add_pathf(r, "%s/iommu_group", dev);
                if (ret >= 0)
                        ret = add_pathf(r, "%s/remove", dev);
        }
        return ret;
}

static int add_iommu_unit(struct report *r, const char *dir, const char *name) {
        return add_pathf(r, "%s/%s", dir, name);
}

/* Every group's directory (members only for GPUs' groups): the doctor counts groups. */
static int add_group_dir(struct report *r, const char *dir, const char *name) {
        return add_pathf(r, "%s/%s", dir, name);
}

/* NVML readings in the NVML test double's format, so the tarball is a complete fixture. */
/* An encoder's or frame capture's readings in the double's keys, when NVML reported them. */
static void report_stream(FILE *f, int index, const char *prefix, const char *name,
                          const struct vgpu_nvml_stream_stats *st) {
        if (st->sessions >= 0)
                fprintf(f, "gpu.%d.%s%s_sessions=%d\ngpu.%d.%s%s_fps=%d\ngpu.%d.%s%s_latency=%d\n", index,
                        prefix, name, st->sessions, index, prefix, name, st->average_fps, index, prefix, name,
                        st->average_latency_us);
}

static int add_nvml_conf(struct report *r, const struct vgpu_host *host) {
        char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);
        if (!f)
                return -ENOMEM;
        bool any = false;
        if (host->nvml_driver_version)
                fprintf(f, "driver_version=%s\n", host->nvml_driver_version);
        int index = 0;
        for (size_t i = 0; i < host->n_gpus; i++) {
                const struct vgpu_gpu *g = &host->gpus[i];
                const struct vgpu_nvml_gpu *n = g->nvml;
                if (!n)
                        continue;
                any = true;
                fprintf(f, "gpu.%d.bdf=0000%s\n", index, g->bdf);
                fprintf(f, "gpu.%d.name=%s\ngpu.%d.uuid=%s\n", index, strempty(n->name), index,
                        strempty(n->uuid));
                fprintf(f, "gpu.%d.memory_total=%llu\ngpu.%d.memory_used=%llu\n", index,
                        (unsigned long long) n->memory_total, index, (unsigned long long) n->memory_used);
                fprintf(f, "gpu.%d.temperature=%d\ngpu.%d.temp_slowdown=%d\ngpu.%d.temp_shutdown=%d\n", index,
                        n->temperature, index, n->temp_slowdown, index, n->temp_shutdown);
                fprintf(f, "gpu.%d.power_mw=%d\ngpu.%d.power_limit_mw=%d\n", index, n->power_mw, index,
                        n->power_limit_mw);
                fprintf(f, "gpu.%d.persistence=%d\ngpu.%d.virtualization_mode=%d\ngpu.%d.mig_mode=%d\n",
                        index, n->persistence_mode, index, n->virtualization_mode, index, n->mig_mode);
                /* the newer readings only when known: a missing key is the double's "not supported" */
                if (n->utilization_gpu >= 0)
                        fprintf(f, "gpu.%d.utilization_gpu=%d\ngpu.%d.utilization_memory=%d\n", index,
                                n->utilization_gpu, index, n->utilization_memory);
                if (n->memory_reserved >= 0)
                        fprintf(f, "gpu.%d.memory_reserved=%" PRId64 "\n", index, n->memory_reserved);
                if (n->clocks_event_reasons_known)
                        fprintf(f, "gpu.%d.clocks_event_reasons=0x%" PRIx64 "\n", index,
                                n->clocks_event_reasons);
                const struct {
                        const char *key;
                        int value;
                } link[] = {
                        { "pcie_gen", n->pcie_gen_current },
                        { "pcie_gen_max", n->pcie_gen_max },
                        { "pcie_width", n->pcie_width_current },
                        { "pcie_width_max", n->pcie_width_max },
                };
                for (size_t k = 0; k < ELEMENTSOF(link); k++)
                        if (link[k].value > 0)
                                fprintf(f, "gpu.%d.%s=%d\n", index, link[k].key, link[k].value);
                /* VDI load and the running vGPUs: a report of a "slow desktop" host keeps them */
                report_stream(f, index, "", "encoder", &n->encoder);
                report_stream(f, index, "", "fbc", &n->frame_capture);
                /* each session (the double serves 16 a GPU); the FBC flags and maximum size are not kept: 0 */
                for (size_t k = 0; n->encoder_sessions_known && k < n->n_encoder_sessions && k < 16; k++) {
                        const struct vgpu_nvml_session *e = &n->encoder_sessions[k];
                        fprintf(f, "gpu.%d.encoder_session.%zu=%u,%u,%u,%u,%u,%u,%u,%u\n", index, k, e->id,
                                e->pid, e->vgpu_instance, e->kind, e->h_resolution, e->v_resolution,
                                e->average_fps, e->average_latency_us);
                }
                for (size_t k = 0;
                     n->frame_capture_sessions_known && k < n->n_frame_capture_sessions && k < 16; k++) {
                        const struct vgpu_nvml_session *e = &n->frame_capture_sessions[k];
                        fprintf(f, "gpu.%d.fbc_session.%zu=%u,%u,%u,%u,%u,0,0,0,%u,%u,%u,%u\n", index, k,
                                e->id, e->pid, e->vgpu_instance, e->display, e->kind, e->h_resolution,
                                e->v_resolution, e->average_fps, e->average_latency_us);
                }
                for (size_t v = 0; v < n->n_vgpus && v < 64; v++) {
                        const struct vgpu_nvml_vgpu *vg = &n->vgpus[v];
                        char prefix[24];
                        snprintf(prefix, sizeof(prefix), "vgpu.%zu.", v);
                        fprintf(f, "gpu.%d.%smdev_uuid=%s\n", index, prefix, vg->mdev_uuid);
                        report_stream(f, index, prefix, "encoder", &vg->encoder);
                        report_stream(f, index, prefix, "fbc", &vg->frame_capture);
                        if (vg->frame_rate_limit >= 0)
                                fprintf(f, "gpu.%d.%sframe_rate_limit=%d\n", index, prefix,
                                        vg->frame_rate_limit);
                }
                index++;
        }
        /* the vendor-VFIO types' frame buffer NVML gave (nvml-vgpu-types.c), each id once */
        for (size_t i = 0; any && i < host->n_parents; i++)
                for (size_t t = 0; t < host->parents[i].n_types; t++) {
                        const struct vgpu_type *type = &host->parents[i].types[t];
                        bool seen = false;
                        for (size_t j = 0; j < i && !seen; j++)
                                for (size_t u = 0; u < host->parents[j].n_types && !seen; u++)
                                        seen = streq(host->parents[j].types[u].id, type->id);
                        if (type->kind == VGPU_TYPE_NVIDIA_VFIO && type->framebuffer_bytes >= 0 && !seen)
                                fprintf(f, "vgpu_type.%s.framebuffer=%" PRId64 "\n", type->id,
                                        type->framebuffer_bytes);
                }
        fclose(f);
        int ret = any ? write_entry(r, "nvml.conf", 'f', 0644, buf, size, NULL) : 0;
        free(buf);
        return ret;
}

static int add_everything(struct report *r, const struct vgpu_host *host) {
        int ret = 0;
        for (size_t i = 0; ret >= 0 && i < ELEMENTSOF(host_files); i++)
                ret = add_path(r, host_files[i]);
        for (size_t i = 0; ret >= 0 && i < ELEMENTSOF(host_tools); i++)
                if (root_access(host_tools[i], X_OK) == 0 && (ret = seen_add(r, host_tools[i] + 1)) > 0)
                        ret = write_entry(r, host_tools[i] + 1, 'f', 0755, NULL, 0, NULL);
        /* build is a symlink to /usr/src/linux-headers-*: absolute, it would point out of the
         * unpacked tree, so its presence is recorded as a directory. */
        char build[PATH_MAX];
        if (ret >= 0 && host->kernel_release &&
            snprintf(build, sizeof(build), "/lib/modules/%s/build", host->kernel_release) <
                    (int) sizeof(build) &&
            root_access(build, F_OK) == 0 && (ret = seen_add(r, build + 1)) > 0)
                ret = write_entry(r, build + 1, 'd', 0755, NULL, 0, NULL);
        for (size_t i = 0; ret >= 0 && i < host->n_gpus; i++) {
                const struct vgpu_gpu *g = &host->gpus[i];
                ret = add_pci_function(r, g->bdf);
                if (ret >= 0 && g->iommu_group >= 0) {
                        char dir[128];
                        snprintf(dir, sizeof(dir), "/sys/kernel/iommu_groups/%d/devices", g->iommu_group);
                        ret = for_each_entry(dir, add_group_member, r);
                        if (ret >= 0)
                                ret = add_pathf(r, "/sys/kernel/iommu_groups/%d/type", g->iommu_group);
                }
        }
        if (ret >= 0)
                ret = for_each_entry("/sys/class/mdev_bus", add_mdev_parent, r);
        if (ret >= 0)
                ret = for_each_entry("/sys/bus/mdev/devices", add_mdev_instance, r);
        if (ret >= 0)
                ret = for_each_entry("/sys/class/iommu", add_iommu_unit, r);
        if (ret >= 0)
                ret = for_each_entry("/sys/kernel/iommu_groups", add_group_dir, r);
        for (size_t i = 0; ret >= 0 && i < ELEMENTSOF(extra_modules); i++)
                ret = add_module(r, extra_modules[i]);
        if (ret >= 0)
                ret = add_nvml_conf(r, host);
        if (ret >= 0)
                ret = report_add_diagnostics(r, host);
        return ret;
}

_public_ int vgpu_report_write(const struct vgpu_host *host, const char *path,
                               const struct vgpu_report_extra *extras, size_t n_extras,
                               struct vgpu_error *err) {
        char tmp[PATH_MAX];
        if (snprintf(tmp, sizeof(tmp), "%s.tmpXXXXXX", path) >= (int) sizeof(tmp))
                return vgpu_error_set(err, -ENAMETOOLONG, "%s: path too long", path);
        int fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0)
                return vgpu_error_set_errno(err, -errno, "%s: cannot create the report", path);

        struct vgpu_error open_err = {};
        struct report r = { .tar = tar_open_fd(fd, &open_err), .now = time(NULL), .err = err };
        int ret = 0;
        if (!r.tar)
                ret = vgpu_error_set(err, open_err.code, "%s: %s", path, open_err.message);
        if (ret >= 0)
                ret = add_everything(&r, host);
        for (size_t i = 0; ret >= 0 && i < n_extras; i++)
                ret = write_entry(&r, extras[i].name, 'f', 0644, extras[i].data, extras[i].size, NULL);
        if (r.tar) {
                int q = tar_close(r.tar);
                if (q < 0 && ret >= 0)
                        ret = vgpu_error_set_errno(err, q, "%s: writing the archive", path);
        }
        for (size_t i = 0; i < r.n_seen; i++)
                free(r.seen[i]);
        free(r.seen);

        if (ret >= 0 && fsync(fd) < 0)
                ret = vgpu_error_set_errno(err, -errno, "%s: fsync", tmp);
        close(fd);
        if (ret >= 0 && rename(tmp, path) < 0)
                ret = vgpu_error_set_errno(err, -errno, "%s: cannot move the report into place", path);
        if (ret < 0) {
                unlink(tmp);
                return ret == -ENOMEM ? vgpu_error_set(err, ret, "out of memory") : ret;
        }
        return r.entries;
}
