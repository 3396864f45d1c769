/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * report.h — a support bundle: what vgpuctl reads on this host, packed so that unpacking it
 * gives a tree that VGPU_ROOT can point at. A real host's report becomes a test fixture as it
 * is: the sysfs subtrees of every GPU (and of its IOMMU group, SR-IOV functions, mdev types and
 * instances), the relevant modules, cmdline, kernel release, firmware flags, and NVML readings
 * in the NVML test double's nvml.conf format.
 */
#pragma once

#include <stddef.h>

#include "vgpu/error.h"
#include "vgpu/host.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Extra files the caller adds (e.g. "vgpuctl/doctor.json"), stored under the given name. */
struct vgpu_report_extra {
        const char *name;
        const char *data;
        size_t size;
};

/*
 * Write a gzip-compressed tarball to path (written to a temporary file beside it and renamed
 * into place, so a failed report never leaves half a file). host must have been scanned with
 * VGPU_SCAN_ALL. Returns the number of entries written, or -errno.
 */
int vgpu_report_write(const struct vgpu_host *host, const char *path, const struct vgpu_report_extra *extras,
                      size_t n_extras, struct vgpu_error *err);

#ifdef __cplusplus
}
#endif
