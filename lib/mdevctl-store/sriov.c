/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * sriov.c — enabling and disabling SR-IOV virtual functions (vgpu_sriov_set_vfs).
 *
 * The kernel's rules, as the sysfs ABI enforces them: at most sriov_totalvfs; a non-zero count
 * cannot be changed to another non-zero count (EBUSY), so that goes through 0. Automatic driver
 * probing is switched off first, or the host's own driver binds every new VF (and the NVMe
 * driver, for one, then fails on them); VFs meant for VMs are bound to vfio-pci through
 * driver_override. A failure after VFs were enabled disables them again.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>

#include "basic/error-util.h"
#include "basic/fileio.h"
#include "basic/lock.h"
#include "basic/macro.h"
#include "basic/root.h"
#include "basic/sysfs.h"
#include "store.h"

static int read_uint(const char *bdf, const char *attr, unsigned *ret) {
        char path[256], buf[32];
        snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/%s", bdf, attr);
        int r = root_read(path, buf, sizeof(buf));
        if (r < 0)
                return r;
        *ret = (unsigned) strtoul(buf, NULL, 10);
        return 0;
}

static int write_attr(const char *bdf, const char *attr, const char *value, struct vgpu_error *err) {
        char path[256];
        snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/%s", bdf, attr);
        int r = sysfs_write(path, value);
        return r < 0 ? vgpu_error_set_errno(err, r, "writing '%s' to %s%s", value, root_prefix(), path) : 0;
}

static int bind_vfio(const char *pf, unsigned n, struct vgpu_error *err) {
        if (root_access("/sys/bus/pci/drivers/vfio-pci", F_OK) < 0)
                return vgpu_error_set(
                        err, -ENOENT,
                        "vfio-pci is not loaded (no /sys/bus/pci/drivers/vfio-pci): modprobe vfio-pci");
        for (unsigned i = 0; i < n; i++) {
                char link[256], full[4096], vf[64];
                snprintf(link, sizeof(link), "/sys/bus/pci/devices/%s/virtfn%u", pf, i);
                int r = root_path(full, sizeof(full), link);
                if (r < 0 || (r = sysfs_link_basename_at(AT_FDCWD, full, vf, sizeof(vf))) < 0)
                        return vgpu_error_set_errno(err, r, "%s%s: VF %u missing", root_prefix(), link, i);
                if ((r = write_attr(vf, "driver_override", "vfio-pci", err)) < 0)
                        return r;
                /* drivers_probe binds by driver_override; an already bound VF must be unbound first */
                char drv[128];
                snprintf(link, sizeof(link), "/sys/bus/pci/devices/%s/driver", vf);
                if (root_path(full, sizeof(full), link) >= 0 &&
                    sysfs_link_basename_at(AT_FDCWD, full, drv, sizeof(drv)) >= 0) {
                        if (strcmp(drv, "vfio-pci") == 0)
                                continue;
                        snprintf(link, sizeof(link), "/sys/bus/pci/devices/%s/driver/unbind", vf);
                        if ((r = sysfs_write(link, vf)) < 0)
                                return vgpu_error_set_errno(err, r, "unbinding %s from %s", vf, drv);
                }
                if ((r = sysfs_write("/sys/bus/pci/drivers_probe", vf)) < 0)
                        return vgpu_error_set_errno(err, r, "binding %s to vfio-pci", vf);
        }
        return 0;
}

int lifecycle_set_vfs(const char *bdf, unsigned n, unsigned flags, struct vgpu_error *err) {
        unsigned total, current;
        if (read_uint(bdf, "sriov_totalvfs", &total) < 0)
                return vgpu_error_set(err, -EOPNOTSUPP,
                                      "%s: no SR-IOV (no %s/sys/bus/pci/devices/%s/sriov_totalvfs; see "
                                      "'vgpuctl doctor', sriov.capable)",
                                      bdf, root_prefix(), bdf);
        if (n > total)
                return vgpu_error_set(err, -EINVAL, "%s supports at most %u VFs, not %u", bdf, total, n);
        int r = read_uint(bdf, "sriov_numvfs", &current);
        if (r < 0)
                return vgpu_error_set_errno(err, r, "%s: reading sriov_numvfs", bdf);
        if (current == n) {
                if (n > 0 && (flags & VGPU_VFS_BIND_VFIO))
                        return bind_vfio(bdf, n, err) < 0 ? -EIO : 0;
                return 0;
        }
        if (current > 0 && (r = write_attr(bdf, "sriov_numvfs", "0", err)) < 0)
                return r;
        if (n == 0)
                return 1;
        if ((r = write_attr(bdf, "sriov_drivers_autoprobe", "0", err)) < 0)
                return r;
        char value[16];
        snprintf(value, sizeof(value), "%u", n);
        if ((r = write_attr(bdf, "sriov_numvfs", value, err)) < 0)
                return r;
        if ((flags & VGPU_VFS_BIND_VFIO) && (r = bind_vfio(bdf, n, err)) < 0) {
                /* roll back: VFs half bound are worse than none */
                struct vgpu_error ignore = {};
                (void) write_attr(bdf, "sriov_numvfs", "0", &ignore);
                return r;
        }
        return 1;
}

_public_ int vgpu_sriov_set_vfs(const char *bdf_in, unsigned n, unsigned flags, struct vgpu_error *err) {
        char bdf[VGPU_BDF_MAX];
        if (vgpu_bdf_normalize(bdf_in, bdf) < 0)
                return vgpu_error_set(err, -EINVAL, "'%s' is not a PCI address", bdf_in);
        int lock = host_lock_take(err);
        if (lock < 0)
                return lock;
        int r = lifecycle_set_vfs(bdf, n, flags, err);
        host_lock_release(lock);
        return r;
}
