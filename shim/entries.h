/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * entries.h — the driver entry points the shim wraps (W) or only calls (R), as one X-macro list.
 * On its own so that tests/shim/cuda-abi can expand it next to NVIDIA's cuda.h, which shim.h's
 * declarations must not meet in a program's mode (cuda.h's macros would rename the symbols).
 */
#pragma once

/* How resolve.c finds an entry's real addresses besides dlsym of its exact name:
 * N  cuGetProcAddress(base, version, DEFAULT)           no stream semantics
 * L  ...LEGACY_STREAM, then DEFAULT                     legacy default stream variant
 * P  ...PER_THREAD_DEFAULT_STREAM                        _ptsz / _ptds variant
 * NV dlsym in libnvidia-ml.so.1 only */
enum { PROBE_N, PROBE_L, PROBE_P, PROBE_NV };

/* X(symbol, name for cuGetProcAddress, CUDA version of the ABI, probe, W wrapped | R called, PFN) */
#define SHIM_ENTRIES(X)                                                                                      \
        X(cuGetProcAddress, cuGetProcAddress, 11030, N, W, PFN_cuGetProcAddress_v11030)                      \
        X(cuGetProcAddress_v2, cuGetProcAddress, 12000, N, W, PFN_cuGetProcAddress_v12000)                   \
        X(cuMemAlloc_v2, cuMemAlloc, 3020, N, W, PFN_cuMemAlloc_v3020)                                       \
        X(cuMemAllocPitch_v2, cuMemAllocPitch, 3020, N, W, PFN_cuMemAllocPitch_v3020)                        \
        X(cuMemAllocManaged, cuMemAllocManaged, 6000, N, W, PFN_cuMemAllocManaged_v6000)                     \
        X(cuMemFree_v2, cuMemFree, 3020, N, W, PFN_cuMemFree_v3020)                                          \
        X(cuMemCreate, cuMemCreate, 10020, N, W, PFN_cuMemCreate_v10020)                                     \
        X(cuMemRelease, cuMemRelease, 10020, N, W, PFN_cuMemRelease_v10020)                                  \
        X(cuMemAllocAsync, cuMemAllocAsync, 11020, L, W, PFN_cuMemAllocAsync_v11020)                         \
        X(cuMemAllocAsync_ptsz, cuMemAllocAsync, 11020, P, W, PFN_cuMemAllocAsync_v11020)                    \
        X(cuMemAllocFromPoolAsync, cuMemAllocFromPoolAsync, 11020, L, W, PFN_cuMemAllocFromPoolAsync_v11020) \
        X(cuMemAllocFromPoolAsync_ptsz, cuMemAllocFromPoolAsync, 11020, P, W,                                \
          PFN_cuMemAllocFromPoolAsync_v11020)                                                                \
        X(cuMemFreeAsync, cuMemFreeAsync, 11020, L, W, PFN_cuMemFreeAsync_v11020)                            \
        X(cuMemFreeAsync_ptsz, cuMemFreeAsync, 11020, P, W, PFN_cuMemFreeAsync_v11020)                       \
        X(cuMemPoolTrimTo, cuMemPoolTrimTo, 11020, N, R, PFN_cuMemPoolTrimTo_v11020)                         \
        X(cuMemPoolGetAttribute, cuMemPoolGetAttribute, 11020, N, R, PFN_cuMemPoolGetAttribute_v11020)       \
        X(cuDeviceGetMemPool, cuDeviceGetMemPool, 11020, N, R, PFN_cuDeviceGetMemPool_v11020)                \
        X(cuArrayCreate_v2, cuArrayCreate, 3020, N, W, PFN_cuArrayCreate_v3020)                              \
        X(cuArray3DCreate_v2, cuArray3DCreate, 3020, N, W, PFN_cuArray3DCreate_v3020)                        \
        X(cuArrayDestroy, cuArrayDestroy, 2000, N, W, PFN_cuArrayDestroy_v2000)                              \
        X(cuArrayGetMemoryRequirements, cuArrayGetMemoryRequirements, 11060, N, R,                           \
          PFN_cuArrayGetMemoryRequirements_v11060)                                                           \
        X(cuMemGetInfo_v2, cuMemGetInfo, 3020, N, W, PFN_cuMemGetInfo_v3020)                                 \
        X(cuDeviceTotalMem_v2, cuDeviceTotalMem, 3020, N, W, PFN_cuDeviceTotalMem_v3020)                     \
        X(cuMemsetD8_v2, cuMemsetD8, 3020, L, R, PFN_cuMemsetD8_v3020)                                       \
        X(cuMemsetD8Async, cuMemsetD8Async, 3020, L, R, PFN_cuMemsetD8Async_v3020)                           \
        X(cuCtxGetCurrent, cuCtxGetCurrent, 4000, N, R, PFN_cuCtxGetCurrent_v4000)                           \
        X(cuCtxGetDevice, cuCtxGetDevice, 2000, N, R, PFN_cuCtxGetDevice_v2000)                              \
        X(cuCtxSynchronize, cuCtxSynchronize, 2000, N, R, PFN_cuCtxSynchronize_v2000)                        \
        X(cuCtxPushCurrent_v2, cuCtxPushCurrent, 4000, N, R, PFN_cuCtxPushCurrent_v4000)                     \
        X(cuCtxPopCurrent_v2, cuCtxPopCurrent, 4000, N, R, PFN_cuCtxPopCurrent_v4000)                        \
        X(cuCtxDestroy_v2, cuCtxDestroy, 4000, N, W, PFN_cuCtxDestroy_v4000)                                 \
        X(cuDevicePrimaryCtxRetain, cuDevicePrimaryCtxRetain, 7000, N, R,                                    \
          PFN_cuDevicePrimaryCtxRetain_v7000)                                                                \
        X(cuDevicePrimaryCtxRelease_v2, cuDevicePrimaryCtxRelease, 11000, N, R,                              \
          PFN_cuDevicePrimaryCtxRelease_v11000)                                                              \
        X(cuDevicePrimaryCtxReset, cuDevicePrimaryCtxReset, 7000, N, W, PFN_cuDevicePrimaryCtxReset_v7000)   \
        X(cuDevicePrimaryCtxReset_v2, cuDevicePrimaryCtxReset, 11000, N, W,                                  \
          PFN_cuDevicePrimaryCtxReset_v11000)                                                                \
        X(cuEventCreate, cuEventCreate, 2000, N, R, PFN_cuEventCreate_v2000)                                 \
        X(cuEventRecord, cuEventRecord, 2000, L, R, PFN_cuEventRecord_v2000)                                 \
        X(cuEventQuery, cuEventQuery, 2000, N, R, PFN_cuEventQuery_v2000)                                    \
        X(cuEventSynchronize, cuEventSynchronize, 2000, N, R, PFN_cuEventSynchronize_v2000)                  \
        X(cuEventElapsedTime, cuEventElapsedTime, 2000, N, R, PFN_cuEventElapsedTime_v2000)                  \
        X(cuEventDestroy_v2, cuEventDestroy, 4000, N, R, PFN_cuEventDestroy_v4000)                           \
        X(cuStreamDestroy_v2, cuStreamDestroy, 4000, N, W, PFN_cuStreamDestroy_v4000)                        \
        X(cuLaunchKernel, cuLaunchKernel, 4000, L, W, PFN_cuLaunchKernel_v4000)                              \
        X(cuLaunchKernel_ptsz, cuLaunchKernel, 7000, P, W, PFN_cuLaunchKernel_v4000)                         \
        X(cuLaunchKernelEx, cuLaunchKernelEx, 11060, L, W, PFN_cuLaunchKernelEx_v11060)                      \
        X(cuLaunchKernelEx_ptsz, cuLaunchKernelEx, 11060, P, W, PFN_cuLaunchKernelEx_v11060)                 \
        X(cuLaunchCooperativeKernel, cuLaunchCooperativeKernel, 9000, L, W,                                  \
          PFN_cuLaunchCooperativeKernel_v9000)                                                               \
        X(cuLaunchCooperativeKernel_ptsz, cuLaunchCooperativeKernel, 9000, P, W,                             \
          PFN_cuLaunchCooperativeKernel_v9000)                                                               \
        X(cuGraphLaunch, cuGraphLaunch, 10000, L, W, PFN_cuGraphLaunch_v10000)                               \
        X(cuGraphLaunch_ptsz, cuGraphLaunch, 10000, P, W, PFN_cuGraphLaunch_v10000)                          \
        X(cuGraphUpload, cuGraphUpload, 11010, L, W, PFN_cuGraphUpload_v11010)                               \
        X(cuGraphUpload_ptsz, cuGraphUpload, 11010, P, W, PFN_cuGraphUpload_v11010)                          \
        X(cuGraphInstantiate, cuGraphInstantiate, 10000, N, W, PFN_cuGraphInstantiate_v10000)                \
        X(cuGraphInstantiate_v2, cuGraphInstantiate, 11000, N, W, PFN_cuGraphInstantiate_v11000)             \
        X(cuGraphInstantiateWithFlags, cuGraphInstantiateWithFlags, 11040, N, W,                             \
          PFN_cuGraphInstantiateWithFlags_v11040)                                                            \
        X(cuGraphInstantiateWithParams, cuGraphInstantiateWithParams, 12000, L, W,                           \
          PFN_cuGraphInstantiateWithParams_v12000)                                                           \
        X(cuGraphInstantiateWithParams_ptsz, cuGraphInstantiateWithParams, 12000, P, W,                      \
          PFN_cuGraphInstantiateWithParams_v12000)                                                           \
        X(cuGraphExecDestroy, cuGraphExecDestroy, 10000, N, W, PFN_cuGraphExecDestroy_v10000)                \
        X(cuDeviceGraphMemTrim, cuDeviceGraphMemTrim, 11040, N, W, PFN_cuDeviceGraphMemTrim_v11040)          \
        X(cuDeviceGetGraphMemAttribute, cuDeviceGetGraphMemAttribute, 11040, N, R,                           \
          PFN_cuDeviceGetGraphMemAttribute_v11040)                                                           \
        X(cuGraphGetNodes, cuGraphGetNodes, 10000, N, R, PFN_cuGraphGetNodes_v10000)                         \
        X(cuGraphNodeGetType, cuGraphNodeGetType, 10000, N, R, PFN_cuGraphNodeGetType_v10000)                \
        X(cuGraphMemAllocNodeGetParams, cuGraphMemAllocNodeGetParams, 11040, N, R,                           \
          PFN_cuGraphMemAllocNodeGetParams_v11040)                                                           \
        X(cuStreamIsCapturing, cuStreamIsCapturing, 10000, L, R, PFN_cuStreamIsCapturing_v10000)             \
        X(cuStreamIsCapturing_ptsz, cuStreamIsCapturing, 10000, P, R, PFN_cuStreamIsCapturing_v10000)        \
        X(cuDeviceGetPCIBusId, cuDeviceGetPCIBusId, 4010, N, R, PFN_cuDeviceGetPCIBusId_v4010)               \
        X(cuMemAddressReserve, cuMemAddressReserve, 10020, N, R, PFN_cuMemAddressReserve_v10020)             \
        X(cuMemAddressFree, cuMemAddressFree, 10020, N, R, PFN_cuMemAddressFree_v10020)                      \
        X(cuMemMap, cuMemMap, 10020, N, R, PFN_cuMemMap_v10020)                                              \
        X(cuMemUnmap, cuMemUnmap, 10020, N, R, PFN_cuMemUnmap_v10020)                                        \
        X(cuMemSetAccess, cuMemSetAccess, 10020, N, R, PFN_cuMemSetAccess_v10020)                            \
        X(cuArray3DGetDescriptor_v2, cuArray3DGetDescriptor, 3020, N, R, PFN_cuArray3DGetDescriptor_v3020)   \
        X(cuMemcpy3D_v2, cuMemcpy3D, 3020, L, R, PFN_cuMemcpy3D_v3020)                                       \
        X(cuMipmappedArrayCreate, cuMipmappedArrayCreate, 5000, N, W, PFN_cuMipmappedArrayCreate_v5000)      \
        X(cuMipmappedArrayDestroy, cuMipmappedArrayDestroy, 5000, N, W, PFN_cuMipmappedArrayDestroy_v5000)   \
        X(cuMipmappedArrayGetLevel, cuMipmappedArrayGetLevel, 5000, N, R,                                    \
          PFN_cuMipmappedArrayGetLevel_v5000)                                                                \
        X(cuMipmappedArrayGetMemoryRequirements, cuMipmappedArrayGetMemoryRequirements, 11060, N, R,         \
          PFN_cuMipmappedArrayGetMemoryRequirements_v11060)                                                  \
        X(nvmlDeviceGetMemoryInfo, nvmlDeviceGetMemoryInfo, 0, NV, W, PFN_nvmlDeviceGetMemoryInfo)           \
        X(nvmlDeviceGetMemoryInfo_v2, nvmlDeviceGetMemoryInfo_v2, 0, NV, W, PFN_nvmlDeviceGetMemoryInfo_v2)
