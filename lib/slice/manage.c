/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * manage.c — slices as an admin sees them (vgpu/slice.h): one region file per GPU, created on
 * the first slice, and the CDI spec (cdi.c) regenerated from the regions after every change so
 * it can never list a slice that does not exist; and the records (records.c) that bring the
 * slices back after a reboot, kept in step with the regions.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
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

void region_path(const char *bdf, char *buf, size_t size) {
        snprintf(buf, size, VGPU_SLICE_DIR "/%s.shm", bdf);
}

static int open_region(const char *bdf, struct vgpu_slice_region **ret, struct vgpu_error *err) {
        char path[128], full[4096];
        region_path(bdf, path, sizeof(path));
        int r = root_path(full, sizeof(full), path);
        return r < 0 ? vgpu_error_set(err, r, "%s: bad path", path) : vgpu_slice_region_open(full, ret, err);
}

/* A region found in the directory, when walking them all: 1 opened, 0 none of ours (a foreign
 * or broken file lists nothing), -ENOMEM with err set (skipping it would hide its slices). */
int open_listed_region(const char *bdf, struct vgpu_slice_region **ret, struct vgpu_error *err) {
        struct vgpu_error ignore = {};
        int r = open_region(bdf, ret, &ignore);
        if (r == -ENOMEM)
                return vgpu_error_set(err, r, "out of memory");
        return r >= 0;
}

/* The GPUs that have a slice region, from the directory. */
int region_gpus(char (**ret)[VGPU_BDF_MAX], size_t *ret_n) {
        char full[4096];
        int r = root_path(full, sizeof(full), VGPU_SLICE_DIR);
        if (r < 0)
                return r;
        DIR *d = opendir(full);
        *ret = NULL;
        *ret_n = 0;
        if (!d)
                return errno == ENOENT ? 0 : -errno;
        size_t allocated = 0;
        struct dirent *de;
        while ((de = readdir(d))) {
                size_t n = strlen(de->d_name);
                char bdf[VGPU_BDF_MAX];
                if (n < 5 || strcmp(de->d_name + n - 4, ".shm") != 0 || n - 4 >= sizeof(bdf))
                        continue;
                memcpy(bdf, de->d_name, n - 4);
                bdf[n - 4] = '\0';
                if (!GREEDY_REALLOC(*ret, allocated, *ret_n + 1)) {
                        closedir(d);
                        return -ENOMEM;
                }
                memcpy((*ret)[(*ret_n)++], bdf, sizeof(bdf));
        }
        closedir(d);
        return 0;
}

static int same_slice(const struct vgpu_slice_info *info, const struct vgpu_slice_params *p) {
        return info->quota == p->quota && info->policy == p->policy && info->scrub == p->scrub &&
               (p->policy != VGPU_SLICE_POLICY_FIXED_SHARE || info->weight == p->weight);
}

