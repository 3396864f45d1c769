/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * slice-shm.h — the shared-memory layout of the software slices of one physical GPU.
 *
 * Internal to vgpuctl: shared by libvgpu and the shim (libvgpu-cuda.so) only, never installed,
 * hence no vgpu_ prefix (that prefix means "exported by libvgpu"); programs reach slices through
 * vgpu/slice.h. Two kinds of files, so that a tenant can reach only its own slice's numbers:
 *
 *   NAME.slice  one slice's region (struct slice_file): its settings, its quota counter and
 *               its processes' charges. Bind-mounted read-write into that slice's containers
 *               only, and mapped by their processes (through libvgpu-cuda.so). vgpuctl / vgpud
 *               read it with pread(), never map it: a tenant truncating its own file can crash
 *               its own processes, no one else's.
 *   BDF.shm     the GPU's scheduler (struct slice_shm): whose turn it is and each slice's
 *               scheduling credit and GPU time. Every container of the GPU has it read-write,
 *               since every tenant takes part in the turns; so nobody maps it for loads and
 *               stores: it is read and written whole with pread()/pwrite() under flock(), and
 *               mapped only as the address of the futex that wakes waiters (a futex on a
 *               truncated file fails with EFAULT; a load would be SIGBUS). What a hostile tenant
 *               can do with it is take GPU time, as it can by launching without the shim.
 *
 * Fixed sizes and versioned: a reader checks magic, version and size and refuses anything else,
 * so a shim and a CLI of different releases never misread each other (change a layout, bump
 * its version). Processes die at any instruction (kill -9), so nothing here may stay "held" by
 * a dead process:
 *   - quota: one atomic counter per slice, reserved by compare-exchange before the driver is
 *     asked, so N processes can never exceed the quota together; each process also records its
 *     own charge in a slot keyed by (pid, start time, pid namespace) from which any other process
 *     reclaims the charge once the owner is dead (start time defeats pid reuse);
 *   - scheduler: flock() is released by the kernel when its holder dies, and a pwrite() of the
 *     whole state either happened or did not; what is read back is checked all the same.
 * Times are CLOCK_MONOTONIC nanoseconds (the same clock in every process of a boot).
 */
#pragma once

#include <stdatomic.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SLICE_SHM_MAGIC    UINT64_C(0x314543494c535056) /* "VPSLICE1" */
#define SLICE_SHM_VERSION  2u                           /* 1: one file held every slice's quota and usage */
#define SLICE_FILE_MAGIC   UINT64_C(0x454e4f4c53555056) /* "VPUSLONE" */
#define SLICE_FILE_VERSION 1u
#define SLICE_MAX          16u /* slices per physical GPU */
#define SLICE_PROCS_MAX    64u /* processes charged to one slice at a time */
#define SLICE_PARTS_MAX    16u /* processes whose liveness a turn tracks */
#define SLICE_NAME_MAX     64u /* including NUL; [A-Za-z0-9_.-] */

/* Time slice of the scheduler (the vendor schedulers use 1-30 ms; 2 ms is their default). */
#define SLICE_QUANTUM_MIN_NS     UINT64_C(1000000)
#define SLICE_QUANTUM_MAX_NS     UINT64_C(30000000)
#define SLICE_QUANTUM_DEFAULT_NS UINT64_C(2000000)

enum slice_policy {
        SLICE_POLICY_BEST_EFFORT = 0, /* launches are never gated */
        SLICE_POLICY_EQUAL_SHARE = 1, /* active slices rotate; idle time goes to the active */
        SLICE_POLICY_FIXED_SHARE = 2, /* weight % of GPU time, guaranteed and capped */
};

enum slice_scrub {
        SLICE_SCRUB_ON_FREE = 0, /* clear every allocation when freed, and at exit */
        SLICE_SCRUB_ON_EXIT = 1, /* clear what is still allocated at exit / context teardown */
        SLICE_SCRUB_OFF = 2,
};

enum slice_state {
        SLICE_STATE_FREE = 0,
        SLICE_STATE_SETUP = 1, /* being written by vgpu_slice_add(); not usable yet */
        SLICE_STATE_ACTIVE = 2,
};

#define SLICE_F_MANAGED_UNCHARGED (1u << 0) /* cuMemAllocManaged not charged */

/*
 * owner: (generation << 32) | pid. pid 0: free slot. SLICE_PROC_RECLAIMING set in the pid
 * half: a reclaimer whose pid is in the low 31 bits is returning a dead owner's charge. The
 * generation grows at every release so a slow reclaimer cannot touch the next owner's charge.
 */
#define SLICE_PROC_RECLAIMING UINT32_C(0x80000000)
struct slice_proc {
        _Atomic uint64_t owner;
        _Atomic uint64_t start_time; /* /proc/PID/stat field 22; 0 while being claimed */
        _Atomic uint64_t pidns;      /* inode of the owner's pid namespace */
        _Atomic uint64_t bytes;      /* charged to this process, part of the slice's used */
};

