/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * slice.h — software vGPU slices for containers, managed: a slice is a named tenant of one
 * physical GPU with a frame-buffer quota and a compute share under a scheduler policy, enforced
 * by libvgpu-cuda.so (LD_PRELOAD) in every process of the container through the slice's own
 * region, /run/vgpuctl/slices/NAME.slice, and its GPU's scheduler, /run/vgpuctl/slices/BDF.shm
 * (slice/slice-shm.h). Containers get a slice through a CDI spec,
 * /etc/cdi/vgpuctl.yaml (`podman run --device vgpuctl.io/slice=NAME`), rewritten on every change.
 * Every slice is recorded in VGPU_SLICE_RECORDS, so vgpu_slice_restore() brings it back after a
 * reboot empties /run.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vgpu/error.h"

#ifdef __cplusplus
extern "C" {
#endif

#define VGPU_SLICE_DIR     "/run/vgpuctl/slices"
#define VGPU_CDI_SPEC      "/etc/cdi/vgpuctl.yaml"
#define VGPU_SLICE_RECORDS "/var/lib/vgpuctl/slices"

struct vgpu_slice_request {
        const char *name;
        const char *gpu;    /* BDF of an NVIDIA GPU */
        uint64_t memory;    /* quota in bytes, 0 = unlimited */
        unsigned share;     /* fixed-share percent of GPU time, 0 = none */
        const char *policy; /* "best-effort" | "equal-share" | "fixed-share"; NULL: from share */
        const char *scrub;  /* "on-free" | "on-exit" | "off"; NULL: on-free */
};

struct vgpu_slice_status {
        char name[64];
        char gpu[16];
        char policy[16];
        char scrub[16];
        unsigned share;
        uint64_t memory, used, peak, oom_count;
        uint64_t gpu_time_ns;
        unsigned processes;
};

/* Create a slice (1), or find the identical one (0); a different one by that name: -EEXIST. */
int vgpu_slice_create(const struct vgpu_slice_request *req, struct vgpu_error *err);
/* Remove a slice; -EBUSY while processes use it, -ENOENT when there is none. */
int vgpu_slice_destroy(const char *name, struct vgpu_error *err);
/* Every slice on the host, by GPU then name; a region or slot that is corrupt (written by
 * someone else than vgpuctl) or of another layout version lists nothing. */
int vgpu_slice_list(struct vgpu_slice_status **ret, size_t *ret_n, struct vgpu_error *err);
/* vgpu_slice_list(), and -EBADMSG naming every corrupt or old-layout region and slot with the
 * reason; *ret and *ret_n are set then too (the usable slices). create and restore rebuild such a
 * region from the records. */
int vgpu_slice_check(struct vgpu_slice_status **ret, size_t *ret_n, struct vgpu_error *err);

/* A quota as people write it: "4G", "512M", "1.5G", "4GiB" (binary units) or a number of bytes.
 * 0 or -EINVAL / -ERANGE. */
int vgpu_slice_parse_memory(const char *s, uint64_t *ret);
/*
 * Recreate every recorded slice (/var/lib/vgpuctl/slices/NAME.json, written by every create and
 * removed by every remove) that has no region, as after a reboot: quota, share, policy and scrub
 * as recorded; the CDI spec follows. Returns the number restored (also in *ret_restored, which
 * may be NULL, and is set even on failure); a record that cannot be read or restored is an error
 * naming it, after the others were restored.
 */
int vgpu_slice_restore(unsigned *ret_restored, struct vgpu_error *err);

#ifdef __cplusplus
}
#endif
