/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * manage.c — slices as an admin sees them (vgpu/slice.h): per slice its own region file and per
 * GPU a scheduler file (regions.c), and the CDI spec (cdi.c) that hands each container its
 * slice's region and its GPU's scheduler only, regenerated from the regions after every change
 * so it can never list a slice that does not exist; and the records (records.c) that bring the
 * slices back after a reboot, and rebuild a GPU's regions that someone damaged. Creating and
 * removing a slice are plans of one action (lib/plan/slices.c) run by apply's executor
 * (lib/plan/exec-slice.c), which undoes what it did on failure: this file takes the lock.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "basic/error-util.h"
#include "basic/fileio.h"
#include "basic/lock.h"
#include "basic/macro.h"
#include "basic/root.h"
#include "basic/size-util.h"
#include "basic/sysfs.h"
#include "manage.h"
#include "plan/plan-internal.h"
#include "slice.h"
#include "vgpu/host.h"
#include "vgpu/slice.h"

/* Rebuild damaged regions (of bdf only, when not NULL) from the records; the CDI spec follows. */
static int repair_locked(const char *bdf, struct vgpu_error *err) {
        int r = slice_repair_locked(bdf, err);
        return r > 0 ? write_cdi(err) : r;
}

/* nvml.h's nvmlGpuVirtualizationMode_t */
enum {
        NVML_GPU_VIRTUALIZATION_MODE_HOST_VGPU = 3,
        NVML_GPU_VIRTUALIZATION_MODE_HOST_VSGA = 4,
};

const char *slice_gpu_refusal(const struct vgpu_gpu *g) {
        int mode = g->nvml ? g->nvml->virtualization_mode : -1;
        if (mode == NVML_GPU_VIRTUALIZATION_MODE_HOST_VGPU)
                return "the GPU is in vGPU host mode (NVML virtualization mode 3): host CUDA cannot run "
                       "there; "
                       "slices need the plain NVIDIA driver, not the vGPU manager";
        if (mode == NVML_GPU_VIRTUALIZATION_MODE_HOST_VSGA)
                return "the GPU is in vSGA host mode (NVML virtualization mode 4): host CUDA cannot run "
                       "there; "
                       "slices need the plain NVIDIA driver";
        return NULL;
}

int slice_prepare_gpu_locked(const char *bdf, struct vgpu_error *err) {
        /* damaged regions of this GPU are rebuilt from the records before anything is looked up */
        int r = repair_locked(bdf, err);
        if (r < 0)
                return r;
        /* the scheduler of an older release was world-writable */
        char sched[128], full[4096];
        sched_path(bdf, sched, sizeof(sched));
        if (root_path(full, sizeof(full), sched) >= 0 && chmod(full, VGPU_SLICE_REGION_MODE) < 0 &&
            errno != ENOENT)
                return vgpu_error_set_errno(err, -errno, "%s: cannot restrict the slice scheduler to root",
                                            full);
        return 0;
}

/* A plan made under the lock, executed with apply's executor (which rolls back what it did):
 * 1 when it changed something, 0 when there was nothing to do. */
static int run_plan(struct vgpu_plan *plan, struct vgpu_error *err) {
        int r = plan->n_actions ? plan_execute(plan, NULL, err) : 0;
        vgpu_plan_free(plan);
        return r < 0 ? r : r > 0;
}

int slice_create_locked(const struct vgpu_slice_spec *spec, struct vgpu_error *err) {
        struct vgpu_slice_spec want;
        struct vgpu_plan *plan = NULL;
        int r = slice_spec_resolve(spec, &want, err);
        /* the planner sees the GPU's slices as the records have them (after a damage, a reboot) */
        if (r >= 0)
                r = slice_prepare_gpu_locked(want.gpu, err);
        if (r >= 0)
                r = plan_slice_create(&want, &plan, err);
        if (r < 0)
                return r;
        /* there as asked: its record may predate records (or have been lost) */
        if (plan->n_actions == 0 && !slice_record_exists(want.name) && (r = slice_record_write(&want)) < 0) {
                vgpu_plan_free(plan);
                return vgpu_error_set_errno(err, r, "recording slice %s in %s%s", want.name, root_prefix(),
                                            VGPU_SLICE_RECORD_DIR);
        }
        return run_plan(plan, err);
}

