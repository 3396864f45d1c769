/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * exec-slice.c — the slice actions of a plan (apply's, and the one-action plans of `vgpuctl
 * slice create|remove`), for the executor in exec.c. A slice is three things written one after
 * the other: its region (and its slot in the GPU's scheduler), its record and the CDI spec. Each
 * step done is noted, so the executor's undo takes back exactly what was done, whether a later
 * action failed or this one stopped half-way (a slice without its record would not come back
 * after a reboot; one the CDI spec does not list no container could get).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "basic/error-util.h"
#include "basic/macro.h"
#include "basic/root.h"
#include "plan-internal.h"
#include "slice/manage.h"

enum {
        STEP_REGION = 1 << 0,     /* the region made (create) or removed (remove) */
        STEP_RECORD = 1 << 1,     /* the record written or removed... */
        STEP_HAD_RECORD = 1 << 2, /* ...replacing the one in *old_record */
        STEP_CDI = 1 << 3,        /* the CDI spec rewritten */
};

static bool same_slice(const struct slice *s, const struct slice_params *p) {
        return s->quota == p->quota && s->policy == p->policy && s->scrub == p->scrub &&
               (p->policy != SLICE_POLICY_FIXED_SHARE || s->weight == p->weight);
}

/* The record is written or removed after its old text was kept. */
static int record_step(const struct vgpu_slice_spec *s, bool write, unsigned *steps, char **old_record,
                       struct vgpu_error *err) {
        int r = slice_record_text(s->name, old_record);
        if (r < 0)
                return vgpu_error_set_errno(err, r, "reading the record of slice %s in %s%s", s->name,
                                            root_prefix(), VGPU_SLICE_RECORD_DIR);
        if (*old_record)
                *steps |= STEP_HAD_RECORD;
        r = write ? slice_record_write(s) : slice_record_remove(s->name);
        if (r < 0)
                return vgpu_error_set_errno(err, r, "%s slice %s in %s%s",
                                            write ? "recording" : "removing the record of", s->name,
                                            root_prefix(), VGPU_SLICE_RECORD_DIR);
        *steps |= STEP_RECORD;
        return 0;
}

static int create(const struct vgpu_slice_spec *spec, unsigned *steps, char **old_record,
                  struct vgpu_error *err) {
        struct vgpu_slice_spec s;
        struct slice_params p;
        int r = slice_spec_resolve(spec, &s, err);
        if (r < 0 || (r = slice_prepare_gpu_locked(s.gpu, err)) < 0)
                return r;
        slice_spec_params(&s, &p);
        /* the region may be there as asked: rebuilt from its record just now */
        struct slice_file f;
        struct vgpu_error why = {};
        r = slice_read(s.name, &f, &why);
        if (r >= 0 && !(streq(f.gpu_bdf, s.gpu) && same_slice(&f.slice, &p)))
                return vgpu_error_set(err, -EEXIST, "slice %s exists on %s with other settings", s.name,
                                      f.gpu_bdf);
        if (r < 0 && r != -ENOENT)
                return vgpu_error_set(err, r, "%s", why.message);
        if (r == -ENOENT) {
                if ((r = slice_region_add(s.gpu, &p, err)) < 0)
                        return r;
                *steps |= STEP_REGION;
        }
        if ((r = record_step(&s, true, steps, old_record, err)) < 0 || (r = write_cdi(err)) < 0)
                return r;
        *steps |= STEP_CDI;
        return 1;
}

static int destroy(const struct vgpu_slice_spec *spec, unsigned *steps, char **old_record,
                   struct vgpu_error *err) {
        struct slice_file f;
        struct vgpu_error why = {};
        int r = slice_read(spec->name, &f, &why);
        if (r == -ENOENT)
                return vgpu_error_set(err, -ENOENT, "no slice named %s", spec->name);
        /* processes may have come since the plan was made: the lock does not keep them out */
        bool readable = r >= 0;
        if (readable) {
                slice_reclaim_dead(&f.slice); /* in the copy */
                unsigned n = slice_count_procs(&f.slice);
                if (n > 0)
                        return vgpu_error_set(err, -EBUSY, "slice %s: %u process(es) still use it",
                                              spec->name, n);
        }
        /* the CDI spec without the slice first: what needs memory fails before anything changed */
        _cleanup_free_ char *cdi = NULL;
        size_t cdi_size = 0;
        if ((r = cdi_text(spec->name, &cdi, &cdi_size, err)) < 0)
                return r;
        if ((r = slice_region_remove(spec->name, readable ? &f : NULL)) < 0)
                return vgpu_error_set_errno(err, r, "removing the region of slice %s", spec->name);
        *steps |= STEP_REGION;
        if ((r = record_step(spec, false, steps, old_record, err)) < 0 ||
            (r = cdi_write(cdi, cdi_size, err)) < 0)
                return r;
        *steps |= STEP_CDI;
        return 1;
}

int plan_slice_do(const struct vgpu_action *a, unsigned *steps, char **old_record, struct vgpu_error *err) {
        *steps = 0;
        *old_record = NULL;
        switch (a->kind) {
        case VGPU_ACTION_SLICE_CREATE:
                return create(&a->slice, steps, old_record, err);
        case VGPU_ACTION_SLICE_REMOVE:
                return destroy(&a->slice, steps, old_record, err);
        default:
                return vgpu_error_set(err, -EINVAL, "not a slice action");
        }
}

/* Undo backwards: the record as it was, the region as it was, then the CDI spec from the regions. */
int plan_slice_undo(const struct vgpu_action *a, unsigned steps, const char *old_record) {
        const struct vgpu_slice_spec *s = &a->slice;
        struct vgpu_error ignore = {};
        int r = 0, q;
        if (steps & STEP_RECORD) {
                q = steps & STEP_HAD_RECORD ? slice_record_put(s->name, old_record)
                                            : slice_record_remove(s->name);
                r = r < 0 ? r : q;
        }
        if ((steps & STEP_REGION) && a->kind == VGPU_ACTION_SLICE_CREATE) {
                struct slice_file f;
                bool readable = slice_read(s->name, &f, &ignore) >= 0;
                q = slice_region_remove(s->name, readable ? &f : NULL);
                r = r < 0 ? r : q;
        } else if (steps & STEP_REGION) {
                /* a removed slice had no process: made again as it was, it loses nothing but its
                 * usage counters (one whose region was unreadable cannot be: its settings are unknown) */
                struct vgpu_slice_spec spec;
                struct slice_params p;
                q = slice_spec_resolve(s, &spec, &ignore);
                if (q >= 0) {
                        slice_spec_params(&spec, &p);
                        q = slice_region_add(spec.gpu, &p, &ignore);
                }
                r = r < 0 ? r : q;
        }
        if (steps & STEP_CDI) {
                q = write_cdi(&ignore);
                r = r < 0 ? r : q;
        }
        return r;
}
