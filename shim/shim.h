/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * shim.h — what the files of libvgpu-cuda.so share: the table of driver entry points (entries.h:
 * wrapped or only called), the process's slice state, and each file's small interface.
 *
 * Entry points are identified by their exact ABI symbol (cuMemAlloc_v2, cuLaunchKernel_ptsz): the
 * name cuGetProcAddress is asked for, the CUDA version that introduced that ABI and the flags that
 * select it are only how to find its address. See resolve.c.
 */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "cuda-types.h"
#include "entries.h"
#include "slice/slice.h"

#define SHIM_ENUM(sym, base, ver, probe, kind, pfn) FN_##sym,
enum shim_fn { SHIM_ENTRIES(SHIM_ENUM) FN__MAX };
#undef SHIM_ENUM

#define SHIM_TYPEDEF(sym, base, ver, probe, kind, pfn) typedef pfn shim_pfn_##sym;
SHIM_ENTRIES(SHIM_TYPEDEF)
#undef SHIM_TYPEDEF

/* Every wrapper shim_<symbol>, declared with its PFN's type. */
#define SHIM_DECLARE_W(sym, pfn) extern __typeof__(*(pfn) 0) shim_##sym;
#define SHIM_DECLARE_R(sym, pfn)
#define SHIM_DECLARE(sym, base, ver, probe, kind, pfn) SHIM_DECLARE_##kind(sym, pfn)
SHIM_ENTRIES(SHIM_DECLARE)
#undef SHIM_DECLARE

