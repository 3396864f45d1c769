/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* plan-internal.h — what plan.c (computing) and exec.c (executing, apply) share. */
#pragma once

#include "vgpu/apply.h"
#include "vgpu/host.h"

/* NVIDIA's scheduler knob lives in the nvidia module's options (RmPVMRL per device). */
#define NVIDIA_POLICY_FILE "/etc/modprobe.d/nvidia-vgpu-vgpuctl.conf"

/* host is not const: the types of the parents that get new instances are read on demand */
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

/* Is the VFIO group held open by a process (a VM)? Checked through /proc/PID/fd. */
bool vfio_group_in_use(int group);

/* policy.c: the scheduler policy actions (appended to plan) */
int plan_policy(const struct vgpu_host *host, const struct vgpu_config *cfg, struct vgpu_plan *plan,
                size_t *allocated, struct vgpu_error *err);
/* slices.c: the software slice actions (appended to plan), when the file has a 'slices' key */
int plan_slices(const struct vgpu_config *cfg, struct vgpu_plan *plan, size_t *allocated,
                struct vgpu_error *err);
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
bool persistenced_installed(void);
bool persistenced_enabled(void);
/* Enable (and on the real root start) nvidia-persistenced, or the reverse, with systemctl. */
int persistenced_set_enabled(bool enable, struct vgpu_error *err);
