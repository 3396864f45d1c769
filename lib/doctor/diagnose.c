/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * diagnose.c — a domain's QEMU log read for the VFIO/mdev errors that stop a VM with a vGPU
 * (see vgpu/diagnose.h). libvirt appends every start to the same file, each after a header
 * ("2026-... : starting up libvirt version: ..."), then the command line, then what QEMU wrote
 * on stderr (with `-msg timestamp=on`, which libvirt passes, each line starts with an ISO
 * timestamp), and "shutting down, reason=..." when the process ended. Only the last start
 * counts: older ones are history the user has likely fixed.
 *
 * The patterns are QEMU's own messages (hw/vfio: "group %d is not viable", "error getting
 * device from group %d", "failed to setup container for group %d", "no such host device",
 * "Failed to mmap %s BAR %d"; qemu_open's "Could not open '%s'", older QEMUs' "failed to open
 * /dev/vfio/%d"); the errno text QEMU appends tells the causes of one message apart.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "basic/error-util.h"
#include "basic/macro.h"
#include "basic/root.h"
#include "vgpu/diagnose.h"

#define QEMU_LOG_DIR "/var/log/libvirt/qemu"
#define MAX_FINDINGS 256

struct rule {
        const char *kind;
        const char *check; /* doctor check id, or NULL */
        enum vgpu_check_status severity;
        bool (*match)(const char *line);
        const char *remedy; /* printf format: %1$s the device, %2$d the group */
};

static bool has(const char *line, const char *needle) {
        return strcasestr(line, needle) != NULL;
}

static bool opens_vfio_node(const char *line) {
        return has(line, "failed to open /dev/vfio/") || has(line, "Could not open '/dev/vfio/") ||
               has(line, "error opening /dev/vfio/");
}

static bool m_not_viable(const char *l) {
        return has(l, "is not viable");
}
static bool m_busy(const char *l) {
        return has(l, "Device or resource busy") || has(l, "is already in use");
}
static bool m_attached_twice(const char *l) {
        return has(l, "device is already attached");
}
static bool m_mgr_io(const char *l) {
        return has(l, "error getting device from group") && has(l, "Input/output error");
}
static bool m_mdev_missing(const char *l) {
        return has(l, "/sys/bus/mdev/devices/") &&
               (has(l, "no such host device") || has(l, "No such file or directory"));
}
static bool m_no_container_device(const char *l) {
        return (opens_vfio_node(l) && has(l, "/dev/vfio/vfio")) || has(l, "no iommu_group found");
}
static bool m_group_node_missing(const char *l) {
        return opens_vfio_node(l) && has(l, "No such file or directory");
}
static bool m_group_node_denied(const char *l) {
        return opens_vfio_node(l) && (has(l, "Permission denied") || has(l, "Operation not permitted"));
}
static bool m_memlock(const char *l) {
        return (has(l, "dma_map") || has(l, "VFIO_MAP_DMA")) &&
               (has(l, "Cannot allocate memory") || has(l, "= -12"));
}
static bool m_no_iommu_model(const char *l) {
        return has(l, "No available IOMMU models");
}
static bool m_container(const char *l) {
        return has(l, "failed to setup container");
}
static bool m_bar_mmap(const char *l) {
        return has(l, "Failed to mmap") && has(l, "BAR");
}
static bool m_get_device(const char *l) {
        return has(l, "error getting device from group");
}

