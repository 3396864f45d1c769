/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * report-internal.h — what the bundle's writer (report.c) and its diagnostic parts
 * (report-diag.c: logs, unit states, versions) share.
 */
#pragma once

#include <stddef.h>
#include <sys/types.h>
#include <time.h>

#include "vgpu/error.h"
#include "vgpu/host.h"

struct report {
        struct tar *tar;
        char **seen; /* paths already written (relative to the root) */
        size_t n_seen, allocated;
        int entries;
        time_t now;
        struct vgpu_error *err;
};

/* 1: rel is new and now recorded, 0: written already, -ENOMEM. */
int seen_add(struct report *r, const char *rel);
/* One archive entry ('f', 'd', 'l'); 0 or -errno with r->err set. */
int write_entry(struct report *r, const char *rel, char type, mode_t perm, const void *data, size_t size,
                const char *link_target);
/* One host file or symlink (absolute path, under the root), if it exists: its first 64 KiB. */
int add_path(struct report *r, const char *path);

/* report-diag.c: the journal of the vGPU units, their captured `systemctl show`, the kernel's
 * vfio/mdev/GPU messages, the QEMU logs of the domains holding vGPUs, driver versions. */
int report_add_diagnostics(struct report *r, const struct vgpu_host *host);
