/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * manage.h — slice management inside libvgpu (not in the shim): the changes done under the
 * host lock the caller already holds (apply's plan executes them), and the records that make
 * slices survive a reboot.
 *
 * Every slice has a record, /var/lib/vgpuctl/slices/NAME.json, written when it is created and
 * removed with it, whichever way (vgpuctl slice, apply, the daemon): the regions live in /run and
 * a reboot loses them, the records do not. vgpu_slice_restore() (apply --restore, vgpud at start)
 * recreates every recorded slice that has no region.
 */
#pragma once

#include "slice.h"
#include "vgpu/host.h"
#include "vgpu/slice.h"

#define VGPU_SLICE_RECORD_DIR  VGPU_SLICE_RECORDS
/* Regions are root's alone: containers get theirs bind-mounted (CDI) and run as root there;
 * a host user who could open one could rewrite any slice's quota and usage, or truncate it
 * under its tenants. */
#define VGPU_SLICE_REGION_MODE 0600

/* Why slices cannot go on GPU g (an NVIDIA physical function), in words; NULL when they can.
 * A GPU that the vGPU manager drives (NVML virtualization mode host-vGPU or host-vSGA) runs no
 * host CUDA: the shim would intercept nothing and every container would fail to start. */
const char *slice_gpu_refusal(const struct vgpu_gpu *g);

/* vgpu_slice_create()/vgpu_slice_destroy() with the host lock held by the caller: a plan of one
 * action (lib/plan/slices.c) run by apply's executor, which undoes what it did on failure. */
int slice_create_locked(const struct vgpu_slice_spec *spec, struct vgpu_error *err);
int slice_destroy_locked(const char *name, struct vgpu_error *err);
/* Before a slice goes on GPU bdf: its damaged regions rebuilt from the records (the CDI spec
 * follows) and its scheduler restricted to root (an older release made it world-writable). */
int slice_prepare_gpu_locked(const char *bdf, struct vgpu_error *err);

/* records.c: one slice's record (a resolved spec: gpu normalized, policy and scrub set), written
 * atomically; removed (absent: 0). */
int slice_record_write(const struct vgpu_slice_spec *spec);
int slice_record_remove(const char *name);
/* A record's text as it is (NULL and 0 when there is none), and that text put back, to undo. */
int slice_record_text(const char *name, char **ret);
int slice_record_put(const char *name, const char *text);
bool slice_record_exists(const char *name);
/* Every record, as resolved specs (name order); unreadable ones are skipped with their problem
 * in *ret_bad (may be NULL), never fatal to the others. */
int slice_records_read(struct vgpu_slice_spec **ret, size_t *ret_n, char **ret_bad, struct vgpu_error *err);

/* regions.c: the files of VGPU_SLICE_DIR, read with pread() (never mapped) and checked. */
void sched_path(const char *bdf, char *buf, size_t size);  /* BDF.shm, without the root */
void slice_path(const char *name, char *buf, size_t size); /* NAME.slice, without the root */
int slice_read(const char *name, struct slice_file *ret, struct vgpu_error *err);
int slice_read_sched(const char *bdf, struct slice_shm *ret, struct vgpu_error *err);

struct slice_view {
        struct vgpu_slice_status *slices; /* the usable slices, by GPU then name */
        size_t n;
        char *problems;                 /* what is wrong, "; "-separated; NULL: nothing */
        char (*bad_gpus)[VGPU_BDF_MAX]; /* GPUs whose files are wrong */
        size_t n_bad, bad_allocated;
        char (*bad_names)[SLICE_NAME_MAX]; /* slice files that cannot be read */
        size_t n_bad_names, bad_names_allocated;
};
int slice_view_read(struct slice_view *ret, struct vgpu_error *err);
void slice_view_free(struct slice_view *v);

/* spec.c: a spec checked (name, GPU address, policy against share, ranges) with its defaults
 * resolved and its GPU normalized, as a record keeps it; 0 or -EINVAL with err set. */
int slice_spec_resolve(const struct vgpu_slice_spec *in, struct vgpu_slice_spec *ret, struct vgpu_error *err);
/* A resolved spec as the region's settings (p->name points into s). */
void slice_spec_params(const struct vgpu_slice_spec *s, struct slice_params *ret);
/* A region's numbers (slice_file_info()) as the API reports them. */
void slice_status_from_info(const struct slice_info *info, struct vgpu_slice_status *ret);
/* Add the slice to the GPU's scheduler (created if need be) and write its own region. */
int slice_region_add(const char *bdf, const struct slice_params *p, struct vgpu_error *err);
/* Remove its region, and its scheduler slot when f (its contents) is known. */
int slice_region_remove(const char *name, const struct slice_file *f);
/* Rebuild from the records every GPU (only only_bdf, when not NULL) whose files are wrong; an
 * unreadable slice file without a record is removed. The number of GPUs rebuilt. */
int slice_repair_locked(const char *only_bdf, struct vgpu_error *err);

/* cdi.c: the CDI spec for what the regions hold, leaving out the slice `without` (may be NULL),
 * built in memory (so a destroy can fail before it changed anything); written atomically. */
int cdi_text(const char *without, char **ret, size_t *ret_size, struct vgpu_error *err);
int cdi_write(const char *text, size_t size, struct vgpu_error *err);
int write_cdi(struct vgpu_error *err);

/* cdi-driver.c: the host driver's user-space libraries (libcuda.so.1, ...) that the host's
 * VGPU_ROOT/etc/ld.so.cache knows, each at the path the host's loader takes it from.
 * No cache or no driver: 0 and none. */
struct cdi_library {
        char soname[64];
        char host_path[512];
};
int cdi_driver_libraries(struct cdi_library **ret, size_t *ret_n);