/* First match wins: the specific causes before the messages they appear inside. */
static const struct rule rules[] = {
        { "vfio.group_not_viable", "iommu.group_viable", VGPU_CHECK_FAIL, m_not_viable,
          "IOMMU group %2$d holds a device not bound to vfio-pci: bind every device in "
          "/sys/kernel/iommu_groups/%2$d/devices to vfio-pci, or move the GPU to a slot with a group of its "
          "own (ACS); "
          "`vgpuctl doctor -c iommu.group_viable` names them" },
        { "vfio.device_attached_twice", NULL, VGPU_CHECK_FAIL, m_attached_twice,
          "the domain's XML has %1$s twice: remove one <hostdev> (virsh edit)" },
        { "vfio.device_busy", NULL, VGPU_CHECK_FAIL, m_busy,
          "%1$s (IOMMU group %2$d) is in use by another VM or process: `vgpuctl list` shows the domain "
          "holding each vGPU; "
          "stop it, or give this domain a free vGPU (`vgpuctl assign`)" },
        { "nvidia.vgpu_mgr_refused", "nvidia.vgpu_mgr", VGPU_CHECK_FAIL, m_mgr_io,
          "the vGPU host driver refused to open %1$s: nvidia-vgpu-mgr must run (systemctl restart "
          "nvidia-vgpu-mgr; "
          "journalctl -u nvidia-vgpu-mgr says why it refused, e.g. a guest/host driver or license "
          "mismatch)" },
        { "mdev.missing", "mdev.types", VGPU_CHECK_FAIL, m_mdev_missing,
          "the vGPU %1$s does not exist on this host: `vgpuctl start %1$s` if it is defined (vgpuctl list "
          "--defined), "
          "else create it with `vgpuctl create --parent P --type T --uuid %1$s --persist`" },
        { "vfio.no_container_device", "iommu.enabled", VGPU_CHECK_FAIL, m_no_container_device,
          "VFIO is not usable: load it (modprobe vfio-pci) and turn the IOMMU on (`vgpuctl doctor -c "
          "iommu.enabled,iommu.cmdline`)" },
        { "vfio.group_node_missing", "iommu.enabled", VGPU_CHECK_FAIL, m_group_node_missing,
          "/dev/vfio/%2$d does not exist: no device of IOMMU group %2$d is bound to vfio (a VF or GPU: bind "
          "it to vfio-pci, "
          "e.g. `vgpuctl vfs BDF N --vfio`; an mdev's group goes away with it: `vgpuctl list`)" },
        { "vfio.group_node_denied", NULL, VGPU_CHECK_FAIL, m_group_node_denied,
          "QEMU may not open /dev/vfio/%2$d: libvirt gives it the node when it starts the domain (check the "
          "user in "
          "/etc/libvirt/qemu.conf and the node's owner); `vgpuctl harden` audits the VFIO nodes' "
          "permissions" },
        { "vfio.memlock", NULL, VGPU_CHECK_FAIL, m_memlock,
          "VFIO could not pin the guest's memory (ENOMEM): the locked-memory limit is below the guest's RAM "
          "(libvirt raises it for <hostdev>s, unless <memtune><hard_limit> is set lower: raise or remove "
          "it), or the host is out of memory" },
        { "vfio.no_iommu", "iommu.cmdline", VGPU_CHECK_FAIL, m_no_iommu_model,
          "the kernel offers VFIO no IOMMU: enable VT-d/AMD-Vi in the firmware and intel_iommu=on (Intel) on "
          "the kernel command line" },
        { "vfio.container", "iommu.enabled", VGPU_CHECK_FAIL, m_container,
          "VFIO could not set up the IOMMU container for group %2$d: `vgpuctl doctor -c "
          "iommu.enabled,iommu.cmdline`" },
        { "vfio.bar_mmap", "bar.above4g", VGPU_CHECK_WARN, m_bar_mmap,
          "a BAR of %1$s could not be mapped into the guest (it works, slowly): enable Above 4G decoding and "
          "resizable BAR "
          "in the firmware; `vgpuctl show %1$s` lists the BARs" },
        { "vfio.get_device", NULL, VGPU_CHECK_FAIL, m_get_device,
          "VFIO could not open %1$s in IOMMU group %2$d: every device of "
          "/sys/kernel/iommu_groups/%2$d/devices must be "
          "bound to vfio-pci (or be an mdev) and not in use" },
};

