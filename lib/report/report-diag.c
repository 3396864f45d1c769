/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * report-diag.c — the parts of the support bundle that say what happened rather than what is
 * there: the last journal lines of the vGPU units, the kernel's messages about vfio, mdev and
 * the GPU drivers (NVIDIA's Xid among them), the QEMU logs of the domains holding vGPUs, and
 * the driver versions. Read with the doctor's readers (lib/doctor: sd-journal on the root's
 * journal, which on a tree is VGPU_ROOT/var/log/journal, else syslog/kern.log).
 *
 * Each unit's state is also stored as the `systemctl show` subset the doctor reads on a tree
 * (run/vgpuctl/systemctl-show/UNIT): an unpacked report has no systemd to ask, and without it
 * nvidia.vgpu_mgr would be skipped there. The QEMU logs keep their path, so `vgpuctl diagnose`
 * works on the unpacked tree too.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "basic/macro.h"
#include "basic/root.h"
#include "doctor/doctor-internal.h"
#include "report-internal.h"

#define UNIT_LINES    200
#define KERNEL_LINES  64
#define QEMU_LOG_TAIL (512 << 10) /* a log grows by every start; the last ones matter */

/* The units of a vGPU host and the syslog identifier of each (for the syslog fallback). */
static const struct {
        const char *unit, *ident;
} units[] = {
        { "nvidia-vgpu-mgr.service", "nvidia-vgpu-mgr" },
        { "nvidia-vgpud.service", "nvidia-vgpud" },
        { "vgpud.service", "vgpud" },
        { "libvirtd.service", "libvirtd" },
};

/* The kernel's words for what a vGPU host's faults look like. */
static const char *const kernel_needles[] = {
        "vfio", "mdev", "NVRM", "nvidia", "Xid", "iommu", "DMAR", "AMD-Vi", "gim", "i915", "xe ", NULL,
};

static int write_text(struct report *r, const char *rel, const struct text *t) {
        const char *s = text_get(t);
        if (!s)
                return -ENOMEM;
        _cleanup_free_ char *withnl = NULL;
        if (asprintf(&withnl, "%s\n", s) < 0)
                return -ENOMEM;
        int q = seen_add(r, rel);
        return q <= 0 ? q : write_entry(r, rel, 'f', 0644, withnl, strlen(withnl), NULL);
}

static int add_units(struct report *r) {
        /* the unit files too: the doctor tells "not installed" from "installed" by them */
        static const char *const unit_dirs[] = { "/etc/systemd/system", "/usr/lib/systemd/system",
                                                 "/lib/systemd/system" };
        int ret = 0;
        for (size_t i = 0; ret >= 0 && i < ELEMENTSOF(units); i++) {
                for (size_t k = 0; ret >= 0 && k < ELEMENTSOF(unit_dirs); k++) {
                        char path[256];
                        snprintf(path, sizeof(path), "%s/%s", unit_dirs[k], units[i].unit);
                        ret = add_path(r, path);
                }
                if (ret < 0)
                        break;
                _cleanup_text_ struct text log = {};
                ret = doctor_unit_log_tail(units[i].unit, units[i].ident, UNIT_LINES, &log);
                char rel[256];
                snprintf(rel, sizeof(rel), "vgpuctl/journal/%s.txt", units[i].unit);
                if (ret >= 0)
                        ret = write_text(r, rel, &log);

                struct unit_state st;
                char source[512];
                int known = ret >= 0 ? doctor_unit_state(units[i].unit, &st, source, sizeof(source)) : 0;
                if (known < 0)
                        ret = known;
                /* not installed anywhere: nothing to capture (the doctor reads "absent" as such) */
                if (known <= 0 || streq(st.load, "not-found"))
                        continue;
                _cleanup_text_ struct text show = {};
                text_line(&show, "Id=%s", units[i].unit);
                text_line(&show, "LoadState=%s", st.load);
                text_line(&show, "ActiveState=%s", st.active);
                text_line(&show, "SubState=%s", st.sub);
                if (st.result[0])
                        text_line(&show, "Result=%s", st.result);
                if (st.exec_main_status >= 0)
                        text_line(&show, "ExecMainStatus=%d", st.exec_main_status);
                snprintf(rel, sizeof(rel), "run/vgpuctl/systemctl-show/%s", units[i].unit);
                ret = write_text(r, rel, &show);
        }
        return ret;
}

static int add_kernel_messages(struct report *r) {
        _cleanup_text_ struct text t = {};
        int ret = doctor_kernel_log_grep(kernel_needles, KERNEL_LINES, &t);
        return ret < 0 ? ret : write_text(r, "vgpuctl/kernel.txt", &t);
}