/* Export a wrapper under the driver's own name too, for programs linked with -lcuda. */
#define SHIM_EXPORT(sym) \
        extern __typeof__(shim_##sym) sym __attribute__((alias("shim_" #sym), visibility("default")))

/* ---- resolve.c ---- */
extern void *shim_real[FN__MAX];
/* Make sure the real CUDA entry points are known (libcuda loaded); false if not (yet). */
bool shim_cuda_ready(void);
/* The real entry point (NULL when the driver lacks it), resolving on first use. */
#define REAL(sym) ((shim_pfn_##sym) shim_real_get(FN_##sym))
void *shim_real_get(enum shim_fn fn);

/* ---- config.c ---- */
enum shim_mode {
        SHIM_OFF = 0, /* no slice configured: everything passes through */
        SHIM_ON = 1,
        SHIM_BROKEN = -1, /* configured but unusable: allocations fail (closed, not open) */
};

struct shim_state {
        enum shim_mode mode;
        struct slice_region *region;    /* the slice's own region, mapped */
        struct slice *slice;            /* ...its slice */
        struct slice_sched_file *sched; /* the GPU's scheduler: never mapped (sched-file.c) */
        unsigned index;                 /* the slice's slot in it */
        uint64_t quantum_ns;
        char gpu_bdf[32];
        bool gated; /* the slice's launches go through the scheduler */
        enum slice_scrub scrub;
        int log_level;
};
extern struct shim_state shim;

enum { SHIM_LOG_ERROR, SHIM_LOG_WARNING, SHIM_LOG_INFO, SHIM_LOG_DEBUG };
void shim_log(int level, const char *fmt, ...) _printf_(2, 3);

/* The calling process's charge slot, attached on first use. NULL: cannot charge. */
struct slice_proc *shim_proc(void);
/* Register the exit handler (once); called at the first tracked allocation so that it runs
 * before the CUDA runtime's own exit handlers tear the context down. */
void shim_register_exit(void);

/* ---- alloc-track.c: this process's live allocations ---- */
enum shim_space { SPACE_PTR, SPACE_HANDLE, SPACE_ARRAY, SPACE_MIPMAP };
enum shim_alloc_kind { ALLOC_LINEAR, ALLOC_MANAGED, ALLOC_ASYNC, ALLOC_HANDLE, ALLOC_ARRAY, ALLOC_MIPMAP };
struct shim_alloc {
        enum shim_space space;
        uint64_t key; /* device pointer, handle, CUarray or CUmipmappedArray */
        enum shim_alloc_kind kind;
        uint64_t charged; /* bytes charged to the slice for it */
        uint64_t bytes;   /* extent to scrub: bytes (linear, handle), mipmap levels (mipmap) */
        CUcontext ctx;
        CUdevice dev; /* the handle's device (handles only) */
};
int shim_track_add(const struct shim_alloc *a);
bool shim_track_take(enum shim_space space, uint64_t key, struct shim_alloc *ret);
/* Remove and pass to fn every allocation of ctx (NULL: all). */
void shim_track_drain(CUcontext ctx, void (*fn)(const struct shim_alloc *a, void *userdata), void *userdata);
void shim_track_reset(void);

/* ---- device.c: which GPU is the slice's ---- */
#define SHIM_DEV_CURRENT (-1)
/* The device of the calling thread's current context, or -1 without one. */
CUdevice shim_current_device(void);
/* CUDA_SUCCESS when dev (SHIM_DEV_CURRENT: the current one) is the slice's GPU, or when no
 * slice is configured; CUDA_ERROR_OUT_OF_MEMORY (and one log line per device) otherwise. */
CUresult shim_device_check(CUdevice dev);

/* ---- memory.c ---- */
/* Reserve bytes (not rounded yet) for the process on device dev (SHIM_DEV_CURRENT: the current
 * context's): 0 or CUDA_ERROR_OUT_OF_MEMORY, also for a device that is not the slice's. */
CUresult shim_charge_dev(CUdevice dev, uint64_t bytes, uint64_t *ret_charged);
static inline CUresult shim_charge(uint64_t bytes, uint64_t *ret_charged) {
        return shim_charge_dev(SHIM_DEV_CURRENT, bytes, ret_charged);
}
void shim_uncharge(uint64_t charged);

/* ---- pool.c ---- */
/* Bring the charges of the memory pools used so far in line with their reserved size. */
void shim_pools_sync(void);
/* Give the pools' cached memory back to the device (before refusing an allocation). */
void shim_pools_trim(void);
void shim_pools_atfork_child(void);

/* ---- graph.c: the device's graph memory pool (cuGraphAddMemAllocNode, captured allocations) ---- */
/* Give the graph pools' unused memory back to the device (before refusing an allocation). */
void shim_graphs_trim(void);
/* Bring the graph pools' charges in line with their reserved size. */
void shim_graphs_sync(void);
/* Before / after launching or uploading exec: 0 or CUDA_ERROR_OUT_OF_MEMORY; *ret_token for after. */
CUresult shim_graph_before(CUgraphExec exec, uint64_t *ret_token);
void shim_graph_after(CUgraphExec exec, uint64_t token, CUresult r);
void shim_graphs_atfork_child(void);

/* ---- scrub.c ---- */
/* Clear [ptr, ptr+bytes) before it is released (synchronously, or on stream when async). */
void shim_scrub(CUdeviceptr ptr, uint64_t bytes, bool async, CUstream stream);

/* ---- scrub-opaque.c: memory without a linear address of ours ---- */
/* Clear a cuMemCreate handle of `bytes` on dev through a temporary mapping (synchronous). */
void shim_scrub_handle(CUmemGenericAllocationHandle h, uint64_t bytes, CUdevice dev);
/* Clear every element of an array / of every level of a mipmapped array (synchronous). */
void shim_scrub_array(CUarray a);
/* Bytes per element of a CUarray_format; 0 when unknown (memory.c) */
size_t shim_array_element_bytes(int format);
void shim_scrub_mipmap(CUmipmappedArray m, unsigned levels);
/* Scrub a tracked allocation of any kind per its kind (linear ones with cuMemsetD8). */
void shim_scrub_alloc(const struct shim_alloc *a);
/* Scrub (per policy) and uncharge every tracked allocation of ctx (NULL: all): teardown, exit. */
void shim_release_all(CUcontext ctx);

/* ---- turn.c: the process's part in the GPU's time slices ---- */
void shim_turn_gate(CUstream stream, bool per_thread);
void shim_turn_launched(CUstream stream, bool per_thread);
void shim_turn_stream_destroyed(CUstream stream);
void shim_turn_exit(void);
void shim_turn_atfork_child(void);