/* "2026-12-06T10:00:01.234567Z " (QEMU's -msg timestamp=on): how long the prefix is, or 0. */
static size_t timestamp_length(const char *l) {
        size_t i = 0;
        while (isdigit((unsigned char) l[i]) || l[i] == '-' || l[i] == ':' || l[i] == '.' || l[i] == 'T')
                i++;
        if (i < 19 || l[i] != 'Z' || l[i + 1] != ' ')
                return 0;
        return i + 2;
}

static bool is_uuid(const char *s) {
        for (int i = 0; i < 36; i++)
                if (i == 8 || i == 13 || i == 18 || i == 23 ? s[i] != '-' : !isxdigit((unsigned char) s[i]))
                        return false;
        return !isxdigit((unsigned char) s[36]) && s[36] != '-';
}

static bool is_bdf(const char *s) {
        /* dddd:bb:dd.f */
        static const char shape[] = "xxxx:xx:xx.x";
        for (int i = 0; shape[i]; i++)
                if (shape[i] == 'x' ? !isxdigit((unsigned char) s[i]) : s[i] != shape[i])
                        return false;
        return true;
}

/* How long the UUID or BDF that s starts with is, or 0 when it starts with neither. */
static size_t device_name_length(const char *s) {
        return is_uuid(s) ? 36 : is_bdf(s) ? 12 : 0;
}

/* The device a QEMU line names: the mdev UUID of a sysfsdev path, else the first UUID or BDF
 * after "vfio " (QEMU's prefix), else the first of either anywhere. */
static char *device_of(const char *l) {
        size_t n;
        const char *p = strstr(l, "/sys/bus/mdev/devices/");
        if (p && is_uuid(p + strlen("/sys/bus/mdev/devices/")))
                return strndup(p + strlen("/sys/bus/mdev/devices/"), 36);
        for (p = strstr(l, "vfio "); p; p = strstr(p + 1, "vfio "))
                if ((n = device_name_length(p + 5)))
                        return strndup(p + 5, n);
        for (p = l; *p; p++)
                if ((n = device_name_length(p)))
                        return strndup(p, n);
        return NULL;
}

static int group_of(const char *l) {
        const char *p = strcasestr(l, "group ");
        if (p && isdigit((unsigned char) p[6]))
                return atoi(p + 6);
        for (p = strstr(l, "/dev/vfio/"); p; p = strstr(p + 1, "/dev/vfio/"))
                if (isdigit((unsigned char) p[10]))
                        return atoi(p + 10);
        return -1;
}

static void finding_free(struct vgpu_diag_finding *f) {
        free(f->device);
        free(f->message);
        free(f->remedy);
}

static void findings_clear(struct vgpu_diagnosis *d) {
        for (size_t i = 0; i < d->n_findings; i++)
                finding_free(&d->findings[i]);
        d->n_findings = 0;
}

_public_ void vgpu_diagnosis_free(struct vgpu_diagnosis *d) {
        if (!d)
                return;
        findings_clear(d);
        free(d->findings);
        free(d->domain);
        free(d->log);
        free(d->started);
        free(d->shutdown_reason);
        free(d);
}

static int add_finding(struct vgpu_diagnosis *d, size_t *allocated, unsigned line_no, const char *msg) {
        const struct rule *r = NULL;
        for (size_t i = 0; i < ELEMENTSOF(rules) && !r; i++)
                if (rules[i].match(msg))
                        r = &rules[i];
        if (!r)
                return 0;
        _cleanup_free_ char *device = device_of(msg);
        int group = group_of(msg);
        /* the same error again (QEMU repeats a failed DMA map per region): counted, not listed */
        for (size_t i = 0; i < d->n_findings; i++) {
                struct vgpu_diag_finding *f = &d->findings[i];
                if (f->kind == r->kind && f->group == group &&
                    ((!f->device && !device) || (f->device && device && strcmp(f->device, device) == 0))) {
                        f->count++;
                        return 0;
                }
        }
        if (d->n_findings >= MAX_FINDINGS)
                return 0;
        if (!GREEDY_REALLOC(d->findings, *allocated, d->n_findings + 1))
                return -ENOMEM;
        struct vgpu_diag_finding *f = &d->findings[d->n_findings];
        char group_text[16];
        snprintf(group_text, sizeof(group_text), "%d", group);
        *f = (struct vgpu_diag_finding){
                .line = line_no,
                .count = 1,
                .severity = r->severity,
                .kind = r->kind,
                .check = r->check,
                .group = group,
                .message = strdup(msg),
        };
        /* the remedy's format names the device and the group; "the device" / "?" where the line has none */
        if (asprintf(&f->remedy, r->remedy, device ? device : "the device", group) < 0)
                f->remedy = NULL;
        f->device = TAKE_PTR(device);
        if (!f->message || !f->remedy) {
                finding_free(f);
                return -ENOMEM;
        }
        d->n_findings++;
        return 0;
}

