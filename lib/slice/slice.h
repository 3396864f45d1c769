/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * slice.h — the operations on the slice regions (slice/slice-shm.h), a slice's own region and
 * its GPU's scheduler file: creating, reading and mapping them, charging memory, reclaiming
 * dead processes' charges and the scheduler's turn transitions.
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
#include "slice/slice-shm.h"

static inline uint64_t slice_now_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * UINT64_C(1000000000) + (uint64_t) ts.tv_nsec;
}

/* ---- regions: slice-region.c (a slice's own file), sched-file.c (the GPU's scheduler) ---- */

struct slice_gpu_params {
        const char *bdf;     /* may be NULL */
        uint64_t quantum_ns; /* 0: SLICE_QUANTUM_DEFAULT_NS */
};

struct slice_params {
        const char *name;
        uint64_t quota; /* bytes, 0 = unlimited */
        enum slice_policy policy;
        unsigned weight; /* fixed-share percent */
        enum slice_scrub scrub;
        uint32_t flags;
        uint64_t granularity;
        uint64_t proc_overhead;
};

/* A copy of a slice's numbers, for listing (dead processes' charges reclaimed first). */
struct slice_info {
        unsigned index; /* slot in the GPU's scheduler */
        char name[SLICE_NAME_MAX];
        char gpu_bdf[32];
        enum slice_policy policy;
        enum slice_scrub scrub;
        unsigned weight;
        uint64_t quota, used, peak, oom_count;
        uint64_t gpu_ns, turns;
        unsigned processes;
};

/* Check params as vgpu_slice_add() needs them: 0 or -EINVAL with err set. */
int slice_params_check(const struct slice_params *p, struct vgpu_error *err);

/* A slice's own region, NAME.slice: write it whole (O_EXCL: -EEXIST if there is one) with mode. */
int slice_region_create(const char *path, const char *gpu_bdf, unsigned sched_index,
                        const struct slice_params *p, mode_t mode, struct vgpu_error *err);
/* Read one with pread() into *ret, checked: -EPROTO (err says why) for a foreign, other-version,
 * short or corrupt file. For vgpuctl / vgpud, which must never map a file a tenant can truncate. */
int slice_region_read(const char *path, struct slice_file *ret, struct vgpu_error *err);

struct slice_region; /* a mapping of one slice's region (the shim: its own slice) */
int slice_region_open(const char *path, struct slice_region **ret, struct vgpu_error *err);
struct slice_region *slice_region_close(struct slice_region *r);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct slice_region *, slice_region_close);
#define _cleanup_slice_region_ _cleanup_(slice_region_closep)
struct slice_file *slice_region_file(const struct slice_region *r);
static inline struct slice *slice_region_slice(const struct slice_region *r) {
        return &slice_region_file(r)->slice;
}

/* What is wrong with a slice's settings (someone wrote the file by hand), or NULL. */
const char *slice_problem(const struct slice *s);
/* The numbers of a slice read with slice_region_read() (dead processes' charges are
 * returned in the copy), its GPU time from the scheduler's copy sched (may be NULL). */
void slice_file_info(struct slice_file *f, const struct slice_shm *sched, struct slice_info *ret);

/* The GPU's scheduler file, BDF.shm. */
struct slice_sched_file;
int slice_sched_file_create(const char *path, const struct slice_gpu_params *gpu, mode_t mode,
                            struct slice_sched_file **ret, struct vgpu_error *err);
/* -EPROTO for a foreign, other-version or corrupt file. */
int slice_sched_file_open(const char *path, struct slice_sched_file **ret, struct vgpu_error *err);
struct slice_sched_file *slice_sched_file_close(struct slice_sched_file *f);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct slice_sched_file *, slice_sched_file_close);
#define _cleanup_sched_file_ _cleanup_(slice_sched_file_closep)
/* A snapshot of the state (no lock): 0, -EPROTO when it is no longer valid (err may be NULL). */
int slice_sched_file_read(struct slice_sched_file *f, struct slice_shm *ret, struct vgpu_error *err);
/* Take the lock and a checked copy of the state in *ret (the file's own buffer): 0, -EPROTO,
 * -EBUSY when someone holds the lock far longer than any update takes. */
int slice_sched_file_begin(struct slice_sched_file *f, struct slice_shm **ret);
/* Write the copy back (when changed), drop the lock, wake the waiters if the wake word moved. */
int slice_sched_file_end(struct slice_sched_file *f, bool changed);
/* Sleep until the futex word moves from `wake` or until the absolute time `until`. */
void slice_sched_file_wait(struct slice_sched_file *f, uint32_t wake, uint64_t until);

