/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * doctor.c — the doctor's runner: the table of checks, running them in order over the host
 * snapshot, and the public report API of vgpu/doctor.h. The checks themselves live in
 * checks-*.c, one concern per file; adding a check is adding one line here.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "basic/error-util.h"
#include "basic/macro.h"
#include "doctor-internal.h"

/* One line per check, in the order they run. Ids are stable: scripts and tests outside the
 * project match on them. HOST checks run once, GPU checks once per physical GPU. */
#define DOCTOR_CHECKS(HOST, GPU)                               \
        HOST("privileges", check_privileges)                   \
        HOST("kernel.version", check_kernel_version)           \
        HOST("kernel.headers", check_kernel_headers)           \
        HOST("tools.present", check_tools_present)             \
        HOST("kvm.available", check_kvm_available)             \
        HOST("iommu.enabled", check_iommu_enabled)             \
        HOST("iommu.cmdline", check_iommu_cmdline)             \
        GPU("iommu.group_viable", check_iommu_group_viable)    \
        GPU("sriov.capable", check_sriov_capable)              \
        GPU("bar.above4g", check_bar_above4g)                  \
        GPU("pcie.link", check_pcie_link)                      \
        GPU("pcie.slot_power", check_pcie_slot_power)          \
        HOST("secureboot.modules", check_secureboot_modules)   \
        HOST("driver.kernel_match", check_driver_kernel_match) \
        GPU("driver.loaded", check_driver_loaded)              \
        GPU("mdev.types", check_mdev_types)                    \
        HOST("gpu.models_mixed", check_gpu_models_mixed)       \
        GPU("nvidia.persistence", check_nvidia_persistence)    \
        HOST("nvidia.vgpu_mgr", check_nvidia_vgpu_mgr)         \
        HOST("nvidia.guest_driver", check_nvidia_guest_driver) \
        HOST("amd.gim", check_amd_gim)                         \
        GPU("thermal.margin", check_thermal_margin)            \
        HOST("network.vdi_link", check_vdi_network)

#define HOST_ENTRY(id, fn) { id, .host = fn },
#define GPU_ENTRY(id, fn)  { id, .gpu = fn },
#define ID_ENTRY(id, fn)   id,

const struct doctor_check doctor_checks[] = { DOCTOR_CHECKS(HOST_ENTRY, GPU_ENTRY) };
const size_t doctor_n_checks = ELEMENTSOF(doctor_checks);

_public_ const char *const *vgpu_doctor_check_ids(void) {
        static const char *const ids[] = { DOCTOR_CHECKS(ID_ENTRY, ID_ENTRY) NULL };
        return ids;
}

_public_ const char *vgpu_check_status_to_string(enum vgpu_check_status s) {
        switch (s) {
        case VGPU_CHECK_PASS:
                return "pass";
        case VGPU_CHECK_WARN:
                return "warn";
        case VGPU_CHECK_FAIL:
                return "fail";
        case VGPU_CHECK_SKIP:
                return "skip";
        }
        return NULL;
}

static void results_free(struct vgpu_check_result *results, size_t n) {
        for (size_t i = 0; i < n; i++) {
                free(results[i].subject);
                free(results[i].summary);
                free(results[i].evidence);
                free(results[i].remedy);
        }
        free(results);
}

_public_ void vgpu_doctor_report_free(struct vgpu_doctor_report *report) {
        if (!report)
                return;
        results_free(report->results, report->n_results);
        free(report);
}

static int run_gpu_check(struct doctor *d, const struct doctor_check *c) {
        bool any = false;
        for (size_t i = 0; i < d->host->n_gpus; i++) {
                const struct vgpu_gpu *g = &d->host->gpus[i];
                if (!doctor_is_gpu(g))
                        continue;
                any = true;
                int r = c->gpu(d, g);
                if (r < 0)
                        return r;
        }
        if (any)
                return 0;
        _cleanup_text_ struct text ev = {};
        text_line(&ev, "/sys/bus/pci/devices: no NVIDIA, AMD or Intel display function");
        return doctor_add(d, NULL, VGPU_CHECK_SKIP, &ev, NULL, "no GPU");
}

_public_ int vgpu_doctor_run(const struct vgpu_host *host, struct vgpu_doctor_report **ret,
                             struct vgpu_error *err) {
        if (!host || !ret)
                return vgpu_error_set(err, -EINVAL, "doctor: no host snapshot");

        struct doctor d = { .host = host };
        int r = 0;
        for (size_t i = 0; r >= 0 && i < doctor_n_checks; i++) {
                const struct doctor_check *c = &doctor_checks[i];
                d.check_id = c->id;
                r = c->host ? c->host(&d) : run_gpu_check(&d, c);
        }
        doctor_pci_done(&d);

        struct vgpu_doctor_report *report = r >= 0 ? calloc(1, sizeof(*report)) : NULL;
        if (!report) {
                results_free(d.results, d.n_results);
                return vgpu_error_set_errno(err, r < 0 ? r : -ENOMEM, "doctor");
        }
        report->results = d.results;
        report->n_results = d.n_results;
        *ret = report;
        return 0;
}