int slice_create_locked(const struct vgpu_slice_request *req, struct vgpu_error *err) {
        if (!req->name || !vgpu_slice_name_is_valid(req->name))
                return vgpu_error_set(err, -EINVAL, "'%s' is not a slice name (letters, digits, '_', '.', '-', starting and ending with a letter or digit; at most 63)",
                                      strempty(req->name));
        char bdf[VGPU_BDF_MAX];
        if (!req->gpu || vgpu_bdf_normalize(req->gpu, bdf) < 0)
                return vgpu_error_set(err, -EINVAL, "'%s' is not a PCI address", strempty(req->gpu));
        struct vgpu_slice_params p = { .name = req->name, .quota = req->memory, .weight = req->share };
        int v = req->policy ? vgpu_slice_policy_from_string(req->policy) :
                req->share ? VGPU_SLICE_POLICY_FIXED_SHARE : VGPU_SLICE_POLICY_EQUAL_SHARE;
        if (v < 0)
                return vgpu_error_set(err, -EINVAL, "policy '%s': expected best-effort, equal-share or fixed-share", req->policy);
        p.policy = (enum vgpu_slice_policy) v;
        if ((p.policy == VGPU_SLICE_POLICY_FIXED_SHARE) != (req->share > 0))
                return vgpu_error_set(err, -EINVAL, p.policy == VGPU_SLICE_POLICY_FIXED_SHARE ?
                                      "fixed-share needs --share PERCENT" : "--share goes with the fixed-share policy");
        if (req->share > 100)
                return vgpu_error_set(err, -EINVAL, "--share %u%%: at most 100%%", req->share);
        v = req->scrub ? vgpu_slice_scrub_from_string(req->scrub) : VGPU_SLICE_SCRUB_ON_FREE;
        if (v < 0)
                return vgpu_error_set(err, -EINVAL, "scrub '%s': expected on-free, on-exit or off", req->scrub);
        p.scrub = (enum vgpu_slice_scrub) v;

        /* the GPU must be an NVIDIA GPU here; its memory bounds the quota */
        struct vgpu_host *host;
        int r = vgpu_host_scan(VGPU_SCAN_NVML, &host, err);
        if (r < 0)
                return r;
        const struct vgpu_gpu *g = vgpu_host_find_gpu(host, bdf);
        uint64_t total = g && g->nvml ? g->nvml->memory_total : 0;
        if (!g || g->vendor_id != 0x10de || g->physfn[0])
                r = vgpu_error_set(err, -ENODEV, "%s: no NVIDIA GPU (physical function) at this address", bdf);
        else if (total && req->memory > total)
                r = vgpu_error_set(err, -ENOSPC, "%s has %llu MiB of memory; a %llu MiB quota cannot be met", bdf,
                                   (unsigned long long) (total >> 20), (unsigned long long) (req->memory >> 20));
        vgpu_host_free(host);
        if (r < 0)
                return r;

        /* find the slice anywhere first: a name is host-wide */
        struct vgpu_slice_status *all = NULL;
        size_t n_all = 0;
        if ((r = vgpu_slice_list(&all, &n_all, err)) < 0)
                return r;
        /* the quotas of a GPU's slices together within its memory, as apply's plan demands: else
         * `export` would write a host.yaml that `apply` refuses */
        uint64_t quotas = req->memory;
        for (size_t i = 0; i < n_all && r == 0; i++) {
                if (strcmp(all[i].name, req->name) == 0 && strcmp(all[i].gpu, bdf) != 0)
                        r = vgpu_error_set(err, -EEXIST, "slice %s already exists on %s", req->name, all[i].gpu);
                else if (strcmp(all[i].name, req->name) != 0 && strcmp(all[i].gpu, bdf) == 0)
                        quotas += all[i].memory;
        }
        if (r == 0 && total && quotas > total)
                r = vgpu_error_set(err, -ENOSPC, "%s has %llu MiB of memory; with slice %s the quotas of its slices add up to %llu MiB",
                                   bdf, (unsigned long long) (total >> 20), req->name, (unsigned long long) (quotas >> 20));
        free(all);
        if (r < 0)
                return r;

        char path[128], full[4096];
        region_path(bdf, path, sizeof(path));
        if ((r = mkdir_parents_root(VGPU_SLICE_DIR, 0755)) < 0 || (r = root_path(full, sizeof(full), path)) < 0)
                return vgpu_error_set_errno(err, r, "%s%s", root_prefix(), VGPU_SLICE_DIR);
        _cleanup_slice_region_ struct vgpu_slice_region *reg = NULL;
        r = vgpu_slice_region_open(full, &reg, err);
        if (r == -ENOENT) {
                struct vgpu_slice_gpu_params gp = { .bdf = bdf, .memory = total };
                /* readable and writable by the containers' processes, which charge it */
                r = vgpu_slice_region_create(full, &gp, 0666, &reg, err);
        }
        if (r < 0)
                return r;
        /* what the record keeps: the request with its defaults resolved */
        struct vgpu_slice_request rec = {
                .name = req->name, .gpu = bdf, .memory = req->memory, .share = req->share,
                .policy = vgpu_slice_policy_to_string(p.policy), .scrub = vgpu_slice_scrub_to_string(p.scrub),
        };
        int idx = vgpu_slice_find(vgpu_slice_region_shm(reg), req->name);
        if (idx >= 0) {
                struct vgpu_slice_info info;
                if (vgpu_slice_get_info(reg, (unsigned) idx, &info) != 0 || !same_slice(&info, &p))
                        return vgpu_error_set(err, -EEXIST, "slice %s exists on %s with other settings; remove it first", req->name, bdf);
                /* the slice is there; its record may predate records (or have been lost) */
                r = slice_record_write(&rec);
                return r < 0 ? vgpu_error_set_errno(err, r, "recording slice %s in %s%s", req->name, root_prefix(), VGPU_SLICE_RECORD_DIR) : 0;
        }
        bool recorded = slice_record_exists(req->name);        /* a restore: the record stays */
        unsigned index;
        if ((r = vgpu_slice_add(reg, &p, &index, err)) < 0)
                return r;
        /* unrecorded, a slice would not come back after a reboot: then it is not made at all */
        if ((r = slice_record_write(&rec)) < 0) {
                struct vgpu_error ignore = {};
                (void) vgpu_slice_remove(reg, req->name, &ignore);
                return vgpu_error_set_errno(err, r, "recording slice %s in %s%s (the slice was not created)", req->name, root_prefix(),
                                            VGPU_SLICE_RECORD_DIR);
        }
        /* nor is one the CDI spec does not list: no container could get it, and creating it again
         * would find it made and leave the spec as it is */
        if ((r = write_cdi(err)) < 0) {
                struct vgpu_error ignore = {};
                (void) vgpu_slice_remove(reg, req->name, &ignore);
                if (!recorded)
                        (void) slice_record_remove(req->name);
                return r;
        }
        return 1;
}

