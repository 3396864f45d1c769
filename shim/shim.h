/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * shim.h — what the files of libvgpu-cuda.so share: the table of driver entry points (wrapped or
 * only called), the process's slice state, and each file's small interface.
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
#include "slice/slice.h"

/* How resolve.c finds an entry's real addresses besides dlsym of its exact name:
 * N  cuGetProcAddress(base, version, DEFAULT)           no stream semantics
 * L  ...LEGACY_STREAM, then DEFAULT                     legacy default stream variant
 * P  ...PER_THREAD_DEFAULT_STREAM                        _ptsz / _ptds variant
 * NV dlsym in libnvidia-ml.so.1 only */
enum { PROBE_N, PROBE_L, PROBE_P, PROBE_NV };

/* X(symbol, name for cuGetProcAddress, CUDA version of the ABI, probe, W wrapped | R called, PFN) */
#define SHIM_ENTRIES(X)                                                                                         \
        X(cuGetProcAddress, cuGetProcAddress, 11030, N, W, PFN_cuGetProcAddress_v11030)                         \
        X(cuGetProcAddress_v2, cuGetProcAddress, 12000, N, W, PFN_cuGetProcAddress_v12000)                      \
        X(cuMemAlloc_v2, cuMemAlloc, 3020, N, W, PFN_cuMemAlloc_v3020)                                          \
        X(cuMemAllocPitch_v2, cuMemAllocPitch, 3020, N, W, PFN_cuMemAllocPitch_v3020)                           \
        X(cuMemAllocManaged, cuMemAllocManaged, 6000, N, W, PFN_cuMemAllocManaged_v6000)                        \
        X(cuMemFree_v2, cuMemFree, 3020, N, W, PFN_cuMemFree_v3020)                                             \
        X(cuMemCreate, cuMemCreate, 10020, N, W, PFN_cuMemCreate_v10020)                                        \
        X(cuMemRelease, cuMemRelease, 10020, N, W, PFN_cuMemRelease_v10020)                                     \
        X(cuMemAllocAsync, cuMemAllocAsync, 11020, L, W, PFN_cuMemAllocAsync_v11020)                            \
        X(cuMemAllocAsync_ptsz, cuMemAllocAsync, 11020, P, W, PFN_cuMemAllocAsync_v11020)                       \
        X(cuMemAllocFromPoolAsync, cuMemAllocFromPoolAsync, 11020, L, W, PFN_cuMemAllocFromPoolAsync_v11020)    \
        X(cuMemAllocFromPoolAsync_ptsz, cuMemAllocFromPoolAsync, 11020, P, W, PFN_cuMemAllocFromPoolAsync_v11020) \
        X(cuMemFreeAsync, cuMemFreeAsync, 11020, L, W, PFN_cuMemFreeAsync_v11020)                               \
        X(cuMemFreeAsync_ptsz, cuMemFreeAsync, 11020, P, W, PFN_cuMemFreeAsync_v11020)                          \
        X(cuMemPoolTrimTo, cuMemPoolTrimTo, 11020, N, R, PFN_cuMemPoolTrimTo_v11020)                            \
        X(cuMemPoolGetAttribute, cuMemPoolGetAttribute, 11020, N, R, PFN_cuMemPoolGetAttribute_v11020)          \
        X(cuDeviceGetMemPool, cuDeviceGetMemPool, 11020, N, R, PFN_cuDeviceGetMemPool_v11020)                   \
        X(cuArrayCreate_v2, cuArrayCreate, 3020, N, W, PFN_cuArrayCreate_v3020)                                 \
        X(cuArray3DCreate_v2, cuArray3DCreate, 3020, N, W, PFN_cuArray3DCreate_v3020)                           \
        X(cuArrayDestroy, cuArrayDestroy, 2000, N, W, PFN_cuArrayDestroy_v2000)                                 \
        X(cuArrayGetMemoryRequirements, cuArrayGetMemoryRequirements, 11060, N, R,                              \
          PFN_cuArrayGetMemoryRequirements_v11060)                                                              \
        X(cuMemGetInfo_v2, cuMemGetInfo, 3020, N, W, PFN_cuMemGetInfo_v3020)                                    \
        X(cuDeviceTotalMem_v2, cuDeviceTotalMem, 3020, N, W, PFN_cuDeviceTotalMem_v3020)                        \
        X(cuMemsetD8_v2, cuMemsetD8, 3020, L, R, PFN_cuMemsetD8_v3020)                                          \
        X(cuMemsetD8Async, cuMemsetD8Async, 3020, L, R, PFN_cuMemsetD8Async_v3020)                              \
        X(cuCtxGetCurrent, cuCtxGetCurrent, 4000, N, R, PFN_cuCtxGetCurrent_v4000)                              \
        X(cuCtxGetDevice, cuCtxGetDevice, 2000, N, R, PFN_cuCtxGetDevice_v2000)                                 \
        X(cuCtxSynchronize, cuCtxSynchronize, 2000, N, R, PFN_cuCtxSynchronize_v2000)                           \
        X(cuCtxPushCurrent_v2, cuCtxPushCurrent, 4000, N, R, PFN_cuCtxPushCurrent_v4000)                        \
        X(cuCtxPopCurrent_v2, cuCtxPopCurrent, 4000, N, R, PFN_cuCtxPopCurrent_v4000)                           \
        X(cuCtxDestroy_v2, cuCtxDestroy, 4000, N, W, PFN_cuCtxDestroy_v4000)                                    \
        X(cuDevicePrimaryCtxRetain, cuDevicePrimaryCtxRetain, 7000, N, R, PFN_cuDevicePrimaryCtxRetain_v7000)   \
        X(cuDevicePrimaryCtxRelease_v2, cuDevicePrimaryCtxRelease, 11000, N, R,                                 \
          PFN_cuDevicePrimaryCtxRelease_v11000)                                                                 \
        X(cuDevicePrimaryCtxReset_v2, cuDevicePrimaryCtxReset, 11000, N, W, PFN_cuDevicePrimaryCtxReset_v11000) \
        X(cuEventCreate, cuEventCreate, 2000, N, R, PFN_cuEventCreate_v2000)                                    \
        X(cuEventRecord, cuEventRecord, 2000, L, R, PFN_cuEventRecord_v2000)                                    \
        X(cuEventQuery, cuEventQuery, 2000, N, R, PFN_cuEventQuery_v2000)                                       \
        X(cuEventSynchronize, cuEventSynchronize, 2000, N, R, PFN_cuEventSynchronize_v2000)                     \
        X(cuEventElapsedTime, cuEventElapsedTime, 2000, N, R, PFN_cuEventElapsedTime_v2000)                     \
        X(cuEventDestroy_v2, cuEventDestroy, 4000, N, R, PFN_cuEventDestroy_v4000)                              \
        X(cuStreamDestroy_v2, cuStreamDestroy, 4000, N, W, PFN_cuStreamDestroy_v4000)                           \
        X(cuLaunchKernel, cuLaunchKernel, 4000, L, W, PFN_cuLaunchKernel_v4000)                                 \
        X(cuLaunchKernel_ptsz, cuLaunchKernel, 7000, P, W, PFN_cuLaunchKernel_v4000)                            \
        X(cuLaunchKernelEx, cuLaunchKernelEx, 11060, L, W, PFN_cuLaunchKernelEx_v11060)                         \
        X(cuLaunchKernelEx_ptsz, cuLaunchKernelEx, 11060, P, W, PFN_cuLaunchKernelEx_v11060)                    \
        X(cuLaunchCooperativeKernel, cuLaunchCooperativeKernel, 9000, L, W, PFN_cuLaunchCooperativeKernel_v9000) \
        X(cuLaunchCooperativeKernel_ptsz, cuLaunchCooperativeKernel, 9000, P, W,                                \
          PFN_cuLaunchCooperativeKernel_v9000)                                                                  \
        X(cuGraphLaunch, cuGraphLaunch, 10000, L, W, PFN_cuGraphLaunch_v10000)                                  \
        X(cuGraphLaunch_ptsz, cuGraphLaunch, 10000, P, W, PFN_cuGraphLaunch_v10000)                             \
        X(cuGraphUpload, cuGraphUpload, 11010, L, W, PFN_cuGraphUpload_v11010)                                  \
        X(cuGraphUpload_ptsz, cuGraphUpload, 11010, P, W, PFN_cuGraphUpload_v11010)                             \
        X(cuGraphInstantiate_v2, cuGraphInstantiate, 11000, N, W, PFN_cuGraphInstantiate_v11000)                \
        X(cuGraphInstantiateWithFlags, cuGraphInstantiateWithFlags, 11040, N, W,                                \
          PFN_cuGraphInstantiateWithFlags_v11040)                                                               \
        X(cuGraphInstantiateWithParams, cuGraphInstantiateWithParams, 12000, L, W,                              \
          PFN_cuGraphInstantiateWithParams_v12000)                                                              \
        X(cuGraphInstantiateWithParams_ptsz, cuGraphInstantiateWithParams, 12000, P, W,                         \
          PFN_cuGraphInstantiateWithParams_v12000)                                                              \
        X(cuGraphExecDestroy, cuGraphExecDestroy, 10000, N, W, PFN_cuGraphExecDestroy_v10000)                   \
        X(cuDeviceGraphMemTrim, cuDeviceGraphMemTrim, 11040, N, W, PFN_cuDeviceGraphMemTrim_v11040)             \
        X(cuDeviceGetGraphMemAttribute, cuDeviceGetGraphMemAttribute, 11040, N, R,                              \
          PFN_cuDeviceGetGraphMemAttribute_v11040)                                                              \
        X(cuGraphGetNodes, cuGraphGetNodes, 10000, N, R, PFN_cuGraphGetNodes_v10000)                            \
        X(cuGraphNodeGetType, cuGraphNodeGetType, 10000, N, R, PFN_cuGraphNodeGetType_v10000)                   \
        X(cuGraphMemAllocNodeGetParams, cuGraphMemAllocNodeGetParams, 11040, N, R,                              \
          PFN_cuGraphMemAllocNodeGetParams_v11040)                                                              \
        X(cuStreamIsCapturing, cuStreamIsCapturing, 10000, L, R, PFN_cuStreamIsCapturing_v10000)                \
        X(cuStreamIsCapturing_ptsz, cuStreamIsCapturing, 10000, P, R, PFN_cuStreamIsCapturing_v10000)           \
        X(cuDeviceGetPCIBusId, cuDeviceGetPCIBusId, 4010, N, R, PFN_cuDeviceGetPCIBusId_v4010)                  \
        X(cuMemAddressReserve, cuMemAddressReserve, 10020, N, R, PFN_cuMemAddressReserve_v10020)                \
        X(cuMemAddressFree, cuMemAddressFree, 10020, N, R, PFN_cuMemAddressFree_v10020)                         \
        X(cuMemMap, cuMemMap, 10020, N, R, PFN_cuMemMap_v10020)                                                 \
        X(cuMemUnmap, cuMemUnmap, 10020, N, R, PFN_cuMemUnmap_v10020)                                           \
        X(cuMemSetAccess, cuMemSetAccess, 10020, N, R, PFN_cuMemSetAccess_v10020)                               \
        X(cuArray3DGetDescriptor_v2, cuArray3DGetDescriptor, 3020, N, R, PFN_cuArray3DGetDescriptor_v3020)      \
        X(cuMemcpy3D_v2, cuMemcpy3D, 3020, L, R, PFN_cuMemcpy3D_v3020)                                          \
        X(cuMipmappedArrayCreate, cuMipmappedArrayCreate, 5000, N, W, PFN_cuMipmappedArrayCreate_v5000)         \
        X(cuMipmappedArrayDestroy, cuMipmappedArrayDestroy, 5000, N, W, PFN_cuMipmappedArrayDestroy_v5000)      \
        X(cuMipmappedArrayGetLevel, cuMipmappedArrayGetLevel, 5000, N, R, PFN_cuMipmappedArrayGetLevel_v5000)   \
        X(cuMipmappedArrayGetMemoryRequirements, cuMipmappedArrayGetMemoryRequirements, 11060, N, R,            \
          PFN_cuMipmappedArrayGetMemoryRequirements_v11060)                                                     \
        X(nvmlDeviceGetMemoryInfo, nvmlDeviceGetMemoryInfo, 0, NV, W, PFN_nvmlDeviceGetMemoryInfo)              \
        X(nvmlDeviceGetMemoryInfo_v2, nvmlDeviceGetMemoryInfo_v2, 0, NV, W, PFN_nvmlDeviceGetMemoryInfo_v2)

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
        SHIM_OFF = 0,           /* no slice configured: everything passes through */
        SHIM_ON = 1,
        SHIM_BROKEN = -1,       /* configured but unusable: allocations fail (closed, not open) */
};

