/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* store.h — mdevctl's store (/etc/mdevctl.d/PARENT/UUID: its format, reads and atomic writes), the
 * VF count of a PF, and the host lock: what remains of the lifecycle now that creating and
 * removing are plans (lib/plan/instance.c). */
#pragma once

#include "vgpu/lifecycle.h"

#define MDEVCTL_STORE "/etc/mdevctl.d"

int store_parse(const char *text, const char *parent, const char *uuid, struct vgpu_mdev_spec *ret,
                const char **why);
char *store_format(const struct vgpu_mdev_spec *spec);
int store_write(const struct vgpu_mdev_spec *spec);
int store_remove(const char *parent, const char *uuid);
/* A definition file's text, regular files only, at most STORE_FILE_MAX bytes, never blocking
 * (a FIFO): the length, or -errno with *why saying what is wrong. */
#define STORE_FILE_MAX 65535
int store_read_at(int dirfd, const char *path, char *buf, size_t size, const char **why);
/* The same for a file whose type a directory listing gave (d_type, DT_UNKNOWN if not): a regular
 * file is read without an fstat, one of another type not opened. */
int store_read_typed_at(int dirfd, const char *path, unsigned char d_type, char *buf, size_t size,
                        const char **why);
/* Remove the temporary files of definition writes that were killed (under the lock). */
int store_remove_temps(void);
/* vgpu_mdev_definitions(); with STORE_REMOVE_TEMPS (under the lock) it also removes what
 * store_remove_temps() would, in the same walk of the store's directories. */
enum { STORE_REMOVE_TEMPS = 1 << 0 };
int store_definitions(struct vgpu_mdev_spec **ret, size_t *ret_n, char **ret_warnings, unsigned flags,
                      struct vgpu_error *err);

/* For the executor: the lock every change takes (and the clean-up after a killed change that
 * comes with it), and a PF's VF count (under it). With LOCK_STORE_TEMPS_LATER the store's
 * temporary files are left to the caller, who reads the store next with STORE_REMOVE_TEMPS. */
enum { LOCK_STORE_TEMPS_LATER = 1 << 0 };
int lifecycle_lock(struct vgpu_error *err);
int lifecycle_lock_flags(unsigned flags, struct vgpu_error *err);
int lifecycle_set_vfs(const char *bdf, unsigned n, unsigned flags, struct vgpu_error *err);
