/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * doctor.h — checks of every prerequisite and common fault of GPU virtualization, each a pure
 * function of the host snapshot plus a few extra reads (cmdline, firmware tables, modules).
 *
 * A check has a stable id ("iommu.cmdline"), and yields one result per subject: the host, or
 * each GPU for per-GPU checks. Each result says what was found (summary), what was read to
 * decide (evidence: paths and values) and what to do (remedy: exact commands or settings).
 */
#pragma once

#include <stddef.h>

#include "vgpu/error.h"
#include "vgpu/host.h"
#include "vgpu/cleanup.h"

#ifdef __cplusplus
extern "C" {
#endif

enum vgpu_check_status {
        VGPU_CHECK_PASS,
        VGPU_CHECK_WARN,
        VGPU_CHECK_FAIL,
        VGPU_CHECK_SKIP, /* does not apply to this host, or its source is absent */
};

struct vgpu_check_result {
        const char *id; /* static: "iommu.enabled" */
        char *subject;  /* BDF for per-GPU checks, NULL for host-wide ones */
        enum vgpu_check_status status;
        char *summary;  /* one line */
        char *evidence; /* what was read, "path: value" lines joined by "\n" */
        char *remedy;   /* NULL when status is pass or skip */
};

struct vgpu_doctor_report {
        struct vgpu_check_result *results;
        size_t n_results;
};

/* Run every check on host (scanned with VGPU_SCAN_ALL). */
int vgpu_doctor_run(const struct vgpu_host *host, struct vgpu_doctor_report **ret, struct vgpu_error *err);
void vgpu_doctor_report_free(struct vgpu_doctor_report *report);
VGPU_DEFINE_FREEP(struct vgpu_doctor_report, vgpu_doctor_report_free)

/* "pass", "warn", "fail", "skip". */
const char *vgpu_check_status_to_string(enum vgpu_check_status s);

/* The ids of all checks, in the order they run, NULL-terminated. */
const char *const *vgpu_doctor_check_ids(void);

#ifdef __cplusplus
}
#endif
