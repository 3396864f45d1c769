/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * cuda-abi.h — every struct layout and constant the shim declares in shim/cuda-types.h, as one
 * list. layout-ours.c expands it over the shim's own declarations, layout-nvidia.c over NVIDIA's
 * cuda.h; test-cuda-abi compares the two tables row by row. (Signatures need no table: the shim
 * compiled against NVIDIA's headers checks them, and entries-nvidia.c the table of entry points.)
 */
#pragma once

#include <stddef.h>

struct cuda_abi_row {
        const char *what;       /* "CUmemPoolProps: size", "CUmemPoolProps.maxSize: offset", "CU_AD_FORMAT_HALF" */
        long long value;
};

extern const struct cuda_abi_row cuda_abi_ours[], cuda_abi_nvidia[];
extern const size_t cuda_abi_ours_n, cuda_abi_nvidia_n;

/* A name as written in shim/shim.h's SHIM_ENTRIES and as cuda.h's macros turn it (one row per entry,
 * in table order): entries-nvidia.c writes the symbol column, symbols-nvidia.c the name column. */
struct cuda_abi_symbol {
        const char *written;
        const char *expanded;
};
extern const struct cuda_abi_symbol cuda_abi_entries_nvidia[], cuda_abi_symbols_default[], cuda_abi_symbols_ptds[];
extern const size_t cuda_abi_entries_nvidia_n, cuda_abi_symbols_default_n, cuda_abi_symbols_ptds_n;
extern const int cuda_abi_nvidia_version;

/* T(type): its size. F(type, member): its offset and size. C(constant): its value. */
#define CUDA_ABI_LIST(T, F, C)                                                                          \
        T(CUresult) T(CUdevice) T(CUdeviceptr) T(CUmemGenericAllocationHandle) T(cuuint64_t)            \
        T(CUmemPool_attribute) T(CUgraphNodeType) T(CUgraphMem_attribute) T(CUstreamCaptureStatus)      \
        T(CUstreamCaptureMode) T(CUdriverProcAddressQueryResult)                                        \
        C(CUDA_SUCCESS) C(CUDA_ERROR_INVALID_VALUE) C(CUDA_ERROR_OUT_OF_MEMORY)                         \
        C(CUDA_ERROR_NOT_INITIALIZED) C(CUDA_ERROR_INVALID_DEVICE) C(CUDA_ERROR_INVALID_CONTEXT)        \
        C(CUDA_ERROR_INVALID_HANDLE) C(CUDA_ERROR_NOT_FOUND) C(CUDA_ERROR_NOT_READY)                    \
        C(CUDA_ERROR_NOT_SUPPORTED) C(CUDA_ERROR_UNKNOWN)                                               \
        C(CU_STREAM_LEGACY) C(CU_STREAM_PER_THREAD)                                                     \
        C(CU_GET_PROC_ADDRESS_DEFAULT) C(CU_GET_PROC_ADDRESS_LEGACY_STREAM)                             \
        C(CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM)                                                \
        C(CU_GET_PROC_ADDRESS_SUCCESS) C(CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND)                          \
        C(CU_GET_PROC_ADDRESS_VERSION_NOT_SUFFICIENT)                                                   \
        C(CU_EVENT_DEFAULT) C(CU_EVENT_BLOCKING_SYNC) C(CU_EVENT_DISABLE_TIMING)                        \
        C(CU_MEM_LOCATION_TYPE_INVALID) C(CU_MEM_LOCATION_TYPE_DEVICE) C(CU_MEM_LOCATION_TYPE_HOST)     \
        C(CU_MEM_LOCATION_TYPE_HOST_NUMA) C(CU_MEM_LOCATION_TYPE_HOST_NUMA_CURRENT)                     \
        T(CUmemLocation) F(CUmemLocation, type) F(CUmemLocation, id)                                    \
        T(CUmemAllocationProp) F(CUmemAllocationProp, type) F(CUmemAllocationProp, requestedHandleTypes) \
        F(CUmemAllocationProp, location) F(CUmemAllocationProp, win32HandleMetaData)                    \
        F(CUmemAllocationProp, allocFlags) F(CUmemAllocationProp, allocFlags.compressionType)           \
        F(CUmemAllocationProp, allocFlags.gpuDirectRDMACapable) F(CUmemAllocationProp, allocFlags.usage) \
        C(CU_MEMPOOL_ATTR_RELEASE_THRESHOLD) C(CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT)                    \
        C(CU_MEMPOOL_ATTR_USED_MEM_CURRENT)                                                             \
        C(CU_AD_FORMAT_UNSIGNED_INT8) C(CU_AD_FORMAT_UNSIGNED_INT16) C(CU_AD_FORMAT_UNSIGNED_INT32)     \
        C(CU_AD_FORMAT_SIGNED_INT8) C(CU_AD_FORMAT_SIGNED_INT16) C(CU_AD_FORMAT_SIGNED_INT32)           \
        C(CU_AD_FORMAT_HALF) C(CU_AD_FORMAT_FLOAT)                                                      \
        T(CUDA_ARRAY_DESCRIPTOR) F(CUDA_ARRAY_DESCRIPTOR, Width) F(CUDA_ARRAY_DESCRIPTOR, Height)       \
        F(CUDA_ARRAY_DESCRIPTOR, Format) F(CUDA_ARRAY_DESCRIPTOR, NumChannels)                          \
        T(CUDA_ARRAY3D_DESCRIPTOR) F(CUDA_ARRAY3D_DESCRIPTOR, Width) F(CUDA_ARRAY3D_DESCRIPTOR, Height) \
        F(CUDA_ARRAY3D_DESCRIPTOR, Depth) F(CUDA_ARRAY3D_DESCRIPTOR, Format)                            \
        F(CUDA_ARRAY3D_DESCRIPTOR, NumChannels) F(CUDA_ARRAY3D_DESCRIPTOR, Flags)                       \
        T(CUDA_ARRAY_MEMORY_REQUIREMENTS) F(CUDA_ARRAY_MEMORY_REQUIREMENTS, size)                       \
        F(CUDA_ARRAY_MEMORY_REQUIREMENTS, alignment)                                                    \
        C(CU_MEMORYTYPE_HOST) C(CU_MEMORYTYPE_DEVICE) C(CU_MEMORYTYPE_ARRAY)                            \
        T(CUDA_MEMCPY3D) F(CUDA_MEMCPY3D, srcXInBytes) F(CUDA_MEMCPY3D, srcY) F(CUDA_MEMCPY3D, srcZ)    \
        F(CUDA_MEMCPY3D, srcLOD) F(CUDA_MEMCPY3D, srcMemoryType) F(CUDA_MEMCPY3D, srcHost)              \
        F(CUDA_MEMCPY3D, srcDevice) F(CUDA_MEMCPY3D, srcArray) F(CUDA_MEMCPY3D, reserved0)              \
        F(CUDA_MEMCPY3D, srcPitch) F(CUDA_MEMCPY3D, srcHeight) F(CUDA_MEMCPY3D, dstXInBytes)            \
        F(CUDA_MEMCPY3D, dstY) F(CUDA_MEMCPY3D, dstZ) F(CUDA_MEMCPY3D, dstLOD)                          \
        F(CUDA_MEMCPY3D, dstMemoryType) F(CUDA_MEMCPY3D, dstHost) F(CUDA_MEMCPY3D, dstDevice)           \
        F(CUDA_MEMCPY3D, dstArray) F(CUDA_MEMCPY3D, reserved1) F(CUDA_MEMCPY3D, dstPitch)               \
        F(CUDA_MEMCPY3D, dstHeight) F(CUDA_MEMCPY3D, WidthInBytes) F(CUDA_MEMCPY3D, Height)             \
        F(CUDA_MEMCPY3D, Depth)                                                                         \
        C(CU_MEM_ACCESS_FLAGS_PROT_NONE) C(CU_MEM_ACCESS_FLAGS_PROT_READ)                               \
        C(CU_MEM_ACCESS_FLAGS_PROT_READWRITE)                                                           \
        T(CUmemAccessDesc) F(CUmemAccessDesc, location) F(CUmemAccessDesc, flags)                       \
        C(CU_GRAPH_NODE_TYPE_MEM_ALLOC) C(CU_GRAPH_NODE_TYPE_MEM_FREE)                                  \
        C(CU_GRAPH_MEM_ATTR_USED_MEM_CURRENT) C(CU_GRAPH_MEM_ATTR_USED_MEM_HIGH)                        \
        C(CU_GRAPH_MEM_ATTR_RESERVED_MEM_CURRENT) C(CU_GRAPH_MEM_ATTR_RESERVED_MEM_HIGH)                \
        C(CUDA_GRAPH_INSTANTIATE_FLAG_AUTO_FREE_ON_LAUNCH) C(CUDA_GRAPH_INSTANTIATE_FLAG_UPLOAD)        \
        T(CUmemPoolProps) F(CUmemPoolProps, allocType) F(CUmemPoolProps, handleTypes)                   \
        F(CUmemPoolProps, location) F(CUmemPoolProps, win32SecurityAttributes)                          \
        F(CUmemPoolProps, maxSize) F(CUmemPoolProps, usage)                                             \
        T(CUDA_MEM_ALLOC_NODE_PARAMS) F(CUDA_MEM_ALLOC_NODE_PARAMS, poolProps)                          \
        F(CUDA_MEM_ALLOC_NODE_PARAMS, accessDescs) F(CUDA_MEM_ALLOC_NODE_PARAMS, accessDescCount)       \
        F(CUDA_MEM_ALLOC_NODE_PARAMS, bytesize) F(CUDA_MEM_ALLOC_NODE_PARAMS, dptr)                     \
        T(CUDA_GRAPH_INSTANTIATE_PARAMS) F(CUDA_GRAPH_INSTANTIATE_PARAMS, flags)                        \
        F(CUDA_GRAPH_INSTANTIATE_PARAMS, hUploadStream) F(CUDA_GRAPH_INSTANTIATE_PARAMS, hErrNode_out)  \
        F(CUDA_GRAPH_INSTANTIATE_PARAMS, result_out)                                                    \
        C(CU_STREAM_CAPTURE_STATUS_NONE) C(CU_STREAM_CAPTURE_STATUS_ACTIVE)                             \
        C(CU_STREAM_CAPTURE_STATUS_INVALIDATED)                                                         \
        T(CUlaunchConfig) F(CUlaunchConfig, gridDimX) F(CUlaunchConfig, gridDimY)                       \
        F(CUlaunchConfig, gridDimZ) F(CUlaunchConfig, blockDimX) F(CUlaunchConfig, blockDimY)           \
        F(CUlaunchConfig, blockDimZ) F(CUlaunchConfig, sharedMemBytes) F(CUlaunchConfig, hStream)       \
        F(CUlaunchConfig, attrs) F(CUlaunchConfig, numAttrs)

#define CUDA_ABI_T(t) { #t ": size", (long long) sizeof(t) },
#define CUDA_ABI_F(t, m) { #t "." #m ": offset", (long long) offsetof(t, m) }, \
                         { #t "." #m ": size", (long long) sizeof(((t *) 0)->m) },
#define CUDA_ABI_C(c) { #c, (long long) (uintptr_t) (c) },
