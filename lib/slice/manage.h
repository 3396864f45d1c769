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

#define VGPU_SLICE_RECORD_DIR VGPU_SLICE_RECORDS

/* vgpu_slice_create()/vgpu_slice_destroy() with the host lock held by the caller. */
int slice_create_locked(const struct vgpu_slice_request *req, struct vgpu_error *err);
int slice_destroy_locked(const char *name, struct vgpu_error *err);

/* records.c: one slice's record (req->gpu normalized), written atomically; removed (absent: 0). */
int slice_record_write(const struct vgpu_slice_request *req);
int slice_record_remove(const char *name);
bool slice_record_exists(const char *name);
/* Every record, as slice statuses without usage (name order); unreadable ones are skipped with
 * their problem in *ret_bad (may be NULL), never fatal to the others. */
int slice_records_read(struct vgpu_slice_status **ret, size_t *ret_n, char **ret_bad, struct vgpu_error *err);

/* manage.c: the region of a GPU, by PCI address, and the GPUs that have one. */
void region_path(const char *bdf, char *buf, size_t size);
/* A region found in the directory: 1 opened, 0 none of ours, -ENOMEM with err set. */
int open_listed_region(const char *bdf, struct vgpu_slice_region **ret, struct vgpu_error *err);
int region_gpus(char (**ret)[VGPU_BDF_MAX], size_t *ret_n);

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