static bool name_ok(const char *domain) {
        return domain[0] && domain[0] != '.' && !strchr(domain, '/') && strlen(domain) < 200;
}

_public_ int vgpu_diagnose_domain(const char *domain, struct vgpu_diagnosis **ret, struct vgpu_error *err) {
        if (!name_ok(domain))
                return vgpu_error_set(err, -EINVAL,
                                      "'%s' is not a domain name (no '/', not starting with '.')", domain);
        struct vgpu_diagnosis *d = calloc(1, sizeof(*d));
        if (!d || !(d->domain = strdup(domain)) || asprintf(&d->log, QEMU_LOG_DIR "/%s.log", domain) < 0) {
                if (d)
                        d->log = NULL;
                vgpu_diagnosis_free(d);
                return vgpu_error_set(err, -ENOMEM, "out of memory");
        }
        int fd = root_open(d->log, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
                int r = fd;
                vgpu_error_set_errno(
                        err, r, "%s%s: cannot read the domain's QEMU log%s", root_prefix(), d->log,
                        r == -ENOENT ? " (no domain of that name has run on this host: virsh list --all)"
                                     : "");
                vgpu_diagnosis_free(d);
                return r;
        }
        FILE *f = fdopen(fd, "re");
        if (!f) {
                int r = -errno;
                close(fd);
                vgpu_diagnosis_free(d);
                return vgpu_error_set_errno(err, r, "%s", d->log);
        }

        _cleanup_free_ char *line = NULL;
        size_t cap = 0, allocated = 0;
        unsigned no = 0;
        int r = 0;
        ssize_t len;
        while (r >= 0 && (len = getline(&line, &cap, f)) >= 0) {
                no++;
                while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
                        line[--len] = '\0';
                const char *p;
                /* "2026-12-06 10:00:00.123+0000: starting up libvirt version: ...": a new start */
                if ((p = strstr(line, ": starting up libvirt version"))) {
                        findings_clear(d);
                        free(d->shutdown_reason);
                        d->shutdown_reason = NULL;
                        free(d->started);
                        d->started = strndup(line, (size_t) (p - line));
                        d->start_line = no;
                        if (!d->started)
                                r = -ENOMEM;
                        continue;
                }
                if ((p = strstr(line, ": shutting down, reason="))) {
                        free(d->shutdown_reason);
                        d->shutdown_reason = strdup(p + strlen(": shutting down, reason="));
                        if (!d->shutdown_reason)
                                r = -ENOMEM;
                        continue;
                }
                /* QEMU's hints after an error ("Verify all devices in group N ... not already in
                 * use"): part of the line before, not an error of their own */
                if (strncmp(line, "Verify all devices", 18) == 0 ||
                    strncmp(line, "Please ensure all devices", 25) == 0)
                        continue;
                r = add_finding(d, &allocated, no, line + timestamp_length(line));
        }
        fclose(f);
        if (r < 0) {
                vgpu_diagnosis_free(d);
                return vgpu_error_set(err, r, "out of memory");
        }
        *ret = d;
        return 0;
}
