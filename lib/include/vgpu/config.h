/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * config.h — the declarative host configuration, /etc/vgpuctl/host.yaml:
 *
 *     version: 1
 *     gpus:
 *       - bdf: "0000:41:00.0"          # select by one of: bdf, parent, pci-id ("10de:1eb8"), all: true
 *         vfs: 4                       # SR-IOV VFs to enable (PFs only)
 *         persistence: on              # NVIDIA: keep the driver loaded (nvidia-persistenced, NVML)
 *         policy: {scheduler: equal-share, timeslice-ms: 2, frame-rate-limit: off}
 *         devices:
 *           - type: nvidia-232
 *             count: 2
 *             uuids: [ "b1e5c3f2-..." ]        # optional: fixed UUIDs, at most count
 *             attrs: [ {nvidia/vgpu_params: "frame_rate_limiter=0"} ]
 *             auto-start: true                 # default true
 *     slices:                                  # software slices for containers (vgpu/slice.h)
 *       - name: alice
 *         gpu: "0000:3b:00.0"                  # an NVIDIA GPU (physical function)
 *         memory: 4G                           # quota (K, M, G, T: binary units); default unlimited
 *         share: 30%                           # fixed share of GPU time, 1-100 %
 *         policy: fixed-share                  # default: fixed-share with a share, else equal-share
 *         scrub: on-free                       # on-free (default), on-exit, off
 *
 * Only the parents a file selects are managed; everything else on the host is left alone.
 * Slices likewise: a file with a 'slices' key (even 'slices: []') manages every slice on the
 * host, removing those it does not list; a file without one leaves slices alone.
 * Every error names FILE:LINE:COLUMN and the field.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vgpu/error.h"
#include "vgpu/host.h"
#include "vgpu/lifecycle.h"
#include "vgpu/cleanup.h"
#include "vgpu/slice.h"

#ifdef __cplusplus
extern "C" {
#endif

enum vgpu_select_kind {
        VGPU_SELECT_BDF,    /* one PCI function */
        VGPU_SELECT_PARENT, /* a parent by name (BDF or "mbochs") */
        VGPU_SELECT_PCI_ID, /* every parent whose GPU has vendor:device */
        VGPU_SELECT_ALL,    /* every vGPU parent */
};

enum vgpu_scheduler {
        VGPU_SCHED_UNSET = 0,
        VGPU_SCHED_BEST_EFFORT,
        VGPU_SCHED_EQUAL_SHARE,
        VGPU_SCHED_FIXED_SHARE,
};

struct vgpu_config_policy {
        enum vgpu_scheduler scheduler;
        int timeslice_ms;     /* -1 unset; 1-30 */
        int frame_rate_limit; /* -1 unset, 0 off, 1 on */
};

struct vgpu_config_device {
        char *type;
        unsigned count;
        char (*uuids)[VGPU_UUID_MAX];
        size_t n_uuids;
        struct vgpu_mdev_attr *attrs;
        size_t n_attrs;
        bool auto_start;
        int line;
        bool persistent; /* false: running instances only, no definitions ('create' without --persist) */
        bool running;    /* false: definitions only ('vgpuctl define'), none started; needs every UUID */
        /* 'framebuffer: 4G' instead of 'type' (then type is NULL): the planner picks, per parent,
         * its smallest type with at least this many bytes (vgpu_parent_pick_type()); 0: not given */
        uint64_t framebuffer;
        int framebuffer_line, framebuffer_column;
};

struct vgpu_config_gpu {
        enum vgpu_select_kind select;
        char *value;     /* BDF, parent name, "10de:1eb8"; NULL for all */
        int vfs;         /* -1 unset */
        int persistence; /* -1 unset, 0 off, 1 on: NVIDIA persistence mode (driver stays loaded) */
        bool has_policy;
        struct vgpu_config_policy policy;
        struct vgpu_config_device *devices;
        size_t n_devices;
        int line;
};

struct vgpu_config_slice {
        struct vgpu_slice_spec spec; /* gpu normalized, policy and scrub resolved */
        int line, column;
};

struct vgpu_config {
        char *source; /* file name, for messages */
        struct vgpu_config_gpu *gpus;
        size_t n_gpus;
        bool has_slices; /* the file has a 'slices' key: it manages every slice */
        struct vgpu_config_slice *slices;
        size_t n_slices;
};

enum {
        VGPU_CONFIG_HOST_PATH = 1 << 0, /* path is a host path (under VGPU_ROOT), not the caller's */
};

/* The largest host.yaml, read from a file or sent to vgpud as a body: one limit, so a file
 * applies the same way with --direct or through the daemon. A real one is a few hundred KiB
 * (64 GPUs x 64 entries with every UUID listed is ~3 MiB). Larger: -EFBIG, nothing read past it. */
#define VGPU_CONFIG_SIZE_MAX      (16u << 20)
#define VGPU_CONFIG_SIZE_MAX_TEXT "16 MiB"

/* Read, parse and validate a whole file; *ret_text (may be NULL) receives its text, which
 * apply records as the state to restore. -ENOENT when the file does not exist. */
int vgpu_config_load(const char *path, unsigned flags, struct vgpu_config **ret, char **ret_text,
                     struct vgpu_error *err);
int vgpu_config_parse_text(const char *text, size_t size, const char *source, struct vgpu_config **ret,
                           struct vgpu_error *err);
void vgpu_config_free(struct vgpu_config *cfg);
VGPU_DEFINE_FREEP(struct vgpu_config, vgpu_config_free)

/* The host's current carve-up as a configuration file's text (what `vgpuctl export` prints). */
int vgpu_config_export(const struct vgpu_host *host, const struct vgpu_mdev_spec *defs, size_t n_defs,
                       char **ret, struct vgpu_error *err);
/* The same with the host's slices (vgpu_slice_list()) as a 'slices' list, always written
 * (an empty list included), so applying the export keeps exactly these slices. */
int vgpu_config_export_slices(const struct vgpu_host *host, const struct vgpu_mdev_spec *defs, size_t n_defs,
                              const struct vgpu_slice_status *slices, size_t n_slices, char **ret,
                              struct vgpu_error *err);

#ifdef __cplusplus
}
#endif
