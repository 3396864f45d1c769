/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * type-pick.c — a vGPU type by size (`vgpuctl create --framebuffer 4G`, host.yaml's device
 * `framebuffer:`): an admin knows how much memory a VM needs, not which of the parent's dozens of
 * type ids gives it.
 *
 * The pick is the smallest frame buffer that gives at least the size asked for, so nothing larger
 * than needed is taken from the GPU. Several types share a size (NVIDIA's -4Q, -4A, -4C, -4B):
 * one that already runs on the parent wins (so applying the same file again keeps what runs
 * instead of replacing it by another type of that size), then the one the driver lists first,
 * which is the order `vgpuctl types` shows. A type whose frame buffer is unknown is never picked:
 * nothing says it fits.
 */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "basic/error-util.h"
#include "basic/macro.h"
#include "host-internal.h"
#include "vgpu/host.h"

static bool runs_here(const struct vgpu_host *host, const struct vgpu_parent *p, const char *type) {
        for (size_t i = 0; host && i < host->n_instances; i++)
                if (host->instances[i].parent && streq(host->instances[i].parent, p->name) &&
                    host->instances[i].type && streq(host->instances[i].type, type))
                        return true;
        return false;
}

int type_pick_by_framebuffer(const struct vgpu_host *host, struct vgpu_parent *p, uint64_t bytes,
                             const struct vgpu_type **ret, struct vgpu_error *err) {
        int r = host_parent_read_types(host, p, err);
        if (r < 0)
                return r;
        const struct vgpu_type *best = NULL, *largest = NULL;
        bool best_runs = false;
        for (size_t i = 0; i < p->n_types; i++) {
                const struct vgpu_type *t = &p->types[i];
                if (t->framebuffer_bytes < 0)
                        continue;
                if (!largest || t->framebuffer_bytes > largest->framebuffer_bytes)
                        largest = t;
                if ((uint64_t) t->framebuffer_bytes < bytes)
                        continue;
                bool runs = runs_here(host, p, t->id);
                if (!best || t->framebuffer_bytes < best->framebuffer_bytes ||
                    (t->framebuffer_bytes == best->framebuffer_bytes && runs && !best_runs))
                        best = t, best_runs = runs;
        }
        if (best) {
                *ret = best;
                return 0;
        }
        if (!largest)
                return vgpu_error_set(
                        err, -ENOENT,
                        "%s: no type with a known frame buffer size to pick from (see 'vgpuctl types %s'; "
                        "name one with --type)",
                        p->name, p->name);
        return vgpu_error_set(
                err, -ENOSPC,
                "%s: no type gives %" PRIu64 " MiB of frame buffer; the largest is %s (%s%s%" PRId64 " MiB)",
                p->name, (uint64_t) ((bytes + (1ULL << 20) - 1) >> 20), largest->id, strempty(largest->name),
                largest->name ? ", " : "", largest->framebuffer_bytes >> 20);
}

_public_ int vgpu_parent_pick_type(const struct vgpu_host *host, const char *parent, uint64_t bytes,
                                   const struct vgpu_type **ret, struct vgpu_error *err) {
        struct vgpu_parent *p = (struct vgpu_parent *) vgpu_host_find_parent(host, parent);
        if (!p)
                return vgpu_error_set(err, -ENODEV, "%s: no vGPU parent of this name (see 'vgpuctl types')",
                                      parent);
        return type_pick_by_framebuffer(host, p, bytes, ret, err);
}
