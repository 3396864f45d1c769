/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fake-resolve.c — cuGetProcAddress and cuGetProcAddress_v2 of the fake driver: a table of
 * (name, version introduced, stream kind, function), searched as the driver documents it: the
 * newest ABI of that name not newer than the caller's cudaVersion, the _ptsz variant when the
 * caller asks for per-thread default stream semantics.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fake-cuda.h"

enum { ANY, LEGACY, PTSZ };

struct proc {
        const char *name;
        int version;
        int kind;
        void *fn;
};

#define P(name, version, kind, fn) \
        { name, version, kind, (void *) (fn) }
static const struct proc procs[] = {
        P("cuGetProcAddress", 11030, ANY, cuGetProcAddress),
        P("cuGetProcAddress", 12000, ANY, cuGetProcAddress_v2),
        P("cuInit", 2000, ANY, cuInit),
        P("cuDriverGetVersion", 2020, ANY, cuDriverGetVersion),
        P("cuDeviceGet", 2000, ANY, cuDeviceGet),
        P("cuDeviceGetCount", 2000, ANY, cuDeviceGetCount),
        P("cuDeviceGetName", 2000, ANY, cuDeviceGetName),
        P("cuDeviceTotalMem", 3020, ANY, cuDeviceTotalMem_v2),
        P("cuDevicePrimaryCtxRetain", 7000, ANY, cuDevicePrimaryCtxRetain),
        P("cuDevicePrimaryCtxRelease", 11000, ANY, cuDevicePrimaryCtxRelease_v2),
        P("cuDevicePrimaryCtxReset", 7000, ANY, cuDevicePrimaryCtxReset),
        P("cuDevicePrimaryCtxReset", 11000, ANY, cuDevicePrimaryCtxReset_v2),
        P("cuCtxSetCurrent", 4000, ANY, cuCtxSetCurrent),
        P("cuCtxGetCurrent", 4000, ANY, cuCtxGetCurrent),
        P("cuCtxGetDevice", 2000, ANY, cuCtxGetDevice),
        P("cuCtxSynchronize", 2000, ANY, cuCtxSynchronize),
        P("cuCtxPushCurrent", 4000, ANY, cuCtxPushCurrent_v2),
        P("cuCtxPopCurrent", 4000, ANY, cuCtxPopCurrent_v2),
        P("cuCtxDestroy", 4000, ANY, cuCtxDestroy_v2),
        P("cuModuleLoadData", 2000, ANY, cuModuleLoadData),
        P("cuModuleGetFunction", 2000, ANY, cuModuleGetFunction),
        P("cuStreamCreate", 2000, ANY, cuStreamCreate),
        P("cuStreamDestroy", 4000, ANY, cuStreamDestroy_v2),
        P("cuStreamSynchronize", 2000, LEGACY, cuStreamSynchronize),
        P("cuEventCreate", 2000, ANY, cuEventCreate),
        P("cuEventRecord", 2000, LEGACY, cuEventRecord),
        P("cuEventRecord", 7000, PTSZ, cuEventRecord_ptsz),
        P("cuEventQuery", 2000, ANY, cuEventQuery),
        P("cuEventSynchronize", 2000, ANY, cuEventSynchronize),
        P("cuEventElapsedTime", 2000, ANY, cuEventElapsedTime),
        P("cuEventDestroy", 4000, ANY, cuEventDestroy_v2),
        P("cuLaunchKernel", 4000, LEGACY, cuLaunchKernel),
        P("cuLaunchKernel", 7000, PTSZ, launch_kernel_ptsz),
        P("cuLaunchKernelEx", 11060, LEGACY, cuLaunchKernelEx),
        P("cuLaunchKernelEx", 11060, PTSZ, cuLaunchKernelEx_ptsz),
        P("cuLaunchCooperativeKernel", 9000, LEGACY, cuLaunchCooperativeKernel),
        P("cuLaunchCooperativeKernel", 9000, PTSZ, cuLaunchCooperativeKernel_ptsz),
        P("cuGraphLaunch", 10000, LEGACY, cuGraphLaunch),
        P("cuGraphLaunch", 10000, PTSZ, cuGraphLaunch_ptsz),
        P("cuGraphExecDestroy", 10000, ANY, cuGraphExecDestroy),
        P("cuGraphUpload", 11010, LEGACY, cuGraphUpload),
        P("cuGraphUpload", 11010, PTSZ, cuGraphUpload_ptsz),
        P("cuGraphCreate", 10000, ANY, cuGraphCreate),
        P("cuGraphDestroy", 10000, ANY, cuGraphDestroy),
        P("cuGraphAddMemAllocNode", 11040, ANY, cuGraphAddMemAllocNode),
        P("cuGraphAddMemFreeNode", 11040, ANY, cuGraphAddMemFreeNode),
        P("cuGraphGetNodes", 10000, ANY, cuGraphGetNodes),
        P("cuGraphNodeGetType", 10000, ANY, cuGraphNodeGetType),
        P("cuGraphMemAllocNodeGetParams", 11040, ANY, cuGraphMemAllocNodeGetParams),
        P("cuGraphInstantiate", 10000, ANY, cuGraphInstantiate),
        P("cuGraphInstantiate", 11000, ANY, cuGraphInstantiate_v2),
        /* From 12.0 on, cuGraphInstantiate is the WithFlags ABI, as in NVIDIA's table. */
        P("cuGraphInstantiate", 12000, ANY, cuGraphInstantiateWithFlags),
        P("cuGraphInstantiateWithFlags", 11040, ANY, cuGraphInstantiateWithFlags),
        P("cuGraphInstantiateWithParams", 12000, LEGACY, cuGraphInstantiateWithParams),
        P("cuGraphInstantiateWithParams", 12000, PTSZ, cuGraphInstantiateWithParams_ptsz),
        P("cuDeviceGetGraphMemAttribute", 11040, ANY, cuDeviceGetGraphMemAttribute),
        P("cuDeviceGraphMemTrim", 11040, ANY, cuDeviceGraphMemTrim),
        P("cuStreamBeginCapture", 10010, ANY, cuStreamBeginCapture_v2),
        P("cuStreamEndCapture", 10000, ANY, cuStreamEndCapture),
        P("cuStreamIsCapturing", 10000, LEGACY, cuStreamIsCapturing),
        P("cuStreamIsCapturing", 10000, PTSZ, cuStreamIsCapturing_ptsz),
        P("cuDeviceGetPCIBusId", 4010, ANY, cuDeviceGetPCIBusId),
        P("cuMemAddressReserve", 10020, ANY, cuMemAddressReserve),
        P("cuMemAddressFree", 10020, ANY, cuMemAddressFree),
        P("cuMemMap", 10020, ANY, cuMemMap),
        P("cuMemUnmap", 10020, ANY, cuMemUnmap),
        P("cuMemSetAccess", 10020, ANY, cuMemSetAccess),
        P("cuArray3DGetDescriptor", 3020, ANY, cuArray3DGetDescriptor_v2),
        P("cuMemcpy3D", 3020, LEGACY, cuMemcpy3D_v2),
        P("cuMipmappedArrayCreate", 5000, ANY, cuMipmappedArrayCreate),
        P("cuMipmappedArrayDestroy", 5000, ANY, cuMipmappedArrayDestroy),
        P("cuMipmappedArrayGetLevel", 5000, ANY, cuMipmappedArrayGetLevel),
        P("cuMipmappedArrayGetMemoryRequirements", 11060, ANY, cuMipmappedArrayGetMemoryRequirements),
        P("cuMemAlloc", 2000, ANY, cuMemAlloc),
        P("cuMemAlloc", 3020, ANY, mem_alloc_v2),
        P("cuMemAllocPitch", 3020, ANY, cuMemAllocPitch_v2),
        P("cuMemAllocManaged", 6000, ANY, cuMemAllocManaged),
        P("cuMemFree", 3020, ANY, cuMemFree_v2),
        P("cuMemGetInfo", 3020, ANY, cuMemGetInfo_v2),
        P("cuMemsetD8", 3020, LEGACY, cuMemsetD8_v2),
        P("cuMemsetD8Async", 3020, LEGACY, cuMemsetD8Async),
        P("cuMemsetD8Async", 7000, PTSZ, cuMemsetD8Async_ptsz),
        P("cuMemcpyHtoD", 3020, LEGACY, cuMemcpyHtoD_v2),
        P("cuMemcpyDtoH", 3020, LEGACY, cuMemcpyDtoH_v2),
        P("cuMemCreate", 10020, ANY, cuMemCreate),
        P("cuMemRelease", 10020, ANY, cuMemRelease),
        P("cuDeviceGetMemPool", 11020, ANY, cuDeviceGetMemPool),
        P("cuDeviceGetDefaultMemPool", 11020, ANY, cuDeviceGetDefaultMemPool),
        P("cuMemPoolTrimTo", 11020, ANY, cuMemPoolTrimTo),
        P("cuMemPoolGetAttribute", 11020, ANY, cuMemPoolGetAttribute),
        P("cuMemAllocAsync", 11020, LEGACY, cuMemAllocAsync),
        P("cuMemAllocAsync", 11020, PTSZ, cuMemAllocAsync_ptsz),
        P("cuMemAllocFromPoolAsync", 11020, LEGACY, cuMemAllocFromPoolAsync),
        P("cuMemAllocFromPoolAsync", 11020, PTSZ, cuMemAllocFromPoolAsync_ptsz),
        P("cuMemFreeAsync", 11020, LEGACY, cuMemFreeAsync),
        P("cuMemFreeAsync", 11020, PTSZ, cuMemFreeAsync_ptsz),
        P("cuArrayCreate", 3020, ANY, cuArrayCreate_v2),
        P("cuArray3DCreate", 3020, ANY, cuArray3DCreate_v2),
        P("cuArrayDestroy", 2000, ANY, cuArrayDestroy),
        P("cuArrayGetMemoryRequirements", 11060, ANY, cuArrayGetMemoryRequirements),
};
#undef P