/* One slice: settings written once by vgpuctl, and the memory its processes hold. */
struct slice {
        _Atomic uint32_t state; /* enum slice_state */
        uint32_t policy;        /* enum slice_policy */
        uint32_t scrub;         /* enum slice_scrub */
        uint32_t weight;        /* fixed-share: percent of GPU time, 1-100 */
        uint32_t flags;         /* SLICE_F_* */
        uint32_t _pad0;
        char name[SLICE_NAME_MAX];
        uint64_t quota;         /* bytes of device memory; 0 = unlimited */
        uint64_t granularity;   /* charges round up to this (0 or 1 = exact) */
        uint64_t proc_overhead; /* charged once per attached process (context memory) */

        _Atomic uint64_t used; /* the quota counter: sum of all charges */
        _Atomic uint64_t peak;
        _Atomic uint64_t oom_count; /* allocations refused for the quota */
        uint64_t reserved[8];

        struct slice_proc procs[SLICE_PROCS_MAX];
};

/* NAME.slice */
struct slice_file {
        _Atomic uint64_t magic; /* SLICE_FILE_MAGIC */
        uint32_t version;       /* SLICE_FILE_VERSION */
        uint32_t size;          /* sizeof(struct slice_file) */
        uint32_t sched_index;   /* the slice's slot in the GPU's scheduler */
        uint32_t _pad0;
        char gpu_bdf[32]; /* the physical GPU: its scheduler is BDF.shm */
        uint64_t reserved[8];
        struct slice slice;
};

/* A slice as the GPU's scheduler knows it (in BDF.shm). */
struct slice_sched_slot {
        _Atomic uint32_t state; /* enum slice_state */
        uint32_t policy;        /* enum slice_policy */
        uint32_t weight;        /* fixed-share: percent of GPU time, 1-100 */
        uint32_t forced_turn;   /* last turn of this slice closed while still in use */
        char name[SLICE_NAME_MAX];
        int64_t deficit_ns;       /* equal-share: deficit round robin credit */
        int64_t budget_ns;        /* fixed-share: token bucket, refilled at weight % */
        uint64_t budget_stamp_ns; /* last refill */
        uint64_t forced_end_ns;   /* ...and when: later work is charged as overrun */
        _Atomic uint64_t want_ns; /* last time a process of it asked for a turn (ahead: waits) */
        _Atomic uint64_t gpu_ns;  /* GPU time consumed, as measured at turn ends */
        _Atomic uint64_t turns;   /* turns granted */
        uint64_t reserved[2];
};

struct slice_part {
        int32_t pid; /* 0: unused */
        uint32_t _pad;
        uint64_t pidns;
};

struct slice_sched {
        _Atomic uint32_t wake;        /* futex word: bumped whenever waiters should look again */
        _Atomic uint32_t turn;        /* id of the current (or last) turn, never 0 once granted */
        _Atomic uint32_t owner;       /* slice index + 1; 0: GPU not held */
        uint32_t last_owner;          /* slice index + 1 of the previous turn: rotation point */
        _Atomic uint64_t deadline_ns; /* end of the current turn */
        uint64_t quantum_ns;
        uint64_t grant_ns;    /* when the current turn was granted */
        uint64_t first_ns;    /* first launch of the turn (host clock) */
        uint64_t last_ns;     /* completion of its last work (host clock, from events) */
        int32_t participants; /* processes in the turn */
        int32_t blocked;      /* participants waiting for their GPU work to complete */
        struct slice_part parts[SLICE_PARTS_MAX];
        uint64_t reserved[4];
};

/* BDF.shm */
struct slice_shm {
        _Atomic uint64_t magic; /* SLICE_SHM_MAGIC */
        uint32_t version;
        uint32_t size;               /* sizeof(struct slice_shm) */
        _Atomic uint32_t generation; /* bumped whenever a slice is added or removed */
        uint32_t _pad0;
        char gpu_bdf[32]; /* the physical GPU, for people and tools */
        uint64_t reserved[4];
        struct slice_sched sched;
        struct slice_sched_slot slices[SLICE_MAX];
};

/* Several processes update these words at once: only hardware atomics work across processes. */
_Static_assert(ATOMIC_INT_LOCK_FREE == 2 && ATOMIC_LLONG_LOCK_FREE == 2,
               "the slice region needs lock-free 32- and 64-bit atomics");
_Static_assert(sizeof(struct slice_proc) == 32, "slice layout changed: bump SLICE_FILE_VERSION");
/* Read and written whole at every turn change: one page at most. */
_Static_assert(sizeof(struct slice_shm) <= 4096, "the scheduler file outgrew a page");

#ifdef __cplusplus
}
#endif
