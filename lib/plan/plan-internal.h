/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* plan-internal.h — what plan.c (computing) and exec.c (executing, apply) share. */
#pragma once

#include "vgpu/apply.h"
#include "vgpu/host.h"

/*
 * What the planner reads: the snapshot it is given (taken under the lock, by scan_and_plan or
 * instance.c), and nothing of the host again, except where the snapshot loads lazily, once:
 * a parent's types are read the first time the plan creates on it (host_parent_read_types
 * remembers which, so a no-op apply on a large host reads none). Beside the snapshot it
 * reads only what it would write, to leave out what is already so (module options files, xe's
 * profile attributes, the store's definitions passed in) and, for what it would remove, whether
 * a VM holds the VFIO group (/proc). Hence host is not const.
 */
int plan_compute(struct vgpu_host *host, const struct vgpu_mdev_spec *defs, size_t n_defs,
                 const struct vgpu_config *cfg, unsigned flags, struct vgpu_plan **ret,
                 struct vgpu_error *err);
/* The same, limited to the parents named in only[] (NULL: all) and the VF counts they need;
 * entries for parents that are not there are skipped, not refused; no policy actions. */
int plan_compute_only(struct vgpu_host *host, const struct vgpu_mdev_spec *defs, size_t n_defs,
                      const struct vgpu_config *cfg, const char *const *only, size_t n_only, unsigned flags,
                      struct vgpu_plan **ret, struct vgpu_error *err);

/* Execute in order; on failure undo what was done, backwards. Returns actions done or -errno. */
int plan_execute(struct vgpu_plan *plan, const struct vgpu_progress *progress, struct vgpu_error *err);
/* The same for one request's plan (instance.c): a failure is told in the failed action's own words,
 * not as "step N of M". */
int plan_execute_request(struct vgpu_plan *plan, struct vgpu_error *err);

/* The refusal of a type parent p does not offer, in the words apply and create share; where is
 * what to say first ("t.yaml:4: ", or ""). */
int plan_refuse_type(struct vgpu_error *err, const char *where, const struct vgpu_parent *p,
                     const char *type);

/* instance.c: the plan of one request (create, define, start, stop, remove) on host, with the
 * definitions of mdevctl's store (defs, sorted as vgpu_mdev_definitions gives them). The plan
 * may be empty: the request is already met. */
int plan_instance_create(const struct vgpu_host *host, const struct vgpu_mdev_spec *defs, size_t n_defs,
                         struct vgpu_mdev_spec *spec, unsigned flags, struct vgpu_plan **ret,
                         struct vgpu_error *err);
int plan_instance_define(const struct vgpu_host *host, const struct vgpu_mdev_spec *defs, size_t n_defs,
                         const struct vgpu_mdev_spec *spec, struct vgpu_plan **ret, struct vgpu_error *err);
int plan_instance_remove(const struct vgpu_host *host, const char *uuid_or_bdf, bool idempotent,
                         struct vgpu_plan **ret, struct vgpu_error *err);

/* Is the VFIO group held open by a process (a VM)? Checked through /proc/PID/fd. */
bool vfio_group_in_use(int group);

/* policy.c: the scheduler policy actions (appended to plan) */
int plan_policy(const struct vgpu_host *host, const struct vgpu_config *cfg, struct vgpu_plan *plan,
                size_t *allocated, struct vgpu_error *err);
/* slices.c: the software slice actions (appended to plan), when the file has a 'slices' key; the
 * GPUs' memory from host's NVML readings (VGPU_SCAN_NVML) */
int plan_slices(const struct vgpu_host *host, const struct vgpu_config *cfg, struct vgpu_plan *plan,
                size_t *allocated, struct vgpu_error *err);
/* The plan of `vgpuctl slice create` (one SLICE_CREATE, or none when the slice exists as asked;
 * -EEXIST when it exists otherwise) and of `slice remove` (one SLICE_REMOVE), checked with the
 * same words as apply's. */
int plan_slice_create(const struct vgpu_slice_spec *spec, struct vgpu_plan **ret, struct vgpu_error *err);
int plan_slice_destroy(const char *name, struct vgpu_plan **ret, struct vgpu_error *err);
/* exec-slice.c: a slice action done step by step, *steps saying which (and *old_record the
 * record it replaced), so that plan_slice_undo() takes back exactly those: after a later action
 * failed, or after this one failed half-way. */
int plan_slice_do(const struct vgpu_action *a, unsigned *steps, char **old_record, struct vgpu_error *err);
int plan_slice_undo(const struct vgpu_action *a, unsigned steps, const char *old_record);
/* persistence.c: host.yaml's persistence per GPU (appended to plan; limited to only[] when given) */
int plan_persistence(const struct vgpu_host *host, const struct vgpu_config *cfg, const char *const *only,
                     size_t n_only, struct vgpu_plan *plan, size_t *allocated, struct vgpu_error *err);

/* What a backend planning for the planner is given (lib/backend/backend.h's backend_plan_*()). */
struct backend_plan {
        const struct vgpu_config *cfg;
        struct vgpu_plan *plan;
        size_t *allocated;
};
