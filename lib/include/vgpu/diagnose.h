/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * diagnose.h — why a VM with a vGPU did not start: the VFIO/mdev errors in its QEMU log
 * (libvirt's /var/log/libvirt/qemu/DOMAIN.log under VGPU_ROOT), each mapped to the doctor
 * check (vgpu/doctor.h) that looks at its cause and to a remedy.
 */
#pragma once

#include <stddef.h>

#include "vgpu/doctor.h"
#include "vgpu/error.h"
#include "vgpu/cleanup.h"

#ifdef __cplusplus
extern "C" {
#endif

struct vgpu_diag_finding {
        unsigned line;                   /* 1-based line in the log of the first occurrence */
        unsigned count;                  /* occurrences of the same kind, device and group */
        enum vgpu_check_status severity; /* VGPU_CHECK_FAIL (the device failed) or _WARN */
        const char *kind;                /* static: "vfio.group_not_viable", ... */
        const char *check;               /* static doctor check id, NULL where no check looks at it */
        char *device;                    /* the PCI address or mdev UUID the message names, or NULL */
        int group;                       /* the IOMMU group it names, -1 if none */
        char *message;                   /* QEMU's line, without its timestamp */
        char *remedy;
};

struct vgpu_diagnosis {
        char *domain;
        char *log;             /* the host path read */
        unsigned start_line;   /* the line of the last "starting up" header, 0 if none */
        char *started;         /* its timestamp as libvirt wrote it, NULL if none */
        char *shutdown_reason; /* "failed", "destroyed", ... after that start; NULL if none */
        struct vgpu_diag_finding *findings;
        size_t n_findings;
};

/*
 * Read domain's QEMU log and classify the VFIO/mdev errors of its last start (the lines after
 * the last libvirt "starting up" header; the whole file when there is none). -EINVAL for a
 * name that is not a file name, -ENOENT when there is no log.
 */
int vgpu_diagnose_domain(const char *domain, struct vgpu_diagnosis **ret, struct vgpu_error *err);
void vgpu_diagnosis_free(struct vgpu_diagnosis *d);
VGPU_DEFINE_FREEP(struct vgpu_diagnosis, vgpu_diagnosis_free)

#ifdef __cplusplus
}
#endif