struct shim_state {
        enum shim_mode mode;
        struct vgpu_slice_region *region;
        struct vgpu_slice_shm *shm;
        struct vgpu_slice *slice;
        unsigned index;
        bool gated;             /* the slice's launches go through the scheduler */
        enum vgpu_slice_scrub scrub;
        int log_level;
};
extern struct shim_state shim;

enum { SHIM_LOG_ERROR, SHIM_LOG_WARNING, SHIM_LOG_INFO, SHIM_LOG_DEBUG };
void shim_log(int level, const char *fmt, ...) _printf_(2, 3);

/* The calling process's charge slot, attached on first use. NULL: cannot charge. */
struct vgpu_slice_proc *shim_proc(void);
/* Register the exit handler (once); called at the first tracked allocation so that it runs
 * before the CUDA runtime's own exit handlers tear the context down. */
void shim_register_exit(void);

/* ---- alloc-track.c: this process's live allocations ---- */
enum shim_space { SPACE_PTR, SPACE_HANDLE, SPACE_ARRAY, SPACE_MIPMAP };
enum shim_alloc_kind { ALLOC_LINEAR, ALLOC_MANAGED, ALLOC_ASYNC, ALLOC_HANDLE, ALLOC_ARRAY, ALLOC_MIPMAP };
struct shim_alloc {
        enum shim_space space;
        uint64_t key;           /* device pointer, handle, CUarray or CUmipmappedArray */
        enum shim_alloc_kind kind;
        uint64_t charged;       /* bytes charged to the slice for it */
        uint64_t bytes;         /* extent to scrub: bytes (linear, handle), mipmap levels (mipmap) */
        CUcontext ctx;
        CUdevice dev;           /* the handle's device (handles only) */
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