_public_ int vgpu_slice_create(const struct vgpu_slice_request *req, struct vgpu_error *err) {
        int lock = lock_host(30000);
        if (lock < 0)
                return vgpu_error_set_errno(err, lock, "taking the lock %s/run/vgpuctl/lock", root_prefix());
        int r = slice_create_locked(req, err);
        unlock_host(lock);
        return r;
}

int slice_destroy_locked(const char *name, struct vgpu_error *err) {
        _cleanup_free_ char (*gpus)[VGPU_BDF_MAX] = NULL;
        size_t n = 0;
        int r = region_gpus(&gpus, &n);
        if (r < 0)
                return vgpu_error_set_errno(err, r, "listing %s%s", root_prefix(), VGPU_SLICE_DIR);
        /* the CDI spec without the slice first: what needs memory fails before anything changed */
        _cleanup_free_ char *cdi = NULL;
        size_t cdi_size = 0;
        if ((r = cdi_text(name, &cdi, &cdi_size, err)) < 0)
                return r;
        bool found = false;
        for (size_t g = 0; r >= 0 && g < n && !found; g++) {
                _cleanup_slice_region_ struct vgpu_slice_region *reg = NULL;
                int q = open_listed_region(gpus[g], &reg, err);
                if (q < 0)
                        return q;
                if (q == 0 || vgpu_slice_find(vgpu_slice_region_shm(reg), name) < 0)
                        continue;
                found = true;
                r = vgpu_slice_remove(reg, name, err);
        }
        if (r >= 0 && !found)
                r = vgpu_error_set(err, -ENOENT, "no slice named %s", name);
        if (r >= 0 && (r = slice_record_remove(name)) < 0)
                r = vgpu_error_set_errno(err, r, "slice %s was removed, but not its record in %s%s", name, root_prefix(), VGPU_SLICE_RECORD_DIR);
        if (r >= 0 && (r = cdi_write(cdi, cdi_size, err)) >= 0)
                r = 1;
        return r;
}

_public_ int vgpu_slice_destroy(const char *name, struct vgpu_error *err) {
        int lock = lock_host(30000);
        if (lock < 0)
                return vgpu_error_set_errno(err, lock, "taking the lock %s/run/vgpuctl/lock", root_prefix());
        int r = slice_destroy_locked(name, err);
        unlock_host(lock);
        return r;
}

