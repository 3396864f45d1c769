/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * lifecycle.h — creating and removing vGPUs, their persistent definitions, and SR-IOV VFs.
 *
 * Every call takes the host lock, reads the host itself, and is idempotent: asking for what is
 * already so succeeds and changes nothing (return 0), a change returns 1, and a request that
 * conflicts with what exists fails with a message saying what differs. A step that fails is
 * undone before returning: a half-created device is removed again. create, define, start, stop
 * and remove are plans of one or two actions, planned and run as vgpu_apply's are (vgpu/apply.h),
 * so both say the same of the same conflict.
 *
 * Persistent mdev definitions live in mdevctl's own store, /etc/mdevctl.d/PARENT/UUID, in its
 * JSON format, so mdevctl and libvirt see the same devices.
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

struct vgpu_mdev_attr {
        char *key; /* sysfs attribute below the device, e.g. "nvidia/vgpu_params" */
        char *value;
};

/* An mdev as mdevctl defines it. */
struct vgpu_mdev_spec {
        char uuid[VGPU_UUID_MAX]; /* "" on input: generate one */
        char *parent;             /* BDF or device name; normalised on input */
        char *type;
        bool auto_start;              /* mdevctl "start": "auto" */
        struct vgpu_mdev_attr *attrs; /* written in order after creation */
        size_t n_attrs;
};

/* Free what spec holds (not spec itself: it is the caller's, on the stack or in an array). */
void vgpu_mdev_spec_free(struct vgpu_mdev_spec *spec);

enum {
        VGPU_CREATE_PERSIST = 1 << 0, /* also define it (mdevctl store) */
};

/*
 * Create spec's device now (mdev: write the UUID to the type's create file and wait for it;
 * NVIDIA vendor-VFIO VF: write the type id to nvidia/current_vgpu_type). spec->uuid is filled
 * when generated. 1: created, 0: the same device already exists, -errno: nothing changed.
 */
int vgpu_mdev_create(struct vgpu_mdev_spec *spec, unsigned flags, struct vgpu_error *err);

/* Remove a running device: a UUID, or the BDF of a vendor-VFIO VF. 1 removed, -ENOENT absent. */
int vgpu_mdev_remove(const char *uuid_or_bdf, struct vgpu_error *err);

/* Persistent definitions. define: 1 written, 0 identical exists, -EEXIST differs. */
int vgpu_mdev_define(struct vgpu_mdev_spec *spec, struct vgpu_error *err);
int vgpu_mdev_undefine(const char *uuid, struct vgpu_error *err);
/* undefine: the definition on parent (NULL: the only one; -EEXIST naming them when the UUID is
 * defined on several parents, which mdevctl allows). 1 removed, -ENOENT none there. */
int vgpu_mdev_undefine_on(const char *uuid, const char *parent, struct vgpu_error *err);
/* start a defined device (0 when already running as defined); stop one (0 when not running) */
int vgpu_mdev_start(const char *uuid, struct vgpu_error *err);
int vgpu_mdev_stop(const char *uuid, struct vgpu_error *err);

/*
 * Every definition in the store, sorted by parent then UUID. Corrupt or foreign files are
 * skipped; each is described in *ret_warnings (one line each, "PATH: reason"), never fatal.
 */
int vgpu_mdev_definitions(struct vgpu_mdev_spec **ret, size_t *ret_n, char **ret_warnings,
                          struct vgpu_error *err);
void vgpu_mdev_specs_free(struct vgpu_mdev_spec *specs, size_t n);

enum {
        VGPU_VFS_BIND_VFIO = 1 << 0, /* bind the new VFs to vfio-pci (driver_override) */
};

/* Set the number of enabled VFs of a PF. 1 changed, 0 already so. */
int vgpu_sriov_set_vfs(const char *bdf, unsigned n, unsigned flags, struct vgpu_error *err);

/* A version-4 UUID from the kernel's random pool. */
int vgpu_uuid_generate(char ret[VGPU_UUID_MAX]);
bool vgpu_uuid_valid(const char *s);

#ifdef __cplusplus
}
#endif