/* FAKE_CUDA_TRACE=FILE: every lookup appended as "name version flags found|missing", so that what
 * a real CUDA runtime asks the driver for can be recorded (tests/shim/cudart-requests). */
static void trace(const char *symbol, int version, cuuint64_t flags, bool found) {
        const char *path = getenv("FAKE_CUDA_TRACE");
        FILE *f = path && *symbol ? fopen(path, "ae") : NULL; /* (NVIDIA's runtime also asks for "") */
        if (!f)
                return;
        fprintf(f, "%s %d %llu %s\n", symbol, version, (unsigned long long) flags,
                found ? "found" : "missing");
        fclose(f);
}

static CUresult lookup(const char *symbol, void **pfn, int version, cuuint64_t flags,
                       CUdriverProcAddressQueryResult *status) {
        bool per_thread = flags & CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM;
        bool has_ptsz = false, named = false;
        for (size_t i = 0; i < sizeof(procs) / sizeof(procs[0]); i++)
                if (strcmp(procs[i].name, symbol) == 0 && procs[i].kind == PTSZ &&
                    procs[i].version <= version)
                        has_ptsz = true;
        const struct proc *best = NULL;
        for (size_t i = 0; i < sizeof(procs) / sizeof(procs[0]); i++) {
                const struct proc *p = &procs[i];
                if (strcmp(p->name, symbol) != 0)
                        continue;
                named = true;
                /* Per-thread callers get the _ptsz ABI where there is one, the plain one otherwise. */
                bool wanted = p->kind == ANY || (p->kind == PTSZ) == (per_thread && has_ptsz);
                if (wanted && p->version <= version && (!best || p->version > best->version))
                        best = p;
        }
        if (status)
                *status = best    ? CU_GET_PROC_ADDRESS_SUCCESS
                          : named ? CU_GET_PROC_ADDRESS_VERSION_NOT_SUFFICIENT
                                  : CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND;
        *pfn = best ? best->fn : NULL;
        trace(symbol, version, flags, best);
        return best ? CUDA_SUCCESS : CUDA_ERROR_NOT_FOUND;
}

CUresult cuGetProcAddress(const char *symbol, void **pfn, int version, cuuint64_t flags) {
        LAST("cuGetProcAddress");
        if (!symbol || !pfn)
                return CUDA_ERROR_INVALID_VALUE;
        return lookup(symbol, pfn, version, flags, NULL);
}

CUresult cuGetProcAddress_v2(const char *symbol, void **pfn, int version, cuuint64_t flags,
                             CUdriverProcAddressQueryResult *status) {
        LAST("cuGetProcAddress_v2");
        if (!symbol || !pfn)
                return CUDA_ERROR_INVALID_VALUE;
        return lookup(symbol, pfn, version, flags, status);
}
