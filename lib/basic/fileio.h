/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fileio.h — writing state so that it survives crashes, and writing to sysfs.
 *
 * State files are never written in place: a temporary file beside the target is written,
 * fsync()ed and renamed over it, then the directory is fsync()ed, so a reader (or a reboot)
 * sees the old file or the new one, never half of either. Changes to the host happen under one
 * lock (/run/vgpuctl/lock), so two vgpuctl processes, or vgpuctl and the daemon, never
 * interleave their steps.
 */
#pragma once

#include <stddef.h>
#include <sys/types.h>

/* Atomically replace path (under the root) with data; creates missing parent directories. */
int write_file_atomic(const char *path, const void *data, size_t size, mode_t mode);

/* Write a value to a sysfs attribute (under the root) with one write(2). 0 or -errno. */
int sysfs_write(const char *path, const char *value);

/* mkdir -p under the root. */
int mkdir_parents_root(const char *path, mode_t mode);

/* Take the host-change lock; blocks up to timeout_ms (then -EBUSY). Returns an fd to pass to
 * unlock_host(), which closes it. The lock is released by the kernel if the process dies. */
int lock_host(int timeout_ms);
void unlock_host(int fd);
