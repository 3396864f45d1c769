/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* nvidia.h — what the NVIDIA backend's two files share: nvidia.c (types, instances, scheduler,
 * frame-rate limiter) registers the ops that nvidia-persistence.c (persistence mode) implements. */
#pragma once

#include "backend.h"

int nvidia_plan_persistence(struct backend_plan *ctx, const struct vgpu_config_gpu *cg,
                            const struct vgpu_gpu *gpu, void **state, struct vgpu_error *err);
int nvidia_plan_persistence_done(struct backend_plan *ctx, void *state, bool commit, struct vgpu_error *err);
int nvidia_run_action(const struct vgpu_action *a, char **ret_undo, struct vgpu_error *err);
int nvidia_undo_action(const struct vgpu_action *a, const char *undo);