/* Driver versions: NVML's, and the modules' own (modinfo's version, as /sys/module shows it). */
static int add_versions(struct report *r, const struct vgpu_host *host) {
        static const char *const modules[] = {
                "nvidia", "nvidia_vgpu_vfio", "gim", "amdgpu", "i915", "xe", "vfio", "vfio_pci", "kvm",
        };
        _cleanup_text_ struct text t = {};
        text_line(&t, "kernel=%s", host->kernel_release ? host->kernel_release : "?");
        if (host->nvml_driver_version)
                text_line(&t, "nvml.driver_version=%s", host->nvml_driver_version);
        for (size_t i = 0; i < ELEMENTSOF(modules); i++) {
                char path[128], v[128];
                snprintf(path, sizeof(path), "/sys/module/%s/version", modules[i]);
                if (root_read(path, v, sizeof(v)) >= 0) {
                        v[strcspn(v, "\n")] = '\0';
                        text_line(&t, "module.%s=%s", modules[i], v);
                } else if (snprintf(path, sizeof(path), "/sys/module/%s", modules[i]) > 0 &&
                           root_access(path, F_OK) == 0)
                        text_line(&t, "module.%s=(loaded, no version: in-tree)", modules[i]);
        }
        int ret = write_text(r, "vgpuctl/versions.txt", &t);
        /* NVIDIA's own banner, with the build it came from */
        return ret < 0 ? ret : add_path(r, "/proc/driver/nvidia/version");
}

/* Does the file hold one of the host's instance UUIDs (an mdev hostdev of the domain)? */
static bool xml_holds_instance(const char *path, const struct vgpu_host *host) {
        _cleanup_free_ char *xml = NULL;
        if (doctor_read_file(path, &xml) < 0)
                return false;
        for (size_t i = 0; i < host->n_instances; i++)
                if (host->instances[i].uuid[0] && strcasestr(xml, host->instances[i].uuid))
                        return true;
        return false;
}

static int add_qemu_log(struct report *r, const char *domain) {
        char path[512];
        snprintf(path, sizeof(path), "/var/log/libvirt/qemu/%s.log", domain);
        if (seen_add(r, path + 1) <= 0)
                return 0;
        _cleanup_free_ char *buf = NULL;
        size_t n, start;
        int k = root_read_tail(path, QEMU_LOG_TAIL, &buf, &n, &start);
        if (k < 0)
                return k == -ENOMEM ? k : 0;
        /* cut at a line start, so the first line is whole */
        const char *from = buf;
        if (start > 0 && (from = memchr(buf, '\n', (size_t) n)))
                from++;
        if (!from)
                from = buf + n;
        return write_entry(r, path + 1, 'f', 0600, from, (size_t) (buf + n - from), NULL);
}

/* The domains whose XML (defined: /etc/libvirt/qemu, running: /run/libvirt/qemu) names one of
 * the host's vGPUs: their XML and QEMU log. */
static int add_domains(struct report *r, const struct vgpu_host *host) {
        static const char *const dirs[] = { "/run/libvirt/qemu", "/etc/libvirt/qemu" };
        int ret = 0;
        for (size_t d = 0; ret >= 0 && d < ELEMENTSOF(dirs); d++) {
                int fd = root_open_dir(dirs[d]);
                if (fd < 0) {
                        if (fd == -ENOMEM)
                                return fd;
                        continue;
                }
                DIR *dir = fdopendir(fd);
                if (!dir) {
                        close(fd);
                        continue;
                }
                for (struct dirent *de; ret >= 0 && (de = readdir(dir));) {
                        size_t len = strlen(de->d_name);
                        if (len <= 4 || !streq(de->d_name + len - 4, ".xml") || de->d_name[0] == '.')
                                continue;
                        char path[512], domain[256];
                        snprintf(path, sizeof(path), "%s/%s", dirs[d], de->d_name);
                        snprintf(domain, sizeof(domain), "%.*s", (int) (len - 4), de->d_name);
                        if (!xml_holds_instance(path, host))
                                continue;
                        ret = add_path(r, path);
                        if (ret >= 0)
                                ret = add_qemu_log(r, domain);
                }
                closedir(dir);
        }
        return ret;
}

int report_add_diagnostics(struct report *r, const struct vgpu_host *host) {
        int ret = add_units(r);
        if (ret >= 0)
                ret = add_kernel_messages(r);
        if (ret >= 0)
                ret = add_versions(r, host);
        if (ret >= 0)
                ret = add_domains(r, host);
        return ret;
}
