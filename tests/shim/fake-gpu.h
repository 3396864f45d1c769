/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fake-gpu.h — the parts of the fake CUDA driver (libcuda.so.1 for tests) shared between its
 * files: one simulated GPU per file named by $FAKE_CUDA_GPU, shared by every process that opens
 * it (device memory, an allocator that reuses freed blocks last-in first-out, and one execution
 * engine that runs one kernel at a time, first come first served), and per process a work queue
 * executed in order by a worker thread (kernels, events, async memsets and frees).
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>

#include "../../shim/cuda-types.h"

#define FAKE_DPTR_BASE UINT64_C(0x10000000000) /* device addresses start at 1 TiB */
#define FAKE_ALIGN     512u

/* ---- fake-gpu.c: the shared device ---- */
int fake_gpu_open(void); /* 0 or -errno; idempotent */
uint64_t fake_gpu_mem_size(void);
uint64_t fake_gpu_mem_used(void); /* all processes */
/* Allocate n bytes of device memory: 0 and *ret, or -ENOMEM. */
int fake_gpu_alloc(uint64_t n, CUdeviceptr *ret);
int fake_gpu_free(CUdeviceptr p); /* -EINVAL for an unknown pointer */
void fake_gpu_free_all_mine(void);
/* Host address of [p, p+n), NULL when outside an allocation (mapped addresses of fake-vmm.c
 * are translated to their handle's memory). */
void *fake_gpu_host(CUdeviceptr p, uint64_t n);
/* Run one kernel: hold the engine for ns; returns start and end times. */
void fake_gpu_run(uint64_t ns, uint64_t *ret_start, uint64_t *ret_end);

/* ---- fake-queue.c: this process's work queue ---- */
struct CUevent_st {
        _Atomic uint64_t stamp;    /* when the queue reached the last record */
        _Atomic uint64_t recorded; /* records submitted */
        _Atomic uint64_t done;     /* records executed */
};

struct CUmemPoolHandle_st;
void fake_queue_kernel(uint64_t ns);
void fake_queue_event(CUevent ev);
void fake_queue_memset(CUdeviceptr p, unsigned char v, size_t n);
void fake_queue_pool_free(struct CUmemPoolHandle_st *pool, CUdeviceptr p);
void fake_queue_sync(void); /* everything submitted so far is done */
void fake_event_sync(CUevent ev);
/* Called by the worker for OP_POOLFREE (fake-cuda.c). */
void fake_pool_release(struct CUmemPoolHandle_st *pool, CUdeviceptr p);

/* Statistics of this process. */
void fake_stats_memset(uint64_t n);
uint64_t fake_now_ns(void);

/* ---- fake-cuda.c: devices ($FAKE_CUDA_DEVICES of them, default 1, sharing the memory above) ---- */
#define FAKE_DEVICES_MAX 4
int fake_device_count(void);
int fake_current_device(void); /* of the current context, -1 without one */

/* ---- fake-vmm.c: address reservations and mappings of cuMemCreate handles ---- */
#define FAKE_VA_BASE UINT64_C(0x200000000000)          /* reserved ranges start at 32 TiB */
CUdeviceptr fake_vmm_translate(CUdeviceptr p);         /* the handle's address behind a mapped p, or p */
bool fake_vmm_release(CUmemGenericAllocationHandle h); /* false: still mapped, freed at the last unmap */

/* ---- fake-memory.c: pools, shared with the graph memory of fake-graph.c ---- */
struct CUmemPoolHandle_st *fake_graph_pool(int dev);
/* Take the pool's block at p again if it is still there (a relaunch), else any unused block of
 * at least n, else a new one: CUDA_SUCCESS and *ret, or CUDA_ERROR_OUT_OF_MEMORY. */
CUresult fake_pool_back(struct CUmemPoolHandle_st *pool, CUdeviceptr p, size_t n, CUdeviceptr *ret);

/* ---- fake-graph.c: graphs, stream capture ---- */
struct CUstream_st {
        int id;
        struct CUgraph_st *capture; /* the graph being captured, or NULL */
};
struct CUgraphExec_st {
        uint64_t ns;   /* the busy time of its kernels */
        uint64_t need; /* bytes of its allocation nodes */
        int dev;
        CUdeviceptr backing; /* its block in the device's graph pool, 0 before backed */
};
/* Record into s's capture: a kernel of ns, an allocation of n (returns its address), a free. */
bool fake_capturing(CUstream s);
void fake_capture_kernel(CUstream s, uint64_t ns);
CUdeviceptr fake_capture_alloc(CUstream s, size_t n);
void fake_capture_free(CUstream s, CUdeviceptr p);

/* ---- test helpers exported by the fake (the tenant finds them with dlsym) ---- */
void fakecu_set_window(uint64_t start_ns, uint64_t end_ns);
uint64_t fakecu_window_busy_ns(void);
uint64_t fakecu_busy_ns(void);
void fakecu_memset_stats(uint64_t *count, uint64_t *bytes);
const char *fakecu_last_call(void);
uint64_t fakecu_device_used(void);
CUresult fakecu_graph_busy(CUgraphExec *ret, uint64_t ns);
CUdeviceptr fakecu_array_ptr(CUarray a); /* where an array's elements are */