/* Records whose slice has no region (after a reboot: all) are created again, as recorded. */
static int restore_locked(unsigned *ret_restored, struct vgpu_error *err) {
        struct vgpu_slice_status *rec = NULL, *live = NULL;
        size_t n_rec = 0, n_live = 0;
        _cleanup_free_ char *bad = NULL;
        int r = slice_records_read(&rec, &n_rec, &bad, err);
        if (r >= 0)
                r = vgpu_slice_list(&live, &n_live, err);
        unsigned restored = 0;
        int failed = 0;         /* the first failure; the other slices are still restored */
        for (size_t i = 0; r >= 0 && i < n_rec; i++) {
                bool there = false;
                for (size_t j = 0; j < n_live && !there; j++)
                        there = strcmp(live[j].name, rec[i].name) == 0;
                if (there)
                        continue;
                struct vgpu_slice_request req = {
                        .name = rec[i].name, .gpu = rec[i].gpu, .memory = rec[i].memory, .share = rec[i].share,
                        .policy = rec[i].policy, .scrub = rec[i].scrub,
                };
                struct vgpu_error why = {};
                int q = slice_create_locked(&req, &why);
                if (q < 0 && !failed)
                        failed = vgpu_error_set(err, q, "restoring slice %s from %s%s/%s.json: %s", rec[i].name, root_prefix(),
                                                VGPU_SLICE_RECORD_DIR, rec[i].name, why.message);
                restored += q >= 0;
        }
        if (r >= 0 && failed)
                r = failed;
        else if (r >= 0 && bad)
                r = vgpu_error_set(err, -EBADMSG, "%u slice%s restored, but %s", restored, restored == 1 ? "" : "s", bad);
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

static int cmp_status(const void *a, const void *b) {
        const struct vgpu_slice_status *x = a, *y = b;
        int c = strcmp(x->gpu, y->gpu);
        return c ? c : strcmp(x->name, y->name);
}

/* Binary units, as GPU memory is counted; one parser for `slice create --memory` and host.yaml. */
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
                case 'K': mult = 1ULL << 10; break;
                case 'M': mult = 1ULL << 20; break;
                case 'G': mult = 1ULL << 30; break;
                case 'T': mult = 1ULL << 40; break;
                default: return -EINVAL;
                }
                end++;
                if (*end && strcasecmp(end, "i") != 0 && strcasecmp(end, "b") != 0 && strcasecmp(end, "ib") != 0)
                        return -EINVAL;
        }
        if (v * (double) mult >= 18446744073709551616.0)
                return -ERANGE;
        *ret = (uint64_t) (v * (double) mult);
        return 0;
}

_public_ int vgpu_slice_list(struct vgpu_slice_status **ret, size_t *ret_n, struct vgpu_error *err) {
        _cleanup_free_ char (*gpus)[VGPU_BDF_MAX] = NULL;
        size_t n_gpus = 0, n = 0, allocated = 0;
        int r = region_gpus(&gpus, &n_gpus);
        if (r < 0)
                return vgpu_error_set_errno(err, r, "listing %s%s", root_prefix(), VGPU_SLICE_DIR);
        struct vgpu_slice_status *out = NULL;
        for (size_t g = 0; g < n_gpus; g++) {
                _cleanup_slice_region_ struct vgpu_slice_region *reg = NULL;
                r = open_listed_region(gpus[g], &reg, err);
                if (r < 0) {
                        free(out);
                        return r;
                }
                if (r == 0)
                        continue;
                for (unsigned i = 0; i < VGPU_SLICE_MAX; i++) {
                        struct vgpu_slice_info info;
                        if (vgpu_slice_get_info(reg, i, &info) < 0)
                                continue;
                        if (!GREEDY_REALLOC(out, allocated, n + 1)) {
                                free(out);
                                return vgpu_error_set(err, -ENOMEM, "out of memory");
                        }
                        struct vgpu_slice_status *s = &out[n++];
                        *s = (struct vgpu_slice_status) {
                                .share = info.policy == VGPU_SLICE_POLICY_FIXED_SHARE ? info.weight : 0,
                                .memory = info.quota, .used = info.used, .peak = info.peak, .oom_count = info.oom_count,
                                .gpu_time_ns = info.gpu_ns, .processes = info.processes,
                        };
                        snprintf(s->name, sizeof(s->name), "%s", info.name);
                        snprintf(s->gpu, sizeof(s->gpu), "%s", gpus[g]);
                        snprintf(s->policy, sizeof(s->policy), "%s", vgpu_slice_policy_to_string(info.policy));
                        snprintf(s->scrub, sizeof(s->scrub), "%s", vgpu_slice_scrub_to_string(info.scrub));
                }
        }
        qsort_safe(out, n, sizeof(*out), cmp_status);
        *ret = out;
        *ret_n = n;
        return 0;
}