/* Add a slice to a scheduler's state; -EEXIST for a name in use, -ENOSPC when all
 * SLICE_MAX are taken, -EINVAL for fixed shares over 100 %. */
int slice_sched_add(struct slice_shm *shm, const struct slice_params *p, unsigned *ret_index,
                    struct vgpu_error *err);
/* Free the slot of the slice called name; -ENOENT when it does not hold it. */
int slice_sched_remove(struct slice_shm *shm, unsigned index, const char *name);
/* Index of the active slot called name, or -ENOENT. */
int slice_sched_find(const struct slice_shm *shm, const char *name);
/* Initialize a fresh scheduler state (in memory). */
int slice_sched_init(struct slice_shm *shm, const struct slice_gpu_params *gpu);
/* What is wrong with a state read from the file, or NULL; fields a dead or hostile writer may
 * have left out of range are clamped by slice_sched_repair(). */
const char *slice_sched_problem(const struct slice_shm *shm);
void slice_sched_repair(struct slice_shm *shm);

const char *slice_policy_to_string(enum slice_policy p);
int slice_policy_from_string(const char *s); /* enum value or -EINVAL */
const char *slice_scrub_to_string(enum slice_scrub s);
int slice_scrub_from_string(const char *s); /* "on-free", "on-exit", "off" */
bool slice_name_is_valid(const char *name);

/* ---- charges: slice-charge.c ---- */

/* Is the process (pid, start_time) still running? Zombies count as dead (their GPU memory is gone). */
bool proc_alive(pid_t pid, uint64_t start_time);
/* Start time (clock ticks since boot) of pid, from /proc/PID/stat; 0 on failure. */
uint64_t proc_start_time(pid_t pid);
/* Inode of this process's pid namespace, 0 when unknown. */
uint64_t proc_pidns(void);

/* Claim a slot for the calling process (charging proc_overhead); -ENOSPC table full, -EDQUOT over quota. */
int slice_attach(struct slice *s, struct slice_proc **ret);
/* Return the slot's remaining charge and free it. */
void slice_detach(struct slice *s, struct slice_proc *p);
/* Round bytes up to the slice's charging granularity. */
uint64_t slice_round(const struct slice *s, uint64_t bytes);
/* Reserve bytes (already rounded) against the quota: 0 or -EDQUOT. Never exceeds the quota. */
int slice_charge(struct slice *s, struct slice_proc *p, uint64_t bytes);
void slice_uncharge(struct slice *s, struct slice_proc *p, uint64_t bytes);
/* Return the charges of dead processes of this pid namespace. Count of slots reclaimed. */
int slice_reclaim_dead(struct slice *s);
/* Live slots (any namespace). */
unsigned slice_count_procs(const struct slice *s);

/* ---- scheduler: slice-sched.c ---- */
/* These work on a copy of the state taken with slice_sched_file_begin() (or any state only the
 * caller touches): they neither lock nor wake; slice_sched_file_end() does. */

struct slice_sched_ticket {
        uint32_t turn;
        uint64_t deadline_ns;
};

/*
 * Take part in the turn of slice `index` at time now: 0 and *ret when the slice holds the GPU
 * (the caller is counted as a participant until slice_sched_leave()). -EAGAIN when it must wait:
 * wait with slice_sched_file_wait(*ret_wake, *ret_until) and try again.
 */
int slice_sched_enter(struct slice_shm *shm, unsigned index, uint64_t now, struct slice_sched_ticket *ret,
                      uint32_t *ret_wake, uint64_t *ret_until);
/* At the deadline: 1 and a new deadline when no other slice waits (equal-share only), else 0. */
int slice_sched_extend(struct slice_shm *shm, unsigned index, struct slice_sched_ticket *t, uint64_t now);
/* A participant starts (+1) / stops (-1) waiting for its GPU work: the turn is not idle meanwhile. */
void slice_sched_blocked(struct slice_shm *shm, uint32_t turn, int delta);
/* Leave `turn`, whose GPU work of this process completed at end_ns (0: never launched), at now;
 * again: the process asks for the next turn at once (it has more to launch). */
void slice_sched_leave(struct slice_shm *shm, unsigned index, uint32_t turn, uint64_t end_ns, uint64_t now,
                       bool again);
/* Is another slice than `index` waiting for the GPU at time now? */
bool slice_sched_contended(const struct slice_shm *shm, unsigned index, uint64_t now);
