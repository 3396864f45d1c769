/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * lock.h — the host-change lock (/run/vgpuctl/lock under the root): every change to the host
 * (instances, VFs, slices, apply) is made holding it, so two vgpuctl processes, or vgpuctl and
 * vgpud, never interleave their steps. It is an flock(), released by the kernel when the holder
 * dies; the holder writes its PID into the file so that a waiter can say who it waited for.
 */
#pragma once

#include "vgpu/error.h"

#define HOST_LOCK_PATH       "/run/vgpuctl/lock"
/* How long a change waits for another one: an apply of hundreds of vGPUs takes seconds. */
#define HOST_LOCK_TIMEOUT_MS 30000

/* Take the lock, waiting up to HOST_LOCK_TIMEOUT_MS. Returns the fd that holds it (close it, or
 * host_lock_release() it, to let go; _cleanup_close_ works), or -errno with err saying which lock
 * and, when another process holds it (-EBUSY), its PID. */
int host_lock_take(struct vgpu_error *err);
/* The same, waiting up to timeout_ms (the tests wait less). */
int host_lock_take_timeout(int timeout_ms, struct vgpu_error *err);
/* Let go of a lock host_lock_take() returned (a negative fd is ignored). */
void host_lock_release(int fd);
