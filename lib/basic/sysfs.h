/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * sysfs.h — reading kernel attributes.
 *
 * Attributes are read relative to an open directory (openat), with a single read(2): kernfs
 * produces an attribute's whole value in one call and may change it between two, and the
 * relative open skips resolving the long /sys/devices/... path for every file, which matters
 * when a host has ten thousand mdev types. Values have their trailing newline removed.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Read attribute `name` (relative to dirfd) into buf. Returns the length or -errno. */
int sysfs_read_at(int dirfd, const char *name, char *buf, size_t size);
/* Same, and *ret_full: the read filled buf (size - 1 bytes), so the file may hold more. */
int sysfs_read_at_full(int dirfd, const char *name, char *buf, size_t size, bool *ret_full);

/* Same, into a new string (attributes are at most a page). */
int sysfs_read_alloc_at(int dirfd, const char *name, char **ret);

/* Parse an unsigned number ("0x10de", "16", "-1" is refused). base 0 = C rules. */
int sysfs_read_u64_at(int dirfd, const char *name, int base, uint64_t *ret);

/* The same parse of a value already read (buf as sysfs_read_at() left it, len its result). */
int sysfs_parse_u64(const char *buf, int len, int base, uint64_t *ret);

/* Parse a signed decimal ("-1" for numa_node). */
int sysfs_read_int_at(int dirfd, const char *name, int *ret);

/* readlink(2) relative to dirfd; and the last component of the link target. */
int sysfs_readlink_at(int dirfd, const char *name, char *buf, size_t size);
int sysfs_link_basename_at(int dirfd, const char *name, char *buf, size_t size);

/* Does name exist relative to dirfd (without following a final symlink)? */
bool sysfs_exists_at(int dirfd, const char *name);

/* Names that go into sysfs and store paths, where they come from users (host.yaml, definition
 * files, the CLI, vgpud's API, whose callers need not be root): a single directory entry
 * (a parent device, a type: no '/', not "." or "..", printable), or a relative path below a
 * device (an mdev attribute such as "nvidia/vgpu_params": such entries joined by '/'). Anything
 * else could lead a write out of the device's directory, e.g. "../../../proc/sys/...". */
bool sysfs_name_ok(const char *name);
bool sysfs_rel_path_ok(const char *path);

/* Strip trailing whitespace in place; returns the new length. */
size_t strip_trailing_space(char *s, size_t len);