_public_ int vgpu_slice_create(const struct vgpu_slice_spec *spec, struct vgpu_error *err) {
        int lock = host_lock_take(err);
        if (lock < 0)
                return lock;
        int r = slice_create_locked(spec, err);
        host_lock_release(lock);
        return r;
}

int slice_destroy_locked(const char *name, struct vgpu_error *err) {
        struct vgpu_plan *plan = NULL;
        int r = plan_slice_destroy(name, &plan, err);
        return r < 0 ? r : run_plan(plan, err);
}

_public_ int vgpu_slice_destroy(const char *name, struct vgpu_error *err) {
        int lock = host_lock_take(err);
        if (lock < 0)
                return lock;
        int r = slice_destroy_locked(name, err);
        host_lock_release(lock);
        return r;
}

/* Records whose slice has no region (after a reboot: all) are created again, as recorded;
 * damaged regions are rebuilt from the records first. */
static int restore_locked(unsigned *ret_restored, struct vgpu_error *err) {
        struct vgpu_slice_spec *rec = NULL;
        struct vgpu_slice_status *live = NULL;
        size_t n_rec = 0, n_live = 0;
        _cleanup_free_ char *bad = NULL;
        int r = repair_locked(NULL, err);
        if (r >= 0)
                r = slice_records_read(&rec, &n_rec, &bad, err);
        if (r >= 0)
                r = vgpu_slice_list(&live, &n_live, err);
        unsigned restored = 0;
        int failed = 0; /* the first failure; the other slices are still restored */
        for (size_t i = 0; r >= 0 && i < n_rec; i++) {
                bool there = false;
                for (size_t j = 0; j < n_live && !there; j++)
                        there = strcmp(live[j].spec.name, rec[i].name) == 0;
                if (there)
                        continue;
                struct vgpu_error why = {};
                int q = slice_create_locked(&rec[i], &why);
                if (q < 0 && !failed)
                        failed = vgpu_error_set(err, q, "restoring slice %s from %s%s/%s.json: %s",
                                                rec[i].name, root_prefix(), VGPU_SLICE_RECORD_DIR,
                                                rec[i].name, why.message);
                restored += q >= 0;
        }
        if (r >= 0 && failed)
                r = failed;
        else if (r >= 0 && bad)
                r = vgpu_error_set(err, -EBADMSG, "%u slice%s restored, but %s", restored,
                                   restored == 1 ? "" : "s", bad);
        free(rec);
        free(live);
        if (ret_restored)
                *ret_restored = restored;
        return r < 0 ? r : (int) restored;
}

_public_ int vgpu_slice_restore(unsigned *ret_restored, struct vgpu_error *err) {
        int lock = host_lock_take(err);
        if (lock < 0)
                return lock;
        int r = restore_locked(ret_restored, err);
        host_lock_release(lock);
        return r;
}

_public_ int vgpu_slice_parse_memory(const char *s, uint64_t *ret) {
        char *end;
        if (!s || !isdigit((unsigned char) *s))
                return -EINVAL;
        errno = 0;
        double v = strtod(s, &end);
        if (errno || end == s || v < 0)
                return -EINVAL;
        uint64_t mult = 1;
        if (*end) {
                if (!(mult = size_unit_factor(*end)))
                        return -EINVAL;
                end++;
                if (*end && strcasecmp(end, "i") != 0 && strcasecmp(end, "b") != 0 &&
                    strcasecmp(end, "ib") != 0)
                        return -EINVAL;
        }
        if (v * (double) mult >= 18446744073709551616.0)
                return -ERANGE;
        *ret = (uint64_t) (v * (double) mult);
        return 0;
}

_public_ int vgpu_slice_list(struct vgpu_slice_status **ret, size_t *ret_n, struct vgpu_error *err) {
        struct slice_view v = {};
        int r = slice_view_read(&v, err);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(v.slices);
        *ret_n = v.n;
        slice_view_free(&v);
        return 0;
}

_public_ int vgpu_slice_check(struct vgpu_slice_status **ret, size_t *ret_n, struct vgpu_error *err) {
        struct slice_view v = {};
        int r = slice_view_read(&v, err);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(v.slices);
        *ret_n = v.n;
        if (v.problems)
                r = vgpu_error_set(
                        err, -EBADMSG,
                        "%s (`vgpuctl slice create` of a slice of that GPU or `vgpuctl apply --restore` "
                        "rebuilds it from the records in %s%s)",
                        v.problems, root_prefix(), VGPU_SLICE_RECORD_DIR);
        slice_view_free(&v);
        return r;
}
