/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * slice.h — software vGPU slices for containers, managed: a slice is a named tenant of one
 * physical GPU with a frame-buffer quota and a compute share under a scheduler policy, enforced
 * by libvgpu-cuda.so (LD_PRELOAD) in every process of the container through the slice's own
 * region, /run/vgpuctl/slices/NAME.slice, and its GPU's scheduler, /run/vgpuctl/slices/BDF.shm
 * (their layout is private to vgpuctl: lib/slice/slice-shm.h). Containers get a slice through
 * a CDI spec, /etc/cdi/vgpuctl.yaml (`podman run --device vgpuctl.io/slice=NAME`), rewritten on
 * every change. Every slice is recorded in VGPU_SLICE_RECORDS, so vgpu_slice_restore() brings it
 * back after a reboot empties /run.
 *
 * One model: struct vgpu_slice_spec says what a slice is (asked of vgpu_slice_create(), held by
 * host.yaml's 'slices' items, apply's slice actions and the records), struct vgpu_slice_usage what
 * its processes use; vgpu_slice_list() reports both.
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

/* Including the NUL; names are [A-Za-z0-9_.-], starting and ending with a letter or digit. */
#define VGPU_SLICE_NAME_MAX 64
#define VGPU_SLICE_GPU_MAX  16 /* a normalized BDF, DDDD:BB:DD.F, and its NUL */

/* How a slice's processes take turns on the GPU. 0 is "not said": a request without a policy
 * gets fixed-share when it has a share, else equal-share; a slice that exists always has one. */
enum vgpu_slice_policy {
        VGPU_SLICE_POLICY_DEFAULT = 0,
        VGPU_SLICE_POLICY_BEST_EFFORT, /* launches are never gated */
        VGPU_SLICE_POLICY_EQUAL_SHARE, /* active slices rotate; idle time goes to the active */
        VGPU_SLICE_POLICY_FIXED_SHARE, /* share % of GPU time, guaranteed and capped */
};

/* When the shim clears the device memory a slice's processes free. 0: on-free. */
enum vgpu_slice_scrub {
        VGPU_SLICE_SCRUB_DEFAULT = 0,
        VGPU_SLICE_SCRUB_ON_FREE, /* every allocation when freed, and what is left at exit */
        VGPU_SLICE_SCRUB_ON_EXIT, /* what is still allocated at exit / context teardown */
        VGPU_SLICE_SCRUB_OFF,
};

/* "best-effort", "equal-share", "fixed-share"; NULL for DEFAULT and values out of range. */
const char *vgpu_slice_policy_to_string(enum vgpu_slice_policy p);
/* The enum of such a name (never DEFAULT): 0, or -EINVAL for anything else (NULL included). */
int vgpu_slice_policy_from_string(const char *s, enum vgpu_slice_policy *ret);
/* "on-free", "on-exit", "off"; NULL for DEFAULT and values out of range. */
const char *vgpu_slice_scrub_to_string(enum vgpu_slice_scrub s);
int vgpu_slice_scrub_from_string(const char *s, enum vgpu_slice_scrub *ret);

/*
 * A slice's settings: what vgpu_slice_create() is asked for, what host.yaml's 'slices' items,
 * apply's slice actions and the records in VGPU_SLICE_RECORDS hold, and what vgpu_slice_list()
 * reports (there with policy and scrub resolved, never DEFAULT).
 */
struct vgpu_slice_spec {
        char name[VGPU_SLICE_NAME_MAX];
        char gpu[VGPU_SLICE_GPU_MAX]; /* BDF of an NVIDIA GPU (physical function) */
        uint64_t memory;              /* quota in bytes, 0 = unlimited */
        unsigned share;               /* fixed-share percent of GPU time, 0 = none */
        enum vgpu_slice_policy policy;
        enum vgpu_slice_scrub scrub;
};

/* A spec for name on gpu, everything else unset (to be filled in by the caller): 0, or
 * -EINVAL with err saying which of the two is not valid (gpu is normalized: "3b:00.0" works). */
int vgpu_slice_spec_init(struct vgpu_slice_spec *ret, const char *name, const char *gpu,
                         struct vgpu_error *err);

/* What a slice's processes use, as counted in its region. */
struct vgpu_slice_usage {
        uint64_t used;      /* bytes charged now */
        uint64_t peak;      /* most bytes charged at once */
        uint64_t oom_count; /* allocations refused for the quota */
        uint64_t gpu_time_ns;
        unsigned processes;
};

/* A slice that exists: its settings and its usage. */
struct vgpu_slice_status {
        struct vgpu_slice_spec spec;
        struct vgpu_slice_usage usage;
};

/* Create a slice (1), or find the identical one (0); a different one by that name: -EEXIST. */
int vgpu_slice_create(const struct vgpu_slice_spec *spec, struct vgpu_error *err);
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
