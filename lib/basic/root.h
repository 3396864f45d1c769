/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * root.h — the one place where host paths are made.
 *
 * Every absolute host path libvgpu touches (/sys, /proc, /etc, /dev, /var, /run, /boot, /lib,
 * /usr) is prefixed with the environment variable VGPU_ROOT (default "/"). Tests point it at a
 * fixture tree; the rest of the code never knows. The variable is read on every call so a
 * process may switch roots (the unit tests do).
 */
#pragma once

#include <stddef.h>

/* The prefix without a trailing slash: "" for the real root. Never NULL. */
const char *root_prefix(void);

/* Write prefix + path (path must be absolute) to buf. Returns 0 or -ENAMETOOLONG / -EINVAL. */
int root_path(char *buf, size_t size, const char *path);

/* open(2) / opendir-style helpers on prefixed paths. Return an fd or -errno. */
int root_open(const char *path, int flags);
int root_open_dir(const char *path);

/* Does the prefixed path exist (following symlinks)? */
int root_access(const char *path, int mode);

/* Read a whole small file (one read, trailing newline stripped) under the root. Length or -errno. */
int root_read(const char *path, char *buf, size_t size);

/* The last max bytes of a log-like file under the root, NUL-terminated (*ret_start: its offset in
 * the file, so a caller can tell whether the first line is cut). 0; -ENOENT when it is absent or
 * unreadable, which for logs means "not kept here"; -ENOMEM. */
int root_read_tail(const char *path, size_t max, char **ret_buf, size_t *ret_len, size_t *ret_start);
