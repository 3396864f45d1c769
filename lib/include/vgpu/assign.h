/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * assign.h — handing vGPUs to virtual machines: the libvirt <hostdev> element and QEMU
 * argument for an instance, attaching and detaching it through libvirt, and which domain
 * holds each instance.
 *
 * libvirt is loaded when a connection is first opened (dlopen of libvirt.so.0), not linked:
 * loading it costs more than most vgpuctl commands take, and libvgpu must run on hosts without
 * it. Attach and detach are idempotent like the rest of the lifecycle: attaching what the
 * domain already has succeeds and changes nothing (return 0), a change returns 1.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "vgpu/error.h"
#include "vgpu/host.h"
#include "vgpu/cleanup.h"

#ifdef __cplusplus
extern "C" {
#endif

enum vgpu_hostdev_kind {
        VGPU_HOSTDEV_MDEV, /* a mediated device, by UUID */
        VGPU_HOSTDEV_PCI,  /* a PCI function (a VF), by address */
};

/* What a VM is given: an mdev, or a PCI function. */
struct vgpu_hostdev {
        enum vgpu_hostdev_kind kind;
        char uuid[VGPU_UUID_MAX]; /* MDEV: lower case */
        char bdf[VGPU_BDF_MAX];   /* PCI: normalised */
        /* PCI: libvirt may bind the function to vfio-pci and back (managed='yes'). False for an
         * NVIDIA vendor-VFIO VF: its vGPU type is set by vgpuctl through the nvidia driver, which
         * a rebind would undo. */
        bool managed;
};

/*
 * The device for "UUID" (a running mdev) or "BDF" (a display-class PCI function that is no
 * vGPU parent, e.g. a VF) as this host has it: -ENOENT naming it when the host has no such
 * device, -EINVAL when it is neither a UUID nor a PCI address, -EBUSY for a parent of vGPUs.
 */
int vgpu_hostdev_from_host(const struct vgpu_host *host, const char *uuid_or_bdf, struct vgpu_hostdev *ret,
                           struct vgpu_error *err);
/* The device named by "UUID" or "BDF", from its spelling alone (for detaching what the host
 * no longer has). -EINVAL when it is neither. */
int vgpu_hostdev_parse(const char *uuid_or_bdf, struct vgpu_hostdev *ret, struct vgpu_error *err);

enum {
        VGPU_ASSIGN_LIVE = 1 << 0,        /* the running domain */
        VGPU_ASSIGN_CONFIG = 1 << 1,      /* its persistent configuration */
        VGPU_ASSIGN_DISPLAY_OFF = 1 << 2, /* mdev: display='off' in the element */
};

/*
 * The <hostdev> element for dev on one line, e.g. for an mdev
 *   <hostdev mode='subsystem' type='mdev' model='vfio-pci' managed='no'><source><address uuid='U'/></source></hostdev>
 * flags: VGPU_ASSIGN_DISPLAY_OFF. *ret is malloc'd, free() it.
 */
int vgpu_hostdev_xml(const struct vgpu_hostdev *dev, unsigned flags, char **ret, struct vgpu_error *err);
/* QEMU's "vfio-pci,sysfsdev=/sys/bus/mdev/devices/U" or "vfio-pci,host=B", the value of
 * -device. *ret is malloc'd. */
int vgpu_hostdev_qemu_device(const struct vgpu_hostdev *dev, char **ret, struct vgpu_error *err);

/* A connection to libvirt. */
struct vgpu_virt;

enum {
        VGPU_VIRT_READ_ONLY = 1 << 0, /* enough for listing; needs no write permission */
        /* Connect only if libvirt is there to answer: LIBVIRT_DEFAULT_URI is set, or a libvirt
         * socket exists under /run/libvirt (under VGPU_ROOT). Otherwise, and when libvirt.so.0 is
         * not installed, return 0 with *ret = NULL, at once and without a message. */
        VGPU_VIRT_PROBE = 1 << 1,
};

/* Connect to uri (NULL: libvirt's default, LIBVIRT_DEFAULT_URI when set). */
int vgpu_virt_open(const char *uri, unsigned flags, struct vgpu_virt **ret, struct vgpu_error *err);
void vgpu_virt_free(struct vgpu_virt *v);
VGPU_DEFINE_FREEP(struct vgpu_virt, vgpu_virt_free)

/*
 * Attach dev to the domain named domain. flags: VGPU_ASSIGN_LIVE and/or VGPU_ASSIGN_CONFIG;
 * neither means the configuration of a persistent domain plus the running domain if it runs
 * (virsh attach-device --persistent), and VGPU_ASSIGN_DISPLAY_OFF. 1 attached, 0 already
 * attached wherever asked. *ret_changed (may be NULL) gets the LIVE/CONFIG bits changed.
 */
int vgpu_assign(struct vgpu_virt *v, const char *domain, const struct vgpu_hostdev *dev, unsigned flags,
                unsigned *ret_changed, struct vgpu_error *err);
/* Detach it: 1 detached (from wherever asked that had it), -ENOENT when none had it. From a
 * running domain the guest has to let go of the device, which libvirt may not wait for: the
 * live XML (and `vgpuctl list`) still shows it until the guest has. */
int vgpu_detach(struct vgpu_virt *v, const char *domain, const struct vgpu_hostdev *dev, unsigned flags,
                unsigned *ret_changed, struct vgpu_error *err);

/*
 * The domain holding each of host's instances, by the hostdev sources in every domain's XML
 * (running or not): an array of host->n_instances names, NULL where none. A domain running
 * with the device wins over one merely configured with it.
 */
int vgpu_instance_domains(struct vgpu_virt *v, const struct vgpu_host *host, char ***ret,
                          struct vgpu_error *err);
void vgpu_instance_domains_free(char **domains, size_t n);
/* The same for host->gpus (a PF or VF assigned whole: <hostdev type='pci'>), host->n_gpus
 * names; freed with vgpu_instance_domains_free(). */
int vgpu_gpu_domains(struct vgpu_virt *v, const struct vgpu_host *host, char ***ret, struct vgpu_error *err);
/* Every domain that holds dev, in its running state or in its configuration (both count, unlike
 * above): *ret_n names in name order, NULL-terminated; freed with vgpu_instance_domains_free(). */
int vgpu_hostdev_domains(struct vgpu_virt *v, const struct vgpu_hostdev *dev, char ***ret, size_t *ret_n,
                         struct vgpu_error *err);

#ifdef __cplusplus
}
#endif
