/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * hostdev.c — what a VM is given for a vGPU: which device "UUID" or "BDF" names on this host,
 * its libvirt <hostdev> element and its QEMU -device value. Pure functions of the snapshot.
 *
 * The one decision here is managed='yes' or 'no' for a PCI function. libvirt, when managed,
 * unbinds the function from its driver and binds vfio-pci before the VM starts, and back
 * after. That is right for a plain VF, and wrong for an NVIDIA vendor-VFIO VF: its vGPU type
 * lives in the nvidia driver the VF is bound to, and is lost when it is rebound.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "assign-internal.h"
#include "basic/error-util.h"
#include "basic/macro.h"
#include "vgpu/lifecycle.h"

static void lowercase_uuid(char dst[VGPU_UUID_MAX], const char *src) {
        snprintf(dst, VGPU_UUID_MAX, "%s", src);
        for (char *p = dst; *p; p++)
                if (*p >= 'A' && *p <= 'F')
                        *p = (char) (*p - 'A' + 'a');
}

_public_ int vgpu_hostdev_parse(const char *uuid_or_bdf, struct vgpu_hostdev *ret, struct vgpu_error *err) {
        struct vgpu_hostdev d = {};
        if (vgpu_uuid_valid(uuid_or_bdf)) {
                d.kind = VGPU_HOSTDEV_MDEV;
                lowercase_uuid(d.uuid, uuid_or_bdf);
        } else if (uuid_or_bdf && vgpu_bdf_normalize(uuid_or_bdf, d.bdf) == 0) {
                d.kind = VGPU_HOSTDEV_PCI;
                d.managed = true;
        } else
                return vgpu_error_set(err, -EINVAL,
                                      "'%s' is neither a vGPU UUID nor a PCI address (expected 8-4-4-4-12 "
                                      "hex digits or DDDD:BB:DD.F)",
                                      strempty(uuid_or_bdf));
        *ret = d;
        return 0;
}

static bool has_instance(const struct vgpu_host *host, enum vgpu_type_kind kind, const char *parent) {
        for (size_t i = 0; i < host->n_instances; i++)
                if (host->instances[i].kind == kind && strcmp(host->instances[i].parent, parent) == 0)
                        return true;
        return false;
}

_public_ int vgpu_hostdev_from_host(const struct vgpu_host *host, const char *uuid_or_bdf,
                                    struct vgpu_hostdev *ret, struct vgpu_error *err) {
        struct vgpu_hostdev d;
        int r = vgpu_hostdev_parse(uuid_or_bdf, &d, err);
        if (r < 0)
                return r;

        if (d.kind == VGPU_HOSTDEV_MDEV) {
                for (size_t i = 0; i < host->n_instances; i++)
                        if (strcasecmp(host->instances[i].uuid, d.uuid) == 0) {
                                *ret = d;
                                return 0;
                        }
                return vgpu_error_set(err, -ENOENT,
                                      "no vGPU %s on this host (no such device in /sys/bus/mdev/devices; see "
                                      "'vgpuctl list')",
                                      d.uuid);
        }

        const struct vgpu_gpu *g = vgpu_host_find_gpu(host, d.bdf);
        if (!g)
                return vgpu_error_set(
                        err, -ENOENT,
                        "%s: no display-class PCI function at this address (see 'vgpuctl list')", d.bdf);
        /* Giving a VM the GPU that other VMs' vGPUs live on would take them away. */
        if (g->num_vfs > 0 || has_instance(host, VGPU_TYPE_MDEV, g->bdf))
                return vgpu_error_set(
                        err, -EBUSY,
                        "%s hosts vGPUs (%s): assign one of them, not the GPU itself (see 'vgpuctl list')",
                        g->bdf, g->num_vfs > 0 ? "it has VFs enabled" : "it has mdev instances");
        if (g->nvidia_vfio) {
                if (!has_instance(host, VGPU_TYPE_NVIDIA_VFIO, g->bdf))
                        return vgpu_error_set(
                                err, -ENODEV,
                                "%s has no vGPU type set, so a VM could not use it: create one first "
                                "('vgpuctl create --parent %s --type TYPE', see 'vgpuctl types %s')",
                                g->bdf, g->bdf, g->bdf);
                d.managed = false;
        }
        *ret = d;
        return 0;
}

_public_ int vgpu_hostdev_xml(const struct vgpu_hostdev *dev, unsigned flags, char **ret,
                              struct vgpu_error *err) {
        char *s = NULL;
        int n;
        if (dev->kind == VGPU_HOSTDEV_MDEV) {
                if (!vgpu_uuid_valid(dev->uuid))
                        return vgpu_error_set(err, -EINVAL, "'%s' is not a UUID", dev->uuid);
                /* managed='no': libvirt does not create mdevs here, vgpuctl (or mdevctl) does */
                n = asprintf(&s,
                             "<hostdev mode='subsystem' type='mdev' model='vfio-pci' managed='no'%s>"
                             "<source><address uuid='%s'/></source></hostdev>",
                             flags & VGPU_ASSIGN_DISPLAY_OFF ? " display='off'" : "", dev->uuid);
        } else {
                unsigned d, b, sl, f;
                if (hostdev_pci_address(dev->bdf, &d, &b, &sl, &f) < 0)
                        return vgpu_error_set(err, -EINVAL, "'%s' is not a PCI address", dev->bdf);
                n = asprintf(&s,
                             "<hostdev mode='subsystem' type='pci' managed='%s'><source>"
                             "<address domain='0x%04x' bus='0x%02x' slot='0x%02x' "
                             "function='0x%x'/></source></hostdev>",
                             dev->managed ? "yes" : "no", d, b, sl, f);
        }
        if (n < 0)
                return vgpu_error_set(err, -ENOMEM, "out of memory");
        *ret = s;
        return 0;
}

_public_ int vgpu_hostdev_qemu_device(const struct vgpu_hostdev *dev, char **ret, struct vgpu_error *err) {
        char *s = NULL;
        /* The real host path, not under VGPU_ROOT: QEMU opens it, on the real host. */
        int n = dev->kind == VGPU_HOSTDEV_MDEV
                        ? asprintf(&s, "vfio-pci,sysfsdev=/sys/bus/mdev/devices/%s", dev->uuid)
                        : asprintf(&s, "vfio-pci,host=%s", dev->bdf);
        if (n < 0)
                return vgpu_error_set(err, -ENOMEM, "out of memory");
        *ret = s;
        return 0;
}
