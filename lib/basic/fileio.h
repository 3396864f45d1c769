/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fileio.h — writing state so that it survives crashes, and writing to sysfs.
 *
 * State files are never written in place: a temporary file beside the target is written,
 * fsync()ed and renamed over it, then the directory is fsync()ed, so a reader (or a reboot)
 * sees the old file or the new one, never half of either, written under the host lock
 * (lock.h).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Atomically replace path (under the root) with data; creates missing parent directories. */
int write_file_atomic(const char *path, const void *data, size_t size, mode_t mode);

/* Write a value to a sysfs attribute (under the root) with one write(2). 0 or -errno. */
int sysfs_write(const char *path, const char *value);

/*
 * Write value with one write(2) to the attribute rel (a relative path such as "remove" or
 * "nvidia/vgpu_params") of the directory dir (under the root). Only a regular file inside dir is
 * written: no component of rel may be a symbolic link (-ELOOP), "..", or empty (-EINVAL), and a
 * rel too long for a path is -ENAMETOOLONG. For names that come from users: sysfs links inside
 * a device's directory (mdev_type, driver) lead to other objects' files.
 */
int sysfs_write_beneath(const char *dir, const char *rel, const char *value);

/* The temporary files write_file_atomic() leaves when killed between writing and renaming are
 * "TARGET.XXXXXX" (mkostemp). mkstemp_suffix_ok: is s six such characters? remove_temps_at:
 * unlink the regular files of dirfd/subdir for which is_temp(name) holds; call it under the
 * lock, where no write of ours is in progress. Returns how many went, or -errno.
 * remove_temp_entry: the same for one name of dirfd already known to be a temporary file (a
 * walk of its own that meets it); true if it went. */
bool mkstemp_suffix_ok(const char *s);
int remove_temps_at(int dirfd, const char *subdir, bool (*is_temp)(const char *name));
bool remove_temp_entry(int dirfd, const char *name);

/* mkdir -p under the root. */
int mkdir_parents_root(const char *path, mode_t mode);
