/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * tar.h — a minimal gzip-compressed POSIX tar (pax) writer for the support bundle.
 *
 * Why not libarchive: linking it pulls libxml2 and ICU into every vgpuctl process, which cost
 * ~2 ms of start-up per command — a fifth of `list`'s budget — for a feature one command uses.
 * Writing regular files, directories and symlinks with pax headers for long names is small.
 *
 * zlib, which compresses the stream, is loaded with dlopen() by the first tar_open_fd(): only
 * `vgpuctl report` writes one, and a NEEDed zlib was mapped by every command at start
 * (basic/dlopen-util.h). It is a dependency of the package all the same (debian/control).
 */
#pragma once

#include <stddef.h>
#include <sys/types.h>
#include <time.h>

#include "basic/dlopen-util.h"

struct tar;

/* zlib as loaded (tests point .soname at a missing one before the first use). */
extern struct dlopen_library tar_zlib_library;

/* Start a gzip-compressed tar stream on fd (not closed by tar_close). NULL on failure, with err
 * filled: -EOPNOTSUPP naming zlib1g where zlib is not installed, -ENOMEM or -errno otherwise. */
struct tar *tar_open_fd(int fd, struct vgpu_error *err);
/* Entries: type is 'f' (regular), 'd' (directory) or 'l' (symlink to target). 0 or -errno. */
int tar_add(struct tar *t, const char *path, char type, mode_t mode, time_t mtime, const void *data,
            size_t size, const char *target);
/* Write the end-of-archive blocks and flush. 0 or -errno. Frees t either way. */
int tar_close(struct tar *t);
