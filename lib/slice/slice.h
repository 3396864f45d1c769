/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * slice.h — the operations on a GPU's slice region (vgpu/slice-shm.h): creating and mapping it,
 * adding and removing slices, charging memory, reclaiming dead processes' charges and the
 * scheduler's turn transitions.
 *
 * Used by libvgpu (for vgpuctl slice / vgpud) and compiled into libvgpu-cuda.so as well, so these
 * files depend on libc only (and basic/error-util.c for the management calls). The runtime calls
 * (charge, reclaim, scheduler) return 0 or -errno and never allocate: they run inside other
 * people's processes, in CUDA calls.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "basic/macro.h"
#include "vgpu/error.h"
#include "vgpu/slice-shm.h"

static inline uint64_t vgpu_now_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * UINT64_C(1000000000) + (uint64_t) ts.tv_nsec;
}

/* ---- region: slice-region.c ---- */

struct vgpu_slice_region;       /* a mapping of one region file */

struct vgpu_slice_gpu_params {
        const char *bdf;                /* may be NULL */
        const char *uuid;               /* may be NULL */
        uint64_t memory;                /* physical bytes, 0 unknown */
        uint64_t quantum_ns;            /* 0: VGPU_SLICE_QUANTUM_DEFAULT_NS */
};

struct vgpu_slice_params {
        const char *name;
        uint64_t quota;                 /* bytes, 0 = unlimited */
        enum vgpu_slice_policy policy;
        unsigned weight;                /* fixed-share percent */
        enum vgpu_slice_scrub scrub;
        uint32_t flags;
        uint64_t granularity;
        uint64_t proc_overhead;
};

/* A copy of a slice's numbers, for listing (dead processes' charges reclaimed first). */
struct vgpu_slice_info {
        unsigned index;
        char name[VGPU_SLICE_NAME_MAX];
        enum vgpu_slice_policy policy;
        enum vgpu_slice_scrub scrub;
        unsigned weight;
        uint64_t quota, used, peak, oom_count;
        uint64_t gpu_ns, turns;
        unsigned processes;
};

/* Create the region file at path (O_EXCL: -EEXIST if there is one) with mode, initialized. */
int vgpu_slice_region_create(const char *path, const struct vgpu_slice_gpu_params *gpu, mode_t mode,
                             struct vgpu_slice_region **ret, struct vgpu_error *err);
/* Map an existing region; -EPROTO for a foreign or other-version layout. */
int vgpu_slice_region_open(const char *path, struct vgpu_slice_region **ret, struct vgpu_error *err);
struct vgpu_slice_region *vgpu_slice_region_close(struct vgpu_slice_region *r);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct vgpu_slice_region *, vgpu_slice_region_close);
#define _cleanup_slice_region_ _cleanup_(vgpu_slice_region_closep)

struct vgpu_slice_shm *vgpu_slice_region_shm(const struct vgpu_slice_region *r);

/* Add a slice; -EEXIST for a name in use, -ENOSPC when all VGPU_SLICE_MAX are taken. */
int vgpu_slice_add(struct vgpu_slice_region *r, const struct vgpu_slice_params *p, unsigned *ret_index,
                   struct vgpu_error *err);
/* Remove a slice; -EBUSY while live processes are attached to it. */
int vgpu_slice_remove(struct vgpu_slice_region *r, const char *name, struct vgpu_error *err);
/* Index of the active slice called name, or -ENOENT. */
int vgpu_slice_find(const struct vgpu_slice_shm *shm, const char *name);
int vgpu_slice_get_info(struct vgpu_slice_region *r, unsigned index, struct vgpu_slice_info *ret);

const char *vgpu_slice_policy_to_string(enum vgpu_slice_policy p);
int vgpu_slice_policy_from_string(const char *s);      /* enum value or -EINVAL */
const char *vgpu_slice_scrub_to_string(enum vgpu_slice_scrub s);
int vgpu_slice_scrub_from_string(const char *s);        /* "on-free", "on-exit", "off" */
bool vgpu_slice_name_is_valid(const char *name);

/* ---- charges: slice-charge.c ---- */

/* Is the process (pid, start_time) still running? Zombies count as dead (their GPU memory is gone). */
bool vgpu_proc_alive(pid_t pid, uint64_t start_time);
/* Start time (clock ticks since boot) of pid, from /proc/PID/stat; 0 on failure. */
uint64_t vgpu_proc_start_time(pid_t pid);
/* Inode of this process's pid namespace, 0 when unknown. */
uint64_t vgpu_proc_pidns(void);

/* Claim a slot for the calling process (charging proc_overhead); -ENOSPC table full, -EDQUOT over quota. */
int vgpu_slice_attach(struct vgpu_slice *s, struct vgpu_slice_proc **ret);
/* Return the slot's remaining charge and free it. */
void vgpu_slice_detach(struct vgpu_slice *s, struct vgpu_slice_proc *p);
/* Round bytes up to the slice's charging granularity. */
uint64_t vgpu_slice_round(const struct vgpu_slice *s, uint64_t bytes);
/* Reserve bytes (already rounded) against the quota: 0 or -EDQUOT. Never exceeds the quota. */
int vgpu_slice_charge(struct vgpu_slice *s, struct vgpu_slice_proc *p, uint64_t bytes);
void vgpu_slice_uncharge(struct vgpu_slice *s, struct vgpu_slice_proc *p, uint64_t bytes);
/* Return the charges of dead processes of this pid namespace. Count of slots reclaimed. */
int vgpu_slice_reclaim_dead(struct vgpu_slice *s);
/* Live slots (any namespace). */
unsigned vgpu_slice_count_procs(const struct vgpu_slice *s);

/* ---- scheduler: slice-sched.c ---- */

/* Initialize the scheduler part of a fresh region. */
int vgpu_sched_init(struct vgpu_sched *sch, uint64_t quantum_ns);

struct vgpu_sched_ticket {
        uint32_t turn;
        uint64_t deadline_ns;
};

/*
 * Take part in the turn of slice `index` at time now: 0 and *ret when the slice holds the GPU
 * (the caller is counted as a participant until vgpu_sched_leave()). -EAGAIN when it must wait:
 * wait with vgpu_sched_wait(*ret_wake, *ret_until) and try again.
 */
int vgpu_sched_enter(struct vgpu_slice_shm *shm, unsigned index, uint64_t now, struct vgpu_sched_ticket *ret,
                     uint32_t *ret_wake, uint64_t *ret_until);
/* At the deadline: 1 and a new deadline when no other slice waits (equal-share only), else 0. */
int vgpu_sched_extend(struct vgpu_slice_shm *shm, unsigned index, struct vgpu_sched_ticket *t, uint64_t now);
/* A participant starts (+1) / stops (-1) waiting for its GPU work: the turn is not idle meanwhile. */
void vgpu_sched_blocked(struct vgpu_slice_shm *shm, uint32_t turn, int delta);
/* Leave `turn`, whose GPU work of this process completed at end_ns (0: never launched), at now. */
void vgpu_sched_leave(struct vgpu_slice_shm *shm, unsigned index, uint32_t turn, uint64_t end_ns, uint64_t now);
/* Sleep until the futex word moves from `wake` or until the absolute time `until`. */
void vgpu_sched_wait(struct vgpu_slice_shm *shm, uint32_t wake, uint64_t until);
/* Is another slice than `index` waiting for the GPU at time now? */
bool vgpu_sched_contended(struct vgpu_slice_shm *shm, unsigned index, uint64_t now);
