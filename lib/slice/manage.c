/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * manage.c — slices as an admin sees them (vgpu/slice.h): per slice its own region file and per
 * GPU a scheduler file (regions.c), and the CDI spec (cdi.c) that hands each container its
 * slice's region and its GPU's scheduler only, regenerated from the regions after every change
 * so it can never list a slice that does not exist; and the records (records.c) that bring the
 * slices back after a reboot, and rebuild a GPU's regions that someone damaged.
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
#include "basic/macro.h"
#include "basic/root.h"
#include "basic/sysfs.h"
#include "manage.h"
#include "slice.h"
#include "vgpu/host.h"
#include "vgpu/slice.h"

/* Rebuild damaged regions (of bdf only, when not NULL) from the records; the CDI spec follows. */
static int repair_locked(const char *bdf, struct vgpu_error *err) {
        int r = slice_repair_locked(bdf, err);
        return r > 0 ? write_cdi(err) : r;
}

static bool same_slice(const struct slice *s, const struct slice_params *p) {
        return s->quota == p->quota && s->policy == p->policy && s->scrub == p->scrub &&
               (p->policy != SLICE_POLICY_FIXED_SHARE || s->weight == p->weight);
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

int slice_create_locked(const struct vgpu_slice_spec *spec, struct vgpu_error *err) {
        /* what the record keeps: the spec with its defaults resolved */
        struct vgpu_slice_spec rec;
        int r = slice_spec_resolve(spec, &rec, err);
        if (r < 0)
                return r;
        const char *bdf = rec.gpu;
        struct slice_params p;
        slice_spec_params(&rec, &p);

        /* the GPU must be an NVIDIA GPU here; its memory bounds the quota */
        struct vgpu_host *host;
        if ((r = vgpu_host_scan(VGPU_SCAN_NVML, &host, err)) < 0)
                return r;
        const struct vgpu_gpu *g = vgpu_host_find_gpu(host, bdf);
        uint64_t total = g && g->nvml ? g->nvml->memory_total : 0;
        if (!g || g->vendor_id != 0x10de || g->physfn[0])
                r = vgpu_error_set(err, -ENODEV, "%s: no NVIDIA GPU (physical function) at this address",
                                   bdf);
        else if (slice_gpu_refusal(g))
                r = vgpu_error_set(err, -EBUSY, "%s: slice %s cannot be created: %s", bdf, rec.name,
                                   slice_gpu_refusal(g));
        else if (total && rec.memory > total)
                r = vgpu_error_set(err, -ENOSPC, "%s has %llu MiB of memory; a %llu MiB quota cannot be met",
                                   bdf, (unsigned long long) (total >> 20),
                                   (unsigned long long) (rec.memory >> 20));
        vgpu_host_free(host);
        if (r < 0)
                return r;

        /* damaged regions of this GPU are rebuilt from the records before anything is looked up */
        if ((r = repair_locked(bdf, err)) < 0)
                return r;
        /* the scheduler of an older release was world-writable */
        char sched[128], full[4096];
        sched_path(bdf, sched, sizeof(sched));
        if (root_path(full, sizeof(full), sched) >= 0 && chmod(full, VGPU_SLICE_REGION_MODE) < 0 &&
            errno != ENOENT)
                return vgpu_error_set_errno(err, -errno, "%s: cannot restrict the slice scheduler to root",
                                            full);

        struct slice_file existing;
        struct vgpu_error why = {};
        r = slice_read(rec.name, &existing, &why);
        if (r >= 0) {
                /* a name is host-wide */
                if (!streq(existing.gpu_bdf, bdf))
                        return vgpu_error_set(err, -EEXIST, "slice %s already exists on %s", rec.name,
                                              existing.gpu_bdf);
                if (!same_slice(&existing.slice, &p))
                        return vgpu_error_set(err, -EEXIST,
                                              "slice %s exists on %s with other settings; remove it first",
                                              rec.name, bdf);
                /* the slice is there; its record may predate records (or have been lost) */
                r = slice_record_write(&rec);
                return r < 0 ? vgpu_error_set_errno(err, r, "recording slice %s in %s%s", rec.name,
                                                    root_prefix(), VGPU_SLICE_RECORD_DIR)
                             : 0;
        }
        if (r != -ENOENT)
                return vgpu_error_set(err, r, "%s", why.message);

        /* the quotas of a GPU's slices together within its memory, as apply's plan demands: else
         * `export` would write a host.yaml that `apply` refuses */
        struct vgpu_slice_status *all = NULL;
        size_t n_all = 0;
        if ((r = vgpu_slice_list(&all, &n_all, err)) < 0)
                return r;
        uint64_t quotas = rec.memory;
        for (size_t i = 0; i < n_all; i++)
                if (strcmp(all[i].spec.name, rec.name) != 0 && strcmp(all[i].spec.gpu, bdf) == 0)
                        quotas += all[i].spec.memory;
        free(all);
        if (total && quotas > total)
                return vgpu_error_set(err, -ENOSPC,
                                      "%s has %llu MiB of memory; with slice %s the quotas of its slices add "
                                      "up to %llu MiB",
                                      bdf, (unsigned long long) (total >> 20), rec.name,
                                      (unsigned long long) (quotas >> 20));

        bool recorded = slice_record_exists(rec.name); /* a restore: the record stays */
        if ((r = slice_region_add(bdf, &p, err)) < 0)
                return r;
        /* unrecorded, a slice would not come back after a reboot: then it is not made at all */
        struct slice_file made;
        bool have_made = slice_read(rec.name, &made, &why) >= 0;
        if ((r = slice_record_write(&rec)) < 0) {
                (void) slice_region_remove(rec.name, have_made ? &made : NULL);
                return vgpu_error_set_errno(err, r, "recording slice %s in %s%s (the slice was not created)",
                                            rec.name, root_prefix(), VGPU_SLICE_RECORD_DIR);
        }
        /* nor is one the CDI spec does not list: no container could get it, and creating it again
         * would find it made and leave the spec as it is */
        if ((r = write_cdi(err)) < 0) {
                (void) slice_region_remove(rec.name, have_made ? &made : NULL);
                if (!recorded)
                        (void) slice_record_remove(rec.name);
                return r;
        }
        return 1;
}

_public_ int vgpu_slice_create(const struct vgpu_slice_spec *spec, struct vgpu_error *err) {
        int lock = lock_host(30000);
        if (lock < 0)
                return vgpu_error_set_errno(err, lock, "taking the lock %s/run/vgpuctl/lock", root_prefix());
        int r = slice_create_locked(spec, err);
        unlock_host(lock);
        return r;
}

int slice_destroy_locked(const char *name, struct vgpu_error *err) {
        if (!slice_name_is_valid(name))
                return vgpu_error_set(err, -ENOENT, "no slice named %s", strempty(name));
        struct slice_file f;
        struct vgpu_error why = {};
        int r = slice_read(name, &f, &why);
        if (r == -ENOENT)
                return vgpu_error_set(err, -ENOENT, "no slice named %s", name);
        /* a damaged region is removed all the same: that is one way out of it */
        bool readable = r >= 0;
        if (readable) {
                slice_reclaim_dead(&f.slice); /* in the copy */
                unsigned n = slice_count_procs(&f.slice);
                if (n > 0)
                        return vgpu_error_set(err, -EBUSY, "slice %s: %u process(es) still use it", name, n);
        }
        /* the CDI spec without the slice first: what needs memory fails before anything changed */
        _cleanup_free_ char *cdi = NULL;
        size_t cdi_size = 0;
        if ((r = cdi_text(name, &cdi, &cdi_size, err)) < 0)
                return r;
        if ((r = slice_region_remove(name, readable ? &f : NULL)) < 0)
                return vgpu_error_set_errno(err, r, "removing the region of slice %s", name);
        if ((r = slice_record_remove(name)) < 0)
                return vgpu_error_set_errno(err, r, "slice %s was removed, but not its record in %s%s", name,
                                            root_prefix(), VGPU_SLICE_RECORD_DIR);
        return (r = cdi_write(cdi, cdi_size, err)) < 0 ? r : 1;
}

_public_ int vgpu_slice_destroy(const char *name, struct vgpu_error *err) {
        int lock = lock_host(30000);
        if (lock < 0)
                return vgpu_error_set_errno(err, lock, "taking the lock %s/run/vgpuctl/lock", root_prefix());
        int r = slice_destroy_locked(name, err);
        unlock_host(lock);
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
        int lock = lock_host(30000);
        if (lock < 0)
                return vgpu_error_set_errno(err, lock, "taking the lock %s/run/vgpuctl/lock", root_prefix());
        int r = restore_locked(ret_restored, err);
        unlock_host(lock);
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
                switch (toupper((unsigned char) *end)) {
                case 'K':
                        mult = 1ULL << 10;
                        break;
                case 'M':
                        mult = 1ULL << 20;
                        break;
                case 'G':
                        mult = 1ULL << 30;
                        break;
                case 'T':
                        mult = 1ULL << 40;
                        break;
                default:
                        return -EINVAL;
                }
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
