/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * root.h — where libvgpu finds the host. Every host path it touches (/sys, /proc, /etc, /run,
 * /var, ...) is prefixed with the environment variable VGPU_ROOT (unset or "/": the real root),
 * read on every call; tests point it at fixture trees. Programs that make host paths of their
 * own (a socket under /run, a token file under /etc) make them the same way with these.
 */
#pragma once

#include <stddef.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The prefix without a trailing slash: "" for the real root. Never NULL. */
const char *vgpu_root_prefix(void);

/* prefix + path (absolute) into buf. Returns 0, -EINVAL (path not absolute) or -ENAMETOOLONG. */
int vgpu_root_path(char *buf, size_t size, const char *path);

/* Read a small file under the root whole, with one read, trailing newline stripped. Returns its
 * length or -errno. */
int vgpu_root_read(const char *path, char *buf, size_t size);

/* mkdir -p path under the root, each directory made with mode. 0 or -errno. */
int vgpu_root_mkdir_parents(const char *path, mode_t mode);

#ifdef __cplusplus
}
#endif
